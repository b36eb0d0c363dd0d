"""The read limit: status reads of both dialects, a sliding window per key, HTTP 429."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")

import conftest
from conftest import EMULATOR_AUTH

from recraft_async import Rate
from recraft_async.testing import Duration, Fault, KieEmulator

SEED_READ = "/api/v1/recraft/upscale/record-info"
RECORD = "/api/v1/jobs/recordInfo"
LIMITED = {"code": 429, "msg": "Rate limit exceeded"}
# In-process only: on the fake clock, the emulator on the loop's (its windows slide in
# virtual time).
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


def emulator_with_image(**options: Any) -> tuple[KieEmulator, str]:
    """``conftest.emulator_with_image`` on the loop's clock."""
    return conftest.emulator_with_image(clock="loop", **options)


async def submit(client, url: str) -> str:
    body = {"model": "recraft/crisp-upscale", "input": {"image": url}}
    return str((await client.post("/api/v1/jobs/createTask", json=body)).json()["data"]["taskId"])


def test_the_default_read_limit_is_ten_per_second():
    """KIE's documented limit: 10 status reads per second per key."""
    assert KieEmulator().read_rate == Rate(10, per=1.0)


async def test_reads_past_the_limit_answer_the_documented_429():
    """Both dialects share one window; past it: HTTP 429, the documented body, Retry-After."""
    # Read at once: this is about the limit, not the moment before a record is readable.
    emu, url = emulator_with_image(read_rate=Rate(4, per=60.0), not_ready_for=0.0)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await submit(client, url)
        answers = [
            await client.get(path, params={"taskId": task_id})
            for path in (RECORD, SEED_READ, RECORD, SEED_READ, RECORD, SEED_READ)
        ]
        stats = (await client.get("/_emulator/stats")).json()
    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
    assert [a.json()["code"] for a in answers[:4]] == [200] * 4
    for refused in answers[4:]:
        assert refused.json() == LIMITED
        assert int(refused.headers["Retry-After"]) >= 1
        assert 0 < int(refused.headers["retry-after-ms"]) <= 60_000
    assert emu.stats.read_rate_limited == stats["read_rate_limited"] == 2
    assert emu.stats.rate_limited == 0
    assert emu.stats.status_reads == 4


async def test_the_window_slides():
    """Once the oldest read leaves the window, a new read goes through."""
    emu, url = emulator_with_image(read_rate=Rate(2, per=0.2))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await submit(client, url)
        first = [(await client.get(RECORD, params={"taskId": task_id})).status_code for _ in "abc"]
        await anyio.sleep(0.2)
        later = await client.get(RECORD, params={"taskId": task_id})
    assert first == [200, 200, 429]
    assert later.status_code == 200


async def test_concurrent_reads_cannot_slip_past_the_limit():
    """Check and take happen together: of 20 reads at once, exactly the limit passes."""
    emu, url = emulator_with_image(read_rate=Rate(10, per=60.0), latency=Duration.fixed(0.01))
    statuses: list[int] = []
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await submit(client, url)

        async def one() -> None:
            answer = await client.get(RECORD, params={"taskId": task_id})
            statuses.append(answer.status_code)

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(one)
    assert sorted(statuses) == [200] * 10 + [429] * 10
    assert emu.stats.read_rate_limited == 10


async def test_refused_reads_take_no_slot_and_no_scripted_fault():
    """A 429 is decided at the door: it leaves the window and the fault script alone."""
    emu, url = emulator_with_image(read_rate=Rate(1, per=60.0))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await submit(client, url)
        assert (await client.get(RECORD, params={"taskId": task_id})).status_code == 200
        emu.faults.next("status", Fault.http(500))
        refused = [await client.get(RECORD, params={"taskId": task_id}) for _ in range(3)]
    assert [a.status_code for a in refused] == [429] * 3
    assert emu.faults.pending("status") == 1
    assert emu.stats.read_rate_limited == 3


async def test_wrong_keys_and_submits_use_no_read_slot():
    """401s are not counted against the key's reads, and submits have their own window."""
    emu, url = emulator_with_image(read_rate=Rate(1, per=60.0), not_ready_for=0.0)
    async with emu.http_client() as client:
        for _ in range(3):
            answer = await client.get(RECORD, params={"taskId": "x"})
            assert answer.json() == {"code": 401, "msg": "Unauthorized"}
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_ids = [await submit(client, url) for _ in range(3)]
        answer = await client.get(RECORD, params={"taskId": task_ids[0]})
    assert answer.json()["code"] == 200
    assert emu.stats.read_rate_limited == 0


async def test_no_read_limit_when_read_rate_is_none():
    """read_rate=None lets every status read through."""
    emu, url = emulator_with_image(read_rate=None)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await submit(client, url)
        codes = {
            (await client.get(RECORD, params={"taskId": task_id})).status_code for _ in range(30)
        }
    assert codes == {200}
    assert emu.stats.read_rate_limited == 0


async def test_submit_429s_use_the_documented_message_too():
    """The submit limit answers HTTP 429 {"code": 429, "msg": "Rate limit exceeded"}."""
    emu, url = emulator_with_image(rate=Rate(1, per=60.0))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        await submit(client, url)
        refused = await client.post(
            "/api/v1/jobs/createTask",
            json={"model": "recraft/crisp-upscale", "input": {"image": url}},
        )
    assert refused.status_code == 429
    assert refused.json() == LIMITED
    assert emu.stats.rate_limited == 1
    assert emu.stats.read_rate_limited == 0

"""The emulator's clock: real by default, the event loop's on ``clock="loop"``.

On the loop's clock an in-process emulator runs on the tests' fake clock, so KIE's own
windows (20 submits per 10 s, 10 reads per second), task durations, the 20-minute link
lifetime and the callback retry delays pass in virtual time and are asserted there.
"""

from __future__ import annotations

import json
import time

import anyio
import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")
from conftest import EMULATOR_AUTH, Receiver, emulator_client, emulator_with_image

import recraft_async as ra
from recraft_async.testing import Duration, KieEmulator

SUBMIT = "/api/v1/jobs/createTask"
RECORD = "/api/v1/jobs/recordInfo"
LINK_PATH = "/api/v1/common/download-url"
# The async tests: on the fake clock (the sync ones ignore both marks).
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


def on_the_loop(**options: object) -> tuple[KieEmulator, str]:
    """An emulator on the loop's clock, with KIE's own limits, and its one image's URL."""
    return emulator_with_image(clock="loop", **options)


async def submit(client: httpx.AsyncClient, url: str, **extra: object) -> httpx.Response:
    """One market upscale of ``url``; ``extra`` joins the body (a callBackUrl)."""
    body = {"model": "recraft/crisp-upscale", "input": {"image": url}, **extra}
    return await client.post(SUBMIT, json=body)


def test_the_default_clock_is_the_real_one():
    """Without ``clock`` the service reads time.time(): its wall is the epoch, now."""
    emu = KieEmulator()
    before = time.time()
    now = emu.service.clock.wall()
    assert emu.service.clock.real
    assert before <= now <= time.time()


def test_an_unknown_clock_is_refused():
    """A clock that is neither a choice nor a callable: ValueError when the emulator is made."""
    with pytest.raises(ValueError, match="clock must be one of"):
        KieEmulator(clock="sundial")  # type: ignore[arg-type]


def test_a_callable_clock_sets_the_tasks_times():
    """``clock=callable``: a task is created and ends at that clock's moments."""
    moment = [1_000_000.0]
    emu, url = emulator_with_image(clock=lambda: moment[0], duration=Duration.fixed(5.0))
    task = emu.service.create_task(
        ra.Operation.UPSCALE, dialect="market", image_url=url, scale=2, format="PNG",
        callback_url=None, base_url=emu.base_url, params={},
    )  # fmt: skip
    assert (task.created, task.finished) == (1_000_000.0, 1_000_005.0)
    assert task.task_id == "task_recraft_1000000000000"  # epoch ms, then the counter


async def test_the_submit_window_reopens_after_ten_virtual_seconds():
    """KIE's 20 submits per 10 s: the 21st answers 429, and one goes through 10 s later."""
    emu, url = on_the_loop()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        start = anyio.current_time()
        answers = [(await submit(client, url)).status_code for _ in range(21)]
        refused = await submit(client, url)
        # Just past the moment the header names: the oldest submit has left the window.
        await anyio.sleep(int(refused.headers["retry-after-ms"]) / 1000 + 0.001)
        again = await submit(client, url)
    assert answers == [200] * 20 + [429]
    assert again.json()["code"] == 200
    assert anyio.current_time() - start == pytest.approx(10.0, abs=0.01)
    assert emu.stats.rate_limited == 2


async def test_the_read_window_reopens_after_one_virtual_second():
    """KIE's 10 reads per second: the 11th answers 429 until the window slides."""
    emu, url = on_the_loop(not_ready_for=0.0)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await submit(client, url)).json()["data"]["taskId"]
        codes = [
            (await client.get(RECORD, params={"taskId": task_id})).status_code for _ in "x" * 11
        ]
        await anyio.sleep(0.999)
        early = await client.get(RECORD, params={"taskId": task_id})
        await anyio.sleep(0.002)
        late = await client.get(RECORD, params={"taskId": task_id})
    assert codes == [200] * 10 + [429]
    assert (early.status_code, late.status_code) == (429, 200)


async def test_a_task_takes_its_duration_in_virtual_time():
    """A 20-second task: the client's result comes 20 virtual seconds after the submit."""
    emu, url = on_the_loop(duration=Duration.fixed(20.0))
    poll = ra.PollPolicy(initial=1.0, factor=1.0, max_interval=1.0, timeout=60.0)
    async with emu, emulator_client(emu, poll=poll) as client:
        start = anyio.current_time()
        result = await client.upscale(url)
        elapsed = anyio.current_time() - start
    [info] = emu.task_info()
    assert result.task_id == info.task_id
    assert info.finished - info.created == pytest.approx(20.0)
    assert 20.0 <= elapsed <= 22.0  # virtual seconds: a whole poll interval at most past the end


async def test_the_not_ready_moment_passes_in_virtual_time():
    """``not_ready_for=60``: recordInfo says "recordInfo is null" for 60 virtual seconds."""
    emu, url = on_the_loop(not_ready_for=60.0, read_rate=None)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await submit(client, url)).json()["data"]["taskId"]
        await anyio.sleep(59.9)
        before = (await client.get(RECORD, params={"taskId": task_id})).json()
        await anyio.sleep(0.2)
        after = (await client.get(RECORD, params={"taskId": task_id})).json()
    assert (before["code"], before["msg"]) == (422, "recordInfo is null")
    assert after["data"]["state"] == "success"


async def test_a_download_link_lives_twenty_virtual_minutes():
    """KIE's links answer for 1200 s, then 403; the result is rendered without a thread."""
    emu, url = on_the_loop(not_ready_for=0.0)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await submit(client, url)).json()["data"]["taskId"]
        record = (await client.get(RECORD, params={"taskId": task_id})).json()["data"]
        result_url = json.loads(record["resultJson"])["resultUrls"][0]
        link = (await client.post(LINK_PATH, json={"url": result_url})).json()["data"]
        fresh = await client.get(link)
        await anyio.sleep(1199.0)
        last = await client.get(link)
        await anyio.sleep(2.0)
        expired = await client.get(link)
    assert fresh.content.startswith(b"\x89PNG")
    assert last.status_code == 200
    assert expired.status_code == 403
    assert emu.stats.downloads_refused == 1


async def test_callback_retries_follow_their_delays_in_virtual_time():
    """Two 500s, then 200: attempts at the task's end, then 0.2 s and 0.5 s after each failure."""
    receiver = Receiver(statuses=(500, 500), clock=anyio.current_time)
    emu, url = on_the_loop(
        duration=Duration.fixed(3.0),
        callback_retry_delays=(0.2, 0.5, 1.0),
        callback_transport=httpx.ASGITransport(app=receiver.app),
    )
    async with emu, emu.http_client(headers=EMULATOR_AUTH) as client:
        start = anyio.current_time()
        await submit(client, url, callBackUrl="http://receiver/hook")
        await receiver.wait_for(3, timeout=60.0)
    arrivals = [at - start for _, _, at in receiver.calls]
    assert arrivals == [
        pytest.approx(3.0, abs=0.01),
        pytest.approx(3.2, abs=0.01),
        pytest.approx(3.7, abs=0.01),
    ]
    assert (emu.stats.callbacks_sent, emu.stats.callbacks_delivered) == (3, 1)

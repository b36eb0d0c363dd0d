"""Fault injection, in-process: every knob, scripted and by chance.

In-process only: the async tests run on the fake clock, the emulator on the loop's, so
delays and hiding faults pass in virtual time.
"""

from __future__ import annotations

import functools

import anyio
import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")

from conftest import EMULATOR_AUTH, emulator_with_image

from recraft_async.testing import (
    Fault,
    FaultKind,
    FaultPlan,
    Target,
)

UPSCALE = "/api/v1/recraft/upscale"
READ = "/api/v1/recraft/upscale/record-info"


make = functools.partial(emulator_with_image, read_rate=None, clock="loop")  # no read limit
# Every async test: on the fake clock (sync tests ignore the mark).
pytestmark = pytest.mark.fake_clock


@pytest.mark.anyio
async def test_scripted_503s_hit_the_next_submits_then_pass():
    """The next 2 submits answer 503 (HTTP and body), make no task; the third lands."""
    emu, url = make()
    emu.faults.next("submit", Fault.http(503), Fault.http(503))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answers = [await client.post(UPSCALE, json={"image_url": url}) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert [a.json()["code"] for a in answers] == [503, 503, 200]
    assert set(answers[0].json()) == {"code", "msg"}  # errors carry no "data"
    assert emu.stats.tasks_created == 1
    assert emu.stats.submit_requests == 3
    assert emu.stats.faults == {"submit:http": 2}
    assert emu.faults.pending("submit") == 0


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503, 455])
async def test_http_errors_on_status_reads(status):
    """Status reads can answer 500, 502, 503 and 455 with a matching envelope."""
    emu, url = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        emu.faults.next(Target.STATUS, Fault.http(status))
        failed = await client.get(READ, params={"taskId": task_id})
        fine = await client.get(READ, params={"taskId": task_id})
    assert (failed.status_code, failed.json()["code"]) == (status, status)
    assert fine.json()["data"]["successFlag"] == 1


@pytest.mark.anyio
async def test_body_code_500_with_http_200():
    """The envelope can carry 500 while HTTP says 200."""
    emu, url = make()
    emu.faults.next("submit", Fault.body(500))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(UPSCALE, json={"image_url": url})
    assert (answer.status_code, answer.json()["code"]) == (200, 500)
    assert emu.stats.tasks_created == 0


@pytest.mark.anyio
async def test_processed_500_creates_the_task_and_spends_the_credit():
    """A 500 after processing: the answer is an error but the task exists and was paid."""
    emu, url = make()
    emu.faults.next("submit", Fault.http(500, processed=True))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(UPSCALE, json={"image_url": url})
    assert answer.status_code == 500
    assert emu.stats.submits[("upscale", url)] == 1
    assert emu.credits == pytest.approx(100_000 - 0.5)


@pytest.mark.anyio
async def test_non_json_answer_is_an_html_page():
    """A gateway's HTML page instead of JSON, with the chosen HTTP status."""
    emu, _ = make()
    emu.faults.next("status", Fault.non_json(502))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.get(READ, params={"taskId": "x"})
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<html>")


@pytest.mark.anyio
async def test_drop_in_process_raises_what_httpx_raises_for_a_hang_up():
    """In-process a dropped connection is httpx.RemoteProtocolError; unprocessed, no task."""
    emu, url = make()
    emu.faults.next("submit", Fault.drop())
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(UPSCALE, json={"image_url": url})
    assert emu.stats.tasks_created == 0


@pytest.mark.anyio
async def test_drop_after_processing_leaves_a_paid_task_behind():
    """Processed, then the connection drops: one task, one charge, no answer."""
    emu, url = make()
    emu.faults.next("submit", Fault.drop(processed=True))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(UPSCALE, json={"image_url": url})
    assert emu.stats.submits[("upscale", url)] == 1
    assert emu.credits == pytest.approx(100_000 - 0.5)


@pytest.mark.anyio
async def test_slow_answer_arrives_late():
    """A delay fault holds the answer back for its seconds."""
    emu, url = make()
    emu.faults.next("submit", Fault.delay(0.2))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        started = anyio.current_time()
        answer = await client.post(UPSCALE, json={"image_url": url})
        elapsed = anyio.current_time() - started
    assert answer.json()["code"] == 200
    assert elapsed == pytest.approx(0.2)  # virtual seconds


@pytest.mark.anyio
@pytest.mark.parametrize(("processed", "created"), [(True, 1), (False, 0)])
async def test_a_caller_giving_up_on_a_slow_submit(processed, created):
    """Delayed beyond the caller's patience: processed first, the task exists anyway."""
    emu, url = make()
    emu.faults.next("submit", Fault.delay(5.0, processed=processed))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        with anyio.move_on_after(0.1):
            await client.post(UPSCALE, json={"image_url": url})
    assert emu.stats.tasks_created == created


@pytest.mark.anyio
async def test_new_task_answers_not_found_for_its_first_reads():
    """A task fault makes the first N reads answer 404, then the record appears."""
    emu, url = make()
    emu.faults.next("task", Fault.not_found(2))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        codes = [
            (await client.get(READ, params={"taskId": task_id})).json()["code"] for _ in range(3)
        ]
    assert codes == [404, 404, 200]


@pytest.mark.anyio
async def test_new_task_can_hide_for_some_seconds():
    """With seconds=, every read within that time after creation answers 404."""
    emu, url = make()
    emu.faults.next("task", Fault.not_found(0, seconds=0.2))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
        early = [
            (await client.get(READ, params={"taskId": task_id})).json()["code"] for _ in range(3)
        ]
        await anyio.sleep(0.2)
        late = (await client.get(READ, params={"taskId": task_id})).json()["code"]
    assert early == [404, 404, 404]
    assert late == 200


@pytest.mark.anyio
async def test_http_faults_can_carry_retry_after():
    """An injected 429 or 503 may say when to come back, in seconds and milliseconds."""
    emu, url = make()
    emu.faults.next("submit", Fault.http(429, retry_after=1.5), Fault.http(503))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        limited = await client.post(UPSCALE, json={"image_url": url})
        plain = await client.post(UPSCALE, json={"image_url": url})
    assert (limited.status_code, limited.json()["code"]) == (429, 429)
    assert limited.headers["Retry-After"] == "2"
    assert limited.headers["retry-after-ms"] == "1500"
    assert "Retry-After" not in plain.headers
    assert emu.stats.rate_limited == 0  # injected, not the emulator's own limiter


@pytest.mark.anyio
async def test_task_failure_and_creation_failure():
    """Task faults end tasks with status 2 (charged) or 3 (not charged), with messages."""
    emu, url = make()
    emu.faults.next("task", Fault.task_failed("model exploded"), Fault.creation_failed())
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        ids = [
            (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
            for _ in range(2)
        ]
        failed, uncreated = [
            (await client.get(READ, params={"taskId": i})).json()["data"] for i in ids
        ]
    assert (failed["successFlag"], failed["errorCode"]) == (2, 501)
    assert failed["errorMessage"] == "model exploded"
    assert (uncreated["successFlag"], uncreated["errorCode"]) == (3, 500)
    assert emu.credits == pytest.approx(100_000 - 0.5)


@pytest.mark.anyio
async def test_upload_faults():
    """Uploads can fail like any request."""
    emu, _ = make()
    emu.faults.next("upload", Fault.http(502))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post("/api/file-base64-upload", json={"base64Data": "AA=="})
    assert answer.status_code == 502
    assert emu.stats.uploads == 0


@pytest.mark.anyio
async def test_chance_with_probability_one_always_strikes_and_none_scripts_a_pass():
    """An unscripted event draws from the chances; a scripted None is a clean pass."""
    emu, url = make()
    emu.faults.chance("submit", Fault.http(503), 1.0).next("submit", None)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        codes = [
            (await client.post(UPSCALE, json={"image_url": url})).status_code for _ in range(3)
        ]
    assert codes == [200, 503, 503]


def test_chances_are_reproducible_by_seed():
    """Two plans with one seed strike the same events."""

    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan(seed).chance("status", Fault.http(500), 0.3)
        return [plan.draw(Target.STATUS) is not None for _ in range(200)]

    assert pattern(1) == pattern(1)
    assert pattern(1) != pattern(2)
    assert 30 < sum(pattern(1)) < 90


def test_clear_forgets_scripts_and_chances():
    """clear() at one target, or everywhere."""
    plan = FaultPlan().next("submit", Fault.drop()).chance("status", Fault.http(500), 1.0)
    plan.clear("submit")
    assert plan.draw(Target.SUBMIT) is None
    assert plan.draw(Target.STATUS) is not None
    plan.clear()
    assert plan.draw(Target.STATUS) is None


def test_faults_must_fit_their_target():
    """A callback fault cannot target submits, and so on; probabilities lie in [0, 1]."""
    plan = FaultPlan()
    with pytest.raises(ValueError, match="cannot target"):
        plan.next("submit", Fault.late_callback(1.0))
    with pytest.raises(ValueError, match="cannot target"):
        plan.chance("callback", Fault.http(500), 0.5)
    with pytest.raises(ValueError, match="probability"):
        plan.chance("status", Fault.http(500), 1.5)
    with pytest.raises(ValueError):
        plan.next("nowhere", Fault.drop())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("http:503", Fault.http(503)),
        ("http", Fault.http(500)),
        ("http:500+processed", Fault.http(500, processed=True)),
        ("http:429:2.5", Fault.http(429, retry_after=2.5)),
        ("notfound:0.5s", Fault.not_found(0, seconds=0.5)),
        ("body:500", Fault.body(500)),
        ("drop", Fault.drop()),
        ("drop+processed", Fault.drop(processed=True)),
        ("delay:2.5+processed", Fault.delay(2.5, processed=True)),
        ("nonjson:502", Fault.non_json(502)),
        ("fail", Fault.task_failed()),
        ("createfail", Fault.creation_failed()),
        ("notfound:3", Fault.not_found(3)),
        ("notready", Fault.not_ready(2)),
        ("notready:0.5s", Fault.not_ready(0, seconds=0.5)),
        ("notready:3:422", Fault.not_ready(3, status=422)),
        ("duplicate:3", Fault.duplicate_callback(3)),
        ("late:1.5", Fault.late_callback(1.5)),
        ("lost", Fault.lost_callback()),
    ],
)
def test_fault_specs_parse(spec, expected):
    """The command line's spelling of each fault."""
    assert Fault.parse(spec) == expected


@pytest.mark.parametrize("spec", ["boom", "http:abc", "drop+later"])
def test_bad_fault_specs_are_refused(spec):
    """Unknown kinds, bad numbers and unknown flags raise ValueError."""
    with pytest.raises(ValueError, match="bad fault"):
        Fault.parse(spec)


def test_every_fault_kind_has_a_spelling():
    """Each FaultKind parses from its value."""
    for kind in FaultKind:
        assert Fault.parse(kind.value).kind is kind


@pytest.mark.anyio
async def test_faults_can_be_scripted_over_http():
    """POST /_emulator/faults scripts faults for an emulator in another process."""
    emu, url = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        ok = await client.post(
            "/_emulator/faults",
            json={"target": "submit", "next": ["http:503", None], "chance": [["body:500", 0.0]]},
        )
        bad = await client.post("/_emulator/faults", json={"target": "submit", "next": ["boom"]})
        not_object = await client.post("/_emulator/faults", json=[1])
        codes = [
            (await client.post(UPSCALE, json={"image_url": url})).status_code for _ in range(2)
        ]
        cleared = await client.post("/_emulator/faults", json={"target": "submit", "clear": True})
    assert ok.json() == {"ok": True, "pending": 2}
    assert bad.status_code == 400
    assert "bad fault" in bad.json()["error"]
    assert not_object.status_code == 400
    assert codes == [503, 200]
    assert cleared.json()["pending"] == 0

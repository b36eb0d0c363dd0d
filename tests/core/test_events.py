"""Job events: job.events and the client's on_event (sync and async)."""

import io
import itertools
import logging
import sys

import anyio
import anyio.lowlevel
import httpx
import pytest
from conftest import MARKET_READ, MARKET_STATE, MARKET_SUBMIT, envelope, market_record
from PIL import Image

import recraft_async as ra
from recraft_async._core._jobs import Job

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]
UPLOADS = "https://uploads.test"
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


def _reads(kie, *answers):
    """Status reads answered in turn: a successFlag (as MARKET_STATE), or an HTTP error status."""
    responses = [
        httpx.Response(
            200,
            json=market_record(
                "t1", state=MARKET_STATE[a], urls=("https://o/t1.png",) if a == 1 else ()
            ),
        )
        if a in (0, 1, 2)
        else httpx.Response(a, json=envelope(code=a, msg="passing trouble"))
        for a in answers
    ]
    return kie.get(READ).mock(side_effect=responses)


def _kinds(job):
    return [event.kind for event in job.events]


def _png():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_successful_job_records_queued_submitted_reads_succeeded(kie, make_client):
    """queued, submitted, each status read with its state, then succeeded, in time order."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    _reads(kie, 0, 0, 1)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        assert _kinds(job) == ["queued"]
        await job
    events = job.events
    assert _kinds(job) == ["queued", "submitted", "status", "status", "status", "succeeded"]
    assert [e.state for e in events if e.kind == "status"] == ["processing"] * 2 + ["success"]
    assert [e.task_id for e in events] == [None] + ["t1"] * 5
    assert {e.operation for e in events} == {ra.Operation.UPSCALE}
    assert all(isinstance(e.time, float) for e in events)
    assert all(a.time <= b.time for a, b in itertools.pairwise(events))
    assert isinstance(events, tuple)
    assert events == job.events  # a copy each time, of equal events


async def test_a_resumed_job_knows_its_task_when_queued_and_submits_nothing(kie, make_client):
    """resume(): queued with the task id, then its reads and its end; no submitted."""
    _reads(kie, 0, 1)
    async with make_client() as client:
        job = client.resume("t1", "upscale")
        await job
    assert _kinds(job) == ["queued", "status", "status", "succeeded"]
    assert job.events[0].task_id == "t1"


async def test_the_read_error_and_the_failure_are_recorded(kie, make_client):
    """A 500 read is a status event; a failed task ends in a failed event with its error."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    _reads(kie, 500, 2)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.TaskFailedError):
            await job
    assert _kinds(job) == ["queued", "submitted", "status", "status", "failed"]
    first, second = [e for e in job.events if e.kind == "status"]
    assert (first.state, second.state) == ("ServerError", "failed")
    assert "passing trouble" in (first.detail or "")
    failed = job.events[-1]
    assert failed.state == "TaskFailedError"
    assert failed.detail == str(job.exception())


async def test_a_cancelled_job_ends_with_cancelled_and_nothing_after(kie, make_client):
    """Cancelled while polling, or while queued: the last event is cancelled."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1", state="generating", urls=()))
    async with make_client(max_in_flight=1) as client:
        polling = client.upscale("https://i.test/a.png")
        queued = client.upscale("https://i.test/b.png")
        while reads.call_count < 2:
            await anyio.sleep(0.01)
        assert queued.cancel()
        assert polling.cancel()
        await anyio.sleep(0.2)
    assert _kinds(queued) == ["queued", "cancelled"]
    assert _kinds(polling)[:3] == ["queued", "submitted", "status"]
    assert _kinds(polling)[-1] == "cancelled"
    assert _kinds(polling).count("cancelled") == 1


async def test_a_local_image_records_its_upload(kie, make_client):
    """Bytes are uploaded before the submit: an uploading event comes between."""
    kie.post(f"{UPLOADS}/api/file-stream-upload").respond(
        json={"success": True, "code": 200, "msg": "ok", "data": {"downloadUrl": "https://f/a"}}
    )
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    _reads(kie, 1)
    async with make_client(upload_base_url=UPLOADS) as client:
        job = client.upscale(_png())
        await job
    assert _kinds(job) == ["queued", "uploading", "submitted", "status", "succeeded"]
    assert job.events[1].task_id is None


async def test_sync_and_async_on_event_get_the_same_events_in_order(kie, make_client):
    """Both kinds of callback see every job's events, in order, equal to job.events."""
    counter = iter(range(1, 100))
    kie.post(UPSCALE).mock(
        side_effect=lambda _: httpx.Response(200, json=envelope({"taskId": f"t{next(counter)}"}))
    )
    kie.get(READ).mock(
        side_effect=lambda request: httpx.Response(
            200, json=market_record(request.url.params["taskId"], urls=("https://o/x.png",))
        )
    )
    seen_sync: list[tuple[Job, ra.JobEvent]] = []
    seen_async: list[tuple[Job, ra.JobEvent]] = []

    async def slow(job, event):
        await anyio.sleep(0.01)  # slower than the jobs: they must not wait for it
        seen_async.append((job, event))

    async with (
        make_client(on_event=lambda job, event: seen_sync.append((job, event))) as one,
        make_client(on_event=slow) as other,
    ):
        jobs = [one.upscale(f"https://i.test/{n}.png") for n in range(3)]
        jobs += [other.upscale(f"https://i.test/{n}.png") for n in range(3)]
        await jobs[-1]
    for job in jobs:
        seen = seen_sync if job in jobs[:3] else seen_async
        assert [event for owner, event in seen if owner is job] == list(job.events)
        assert job.events[-1].kind == "succeeded"
    assert len(seen_sync) == len(seen_async) == 3 * 4


async def test_a_raising_on_event_never_fails_the_job(kie, make_client, caplog):
    """Each exception of a sync or async callback is logged once and the jobs succeed."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).respond(json=market_record("t1"))

    def broken(job, event):
        raise RuntimeError(f"sync {event.kind}")

    async def broken_async(job, event):
        await anyio.lowlevel.checkpoint()
        raise RuntimeError(f"async {event.kind}")

    caplog.set_level(logging.ERROR, logger="recraft_async")
    for callback in (broken, broken_async):
        caplog.clear()
        async with make_client(on_event=callback) as client:
            job = client.upscale("https://i.test/a.png")
            assert (await job).url == "https://cdn.test/o.png"
        failures = [r for r in caplog.records if "on_event callback raised" in r.getMessage()]
        assert len(failures) == len(job.events) == 4
        assert [r.exc_info[1].args[0].split()[1] for r in failures if r.exc_info] == _kinds(job)


async def test_on_event_must_be_callable(make_client):
    """A value that cannot be called is refused when the client is made."""
    with pytest.raises(ra.InvalidInputError, match="on_event"):
        make_client(on_event="print")


async def test_a_queued_job_holds_one_float_for_its_events():
    """The queued moment is the only event state of a queued job (its memory budget)."""
    job = Job(ra.Operation.UPSCALE, None, task_id="t9")
    assert isinstance(job._trail, float)
    assert sys.getsizeof(job) <= 96  # eight slots: 221 -> 239 B per queued job, not more
    (queued,) = job.events
    assert (queued.kind, queued.task_id, queued.state) == ("queued", "t9", None)
    assert isinstance(job._trail, float)  # reading the events stores nothing

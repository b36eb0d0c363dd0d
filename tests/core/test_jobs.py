"""Jobs: awaiting, cancelling, as_completed, resume, get_task and leaving the block."""

import logging

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra

# Every test here mocks its I/O, so it runs on the fake clock: sleeps cost no wall time.
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


def _slow_service(kie, finished):
    """Tasks t1, t2, ... finish only once their id is in ``finished``."""
    counter = iter(range(1, 10_000))
    kie.post(UPSCALE).mock(
        side_effect=lambda _: httpx.Response(200, json=envelope({"taskId": f"t{next(counter)}"}))
    )

    def read(request):
        task_id = request.url.params["taskId"]
        if task_id in finished:
            return httpx.Response(
                200, json=market_record(task_id, urls=(f"https://o/{task_id}.png",))
            )
        return httpx.Response(200, json=market_record(task_id, state="generating", urls=()))

    return kie.get(READ).mock(side_effect=read)


async def _until(predicate):
    with anyio.fail_after(5):
        while not predicate():
            await anyio.sleep(0.005)


async def test_status_moves_queued_submitted_succeeded(kie, make_client):
    """A job is QUEUED, then SUBMITTED with a task id, then SUCCEEDED."""
    finished: set[str] = set()
    _slow_service(kie, finished)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        assert (job.status, job.task_id, job.done()) == (ra.JobStatus.QUEUED, None, False)
        await _until(lambda: job.status is ra.JobStatus.SUBMITTED)
        assert job.task_id == "t1"
        with pytest.raises(ra.InvalidStateError):
            job.result()
        finished.add("t1")
        result = await job
    assert job.done()
    assert job.result() is result
    assert job.exception() is None


def test_invalid_state_error_lives_with_the_other_errors():
    """ra.InvalidStateError is errors.InvalidStateError, a RecraftError and a RuntimeError."""
    assert ra.InvalidStateError is ra.errors.InvalidStateError
    assert issubclass(ra.InvalidStateError, ra.RecraftError)
    assert issubclass(ra.InvalidStateError, RuntimeError)


async def test_wait_timeout_leaves_job_running(kie, make_client):
    """wait(timeout) raises TimeoutError and the job goes on to finish."""
    finished: set[str] = set()
    _slow_service(kie, finished)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(TimeoutError):
            await job.wait(timeout=0.05)
        assert not job.done()
        finished.add("t1")
        assert (await job.wait(timeout=5)).task_id == "t1"


async def test_cancelling_the_awaiter_does_not_cancel_the_job(kie, make_client):
    """A cancelled `await job` leaves the job running to completion."""
    finished: set[str] = set()
    _slow_service(kie, finished)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        with anyio.move_on_after(0.05) as scope:
            await job
        assert scope.cancelled_caught
        assert not job.done()
        finished.add("t1")
        assert (await job).url == "https://o/t1.png"


async def test_cancel_a_queued_job_sends_nothing_for_it(kie, make_client):
    """A job cancelled while queued is never submitted and raises JobCancelledError."""
    finished: set[str] = set()
    _slow_service(kie, finished)
    async with make_client(max_in_flight=1) as client:
        first = client.upscale("https://i.test/1.png")
        second = client.upscale("https://i.test/2.png")
        assert second.cancel() is True
        assert second.cancel() is False
        finished.add("t1")
        await first
    with pytest.raises(ra.JobCancelledError) as caught:
        await second
    assert caught.value.task_id is None
    assert second.status is ra.JobStatus.CANCELLED
    assert len(kie.routes[0].calls) == 1


async def test_cancel_a_polling_job_stops_its_reads(kie, make_client):
    """Cancelling a submitted job stops its polling; the task id stays for resume."""
    reads = _slow_service(kie, set())
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        await _until(lambda: reads.call_count >= 2)
        job.cancel()
        count = reads.call_count
        await anyio.sleep(0.1)
        assert reads.call_count == count
    with pytest.raises(ra.JobCancelledError) as caught:
        await job
    assert caught.value.task_id == "t1"
    assert isinstance(job.exception(), ra.JobCancelledError)


async def test_cancel_during_submit_keeps_the_task_id(kie, make_client):
    """A cancel while the submit is on the wire lets it land and keeps the task id."""
    started = anyio.Event()

    async def slow_submit(request):
        started.set()
        await anyio.sleep(0.1)
        return httpx.Response(200, json=envelope({"taskId": "late-1"}))

    kie.post(UPSCALE).mock(side_effect=slow_submit)
    reads = kie.get(READ).respond(json=market_record("late-1"))
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        await started.wait()
        job.cancel()
    assert job.status is ra.JobStatus.CANCELLED
    assert job.task_id == "late-1"
    with pytest.raises(ra.JobCancelledError) as caught:
        await job
    assert caught.value.task_id == "late-1"
    assert reads.call_count == 0


async def test_as_completed_yields_in_finishing_order(kie, make_client):
    """as_completed yields each job once, in the order they finish."""
    finished: set[str] = set()
    _slow_service(kie, finished)
    async with make_client() as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(3)]
        await _until(lambda: all(job.task_id for job in jobs))

        async def finish_in_reverse():
            for task_id in ("t3", "t1", "t2"):
                finished.add(task_id)
                await _until(lambda t=task_id: any(j.task_id == t and j.done() for j in jobs))

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_in_reverse)
            order = [job.task_id async for job in client.as_completed([*jobs, jobs[0]])]
    assert order == ["t3", "t1", "t2"]


async def test_as_completed_includes_failures_and_finished_jobs(kie, make_client):
    """Already finished and failed jobs are yielded too."""
    kie.post(UPSCALE).mock(
        side_effect=[
            httpx.Response(200, json=envelope({"taskId": "t1"})),
            httpx.Response(200, json=envelope(None, 422, "bad")),
        ]
    )
    kie.get(READ).respond(json=market_record("t1"))
    async with make_client(max_in_flight=1) as client:
        ok = client.upscale("https://i.test/1.png")
        await ok
        bad = client.upscale("https://i.test/2.png")
        seen = [job async for job in client.as_completed([ok, bad])]
    assert seen == [ok, bad]
    assert isinstance(bad.exception(), ra.InvalidRequestError)


async def test_resume_polls_without_submitting(kie, make_client):
    """resume() reads an earlier task's status and never submits."""
    submit = kie.post(UPSCALE).respond(json=envelope({"taskId": "x"}))
    kie.get(READ).respond(json=market_record("old-7", urls=("https://o/old.png",)))
    async with make_client() as client:
        job = client.resume("old-7", "upscale")
        assert job.status is ra.JobStatus.SUBMITTED
        result = await job
    assert result.url == "https://o/old.png"
    assert submit.call_count == 0


async def test_get_task_is_one_status_read(kie, make_client):
    """get_task() returns the TaskRecord of one read."""
    reads = kie.get(READ).respond(json=market_record("t5", state="generating", urls=()))
    async with make_client() as client:
        task = await client.get_task("t5", ra.Operation.UPSCALE)
    assert task.state is ra.TaskState.PROCESSING
    assert task.task_id == "t5"
    assert reads.call_count == 1


async def test_leaving_normally_waits_for_every_job(kie, make_client):
    """The block's end waits until all scheduled jobs have finished."""
    finished = {f"t{i}" for i in range(1, 6)}
    _slow_service(kie, finished)
    async with make_client(max_in_flight=2) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(5)]
    assert all(job.status is ra.JobStatus.SUCCEEDED for job in jobs)


async def test_leaving_by_exception_stops_jobs_and_logs_task_ids(kie, make_client, caplog):
    """An exception in the block stops polling and logs resumable task ids at WARNING."""
    reads = _slow_service(kie, set())

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with make_client(max_in_flight=2) as client:
            jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(3)]
            await _until(lambda: jobs[1].task_id is not None)
            raise Boom
    count = reads.call_count
    await anyio.sleep(0.05)
    assert reads.call_count == count
    assert [job.status for job in jobs] == [ra.JobStatus.CANCELLED] * 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "upscale:t1" in warnings[0].getMessage()
    assert "upscale:t2" in warnings[0].getMessage()
    with pytest.raises(ra.JobCancelledError) as caught:
        await jobs[0]
    assert caught.value.task_id == "t1"


@pytest.mark.slow
async def test_thousands_of_handles_are_fine(make_client):
    """Scheduling thousands of jobs returns at once, and they all complete."""
    counter = iter(range(1, 100_000))

    def kie(request):  # a bare MockTransport: 4,000 requests, respx's matching is not needed
        if request.method == "POST" and request.url.path == UPSCALE:
            return httpx.Response(200, json=envelope({"taskId": f"t{next(counter)}"}))
        if request.method == "GET" and request.url.path == READ:
            return httpx.Response(200, json=market_record(request.url.params["taskId"]))
        return httpx.Response(404)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(kie)) as http,
        make_client(max_in_flight=64, http_client=http) as client,
    ):
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(2_000)]
        assert sum(job.status is ra.JobStatus.QUEUED for job in jobs) == 2_000
    assert all(job.status is ra.JobStatus.SUCCEEDED for job in jobs)

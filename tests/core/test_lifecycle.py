"""Lifecycle for servers: aclose(), shutdown(grace=...), and one thread and event loop."""

import asyncio
import logging

import anyio
import anyio.to_thread
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, wait_until

import recraft_async as ra

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
SLOW = ra.PollPolicy(initial=0.5, factor=1.0, max_interval=0.5, timeout=600.0)
NEVER_READ = ra.PollPolicy(initial=60.0, max_interval=60.0, timeout=600.0)  # within a test


def _route(kie, finishes_after: dict[str, int]):
    """Submits answer t1, t2, ...; tN finishes at read finishes_after[tN] (else never)."""
    ids = iter(range(1, 1000))
    reads: dict[str, int] = {}

    def read(request):
        task_id = request.url.params["taskId"]
        reads[task_id] = reads.get(task_id, 0) + 1
        if reads[task_id] >= finishes_after.get(task_id, 10**9):
            return httpx.Response(200, json=market_record(task_id))
        return httpx.Response(200, json=market_record(task_id, state="generating", urls=()))

    submit = kie.post(UPSCALE).mock(
        side_effect=lambda _r: httpx.Response(200, json=envelope({"taskId": f"t{next(ids)}"}))
    )
    kie.get(READ).mock(side_effect=read)
    return submit


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_aclose_waits_for_the_jobs_and_is_idempotent(kie, make_client):
    """aclose() is the normal exit: it waits for every job; a second call does nothing."""
    _route(kie, {"t1": 2})
    client = make_client()
    await client.__aenter__()
    job = client.upscale("https://i.test/a.png")
    await client.aclose()
    assert job.status is ra.JobStatus.SUCCEEDED
    await client.aclose()
    await client.__aexit__(None, None, None)
    with pytest.raises(ra.ClientNotOpenError):
        client.upscale("https://i.test/b.png")


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_shutdown_cancels_unsent_jobs_gives_submitted_ones_grace(kie, make_client, caplog):
    """shutdown(grace): unsent jobs cancelled unpaid, a quick one finishes, a slow one is logged."""
    submit = _route(kie, {"t1": 3})
    caplog.set_level(logging.WARNING, logger="recraft_async")
    async with make_client(max_in_flight=2, poll=SLOW) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(5)]
        await wait_until(lambda: jobs[1].task_id is not None)
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.shutdown, 10.0)
            await wait_until(lambda: "closing" in repr(client))
            with pytest.raises(ra.ClientNotOpenError):
                client.upscale("https://i.test/late.png")
    assert submit.call_count == 2
    assert jobs[0].result().task_id == "t1"
    with pytest.raises(ra.JobCancelledError) as stopped:
        jobs[1].result()
    assert stopped.value.task_id == "t2"
    for job in jobs[2:]:
        with pytest.raises(ra.JobCancelledError, match="nothing was paid"):
            job.result()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "upscale:t2" in warnings[0]
    assert "t1" not in warnings[0].replace("upscale:t2", "")


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_shutdown_returns_once_every_job_ended_within_grace(kie, make_client):
    """With every job done within grace, shutdown does not wait out the grace period."""
    _route(kie, {"t1": 1})
    async with make_client(poll=SLOW) as client:
        job = client.upscale("https://i.test/a.png")
        await wait_until(lambda: job.task_id is not None)
        started = anyio.current_time()
        await client.shutdown(grace=300)
        assert anyio.current_time() - started < 300
    assert job.status is ra.JobStatus.SUCCEEDED


@pytest.mark.anyio
async def test_shutdown_checks_grace(make_client):
    """A negative grace is an InvalidInputError."""
    async with make_client() as client:
        with pytest.raises(ra.InvalidInputError, match="grace"):
            await client.shutdown(grace=-1)


@pytest.mark.anyio
async def test_another_thread_is_refused_at_once(make_client):
    """A call from another thread raises WrongEventLoopError, naming the sync client."""
    async with make_client() as client:

        def from_a_thread() -> None:
            client.upscale("https://i.test/a.png")

        with pytest.raises(ra.WrongEventLoopError, match="thread"):
            await anyio.to_thread.run_sync(from_a_thread)


@pytest.mark.anyio
async def test_a_job_waited_or_cancelled_from_another_thread_is_refused(kie, make_client):
    """job.wait() and job.cancel() from another thread raise at once; the job goes on."""
    _answer_submits(kie)
    async with make_client(poll=NEVER_READ) as client:
        job = client.upscale("https://i.test/a.png")

        def wait_in_a_thread() -> None:
            anyio.run(job.wait)

        with pytest.raises(ra.WrongEventLoopError, match="this job belongs to another thread"):
            await anyio.to_thread.run_sync(wait_in_a_thread)
        with pytest.raises(ra.WrongEventLoopError, match="thread"):
            await anyio.to_thread.run_sync(job.cancel)
        assert not job.done()
        assert job.cancel()  # from its own loop it works
        assert not job.cancel()  # and a finished job is left alone from anywhere
        assert not await anyio.to_thread.run_sync(job.cancel)


def _answer_submits(kie) -> None:
    kie.post(UPSCALE).mock(return_value=httpx.Response(200, json=envelope({"taskId": "t1"})))


def test_another_event_loop_is_refused_at_once(kie, make_client):
    """A client open in one asyncio loop, used from a second loop, raises at once."""
    _answer_submits(kie)
    client = make_client(poll=NEVER_READ)
    job: ra.Job
    loop = asyncio.new_event_loop()
    opened, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        nonlocal job
        async with client:
            job = client.upscale("https://i.test/a.png")
            opened.set()
            await release.wait()
            job.cancel()

    async def use() -> None:
        with pytest.raises(ra.WrongEventLoopError, match="event loop"):
            await client.get_task("t1", "upscale")
        with pytest.raises(ra.WrongEventLoopError):
            client.upscale("https://i.test/a.png")
        with pytest.raises(ra.WrongEventLoopError, match="this job belongs to another event"):
            await job.wait(timeout=5)  # once a silent hang until the timeout

    try:
        task = loop.create_task(hold())
        loop.run_until_complete(opened.wait())
        asyncio.run(use())
        release.set()
        loop.run_until_complete(task)
    finally:
        loop.close()

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


def _route_with_a_stuck_submit(
    kie, stuck: str, finished_at: dict[str, float], *, stuck_for: float = 1000.0
):
    """The submit of ``stuck`` answers after ``stuck_for`` s; others at once: t1, t2, ...

    Task tN ends at finished_at[tN] on the event loop's clock (never if absent). A submit
    stuck for ever would hang a regression instead of failing it: nothing cuts a shield.
    """
    ids = iter(range(1, 1000))

    async def submit(request):
        if stuck in request.content.decode():
            await anyio.sleep(stuck_for)
        return httpx.Response(200, json=envelope({"taskId": f"t{next(ids)}"}))

    def read(request):
        task_id = request.url.params["taskId"]
        if anyio.current_time() >= finished_at.get(task_id, float("inf")):
            return httpx.Response(200, json=market_record(task_id))
        return httpx.Response(200, json=market_record(task_id, state="generating", urls=()))

    kie.post(UPSCALE).mock(side_effect=submit)
    return kie.get(READ).mock(side_effect=read)


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_shutdown_grace_bounds_a_submit_stuck_on_the_wire(kie, make_client, caplog):
    """shutdown(grace=1) with a submit that never answers ends at the grace, the job uncertain."""
    _route_with_a_stuck_submit(kie, "stuck.png", {})
    caplog.set_level(logging.WARNING, logger="recraft_async")
    with anyio.fail_after(6000):  # a guard: a regression fails rather than hangs
        async with make_client(max_in_flight=2, poll=NEVER_READ) as client:
            stuck = client.upscale("https://i.test/stuck.png")
            running = client.upscale("https://i.test/running.png")
            queued = client.upscale("https://i.test/queued.png")
            await wait_until(lambda: running.task_id is not None)
            started = anyio.current_time()
            await client.shutdown(grace=1)
            took = anyio.current_time() - started
    assert took < client.timeout  # the grace, not the submit's own timeout, ended it
    with pytest.raises(ra.SubmissionUncertainError, match="cut on the wire") as uncertain:
        stuck.result()
    assert uncertain.value.image == "https://i.test/stuck.png"
    with pytest.raises(ra.JobCancelledError) as stopped:
        running.result()
    assert stopped.value.task_id == "t1"
    with pytest.raises(ra.JobCancelledError, match="nothing was paid"):
        queued.result()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cut 1 submit(s)" in w and "stuck.png" in w for w in warnings), warnings
    assert any("upscale:t1" in w for w in warnings), warnings


@pytest.mark.anyio
async def test_a_submit_cut_by_the_shutdown_is_journalled_uncertain(kie, make_client, tmp_path):
    """The journal row of a submit cut by the grace says UNCERTAIN: it may have been paid."""
    _route_with_a_stuck_submit(kie, "stuck.png", {}, stuck_for=20.0)
    # Not a time bound on the code: a guard, so that a regression fails rather than hangs.
    with anyio.fail_after(60):
        async with ra.Journal(tmp_path / "journal.db") as journal:
            async with make_client(journal=journal) as client:
                job = client.upscale("https://i.test/stuck.png")
                await wait_until(lambda: ra.JournalState.SUBMITTING in _states(journal))
                await client.shutdown(grace=0.05)
            [entry] = await journal.entries()
    assert isinstance(job.exception(), ra.SubmissionUncertainError)
    assert entry.state is ra.JournalState.UNCERTAIN
    assert "cut on the wire" in (entry.error or "")


def _states(journal: ra.Journal) -> set[ra.JournalState]:
    """The states in ``journal``, read by a separate connection (the test's own view)."""
    from conftest import journal_states  # noqa: PLC0415 - a helper of the journal tests

    return {ra.JournalState(state) for state in journal_states(journal.path)}


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_shutdown_reads_submitted_tasks_at_once_and_delivers_the_finished(
    kie, make_client, caplog
):
    """Within the grace, waiting tasks are read at once and often: finished ones delivered."""
    reads = _route_with_a_stuck_submit(kie, "never", {"t1": 0.0, "t2": 3.0})
    caplog.set_level(logging.WARNING, logger="recraft_async")
    # No read for a minute on the schedule: a callback would have woken these jobs.
    async with make_client(poll=NEVER_READ) as client:
        jobs = [
            client.upscale(f"https://i.test/{i}.png", callback_url="https://app.test/hook")
            for i in range(3)
        ]
        await wait_until(lambda: all(job.task_id for job in jobs))
        assert reads.call_count == 0
        await client.shutdown(grace=10)
    assert jobs[0].result().task_id == "t1"  # had ended before the shutdown
    assert jobs[1].result().task_id == "t2"  # ended within the grace
    with pytest.raises(ra.JobCancelledError):
        jobs[2].result()
    # t3's reads came about once a second through the grace (no more than one per second).
    t3_reads = [c for c in reads.calls if c.request.url.params["taskId"] == "t3"]
    assert 5 <= len(t3_reads) <= 11
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "upscale:t3" in warning
    assert "t1" not in warning
    assert "t2" not in warning


@pytest.mark.anyio
async def test_a_cancel_scope_around_the_client_still_logs_the_stopped_task_ids(
    kie, make_client, caplog
):
    """Cancelled from outside, the block logs every submitted job's task id, whatever ran first.

    The outer cancel reaches the job's own task and the block's exit in either order (trio
    shuffles them): each of 20 runs must log the task id.
    """
    _answer_submits(kie)
    caplog.set_level(logging.WARNING, logger="recraft_async")
    for _ in range(20):
        caplog.clear()
        with anyio.CancelScope() as outer:
            async with make_client(poll=NEVER_READ) as client:
                job = client.upscale("https://i.test/a.png")
                await wait_until(lambda job=job: job.task_id is not None)
                outer.cancel()
                await anyio.sleep_forever()
        assert job.status is ra.JobStatus.CANCELLED
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [warnings[0]]
        assert f"upscale:{job.task_id}" in warnings[0]

"""Recraft, the blocking client, against the emulator served on a loopback port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from typing import Any

import pytest

import recraft_async as ra
from recraft_async.testing import Duration, Fault, sample_images

FAST_POLL = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.1, timeout=30.0)


def _client(emulator, **options):
    """A Recraft against the served emulator; ``with`` it, so a failing test stops its jobs."""
    settings = {
        "api_key": emulator.api_key,
        "base_url": emulator.base_url,
        "poll": FAST_POLL,
        "submit_rate": emulator.rate,
        "read_rate": emulator.read_rate,
    }
    return ra.Recraft(**{**settings, **options})


def _image(emulator):
    return emulator.add_image(*sample_images(256)[0])


def _portal_threads():
    return [t for t in threading.enumerate() if t.name == "recraft-sync"]


@pytest.mark.slow
def test_upscale_result_blocks_for_the_result(kie_sync_client, kie_sync_server):
    """Upscale returns a SyncJob at once; result() blocks and returns the Result."""
    job = kie_sync_client.upscale(_image(kie_sync_server))
    assert isinstance(job, ra.SyncJob)
    assert issubclass(ra.SyncJob, concurrent.futures.Future)
    result = job.result()
    assert isinstance(result, ra.Result)
    assert job.done()
    assert not job.running()
    assert job.exception() is None
    assert job.status is ra.JobStatus.SUCCEEDED
    assert job.task_id == result.task_id
    assert job.operation is ra.Operation.UPSCALE
    assert job.events[0].kind == "queued"
    assert job.events[-1].kind == "succeeded"
    assert repr(job).startswith("<SyncJob upscale succeeded")


@pytest.mark.slow
def test_remove_background_resume_and_get_task(kie_sync_client, kie_sync_server):
    """remove_background, then get_task and resume of its task, all blocking."""
    result = kie_sync_client.remove_background(_image(kie_sync_server)).result()
    record = kie_sync_client.get_task(result.task_id, "remove-background")
    assert record.task_id == result.task_id
    again = kie_sync_client.resume(result.task_id, ra.Operation.REMOVE_BACKGROUND).result()
    assert again.task_id == result.task_id
    assert kie_sync_server.stats.tasks_created == 1


@pytest.mark.slow
def test_download_writes_the_image(kie_sync_client, kie_sync_server, tmp_path):
    """Download streams the result into the folder and returns the file's path."""
    result = kie_sync_client.upscale(_image(kie_sync_server)).result()
    path = kie_sync_client.download(result, tmp_path)
    assert path.parent == tmp_path
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_credits_reads_the_balance(kie_sync_client, kie_sync_server):
    """credits() is the account's balance, as the emulator keeps it."""
    assert kie_sync_client.credits() == kie_sync_server.service.credits


@pytest.mark.slow
def test_a_failed_job_raises_its_error(kie_sync_client, kie_sync_server):
    """result() raises what await job would, and exception() returns it."""
    kie_sync_server.faults.next("task", Fault.task_failed("no pixels today"))
    job = kie_sync_client.upscale(_image(kie_sync_server))
    with pytest.raises(ra.TaskFailedError, match="no pixels today"):
        job.result()
    assert isinstance(job.exception(), ra.TaskFailedError)
    assert job.status is ra.JobStatus.FAILED


@pytest.mark.slow
def test_result_timeout_raises_and_the_job_goes_on(kie_sync_server_slow):
    """result(timeout) raises TimeoutError with a message; the job still runs, then cancels."""
    with _client(kie_sync_server_slow) as client:
        job = client.upscale(_image(kie_sync_server_slow))
        with pytest.raises(TimeoutError, match=r"did not finish within 0\.05 s; it goes on"):
            job.result(timeout=0.05)
        with pytest.raises(TimeoutError):
            job.exception(timeout=0.01)
        assert not job.done()
        assert job.cancel()
        assert not job.cancel()
        assert job.cancelled()
        assert job.done()
        with pytest.raises(ra.JobCancelledError):
            job.result()
        assert isinstance(job.exception(), ra.JobCancelledError)


@pytest.mark.slow
def test_as_completed_yields_in_finishing_order(kie_sync_server_slow):
    """as_completed yields each job as it ends; its timeout leaves the rest running."""
    with _client(kie_sync_server_slow) as client:
        url = _image(kie_sync_server_slow)
        jobs = [client.upscale(url) for _ in range(3)]
        with pytest.raises(TimeoutError):
            list(client.as_completed(jobs, timeout=0.05))
        finished = client.as_completed([*jobs, jobs[0]])
        jobs[2].cancel()
        assert next(finished) is jobs[2]
        jobs[0].cancel()
        assert next(finished) is jobs[0]
        jobs[1].cancel()
        assert next(finished) is jobs[1]
        assert next(finished, None) is None


@pytest.mark.slow
def test_jobs_work_with_concurrent_futures(kie_sync_client, kie_sync_server):
    """SyncJobs are Futures: concurrent.futures.wait and as_completed take them."""
    url = _image(kie_sync_server)
    jobs = [kie_sync_client.upscale(url) for _ in range(3)]
    done, not_done = concurrent.futures.wait(jobs)
    assert done == set(jobs)
    assert not not_done
    assert set(concurrent.futures.as_completed(jobs)) == set(jobs)


@pytest.mark.slow
def test_as_completed_refuses_async_jobs(kie_sync_client):
    """Only SyncJobs: anything else is an InvalidInputError at the call."""
    with pytest.raises(ra.InvalidInputError, match="SyncJobs"):
        kie_sync_client.as_completed([object()])


@pytest.mark.slow
def test_done_callbacks_run_in_the_clients_thread(kie_sync_client, kie_sync_server):
    """add_done_callback runs in the client's thread, which may start a job but not wait."""
    url = _image(kie_sync_server)
    seen: dict[str, Any] = {}

    def chain(job):
        seen["thread"] = threading.current_thread().name
        follow = kie_sync_client.upscale(url)
        seen["follow"] = follow
        with pytest.raises(ra.InvalidStateError, match="own thread"):
            follow.result()
        with pytest.raises(ra.InvalidStateError, match="own thread"):
            kie_sync_client.credits()

    kie_sync_client.upscale(url).add_done_callback(chain)
    while "follow" not in seen:
        threading.Event().wait(0.01)
    assert seen["follow"].result().url
    assert seen["thread"] == "recraft-sync"


@pytest.mark.slow
def test_works_where_an_event_loop_runs(kie_sync_client, kie_sync_server):
    """Called from a thread whose asyncio loop runs (a notebook), the client still works."""
    url = _image(kie_sync_server)

    async def notebook_cell():
        return kie_sync_client.upscale(url).result(), kie_sync_client.credits()

    result, balance = asyncio.run(notebook_cell())
    assert result.url
    assert balance == kie_sync_server.service.credits


@pytest.mark.slow
def test_on_event_is_called_in_the_clients_thread(kie_sync_server):
    """on_event gets each event of the Job behind the SyncJob, in the client's thread."""
    seen = []

    def on_event(job, event):
        seen.append((job.task_id, event.kind, threading.current_thread().name))

    with _client(kie_sync_server, on_event=on_event) as client:
        job = client.upscale(_image(kie_sync_server))
        job.result()
    assert [kind for _, kind, _ in seen] == [event.kind for event in job.events]
    assert seen[-1][0] == job.task_id
    assert {thread for _, _, thread in seen} == {"recraft-sync"}


def test_a_wrong_argument_starts_no_thread():
    """Arguments are checked before the client's thread starts."""
    before = len(_portal_threads())
    with pytest.raises(ra.InvalidInputError):
        ra.Recraft(api_key="k", base_url="http://example.com")
    assert len(_portal_threads()) == before


@pytest.mark.slow
def test_close_is_idempotent_and_ends_the_thread(kie_sync_server):
    """close() waits for the jobs, ends the thread, and does nothing the second time."""
    before = len(_portal_threads())
    client = _client(kie_sync_server)
    assert len(_portal_threads()) == before + 1
    job = client.upscale(_image(kie_sync_server))
    client.close()
    assert job.done()
    assert job.result().url
    client.close()
    assert len(_portal_threads()) == before
    assert "state=closed" in repr(client)


@pytest.mark.slow
def test_a_closed_client_refuses_to_work(kie_sync_server):
    """After close, each method raises ClientNotOpenError, and so does a new with block."""
    client = _client(kie_sync_server)
    client.close()
    url = _image(kie_sync_server)
    for call in (
        lambda: client.upscale(url),
        lambda: client.remove_background(url),
        lambda: client.resume("task_1", "upscale"),
        lambda: client.get_task("task_1", "upscale"),
        client.credits,
        lambda: client.handle_callback(b'{"taskId": "task_1"}'),
    ):
        with pytest.raises(ra.ClientNotOpenError):
            call()
    with pytest.raises(ra.ClientNotOpenError), client:
        pass


@pytest.mark.slow
def test_leaving_by_an_exception_stops_the_jobs(kie_sync_server_slow):
    """An exception out of the with block stops the jobs instead of waiting for them."""

    class Boom(Exception):
        pass

    with pytest.raises(Boom), _client(kie_sync_server_slow) as client:
        job = client.upscale(_image(kie_sync_server_slow))
        raise Boom
    assert job.done()
    assert isinstance(job.exception(), ra.JobCancelledError)


@pytest.mark.slow
def test_handle_callback_returns_the_polling_job(kie_sync_server_slow):
    """A callback for a task being polled wakes its SyncJob, the same object the caller holds."""
    with _client(kie_sync_server_slow) as client:
        job = client.upscale(_image(kie_sync_server_slow))
        while job.task_id is None:
            threading.Event().wait(0.01)
        body = '{"taskId": "%s"}' % job.task_id  # noqa: UP031 - JSON braces
        assert client.handle_callback(body) is job
        assert client.handle_callback('{"taskId": "task_unknown"}') is None
        job.cancel()


def test_the_key_is_never_shown():
    """Neither the client's repr nor its jobs' show the API key."""
    with ra.Recraft(api_key="sk-very-secret", base_url="http://127.0.0.1:9") as client:
        assert "sk-very-secret" not in repr(client)
        assert "sk-very-secret" not in repr(vars(client))
        assert client.base_url == "http://127.0.0.1:9"


def test_the_constructor_is_async_recrafts():
    """Recraft takes AsyncRecraft's parameters: the same names, kinds and defaults."""

    def shape(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert shape(ra.Recraft) == shape(ra.AsyncRecraft)


@pytest.fixture
def kie_sync_server_slow():
    """A served emulator whose tasks take an hour: tests cancel them."""
    from anyio.from_thread import start_blocking_portal  # noqa: PLC0415

    from recraft_async.testing import KieEmulator, serve  # noqa: PLC0415

    # Tasks that outlast any test: they end only when the test cancels them.
    emulator = KieEmulator(duration=Duration.fixed(3600.0), time_scale=1.0)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve(emulator)):
        yield emulator


# AsyncRecraft's public methods the blocking client has under another name, or needs not.
# ``open``: a Recraft is open once made, and lives across threads and notebook cells.
_ASYNC_ONLY: dict[str, str | None] = {"aclose": "close", "open": None}


def test_the_methods_are_async_recrafts():
    """Every public method of AsyncRecraft is on Recraft, with the same parameters."""

    def methods(cls):
        return {
            name: [
                (p.name, p.kind, p.default) for p in inspect.signature(member).parameters.values()
            ]
            for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")
        }

    async_methods, sync_methods = methods(ra.AsyncRecraft), methods(ra.Recraft)
    for name, parameters in async_methods.items():
        twin = _ASYNC_ONLY.get(name, name)
        if twin is None:
            continue
        assert twin in sync_methods, f"Recraft has no {twin} (AsyncRecraft.{name})"
        if twin == name and name != "as_completed":  # as_completed adds a timeout
            assert sync_methods[name] == parameters, name


@pytest.mark.slow
def test_to_dict_of_a_sync_job(kie_sync_client, kie_sync_server):
    """SyncJob.to_dict() gives the job's JSON-safe values, result included."""
    job = kie_sync_client.upscale(_image(kie_sync_server))
    result = job.result()
    values = job.to_dict()
    assert values["status"] == "succeeded"
    assert values["task_id"] == result.task_id
    assert values["result"] == result.to_dict()


@pytest.mark.slow
def test_shutdown_cancels_unsent_jobs_and_stops_the_rest(kie_sync_server_slow):
    """shutdown(grace): an unsent job is cancelled unpaid; a submitted one stopped at grace."""
    client = _client(kie_sync_server_slow, submit_rate=ra.Rate(1, per=3600.0))
    url = _image(kie_sync_server_slow)
    sent, unsent = client.upscale(url), client.upscale(url)
    while sent.task_id is None:
        threading.Event().wait(0.01)
    client.shutdown(grace=0.1)
    assert isinstance(unsent.exception(), ra.JobCancelledError)
    assert unsent.task_id is None
    assert isinstance(sent.exception(), ra.JobCancelledError)
    assert sent.task_id is not None
    assert kie_sync_server_slow.stats.submits[("upscale", url)] == 1
    with pytest.raises(ra.ClientNotOpenError):
        client.upscale(url)
    assert not _portal_threads()


@pytest.mark.slow
def test_a_view_has_its_own_options_and_shares_the_clients_life(kie_sync_server_slow):
    """with_options(): the view's jobs poll its way; the view cannot close its client."""
    short = ra.PollPolicy(initial=0.01, max_interval=0.05, timeout=0.3)
    with _client(kie_sync_server_slow) as client:
        view = client.with_options(poll=short)
        job = view.upscale(_image(kie_sync_server_slow))
        with pytest.raises(ra.JobTimeoutError):
            job.result()
        for end in (view.close, lambda: view.shutdown(grace=0), view.__enter__):
            with pytest.raises(ra.ClientNotOpenError, match="with_options"):
                end()
        job_own = client.upscale(_image(kie_sync_server_slow), poll=short)
        with pytest.raises(ra.JobTimeoutError):
            job_own.result()
    with pytest.raises(ra.ClientNotOpenError):
        view.upscale(_image(kie_sync_server_slow))  # closed with its client


@pytest.mark.slow
def test_enqueue_blocks_until_the_queue_has_room(kie_sync_server_slow):
    """enqueue_upscale() blocks while max_queued jobs wait, and queues once one leaves."""
    with _client(kie_sync_server_slow, max_in_flight=1, max_queued=1) as client:
        url = _image(kie_sync_server_slow)
        first = client.upscale(url)
        while first.task_id is None:
            threading.Event().wait(0.01)
        second = client.upscale(url)  # waits for first: the queue is full
        with pytest.raises(ra.QueueFullError):
            client.remove_background(url)
        done = concurrent.futures.ThreadPoolExecutor(1).submit(
            client.enqueue_remove_background, url
        )
        with pytest.raises(concurrent.futures.TimeoutError):
            done.result(timeout=0.2)
        first.cancel()  # second starts, leaving the queue: room for the third
        third = done.result(timeout=30)
        assert isinstance(third, ra.SyncJob)
        for job in (second, third):
            job.cancel()


@pytest.mark.slow
def test_processing_times_are_learnt_through_the_sync_client(kie_sync_server, tmp_path):
    """After a few jobs the blocking client reports what it learnt, and keeps it in a file."""
    state = tmp_path / "poll-state.json"
    with _client(kie_sync_server, state_file=state) as client:
        assert client.processing_times() == {}
        jobs = [client.upscale(_image(kie_sync_server)) for _ in range(6)]
        for job in jobs:
            job.result(timeout=60)
        learnt = client.processing_times()
    assert set(learnt) == {ra.Operation.UPSCALE}
    assert learnt[ra.Operation.UPSCALE].median > 0
    assert state.exists()

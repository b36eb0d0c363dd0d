"""A client opened by ``open()`` lives across tasks, as across a notebook's cells."""

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, wait_until

import recraft_async as ra

T = TypeVar("T")
NEVER_READ = ra.PollPolicy(initial=60.0, max_interval=60.0, timeout=600.0)  # within a test


async def in_a_cell(cell: Callable[[], Awaitable[T]]) -> T:
    """Run ``cell`` as a task of its own that then ends, as a notebook runs each cell."""
    outcome: list[T | Exception] = []

    async def run() -> None:
        try:
            outcome.append(await cell())
        except Exception as exc:  # noqa: BLE001 - raised below, outside the task group
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
    [value] = outcome
    if isinstance(value, Exception):
        raise value
    return value


def _service(kie, *, finished: bool = True) -> Any:
    """Submits answer t1, t2, ...; every read says the task succeeded (or still runs)."""
    ids = iter(range(1, 1000))
    submit = kie.post(MARKET_SUBMIT).mock(
        side_effect=lambda _r: httpx.Response(200, json=envelope({"taskId": f"t{next(ids)}"}))
    )
    state = "success" if finished else "generating"
    kie.get(MARKET_READ).mock(
        side_effect=lambda r: httpx.Response(
            200,
            json=market_record(r.url.params["taskId"], state=state, urls=("https://r.test/o.png",)),
        )
    )
    return submit


@pytest.mark.anyio
async def test_opened_in_one_task_used_in_the_next_closed_in_a_third(kie, make_client):
    """open() in one cell; a job made in the next and awaited in a third; aclose() in a fourth."""
    _service(kie)
    client: ra.AsyncRecraft = make_client()
    assert await in_a_cell(client.open) is client

    async def make_job() -> ra.Job:
        return client.upscale("https://i.test/a.png")

    job = await in_a_cell(make_job)
    result = await in_a_cell(job.wait)
    assert result.task_id == "t1"
    assert await in_a_cell(lambda: client.get_task("t1", "upscale")) is not None
    await in_a_cell(client.aclose)
    assert "state=closed" in repr(client)
    await client.aclose()  # a second close does nothing
    with pytest.raises(ra.ClientNotOpenError):
        client.upscale("https://i.test/b.png")


@pytest.mark.anyio
async def test_aclose_from_another_task_waits_for_every_job(kie, make_client):
    """aclose() after open() ends as leaving ``async with`` normally does: jobs finish."""
    _service(kie)
    client = await make_client().open()
    jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(3)]
    await in_a_cell(client.aclose)
    assert sorted(job.result().task_id for job in jobs) == ["t1", "t2", "t3"]


@pytest.mark.anyio
async def test_shutdown_from_another_task_stops_and_closes(kie, make_client, caplog):
    """shutdown(grace) after open(), from any task: running jobs stopped and logged, closed."""
    caplog.set_level(logging.WARNING, logger="recraft_async")
    _service(kie, finished=False)
    client = await in_a_cell(make_client(poll=NEVER_READ).open)
    job = client.upscale("https://i.test/a.png")
    await wait_until(lambda: job.task_id is not None)
    await in_a_cell(lambda: client.shutdown(0))
    assert "state=closed" in repr(client)
    with pytest.raises(ra.JobCancelledError):
        job.result()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("upscale:t1" in warning for warning in warnings)


@pytest.mark.anyio
async def test_async_with_is_closed_by_its_own_task_only_and_says_how_else(kie, make_client):
    """Closing from another task what ``async with`` opened: a clear error naming open()."""
    _service(kie)
    async with make_client() as client:
        with pytest.raises(ra.WrongEventLoopError, match=r"await client\.open\(\)"):
            await in_a_cell(client.aclose)
        assert "state=open" in repr(client)  # the refused close changed nothing
        assert (await client.upscale("https://i.test/a.png")).task_id == "t1"


@pytest.mark.anyio
async def test_an_unopened_client_says_how_to_open_it_across_cells(make_client):
    """Used before it is open, the client names both ways to open it."""
    with pytest.raises(ra.ClientNotOpenError, match=r"async with.*await client\.open\(\)"):
        make_client().upscale("https://i.test/a.png")


@pytest.mark.anyio
async def test_open_twice_or_through_a_view_is_refused(kie, make_client):
    """A client opens once; a view shares its client's life and never opens it."""
    _service(kie)
    client = await make_client().open()
    try:
        with pytest.raises(ra.ClientNotOpenError, match=r"opened before .*make a new one"):
            await client.open()
        with pytest.raises(ra.ClientNotOpenError, match="shares its client's life"):
            await client.with_options(max_retries=0).open()
        with pytest.raises(ra.ClientNotOpenError, match="open; make a new one"):
            await client.__aenter__()
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_a_failed_open_raises_to_the_caller(make_client, tmp_path):
    """What stops the opening (a journal that cannot be opened) is raised by open()."""
    client = make_client(journal=ra.Journal(tmp_path))  # a folder is no SQLite file
    with pytest.raises(ra.JournalUnreadableError, match="cannot be read"):
        await client.open()
    assert "state=open" not in repr(client)
    with pytest.raises(ra.ClientNotOpenError, match="opened before"):
        await client.open()  # a client opens once, even when its opening failed
    await client.aclose()  # nothing to close, and no hang


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_event_loop_ending_first_stops_the_jobs_and_logs_their_ids(
    backend, kie, make_client, caplog
):
    """No aclose() before the loop ends: jobs stopped, task ids logged, the thread gone."""
    caplog.set_level(logging.WARNING, logger="recraft_async")
    _service(kie, finished=False)
    before = set(_holding_threads())
    started: set[threading.Thread] = set()

    async def session() -> None:
        client = await make_client(poll=NEVER_READ).open()
        started.update(set(_holding_threads()) - before)
        job = client.upscale("https://i.test/a.png")
        await wait_until(lambda: job.task_id is not None)

    anyio.run(session, backend=backend)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("upscale:t1" in warning for warning in warnings)
    [holder] = started  # the one thread the client started
    holder.join(timeout=10)
    assert not holder.is_alive()


def _holding_threads() -> list[threading.Thread]:
    """The threads that hold a client open (their name); trio's idle workers aside."""
    return [t for t in threading.enumerate() if t.name == "recraft-async client"]

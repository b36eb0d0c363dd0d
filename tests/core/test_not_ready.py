"""KIE's "recordInfo is null" (422) on a status read: not readable yet, never a bad input."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import envelope

import recraft_async as ra
from recraft_async._core._policy import NOT_FOUND_GRACE

# Every test here mocks its I/O, so it runs on the fake clock: sleeps cost no wall time.
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]

DOCS = json.loads((Path(__file__).parents[1] / "data" / "kie_docs.json").read_text())
NOT_READY = DOCS["record_422_null"]["body"]  # KIE's documented answer, verbatim
SUBMIT = "/api/v1/jobs/createTask"
READ = "/api/v1/jobs/recordInfo"
TASK = "task_recraft_1765177373893"
# Reads every few seconds, as KIE advises, and a deadline well past the 404 grace.
POLL = ra.PollPolicy(initial=1.0, factor=1.5, max_interval=5.0, timeout=120.0)


def success(task_id: str = TASK) -> dict[str, object]:
    """A market record of a task that succeeded."""
    result = json.dumps({"resultUrls": ["https://cdn.test/o.png"]})
    return envelope({"taskId": task_id, "state": "success", "resultJson": result})


def market(make_client, **options):
    """A client of the default (market) dialect with this file's poll policy."""
    options.setdefault("poll", POLL)
    return make_client(dialect="market", **options)


def unreadable_for(seconds: float, status: int = 200):
    """A recordInfo mock: the documented 422 for ``seconds`` after the first read, then success."""
    first: list[float] = []

    def read(_request: httpx.Request) -> httpx.Response:
        now = anyio.current_time()
        first.append(now)
        if now - first[0] < seconds:
            return httpx.Response(status, json=NOT_READY)
        return httpx.Response(200, json=success())

    return read


@pytest.mark.parametrize("status", [200, 422], ids=["http-200", "http-422"])
async def test_a_task_not_readable_at_first_is_delivered(kie, make_client, status):
    """The documented 422 on the first reads (HTTP 200 or 422) is waited out: the Result comes."""
    kie.post(SUBMIT).respond(json=envelope({"taskId": TASK}))
    reads = kie.get(READ).mock(side_effect=unreadable_for(3.0, status))
    async with market(make_client) as client:
        result = await client.upscale("https://i.test/a.png")
    assert result.task_id == TASK
    assert reads.call_count > 1


async def test_not_ready_is_more_patient_than_the_404_grace(kie, make_client):
    """Unreadable for six times NOT_FOUND_GRACE, the paid task is still delivered."""
    kie.post(SUBMIT).respond(json=envelope({"taskId": TASK}))
    kie.get(READ).mock(side_effect=unreadable_for(6 * NOT_FOUND_GRACE))
    async with market(make_client) as client:
        result = await client.upscale("https://i.test/a.png")
    assert result.url == "https://cdn.test/o.png"


async def test_a_task_never_readable_ends_at_the_poll_timeout_naming_it(kie, make_client):
    """Never readable: JobTimeoutError at the poll timeout, with the task id and resume."""
    kie.post(SUBMIT).respond(json=envelope({"taskId": TASK}))
    kie.get(READ).respond(json=NOT_READY)
    async with market(make_client) as client:
        started = anyio.current_time()
        with pytest.raises(ra.JobTimeoutError) as caught:
            await client.upscale("https://i.test/a.png")
        waited = anyio.current_time() - started
    error = caught.value
    assert not isinstance(error, ra.InvalidRequestError)
    assert waited >= POLL.timeout  # never given up before the poll timeout
    assert error.task_id == TASK
    assert f"client.resume({TASK!r}, 'upscale')" in str(error)
    assert isinstance(error.__cause__, ra.TaskNotReadyError)
    assert error.__cause__.task_id == TASK
    assert json.loads(error.__cause__.body or "") == NOT_READY


async def test_another_422_on_a_status_read_stays_an_invalid_request(kie, make_client):
    """A 422 with any other message is not "not ready": InvalidRequestError on the first read."""
    kie.post(SUBMIT).respond(json=envelope({"taskId": TASK}))
    reads = kie.get(READ).respond(json={"code": 422, "msg": "taskId is malformed"})
    async with market(make_client) as client:
        with pytest.raises(ra.InvalidRequestError) as caught:
            await client.upscale("https://i.test/a.png")
    assert not isinstance(caught.value, ra.TaskNotReadyError)
    assert reads.call_count == 1


async def test_a_resumed_task_not_readable_yet_is_waited_for(kie, make_client):
    """resume() meets the documented 422 too, and waits for the record."""
    kie.get(READ).mock(side_effect=unreadable_for(2 * NOT_FOUND_GRACE, status=422))
    async with market(make_client) as client:
        result = await client.resume(TASK, "upscale")
    assert result.task_id == TASK


async def test_get_task_raises_task_not_ready_with_its_id(kie, make_client):
    """One status read of an unreadable task: TaskNotReadyError (a NotFoundError), its id."""
    kie.get(READ).respond(json=NOT_READY)
    async with market(make_client) as client:
        with pytest.raises(ra.TaskNotReadyError) as caught:
            await client.get_task(TASK, "upscale")
    error = caught.value
    assert isinstance(error, ra.NotFoundError)
    assert not isinstance(error, ra.InvalidRequestError)
    assert (error.task_id, error.code) == (TASK, 422)
    assert error.message == "recordInfo is null"
    assert TASK in str(error)

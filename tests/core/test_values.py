"""Web-friendly values: Result.to_dict() and Job.to_dict() are JSON-safe and complete."""

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
UTC = dt.timezone.utc


def _result(**changes: Any) -> ra.Result:
    values: dict[str, Any] = {
        "task_id": "t1",
        "operation": ra.Operation.REMOVE_BACKGROUND,
        "urls": ("https://o/1.png", "https://o/2.png"),
        "created_at": dt.datetime(2024, 3, 20, 10, 30, tzinfo=UTC),
        "completed_at": dt.datetime(2024, 3, 20, 10, 31, 5, 250000, tzinfo=UTC),
        "record": ra.TaskRecord("t1", ra.TaskState.SUCCESS, raw={"big": "x" * 100}),
        "source": "https://i.test/a.png",
    }
    values.update(changes)
    return ra.Result(**values)


def test_result_to_dict_is_json_with_strings_for_enums_and_times():
    """Operation as its value, times as ISO 8601 with an offset, urls a list; no record."""
    values = _result().to_dict()
    assert values == {
        "task_id": "t1",
        "operation": "remove-background",
        "urls": ["https://o/1.png", "https://o/2.png"],
        "created_at": "2024-03-20T10:30:00+00:00",
        "completed_at": "2024-03-20T10:31:05.250000+00:00",
        "source": "https://i.test/a.png",
        "credits": None,
    }
    assert type(values["operation"]) is str
    assert json.loads(json.dumps(values)) == values


def test_result_to_dict_round_trips_its_fields():
    """The times parse back to the same moments; the rest compares equal."""
    result = _result()
    values = result.to_dict()
    assert dt.datetime.fromisoformat(values["created_at"]) == result.created_at
    assert dt.datetime.fromisoformat(values["completed_at"]) == result.completed_at
    assert ra.Operation(values["operation"]) is result.operation
    assert tuple(values["urls"]) == result.urls


def test_result_to_dict_times_none_and_naive():
    """Missing times are null; a naive time is taken as UTC and says so."""
    naive = dt.datetime(2024, 1, 2, 3, 4, 5)  # noqa: DTZ001 - naive on purpose
    values = _result(created_at=None, completed_at=naive).to_dict()
    assert values["created_at"] is None
    assert values["completed_at"] == "2024-01-02T03:04:05+00:00"
    assert _result(source=None).to_dict()["source"] is None


def test_result_to_dict_leaves_the_global_cattrs_converter_alone():
    """The global converter still unstructures an Operation as the enum it is."""
    import cattrs  # noqa: PLC0415 - only this test looks at the global converter

    _result().to_dict()
    assert cattrs.unstructure(ra.Operation.UPSCALE) == "upscale"
    assert cattrs.unstructure(dt.datetime(2024, 1, 1, tzinfo=UTC)) == dt.datetime(
        2024, 1, 1, tzinfo=UTC
    )


def test_queued_job_to_dict():
    """A job not yet started: queued, no end, no result, no error, one event."""
    job = ra.Job(ra.Operation.UPSCALE, None, task_id="old-1")
    values = job.to_dict()
    assert values["operation"] == "upscale"
    assert values["status"] == "submitted"
    assert values["task_id"] == "old-1"
    assert values["source"] is None
    assert values["finished_at"] is None
    assert values["result"] is None
    assert values["error"] is None
    assert [event["kind"] for event in values["events"]] == ["queued"]
    assert values["events"][0]["at"] == values["queued_at"]
    assert dt.datetime.fromisoformat(values["queued_at"]).tzinfo is not None
    json.dumps(values)


def test_cancelled_job_to_dict_has_its_error():
    """A cancelled job's error is a JobCancelledError, with the task id it had."""
    job = ra.Job(ra.Operation.REMOVE_BACKGROUND, None, task_id="t9")
    job.cancel()
    values = job.to_dict()
    assert values["status"] == "cancelled"
    assert values["error"]["type"] == "JobCancelledError"
    assert values["error"]["task_id"] == "t9"
    assert values["finished_at"] is not None
    assert values["events"][-1]["kind"] == "cancelled"
    json.dumps(values)


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_succeeded_job_to_dict(kie, make_client):
    """A finished job: its result's dict, its events in order, its start and end."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).mock(
        side_effect=[
            httpx.Response(200, json=market_record("t1", state="generating", urls=())),
            httpx.Response(200, json=market_record("t1", urls=("https://o/t1.png",))),
        ]
    )
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        result = await job
    values = job.to_dict()
    assert values["status"] == "succeeded"
    assert values["task_id"] == "t1"
    assert values["source"] == "https://i.test/a.png"
    assert values["result"] == result.to_dict()
    assert values["result"]["created_at"] == "2025-08-13T09:42:51+00:00"
    assert values["error"] is None
    kinds = [event["kind"] for event in values["events"]]
    assert kinds == ["queued", "submitted", "status", "status", "succeeded"]
    assert values["events"][2]["state"] == "processing"
    assert values["finished_at"] == values["events"][-1]["at"]
    assert values["queued_at"] <= values["finished_at"]
    assert json.loads(json.dumps(values)) == values


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_failed_job_to_dict(kie, make_client):
    """A failed job: no result, and its error's type, message and task id."""
    kie.post(UPSCALE).respond(json=envelope(None, 422, "bad image"))
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.InvalidRequestError):
            await job
    values = job.to_dict()
    assert values["status"] == "failed"
    assert values["result"] is None
    assert values["error"] == {
        "type": "InvalidRequestError",
        "message": "[422] bad image",
        "task_id": None,
    }
    json.dumps(values)

"""Both wire dialects: request shapes and tolerant, strict record parsing."""

import json

import pytest

from recraft_async import Operation, TaskState
from recraft_async._core._check import SubmitRequest
from recraft_async._core._dialects import MarketDialect, RecraftDialect, parse_task_id
from recraft_async.errors import ProtocolError

SEED = RecraftDialect()
MARKET = MarketDialect()


def _parse(dialect, data):
    return dialect.parse_record(data, json.dumps(data))


def _seed(**fields):
    return {"taskId": "t1", **fields}


@pytest.mark.parametrize("flag", [1, "1"])
@pytest.mark.parametrize("field", ["successFlag", "status"])
def test_seed_status_in_either_field_and_type(flag, field):
    """The status may be successFlag or status, int or str."""
    record = _parse(SEED, _seed(**{field: flag}, response={"resultUrls": ["https://o/1.png"]}))
    assert record.state is TaskState.SUCCESS
    assert record.result_urls == ("https://o/1.png",)


@pytest.mark.parametrize(
    "shape",
    [
        {"response": {"resultUrls": ["https://o/1.png"]}},
        {"response": {"resultImageUrl": "https://o/1.png"}},
        {"response": {"resultUrl": "https://o/1.png"}},
        {"resultUrls": ["https://o/1.png"]},
    ],
)
def test_seed_result_url_spellings(shape):
    """Every documented place for the result URL is read."""
    record = _parse(SEED, _seed(successFlag=1, **shape))
    assert record.result_urls == ("https://o/1.png",)


def test_seed_record_keeps_times_errors_and_ignores_unknown_fields():
    """Times become aware datetimes, errors are kept, new fields are ignored."""
    record = _parse(
        SEED,
        _seed(
            successFlag=2,
            errorCode=500,
            errorMessage="bad image",
            createTime=1755078171000,
            completeTime="1755078480000",
            somethingNew={"nested": True},
        ),
    )
    assert record.state is TaskState.FAILED
    assert record.error_code == 500
    assert record.error_message == "bad image"
    assert (record.completed_at - record.created_at).total_seconds() == 309
    assert record.raw["somethingNew"] == {"nested": True}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_seed(successFlag=1), "no result URL"),
        (_seed(successFlag=1, response={"resultUrls": []}), "no result URL"),
        (_seed(successFlag=7), "unknown task status"),
        (_seed(successFlag="done"), "unknown task status"),
        (_seed(), "unknown task status"),
        ({"successFlag": 1}, "does not parse"),
        (_seed(successFlag=1, response={"resultUrls": "https://o/1.png"}), "does not parse"),
        (_seed(successFlag=[1]), "does not parse"),
        (["not", "an", "object"], "not an object"),
        (None, "not an object"),
    ],
)
def test_seed_bad_records_are_protocol_errors_with_body(data, why):
    """Malformed answers raise ProtocolError carrying the raw body, never KeyError."""
    with pytest.raises(ProtocolError, match=why) as caught:
        _parse(SEED, data)
    assert caught.value.body == json.dumps(data)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("waiting", TaskState.PROCESSING),
        ("queuing", TaskState.PROCESSING),
        ("generating", TaskState.PROCESSING),
        ("fail", TaskState.FAILED),
    ],
)
def test_market_states(state, expected):
    """The market dialect's states map onto TaskState."""
    assert _parse(MARKET, {"taskId": "m1", "state": state}).state is expected


def test_market_success_reads_result_json_string():
    """The market resultJson is a JSON string holding resultUrls."""
    data = {
        "taskId": "m1",
        "state": "success",
        "resultJson": json.dumps({"resultUrls": ["https://o/m.png"]}),
    }
    assert _parse(MARKET, data).result_urls == ("https://o/m.png",)


@pytest.mark.parametrize("result_json", [None, "{not json", json.dumps({"resultUrls": 3})])
def test_market_bad_success_is_protocol_error(result_json):
    """A success without readable result URLs is a protocol error."""
    with pytest.raises(ProtocolError):
        _parse(MARKET, {"taskId": "m1", "state": "success", "resultJson": result_json})


def test_submit_bodies_of_both_dialects():
    """Each dialect spells the same request its own way."""
    request = SubmitRequest(
        Operation.UPSCALE, "https://i/a.png", scale=4, format="JPG", callback_url="https://cb/x"
    )
    assert SEED.submit(request) == (
        "/api/v1/recraft/upscale",
        {
            "image_url": "https://i/a.png",
            "scale": 4,
            "format": "JPG",
            "callBackUrl": "https://cb/x",
        },
    )
    assert MARKET.submit(request) == (
        "/api/v1/jobs/createTask",
        {
            "model": "recraft/crisp-upscale",
            "input": {"image": "https://i/a.png"},
            "callBackUrl": "https://cb/x",
        },
    )
    assert SEED.status(Operation.REMOVE_BACKGROUND, "t9") == (
        "/api/v1/recraft/remove-background/record-info",
        {"taskId": "t9"},
    )
    assert MARKET.status(Operation.UPSCALE, "t9") == ("/api/v1/jobs/recordInfo", {"taskId": "t9"})


@pytest.mark.parametrize("data", [None, {}, {"taskId": ""}, {"taskId": 5}, "t1"])
def test_submit_answer_without_task_id(data):
    """A submit answer without a usable taskId is a protocol error."""
    with pytest.raises(ProtocolError, match="taskId"):
        parse_task_id(data, "raw")

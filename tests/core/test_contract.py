"""KIE's documented payloads, verbatim (tests/data/kie_docs.json), against the client."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

import httpx
import pytest
from conftest import signature_headers

import recraft_async as ra
from recraft_async._core._check import check_remove_background, check_upscale
from recraft_async._core._dialects import DIALECTS, parse_task_id
from recraft_async._core._transport import decode_envelope

DOCS = json.loads((Path(__file__).parents[1] / "data" / "kie_docs.json").read_text())
KEY = "whk-contract"
NOW = 1_769_670_760.0
_signed = functools.partial(signature_headers, key=KEY, at=NOW)


def body(name):
    """A documented body, by its name in kie_docs.json."""
    return DOCS[name]["body"]


def answer(name, status=200):
    """The documented body as an httpx response."""
    return httpx.Response(status, json=body(name))


def test_every_documented_payload_has_its_source():
    """Each copied payload names the page it comes from."""
    for name, entry in DOCS.items():
        if name != "_about":
            assert entry["source"], name


@pytest.mark.parametrize(
    "name",
    ["create_crisp", "create_remove_bg", "create_message_variant", "seed_create_upscale",
     "seed_create_bg"],
)  # fmt: skip
def test_documented_submit_answers_give_their_task_id(name):
    """Every documented submit answer (msg or message) yields its taskId."""
    data, raw = decode_envelope(answer(name))
    assert parse_task_id(data, raw) == body(name)["data"]["taskId"]


@pytest.mark.parametrize("name", ["record_success_rendered", "record_success_openapi"])
def test_documented_success_records_parse(name):
    """RecordInfo's success examples: state success, the URL from resultJson, the times."""
    data, raw = decode_envelope(answer(name))
    record = DIALECTS["market"].parse_record(data, raw)
    assert record.task_id == "task_12345678"
    assert record.state is ra.TaskState.SUCCESS
    assert record.result_urls == ("https://example.com/generated-content.jpg",)
    assert record.created_at == dt.datetime.fromtimestamp(1698765400, tz=dt.timezone.utc)
    assert record.completed_at == dt.datetime.fromtimestamp(1698765432, tz=dt.timezone.utc)


@pytest.mark.parametrize("name", ["record_success_rendered", "record_success_openapi"])
def test_documented_records_parse_their_param_and_state_no_cost(name):
    """The documented records' param (a JSON string) is parsed; they state no cost: None."""
    data, raw = decode_envelope(answer(name))
    record = DIALECTS["market"].parse_record(data, raw)
    assert record.param["input"]["aspect_ratio"] == "3:2"
    assert record.credits is None


@pytest.mark.parametrize(("name", "cost"), [("callback_success", 100), ("callback_failure", 0)])
def test_documented_callbacks_state_their_cost(name, cost):
    """The market pages' callbacks carry consumeCredits: their record's credits."""
    callback = ra.parse_callback(json.dumps(body(name)))
    assert callback.record is not None
    assert callback.record.credits == pytest.approx(cost)
    assert callback.record.param["model"] == "nano-banana-pro"


def test_documented_failed_record_parses():
    """RecordInfo's failure example: state fail, failCode and failMsg kept."""
    data, raw = decode_envelope(answer("record_failed"))
    record = DIALECTS["market"].parse_record(data, raw)
    assert record.state is ra.TaskState.FAILED
    assert record.result_urls == ()
    assert record.error_code == "422"
    assert record.error_message == "Invalid prompt: prompt contains prohibited content"


ERRORS = [
    ("record_400", ra.InvalidRequestError),
    ("record_401", ra.AuthenticationError),
    ("record_404", ra.NotFoundError),
    ("record_429", ra.RateLimitError),
    # At the envelope a 422; a status read turns it into TaskNotReadyError (test_not_ready).
    ("record_422_null", ra.InvalidRequestError),
    ("auth_401", ra.AuthenticationError),
    ("upload_400", ra.InvalidRequestError),
    ("upload_400_b64", ra.InvalidRequestError),
    ("upload_401", ra.AuthenticationError),
    ("upload_500", ra.ServerError),
]


@pytest.mark.parametrize(("name", "error"), ERRORS, ids=[n for n, _ in ERRORS])
@pytest.mark.parametrize("status", [200, None], ids=["http-200", "http-as-code"])
def test_documented_error_answers_raise_their_class(name, error, status):
    """Each documented error body raises its class, whether HTTP says 200 or the code."""
    code = body(name)["code"]
    with pytest.raises(error) as caught:
        decode_envelope(answer(name, status or code))
    assert caught.value.code == code
    assert caught.value.message == body(name)["msg"]
    assert json.loads(caught.value.body) == body(name)


def test_documented_record_of_the_per_product_family_parses():
    """The seed dialect reads KIE's per-product record: successFlag, resultImageUrl, ISO times."""
    data, raw = decode_envelope(answer("perproduct_record_flux"))
    record = DIALECTS["recraft"].parse_record(data, raw)
    assert record.state is ra.TaskState.SUCCESS
    assert record.result_urls == ("https://example.com/result.jpg",)
    assert record.created_at == dt.datetime(2024, 3, 20, 10, 25, tzinfo=dt.timezone.utc)
    assert record.completed_at == dt.datetime(2024, 3, 20, 10, 30, tzinfo=dt.timezone.utc)
    assert record.param == {"prompt": "A serene mountain landscape", "aspectRatio": "16:9"}


@pytest.mark.parametrize(
    ("request_name", "call"),
    [
        ("request_crisp", lambda url, cb: check_upscale(url, None, None, cb, dialect="market")),
        (
            "request_remove_bg",
            lambda url, cb: check_remove_background(url, None, cb, dialect="market"),
        ),
    ],
)
def test_market_submit_bodies_equal_the_documented_requests(request_name, call):
    """Our createTask bodies are KIE's documented request examples, key for key."""
    documented = body(request_name)
    request = call(documented["input"]["image"], documented["callBackUrl"])
    assert DIALECTS["market"].submit(request) == ("/api/v1/jobs/createTask", documented)


def test_seed_submit_bodies_equal_the_seed_examples():
    """The recraft dialect sends the seed's example bodies for the same arguments."""
    up = body("seed_request_upscale")
    request = check_upscale(up["image_url"], 4, "png", None, dialect="recraft")
    assert DIALECTS["recraft"].submit(request) == ("/api/v1/recraft/upscale", up)
    bg = body("seed_request_bg")
    request = check_remove_background(bg["image_url"], None, None, dialect="recraft")
    assert DIALECTS["recraft"].submit(request) == ("/api/v1/recraft/remove-background", bg)


@pytest.mark.parametrize("name", ["callback_success", "callback_success_nulls"])
def test_documented_market_callbacks_verify_and_parse(name):
    """The market pages' success callbacks: signature on data.taskId, the full record."""
    task_id = body(name)["data"]["taskId"]
    callback = ra.parse_callback(json.dumps(body(name)), _signed(task_id), webhook_key=KEY, now=NOW)
    assert callback.task_id == task_id
    assert callback.code == 200
    assert callback.record is not None
    assert callback.record.state is ra.TaskState.SUCCESS
    assert callback.record.result_urls == ("https://example.com/generated-image.jpg",)


def test_documented_failure_callback_verifies_and_parses():
    """The market pages' failure callback (code 501, state fail) parses to a failed record."""
    task_id = body("callback_failure")["data"]["taskId"]
    callback = ra.parse_callback(
        json.dumps(body("callback_failure")), _signed(task_id), webhook_key=KEY, now=NOW
    )
    assert callback.code == 501
    assert callback.record is not None
    assert callback.record.state is ra.TaskState.FAILED
    assert (callback.record.error_code, callback.record.error_message) == (
        "500",
        "Internal server error",
    )


def test_documented_verification_callback_verifies_as_a_hint():
    """The webhook-verification page's body: its task id, no record, the callbackType."""
    documented = body("webhook_doc_body")
    callback = ra.parse_callback(
        json.dumps(documented), _signed(documented["taskId"]), webhook_key=KEY, now=NOW
    )
    assert callback.task_id == "ee9c2715375b7837f8bb51d641ff5863"
    assert callback.record is None
    assert callback.callback_type == "task_completed"


def test_documented_signature_headers_are_what_we_check():
    """The documented headers' names and forms are the ones parse_callback reads."""
    headers = DOCS["webhook_doc_headers"]["headers"]
    documented = body("webhook_doc_body")
    # Without the page's secret the signature cannot match, but it is read, not skipped.
    with pytest.raises(ra.WebhookVerificationError, match="does not match"):
        ra.parse_callback(
            json.dumps(documented), headers, webhook_key=KEY, now=float(headers[
                "X-Webhook-Timestamp"])
        )  # fmt: skip
    mine = ra.webhook_signature(KEY, documented["taskId"], headers["X-Webhook-Timestamp"])
    assert len(mine) == len(headers["X-Webhook-Signature"])  # base64 of 32 bytes, both


def test_per_product_callback_is_a_hint():
    """KIE's per-product callback carries no state: a hint for one status read."""
    callback = ra.parse_callback(json.dumps(body("perproduct_callback_flux")))
    assert (callback.task_id, callback.record) == ("task12345", None)


def test_signature_is_checked_before_the_body_is_parsed():
    """A forged callback with a broken record is refused for its signature, not its body."""
    broken = {"code": 200, "data": {"taskId": "t1", "state": "no-such-state"}}
    with pytest.raises(ra.WebhookVerificationError):
        ra.parse_callback(json.dumps(broken), _signed("t1", key="forged"), webhook_key=KEY,
                          now=NOW)  # fmt: skip
    with pytest.raises(ra.ProtocolError):  # correctly signed: then the body is read
        ra.parse_callback(json.dumps(broken), _signed("t1"), webhook_key=KEY, now=NOW)


def test_callback_naming_two_tasks_is_refused():
    """A body whose documented task id fields disagree names no task: ProtocolError."""
    two = {"taskId": "a", "code": 200, "data": {"task_id": "b", "callbackType": "x"}}
    with pytest.raises(ra.ProtocolError, match="two different tasks"):
        ra.parse_callback(json.dumps(two))


def test_callback_without_a_task_id_is_refused():
    """A body with no documented task id field is a ProtocolError with the body."""
    with pytest.raises(ra.ProtocolError) as caught:
        ra.parse_callback('{"code": 200, "data": {"state": "success"}}')
    assert "taskId" in str(caught.value)
    assert caught.value.body is not None

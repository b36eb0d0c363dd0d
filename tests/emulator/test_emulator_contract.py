"""The emulator against KIE's documented payloads (tests/data/kie_docs.json), one by one.

Each test drives the emulator into a documented situation and checks its answer has the
documented keys with the same JSON types (recursively, and inside JSON-string fields),
and the exact documented message where one is fixed.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")
from conftest import EMULATOR_AUTH, Receiver, make_emulator, red_circle

from recraft_async import Rate, webhook_signature
from recraft_async.testing import Duration, Fault, KieEmulator, sample_images

DOCS: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "data" / "kie_docs.json").read_text(encoding="utf-8")
)
CREATE = "/api/v1/jobs/createTask"
RECORD = "/api/v1/jobs/recordInfo"
HOOK = "http://receiver.test/hook"
CIRCLE = red_circle()
TINY = sample_images(64)[0][1]  # below remove background's 256 px sides: the task fails
JSON_STRINGS = {"resultJson", "param"}
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


def doc(name: str) -> Any:
    """The documented body ``name``."""
    return DOCS[name]["body"]


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"  # JSON has one number type: 100 credits and 0.5 credits alike
    return type(value).__name__


def assert_shape(documented: Any, answered: Any, where: str = "body", exact: bool = False) -> None:
    """``answered`` has every documented key, with the documented JSON type, recursively.

    ``exact`` also forbids keys the documentation does not show. A top-level ``message``
    (some pages' spelling) is read as ``msg``; JSON-string fields must parse like the
    documented ones.
    """
    if isinstance(documented, dict):
        assert isinstance(answered, dict), f"{where}: {answered!r} is not an object"
        top = where == "body"
        keys = {"msg" if k == "message" and top else k: v for k, v in documented.items()}
        if exact:
            assert set(answered) == set(keys), f"{where}: keys {set(answered)} != {set(keys)}"
        for key, value in keys.items():
            assert key in answered, f"{where}: no {key!r}"
            if key in JSON_STRINGS and value:
                _assert_json_string(key, value, answered[key], f"{where}.{key}")
            else:
                assert_shape(value, answered[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(answered, list), f"{where}: {answered!r} is not a list"
        if documented and answered:
            assert_shape(documented[0], answered[0], f"{where}[0]")
    elif documented is not None:
        assert _kind(answered) == _kind(documented), f"{where}: {answered!r} vs {documented!r}"


def _assert_json_string(key: str, documented: str, answered: object, where: str) -> None:
    assert isinstance(answered, str), f"{where}: not a string"
    parsed, ours = json.loads(documented), json.loads(answered)
    if key == "param":
        # The documented request is another model's; what must match is its frame.
        assert isinstance(ours, dict)
        assert {"model", "input"} <= set(ours), where
        assert isinstance(ours["input"], dict), where
    else:
        assert_shape(parsed, ours, where, exact=True)


# Tasks of 20 ms, read as fast as the tests like; on the loop's clock, as the async tests
# run on the fake clock (in-process only).
make = functools.partial(make_emulator, duration=Duration.fixed(0.02), read_rate=None, clock="loop")


async def create(client: httpx.AsyncClient, model: str, image: str, **extra: Any) -> str:
    answer = await client.post(CREATE, json={"model": model, "input": {"image": image}, **extra})
    return str(answer.json()["data"]["taskId"])


async def final_record(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The recordInfo answer once the task has ended (polled, generously bounded)."""
    with anyio.fail_after(10):
        while True:
            body: dict[str, Any] = (await client.get(RECORD, params={"taskId": task_id})).json()
            if body["code"] == 422:  # just created: KIE's documented "not readable yet"
                assert body == doc("record_422_null")
            elif body["data"]["state"] in {"success", "fail"}:
                return body
            await anyio.sleep(0.01)


async def callback_of(
    shape: str, *, model: str = "recraft/crisp-upscale", image: bytes = CIRCLE, seed: bool = False
) -> tuple[str, dict[str, str], dict[str, Any], KieEmulator]:
    """(task id, headers, body) of the callback of one task, sent in ``shape``."""
    receiver = Receiver()
    emu = make(
        callback_shape=shape,
        webhook_key="whsec",
        callback_transport=httpx.ASGITransport(app=receiver.app),
    )
    url = emu.add_image("in.png", image)
    async with emu, emu.http_client(headers=EMULATOR_AUTH) as client:
        if seed:
            answer = await client.post(
                "/api/v1/recraft/upscale", json={"image_url": url, "callBackUrl": HOOK}
            )
            task_id = answer.json()["data"]["taskId"]
        else:
            task_id = await create(client, model, url, callBackUrl=HOOK)
        await receiver.wait_for(1)
    headers, body, _ = receiver.calls[0]
    return task_id, headers, body, emu


# -- submits, status reads, the balance ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model"),
    [("create_crisp", "recraft/crisp-upscale"), ("create_remove_bg", "recraft/remove-background")],
)
async def test_create_task_answers_like_the_model_pages(name, model):
    """createTask: {"code": 200, "msg": "success", "data": {"taskId": "task_recraft_..."}}."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(CREATE, json={"model": model, "input": {"image": url}})
    body = answer.json()
    assert answer.status_code == 200
    assert_shape(doc(name), body, exact=True)
    assert (body["code"], body["msg"]) == (200, "success")
    id_shape = r"task_recraft_\d{13}\d*"
    assert re.fullmatch(id_shape, doc(name)["data"]["taskId"])
    assert re.fullmatch(id_shape, body["data"]["taskId"])


@pytest.mark.parametrize("name", ["record_success_rendered", "record_success_openapi"])
async def test_a_successful_record_has_the_documented_fields(name):
    """A finished task's recordInfo: every documented field, type and JSON string."""
    emu = make()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await create(client, "recraft/crisp-upscale", url, callBackUrl=HOOK)
        body = await final_record(client, task_id)
    # The OpenAPI example lists every field the emulator sends but the cost, which the
    # records public clients read carry as creditsConsumed (0.5 for a crisp upscale).
    cost = body["data"].pop("creditsConsumed")
    assert cost == pytest.approx(0.5)
    # The rendered page omits one field more.
    assert_shape(doc(name), body, exact=name == "record_success_openapi")
    data = body["data"]
    assert (data["state"], data["failCode"], data["failMsg"]) == ("success", "", "")
    assert json.loads(data["param"])["callBackUrl"] == HOOK
    assert data["createTime"] <= data["updateTime"] <= data["completeTime"]


async def test_a_failed_record_has_the_documented_fields():
    """A failed task reads state fail, failCode as a string like "422", resultJson empty."""
    emu = make()
    url = emu.add_image("tiny.png", TINY)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await create(client, "recraft/remove-background", url)
        body = await final_record(client, task_id)
    assert_shape(doc("record_failed"), body)
    data = body["data"]
    assert (data["state"], data["failCode"], data["resultJson"]) == ("fail", "422", "")
    assert data["failMsg"]


@pytest.mark.parametrize("path", [RECORD, "/api/v1/recraft/upscale/record-info"])
async def test_status_read_errors_are_the_documented_bodies(path):
    """400 (no taskId), 404 (unknown task), 401 (wrong key): exactly as get-task-detail says."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        missing = await client.get(path)
        unknown = await client.get(path, params={"taskId": "task_recraft_1765177373893"})
    async with emu.http_client(headers={"Authorization": "Bearer wrong"}) as client:
        unauthorised = await client.get(path, params={"taskId": "x"})
    for answer, name in [(missing, "record_400"), (unknown, "record_404")]:
        assert (answer.status_code, answer.json()) == (200, doc(name))
    assert (unauthorised.status_code, unauthorised.json()) == (200, doc("record_401"))


async def test_a_task_just_created_answers_the_documented_not_ready():
    """Read at once after createTask: get-task-detail's 422 "recordInfo is null", HTTP 200."""
    emu = make(not_ready_for=60.0)  # the read surely falls within it
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await create(client, "recraft/crisp-upscale", url)
        answer = await client.get(RECORD, params={"taskId": task_id})
    assert (answer.status_code, answer.json()) == (200, doc("record_422_null"))


async def test_the_not_ready_fault_can_answer_at_http_422():
    """Fault.not_ready(2, status=422): two documented 422 bodies at HTTP 422, then the record."""
    emu = make(not_ready_for=0.0)
    emu.faults.next("task", Fault.not_ready(2, status=422))
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        task_id = await create(client, "recraft/crisp-upscale", url)
        answers = [await client.get(RECORD, params={"taskId": task_id}) for _ in range(3)]
    assert [(a.status_code, a.json()) for a in answers[:2]] == [(422, doc("record_422_null"))] * 2
    assert answers[2].json()["data"]["taskId"] == task_id


async def test_the_read_limit_answers_the_documented_429():
    """Past 10 reads a second: HTTP 429 and {"code": 429, "msg": "Rate limit exceeded"}."""
    emu = make(read_rate=Rate(10, per=60.0))
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answers = [await client.get(RECORD, params={"taskId": "x"}) for _ in range(11)]
    assert [a.json()["code"] for a in answers[:10]] == [404] * 10
    assert (answers[10].status_code, answers[10].json()) == (429, doc("record_429"))


async def test_the_balance_answers_like_the_credit_page():
    """GET /api/v1/chat/credit: {"code": 200, "msg": "success", "data": 100}."""
    emu = make(credits=100)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        body = (await client.get("/api/v1/chat/credit")).json()
    assert body == doc("credits")


# -- uploads ---------------------------------------------------------------------------------


async def test_an_upload_answers_like_the_upload_pages():
    """Every documented field, the documented message, uploadedAt in the documented form."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(
            "/api/file-stream-upload",
            files={"file": ("c.png", CIRCLE, "image/png")},
            data={"uploadPath": "images/user-uploads", "fileName": "uploaded-image.png"},
        )
    body = answer.json()
    assert_shape(doc("upload_ok"), body, exact=True)
    assert body["msg"] == doc("upload_ok")["msg"]
    data = body["data"]
    assert data["filePath"] == doc("upload_ok")["data"]["filePath"]
    assert data["downloadUrl"].endswith("/images/user-uploads/uploaded-image.png")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(stamp, doc("upload_ok")["data"]["uploadedAt"])
    assert re.fullmatch(stamp, data["uploadedAt"])


async def test_upload_errors_are_the_documented_bodies():
    """Missing uploadPath, bad base64 and a wrong key answer the upload pages' bodies."""
    emu = make()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        no_path = await client.post(
            "/api/file-stream-upload", files={"file": ("c.png", CIRCLE, "image/png")}
        )
        bad = await client.post(
            "/api/file-base64-upload", json={"base64Data": "not base64!", "uploadPath": "p"}
        )
    async with emu.http_client(headers={"Authorization": "Bearer wrong"}) as client:
        unauthorised = await client.post(
            "/api/file-url-upload", json={"fileUrl": "x", "uploadPath": "p"}
        )
    assert no_path.json() == doc("upload_400")
    assert bad.json() == doc("upload_400_b64")
    assert unauthorised.json() == doc("upload_401")


# -- callbacks -------------------------------------------------------------------------------


async def test_a_market_success_callback_is_the_market_pages_body():
    """callback_shape="market": the documented success callback's fields and message."""
    task_id, _, body, _ = await callback_of("market")
    assert_shape(doc("callback_success"), body)
    assert_shape(doc("callback_success_nulls"), body)
    assert set(body) == {"code", "msg", "data"}
    assert (body["code"], body["msg"]) == (200, doc("callback_success")["msg"])
    assert body["data"]["taskId"] == task_id
    # The pages' name for the cost, and theirs only (records say creditsConsumed).
    assert body["data"]["consumeCredits"] == pytest.approx(0.5)
    assert "creditsConsumed" not in body["data"]


async def test_a_market_failure_callback_is_the_market_pages_body():
    """A failed task's market callback: code 501, the documented message and fail fields."""
    _, _, body, _ = await callback_of("market", model="recraft/remove-background", image=TINY)
    assert_shape(doc("callback_failure"), body)
    assert (body["code"], body["msg"]) == (501, doc("callback_failure")["msg"])
    assert (body["data"]["state"], body["data"]["failCode"]) == ("fail", "422")


async def test_a_verification_callback_is_the_webhook_pages_body():
    """callback_shape="verification": exactly the webhook-verification page's body."""
    task_id, _, body, _ = await callback_of("verification")
    assert_shape(doc("webhook_doc_body"), body, exact=True)
    assert_shape(doc("webhook_doc_body")["data"], body["data"], "body.data", exact=True)
    assert body == {
        "taskId": task_id,
        "code": 200,
        "msg": "Success",
        "data": {"task_id": task_id, "callbackType": "task_completed"},
    }


# -- what a reader of each documented page finds, per callback_shape -------------------------


def read_like_the_verification_sample(headers: dict[str, str], body: dict[str, Any]) -> str:
    """KIE's verification sample: the task id from data.task_id, then the signature."""
    task_id = body["data"]["task_id"]
    expected = webhook_signature("whsec", task_id, headers["x-webhook-timestamp"])
    assert headers["x-webhook-signature"] == expected
    return str(task_id)


def read_like_the_market_page(body: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The market page's reader: data.taskId, data.state, the URLs in data.resultJson."""
    data = body["data"]
    return data["taskId"], data["state"], json.loads(data["resultJson"])["resultUrls"]


async def test_both_shapes_merged_serve_both_readers():
    """The default "both": the market body plus taskId, data.task_id and data.callbackType."""
    task_id, headers, body, emu = await callback_of("both")
    assert emu.callback_shape == "both"
    assert read_like_the_verification_sample(headers, body) == task_id
    read_id, state, urls = read_like_the_market_page(body)
    assert (read_id, state) == (task_id, "success")
    assert urls[0].endswith(f"/_emulator/results/{task_id}.png")
    assert_shape(doc("callback_success"), body)
    assert_shape(doc("webhook_doc_body"), body)
    assert body["msg"] == doc("callback_success")["msg"]


async def test_the_market_shape_serves_the_market_reader_alone():
    """The market shape: the page's reader works; the verification fields are absent."""
    task_id, _, body, _ = await callback_of("market")
    assert read_like_the_market_page(body)[:2] == (task_id, "success")
    assert "taskId" not in body
    assert "task_id" not in body["data"]


async def test_the_verification_shape_serves_the_verification_reader_alone():
    """The verification shape: the sample's reader works; there is no state to read."""
    task_id, headers, body, _ = await callback_of("verification")
    assert read_like_the_verification_sample(headers, body) == task_id
    assert "state" not in body["data"]


async def test_a_failed_task_under_the_verification_shape():
    """A failure says so in code and callbackType (the page shows only a success)."""
    _, _, body, _ = await callback_of("verification", model="recraft/remove-background", image=TINY)
    assert body["code"] == 501
    assert body["data"]["callbackType"] == "task_failed"


@pytest.mark.parametrize("shape", ["both", "market", "verification"])
async def test_seed_dialect_tasks_keep_their_seed_record(shape):
    """Seed tasks send their seed record; "both" adds the verification fields to it."""
    task_id, headers, body, _ = await callback_of(shape, seed=True)
    if shape == "verification":
        assert set(body["data"]) == {"task_id", "callbackType"}
    else:
        assert (body["data"]["taskId"], body["data"]["successFlag"]) == (task_id, 1)
        assert ("task_id" in body["data"]) is (shape == "both")
    if shape != "market":
        assert read_like_the_verification_sample(headers, body) == task_id


async def test_an_unknown_callback_shape_is_refused():
    """callback_shape must name one of the documented shapes, or both."""
    with pytest.raises(ValueError, match="callback_shape"):
        make(callback_shape="flux")


async def test_a_failed_task_fault_reaches_the_market_callback():
    """A scripted task failure is reported with its code and message in the fail fields."""
    receiver = Receiver()
    emu = make(callback_shape="market", callback_transport=httpx.ASGITransport(app=receiver.app))
    emu.faults.next("task", Fault.task_failed("Internal server error", code=500))
    url = emu.add_image("c.png", CIRCLE)
    async with emu, emu.http_client(headers=EMULATOR_AUTH) as client:
        await create(client, "recraft/crisp-upscale", url, callBackUrl=HOOK)
        await receiver.wait_for(1)
    data = receiver.calls[0][1]["data"]
    assert (data["failCode"], data["failMsg"]) == ("500", "Internal server error")
    assert data["resultJson"] == ""

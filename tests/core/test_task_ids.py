"""One rule for task ids: every id a submit accepted (and paid for) is one resume accepts."""

from __future__ import annotations

import json

import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra
from recraft_async._core._check import check_task_id
from recraft_async._core._dialects import parse_task_id

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
IDS = ["t1", "t\n1", "t\r\n\x1b[31m", "t\x00", " t ", "\u2028x", "", "   ", "\ud800", 5, None]


def submit_accepts(task_id: object) -> bool:
    """Whether a submit answer carrying ``task_id`` is taken as a submitted task."""
    data = {"taskId": task_id}
    try:
        parse_task_id(data, json.dumps(envelope(data)))
    except ra.ProtocolError:
        return False
    return True


def resume_accepts(task_id: object) -> bool:
    """Whether resume() and get_task() take ``task_id``."""
    try:
        check_task_id(task_id)
    except ra.InvalidInputError:
        return False
    return True


@pytest.mark.parametrize("task_id", IDS, ids=repr)
def test_submit_and_resume_agree_on_every_task_id(task_id):
    """A task id the submit parse accepts is one resume accepts, and the other way round."""
    assert submit_accepts(task_id) == resume_accepts(task_id)


def test_ids_with_control_characters_are_accepted_and_blank_ones_are_not():
    """Newlines and NULs are the service's business; blanks and lone surrogates are no id."""
    assert resume_accepts("t\n1")
    assert resume_accepts("t\x00")
    assert not resume_accepts("  ")
    assert not resume_accepts("\ud800")


def test_a_callback_may_name_any_task_id_resume_accepts():
    """A callback for a task whose id holds a newline is read, not refused."""
    callback = ra.parse_callback(json.dumps({"code": 200, "data": {"taskId": "t\n1"}}))
    assert callback.task_id == "t\n1"


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_a_paid_task_whose_id_has_a_newline_can_be_resumed(kie, make_client):
    """Submitted with a newline in its id: delivered, and resume() of that id reads it again."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t\n1"}))
    reads = kie.get(READ, params={"taskId": "t\n1"}).respond(json=market_record("t\n1"))
    async with make_client() as client:
        result = await client.upscale("https://i.test/a.png")
        again = await client.resume(result.task_id, "upscale")
        read = await client.get_task(result.task_id, "upscale")
    assert result.task_id == again.task_id == read.task_id == "t\n1"
    assert reads.call_count >= 3


@pytest.mark.anyio
@pytest.mark.fake_clock
@pytest.mark.parametrize("task_id", ["   ", "\ud800"], ids=["blank", "lone-surrogate"])
async def test_an_unusable_task_id_is_kept_raw_and_says_where_to_look(kie, make_client, task_id):
    """A blank or unsendable id: not a task resume could read; the raw answer is kept."""
    answer = json.dumps(envelope({"taskId": task_id}))  # "\ud800" as JSON's escape
    kie.post(UPSCALE).respond(content=answer, headers={"Content-Type": "application/json"})
    async with make_client() as client:
        with pytest.raises(ra.SubmissionUncertainError) as caught:
            await client.upscale("https://i.test/a.png")
    cause = caught.value.__cause__
    assert isinstance(cause, ra.ProtocolError)
    assert json.loads(cause.body or "")["data"]["taskId"] == task_id  # the raw id, kept
    assert "task history" in str(cause)

"""Callbacks: parsing, and signatures checked in constant time with a freshness window."""

import json

import pytest
from conftest import record

import recraft_async as ra

KEY = "whk-test"
NOW = 1_760_000_000.0


def _signed(task_id="t1", at=NOW, key=KEY):
    timestamp = str(int(at))
    return {
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": ra.webhook_signature(key, task_id, timestamp),
    }


def test_unsigned_callback_parses_without_a_key():
    """Without a webhook key the body is parsed into a TaskRecord."""
    task = ra.parse_callback(json.dumps(record("t1")).encode())
    assert task.state is ra.TaskState.SUCCESS
    assert task.result_urls == ("https://cdn.test/o.png",)


def test_signed_callback_verifies():
    """A correctly signed, fresh callback is accepted."""
    task = ra.parse_callback(json.dumps(record("t1")), _signed(), webhook_key=KEY, now=NOW + 10)
    assert task.task_id == "t1"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "not signed"),
        (_signed(key="other"), "does not match"),
        (_signed(task_id="t2"), "does not match"),
        (_signed(at=NOW - 3600), "window"),
        ({"X-Webhook-Timestamp": "soon", "X-Webhook-Signature": "x"}, "not a number"),
    ],
)
def test_bad_signatures_are_refused(headers, why):
    """Missing, forged, replayed or stale signatures raise WebhookVerificationError."""
    with pytest.raises(ra.WebhookVerificationError, match=why):
        ra.parse_callback(json.dumps(record("t1")), headers, webhook_key=KEY, now=NOW)


def test_known_signature_vector():
    """The signature is base64 of HMAC-SHA256 over 'taskId.timestamp'."""
    assert ra.webhook_signature("k", "t", "1") == "/v5j7dZAyj30RlWjar58XuXH3rwsWZDAbakz0ozhgM8="


def test_callback_with_a_bad_body_is_a_protocol_error():
    """A callback body that is not JSON raises ProtocolError with the body."""
    with pytest.raises(ra.ProtocolError) as caught:
        ra.parse_callback(b"<html>")
    assert caught.value.body == "<html>"

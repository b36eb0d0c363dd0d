"""Callbacks from KIE: signature checks first, then the body in either documented shape.

A callback is a hint that a task ended; the status read stays the truth (``get_task``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from ._check import DIALECT_NAMES, check_dialect
from ._dialects import DIALECTS
from ._models import Callback, TaskRecord
from .errors import ProtocolError, WebhookVerificationError

# KIE does not publish a window; five minutes is the common choice (Stripe, Slack).
DEFAULT_MAX_AGE = 300.0
# The field that says a callback's data is a full record, in each dialect's shape.
_STATE_FIELDS = {"market": ("state",), "recraft": ("successFlag", "status")}


def webhook_signature(webhook_key: str, task_id: str, timestamp: str) -> str:
    """The signature KIE sends: base64(HMAC-SHA256(key, task_id + "." + timestamp))."""
    digest = hmac.new(
        webhook_key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def parse_callback(
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    webhook_key: str | None = None,
    max_age: float = DEFAULT_MAX_AGE,
    dialect: str | None = None,
    now: float | None = None,
) -> Callback:
    """The Callback a KIE callback body holds; with ``webhook_key``, only if correctly signed.

    Both documented shapes are read: the market pages' (``data.taskId``, ``data.state``,
    ``data.resultJson``) and the webhook-verification page's (top-level ``taskId``,
    ``data.task_id``, ``data.callbackType``, no state). ``dialect`` names the record shape
    to expect in ``data``; None reads whichever the body has.
    """
    shapes = DIALECT_NAMES if dialect is None else (check_dialect(dialect),)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        envelope = json.loads(text)
    # RecursionError: deeply nested arrays or objects ("[" * 100000) exhaust the decoder.
    except (ValueError, RecursionError):
        raise ProtocolError("callback body is not JSON", body=text) from None
    if not isinstance(envelope, dict):
        raise ProtocolError("callback body is not a JSON object", body=text)
    task_id = _task_id(envelope, text)
    # Verified before anything else of the body is read: an unsigned body is untrusted.
    if webhook_key is not None:
        _verify(task_id, headers or {}, webhook_key, max_age, now)
    data = envelope.get("data")
    record = _record(data, text, shapes) if isinstance(data, dict) else None
    if record is not None and record.task_id != task_id:
        raise ProtocolError("callback names two different tasks", body=text)
    code = envelope.get("code")
    kind = data.get("callbackType") if isinstance(data, dict) else None
    return Callback(
        task_id=task_id,
        record=record,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        callback_type=kind if isinstance(kind, str) else None,
    )


def _task_id(envelope: dict[str, Any], text: str) -> str:
    """The task id from every documented place that holds one; they must agree."""
    data = envelope.get("data")
    inner = data if isinstance(data, dict) else {}
    found = [
        value
        for value in (envelope.get("taskId"), inner.get("taskId"), inner.get("task_id"))
        if value is not None
    ]
    if not found:
        raise ProtocolError("callback names no task (taskId, data.taskId, data.task_id)", body=text)
    # Types first: a list or object in a task id's place would not even hash.
    if not all(isinstance(value, str) and value and value.isprintable() for value in found):
        raise ProtocolError("callback's task id is not a printable string", body=text)
    if len(set(found)) > 1:
        raise ProtocolError("callback names two different tasks", body=text)
    return str(found[0])


def _record(data: dict[str, Any], text: str, shapes: tuple[str, ...]) -> TaskRecord | None:
    """The task record in ``data``, when it carries a state (the verification shape does not)."""
    for shape in shapes:
        if any(field in data for field in _STATE_FIELDS[shape]):
            return DIALECTS[shape].parse_record(data, text)
    return None


def _verify(
    task_id: str,
    headers: Mapping[str, str],
    webhook_key: str,
    max_age: float,
    now: float | None,
) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-webhook-timestamp")
    signature = lowered.get("x-webhook-signature")
    if not timestamp or not signature:
        raise WebhookVerificationError("callback is not signed")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise WebhookVerificationError("callback timestamp is not a number") from None
    current = time.time() if now is None else now
    if not abs(current - sent_at) <= max_age:  # also refuses nan
        raise WebhookVerificationError("callback timestamp is outside the allowed window")
    # A base64 signature is ASCII; anything else (a lone surrogate would not even encode)
    # can never match.
    if not signature.isascii():
        raise WebhookVerificationError("callback signature does not match")
    expected = webhook_signature(webhook_key, task_id, timestamp)
    # Constant time: a byte-by-byte compare would leak how much of a forgery was right.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise WebhookVerificationError("callback signature does not match")

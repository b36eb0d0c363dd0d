"""Callbacks from KIE: signature checks and parsing into a TaskRecord.

A callback is a hint that a task ended; the status read stays the truth (``get_task``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from ._dialects import DIALECTS
from ._models import TaskRecord
from .errors import ProtocolError, WebhookVerificationError

# KIE does not publish a window; five minutes is the common choice (Stripe, Slack).
DEFAULT_MAX_AGE = 300.0


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
    dialect: str = "recraft",
    now: float | None = None,
) -> TaskRecord:
    """The TaskRecord a callback carries; with ``webhook_key``, only if correctly signed."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        envelope = json.loads(text)
    except ValueError:
        raise ProtocolError("callback body is not JSON", body=text) from None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    record = DIALECTS[dialect].parse_record(data, text)
    if webhook_key is not None:
        _verify(record.task_id, headers or {}, webhook_key, max_age, now)
    return record


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
    if abs(current - sent_at) > max_age:
        raise WebhookVerificationError("callback timestamp is outside the allowed window")
    expected = webhook_signature(webhook_key, task_id, timestamp)
    # Constant time: a byte-by-byte compare would leak how much of a forgery was right.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise WebhookVerificationError("callback signature does not match")

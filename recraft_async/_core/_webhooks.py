"""Callbacks from KIE: signature checks first, then the body in either documented shape.

A callback is a hint that a task ended; the status read stays the truth (``get_task``).
KIE's signature covers the task id and the timestamp only, never the body: even a
correctly signed body is untrusted.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs

from ._check import DIALECT_NAMES, check_dialect, task_id_problem
from ._dialects import DIALECTS
from ._errors import ProtocolError, WebhookReplayError, WebhookVerificationError
from ._keys import checked_key
from ._models import Callback, TaskRecord
from ._validate import integer, positive

# KIE does not publish a window; five minutes is the common choice (Stripe, Slack).
DEFAULT_MAX_AGE = 300.0
# Verified callbacks remembered at most; KIE's submit limit (20 per 10 s) ends far fewer
# tasks than this within one window.
DEFAULT_REPLAY_MEMORY = 10_000
# Whole seconds since the epoch, as KIE's webhook page shows ("1769670760"), optionally
# with a fraction; nothing else float() would take: no sign, exponent, "inf" or "nan",
# spaces, underscores, hex or other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,9})?", re.ASCII)
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
    to expect in ``data``; None reads whichever the body has. ``webhook_key`` is stripped
    of surrounding whitespace; one with a control or non-ASCII character left is an
    ``InvalidInputError``.
    """
    shapes = DIALECT_NAMES if dialect is None else (check_dialect(dialect),)
    positive("max_age", max_age)
    key = None if webhook_key is None else checked_key(webhook_key, "the webhook key")
    envelope, text = _envelope(body)
    task_id = _task_id(envelope, text)
    # Verified before anything else of the body is read: an unsigned body is untrusted.
    if key is not None:
        _verify(task_id, headers or {}, key, max_age, now, None)
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


def verified_task_id(
    body: bytes | str,
    headers: Mapping[str, str] | None,
    *,
    webhook_key: str | None,
    replays: ReplayGuard | None,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> str:
    """The task id a callback names, once its signature, age and novelty are checked.

    Nothing else of the body is read: the signature does not cover it. Without a key
    nothing can be verified (nor told apart from a replay) and the id is taken as it is.
    """
    task_id, _ = verified_callback(
        body, headers, webhook_key=webhook_key, replays=replays, max_age=max_age, now=now
    )
    return task_id


def verified_callback(
    body: bytes | str,
    headers: Mapping[str, str] | None,
    *,
    webhook_key: str | None,
    replays: ReplayGuard | None,
    max_age: float = DEFAULT_MAX_AGE,
    now: float | None = None,
) -> tuple[str, Seen | None]:
    """``verified_task_id``, and what a fleet needs to refuse its replay (None: unsigned)."""
    positive("max_age", max_age)
    envelope, text = _envelope(body)
    task_id = _task_id(envelope, text)
    if webhook_key is None:
        return task_id, None
    return task_id, _verify(task_id, headers or {}, webhook_key, max_age, now, replays)


@attrs.frozen
class Seen:
    """A verified callback as a fleet remembers it: a digest, for as long as it is fresh."""

    digest: str  # of its task id, timestamp and signature: the same in every worker
    lifetime: float  # seconds until its timestamp leaves the freshness window


class ReplayGuard:
    """The verified callbacks still inside the freshness window: a second delivery is refused.

    A callback is known by its task id, timestamp and signature. Each is forgotten once
    its timestamp leaves the window (the age check refuses it from then on), and at most
    ``max_entries`` are held: past that, the one nearest its expiry goes first.
    """

    def __init__(self, max_entries: int = DEFAULT_REPLAY_MEMORY) -> None:
        self._max_entries = integer("max_entries", max_entries, minimum=1)
        self._expiry: dict[tuple[str, str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def admit(self, seen: tuple[str, str, str], expires: float, now: float) -> None:
        """Remember ``seen`` until ``expires``; WebhookReplayError if it is remembered."""
        while self._heap and self._heap[0][0] < now:
            self._forget_first()
        if seen in self._expiry:
            raise WebhookReplayError("callback was already received")
        while len(self._expiry) >= self._max_entries:
            self._forget_first()
        self._expiry[seen] = expires
        heapq.heappush(self._heap, (expires, seen))

    def _forget_first(self) -> None:
        _, seen = heapq.heappop(self._heap)
        del self._expiry[seen]


def _envelope(body: bytes | str) -> tuple[dict[str, Any], str]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        envelope = json.loads(text)
    # RecursionError: deeply nested arrays or objects ("[" * 100000) exhaust the decoder.
    except (ValueError, RecursionError):
        raise ProtocolError("callback body is not JSON", body=text) from None
    if not isinstance(envelope, dict):
        raise ProtocolError("callback body is not a JSON object", body=text)
    return envelope, text


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
    # Types first: a list or object in a task id's place would not even hash. The rule is
    # resume's: every task id a submit accepted is one a callback may name.
    if any(task_id_problem(value) is not None for value in found):
        raise ProtocolError("callback's task id is not a usable task id", body=text)
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
    replays: ReplayGuard | None,
) -> Seen:
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-webhook-timestamp")
    signature = lowered.get("x-webhook-signature")
    if not timestamp or not signature:
        raise WebhookVerificationError("callback is not signed")
    if not isinstance(timestamp, str) or not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookVerificationError(
            "callback timestamp is not a number of seconds (digits, optionally a fraction)"
        )
    sent_at = float(timestamp)  # finite: at most 16 digits
    current = time.time() if now is None else now
    # Too old, or from further ahead than clocks drift; `not <=` also refuses a nan `now`.
    if not abs(current - sent_at) <= max_age:
        raise WebhookVerificationError("callback timestamp is outside the allowed window")
    # A base64 signature is ASCII; anything else (a lone surrogate would not even encode)
    # can never match.
    if not signature.isascii():
        raise WebhookVerificationError("callback signature does not match")
    expected = webhook_signature(webhook_key, task_id, timestamp)
    # Constant time: a byte-by-byte compare would leak how much of a forgery was right.
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise WebhookVerificationError("callback signature does not match")
    # Remembered only once verified: forgeries cannot fill the memory or block a delivery.
    if replays is not None:
        replays.admit((task_id, timestamp, signature), sent_at + max_age, current)
    digest = hashlib.sha256(f"{task_id}.{timestamp}.{signature}".encode()).hexdigest()
    return Seen(digest, sent_at + max_age - current)

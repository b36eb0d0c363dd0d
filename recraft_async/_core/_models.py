"""Public value classes, the one cattrs converter for the wire format, and their JSON."""

from __future__ import annotations

import datetime as dt
import enum
import math
from typing import Any, Literal

import attrs
import cattrs
from cattrs.gen import make_dict_unstructure_fn, override


class Operation(str, enum.Enum):
    """What a job does to its image."""

    UPSCALE = "upscale"
    REMOVE_BACKGROUND = "remove-background"


OperationName = Literal["upscale", "remove-background"]
"""An ``Operation``'s value, where a plain string is accepted (``client.resume``)."""


class TaskState(str, enum.Enum):
    """A task's state as the service reports it."""

    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    CREATE_FAILED = "create-failed"


@attrs.frozen
class TaskRecord:
    """One status read of a task, normalised from either wire dialect."""

    task_id: str
    state: TaskState
    result_urls: tuple[str, ...] = ()
    error_code: str | int | None = None
    error_message: str | None = None
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    credits: float | None = None
    """The credits the service says the task cost (``creditsConsumed``, ``consumeCredits``)."""
    param: Any = attrs.field(default=None, eq=False, repr=False)
    """The request as the service recorded it (``param``): parsed if JSON text, else as sent."""


@attrs.frozen
class Callback:
    """A callback from KIE: the task it is about, and the record it carries, if any.

    The market pages' callbacks carry the full record; the webhook-verification page's
    carry only the task id (``record`` is None). Either way it is a hint: the status read
    is the truth, since KIE's signature covers the task id and time, not the body.
    """

    task_id: str
    record: TaskRecord | None = None
    # The envelope's own words: 200 or 501 on the market pages; "task_completed" is the
    # only documented callbackType.
    code: int | None = None
    callback_type: str | None = None


@attrs.frozen
class Result:
    """A finished, successful job.

    ``task_id`` and ``operation``; ``urls``, the result URLs (``url`` is the first), each
    an http(s) URL; ``created_at`` and ``completed_at`` as the service reports them;
    ``record``, the status read it came from; ``source``, the input; ``credits``, what
    the service says the task cost (``0.5``; fractions kept), or None when its answer does
    not say (KIE documents the figure on callbacks, and records carry it too).

    Its URLs are temporary: KIE keeps result files 24 hours by one of its pages (14 days
    by another), so download at once (``client.download``). A host that refuses a URL
    later gets one fresh link from ``client.download_url`` (valid 20 minutes) before
    ``download`` gives up with ``ResultUnavailableError``; a journal keeps the task id and
    the URLs, never the file.
    """

    task_id: str
    operation: Operation
    urls: tuple[str, ...]
    created_at: dt.datetime | None
    completed_at: dt.datetime | None
    record: TaskRecord = attrs.field(repr=False)
    # The local file or URL the job was made from; download() names its output after it.
    source: str | None = attrs.field(default=None, repr=False)
    credits: float | None = None
    """The credits the service says the task cost (fractions kept), or None when it does not say."""

    @property
    def url(self) -> str:
        """The first (usually the only) result URL."""
        return self.urls[0]

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-safe values, for ``json.dumps`` or a web framework's answer.

        ``task_id``; ``operation`` as its string (``"upscale"``); ``urls`` as a list;
        ``created_at`` and ``completed_at`` as ISO 8601 strings in UTC, or None;
        ``source``, the input's URL or local path (``"image"`` for bytes), or None; and
        ``credits``, what the service says the task cost, or None. The raw
        ``record`` is left out: it is the service's own answer, not this library's word.
        """
        values: dict[str, Any] = _to_json(self)
        return values


def from_epoch(value: object) -> dt.datetime | None:
    """KIE timestamps: epoch milliseconds, or seconds, or ISO 8601 strings; else None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _from_iso(value)
    except OverflowError:  # an int beyond float's range (10**400) is no moment in time
        return None
    if number > 1e11:  # milliseconds since 1973 and later
        number /= 1000.0
    try:
        return dt.datetime.fromtimestamp(number, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


# Longer is no credit figure: float() of a huge digit string is slow and meaningless.
_MAX_CREDITS_TEXT = 32


def credits_from(value: object) -> float | None:
    """Credits as the service states them: a number or numeric string, fractions kept.

    Anything else (a bool, an object, a word, a negative or non-finite number) is None,
    never an error: a figure about the bill must not fail a paid task.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > _MAX_CREDITS_TEXT:
            return None
        try:
            number = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            return None
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _from_iso(value: object) -> dt.datetime | None:
    # KIE's per-product records write "2024-03-20T10:30:00Z"; Python 3.10 needs "+00:00".
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _loose_scalar(value: object, _type: object) -> int | str | None:
    # The service sends codes and flags as int or as str; anything else is malformed.
    if value is None or (isinstance(value, (int, str)) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected a number or string, got {type(value).__name__}")


def _strict_str(value: object, _type: object) -> str:
    # cattrs would turn 5 into "5"; a task id or URL of the wrong type is a broken answer.
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_str_list(value: object, _type: object) -> list[str]:
    # cattrs would turn "https://x" into a list of characters.
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [_strict_str(item, str) for item in value]


def _make_converter() -> cattrs.Converter:
    # Never the global converter: our hooks must not leak into the user's cattrs use.
    # Unknown keys are ignored so that the service can grow its answers.
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(int | str | None, _loose_scalar)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook_func(lambda t: t == list[str], _strict_str_list)
    return converter


wire = _make_converter()


def iso_time(moment: dt.datetime | float | None) -> str | None:
    """A moment (a datetime, or seconds since the epoch) as ISO 8601 with its offset.

    A naive datetime is taken as UTC, which is what this library makes.
    """
    if moment is None:
        return None
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, tz=dt.timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.isoformat()


# The version of the doctor's trace file layout (``recraft-async doctor --trace``), which
# the emulator replays: a value both read, so it sits here, below them both.
TRACE_FORMAT = 1


def _make_json_converter() -> cattrs.Converter:
    # Its own converter, apart from ``wire`` (which reads the service's answers) and from
    # the global one: values out, as ``json.dumps`` takes them.
    converter = cattrs.Converter()
    converter.register_unstructure_hook(dt.datetime, iso_time)
    for kind in (Operation, TaskState):  # str enums: as str they would stay enums
        converter.register_unstructure_hook(kind, lambda e: e.value)
    converter.register_unstructure_hook_func(lambda t: t == tuple[str, ...], list)
    converter.register_unstructure_hook(
        Result, make_dict_unstructure_fn(Result, converter, record=override(omit=True))
    )
    return converter


_to_json = _make_json_converter().unstructure

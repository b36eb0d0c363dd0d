"""Argument checks: the first step of every job, before anything is scheduled or sent."""

from __future__ import annotations

import ipaddress
import urllib.parse

import attrs

from ._models import Operation
from .errors import InvalidInputError

_FORMATS = {"png": "PNG", "jpg": "JPG", "jpeg": "JPG"}
_SCALES = (2, 4)
_MAX_URL_LENGTH = 4096


@attrs.frozen
class SubmitRequest:
    """A checked request: everything a dialect needs to build the submit body."""

    operation: Operation
    image_url: str
    scale: int | None = None
    format: str | None = None
    output_format: str | None = None
    callback_url: str | None = None


def check_url(value: object, what: str) -> str:
    """Return ``value`` if it is an absolute http(s) URL, else raise InvalidInputError."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} is empty")
    if len(value) > _MAX_URL_LENGTH:
        raise InvalidInputError(f"{what} is longer than {_MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 for c in value):
        raise InvalidInputError(f"{what} contains white space or control characters")
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme.lower() not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(f"{what} must be an http(s) URL, got {value!r}")
    return value


def check_format(value: object, what: str) -> str:
    """Map png/jpg (any case) to the wire's PNG/JPG."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, got {type(value).__name__}")
    wire = _FORMATS.get(value.lower())
    if wire is None:
        raise InvalidInputError(f"{what} must be 'png' or 'jpg', got {value!r}")
    return wire


def check_upscale(
    image_url: object, scale: object, format: object, callback_url: object
) -> SubmitRequest:
    """Check an upscale call's arguments."""
    if not isinstance(scale, int) or isinstance(scale, bool):
        raise InvalidInputError(f"scale must be an int, got {type(scale).__name__}")
    if scale not in _SCALES:
        raise InvalidInputError(f"scale must be 2 or 4, got {scale!r}")
    return SubmitRequest(
        operation=Operation.UPSCALE,
        image_url=check_url(image_url, "image_url"),
        scale=scale,
        format=check_format(format, "format"),
        callback_url=_optional_url(callback_url),
    )


def check_remove_background(
    image_url: object, output_format: object, callback_url: object
) -> SubmitRequest:
    """Check a remove_background call's arguments."""
    wire_format = check_format(output_format, "output_format")
    if wire_format != "PNG":
        # A transparent background needs an alpha channel; JPG has none.
        raise InvalidInputError("output_format must be 'png' for background removal")
    return SubmitRequest(
        operation=Operation.REMOVE_BACKGROUND,
        image_url=check_url(image_url, "image_url"),
        output_format=wire_format,
        callback_url=_optional_url(callback_url),
    )


def check_operation(value: object) -> Operation:
    """Accept an Operation or its string value."""
    try:
        return Operation(value)
    except ValueError:
        names = ", ".join(repr(o.value) for o in Operation)
        raise InvalidInputError(f"operation must be one of {names}, got {value!r}") from None


def check_task_id(value: object) -> str:
    """A task id is a non-empty printable string."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise InvalidInputError(f"task_id must be a non-empty printable str, got {value!r}")
    return value


def _optional_url(value: object) -> str | None:
    return None if value is None else check_url(value, "callback_url")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (plain http is only safe for these)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

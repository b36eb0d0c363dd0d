"""Argument checks: the first step of every job, before anything is scheduled or sent."""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from pathlib import Path
from typing import Any, Literal

import attrs

from ._files import probe_image_bytes, probe_image_file
from ._models import Operation
from .errors import InvalidInputError

DialectName = Literal["market", "recraft"]
DIALECT_NAMES: tuple[DialectName, ...] = ("market", "recraft")
Scale = Literal[2, 4]
UpscaleFormat = Literal["png", "jpg", "jpeg", "PNG", "JPG", "JPEG"]
OutputFormat = Literal["png", "PNG"]

_FORMATS = {"png": "PNG", "jpg": "JPG", "jpeg": "JPG"}
_SCALES = (2, 4)
# What the seed's endpoints are sent when the caller leaves an option to the service.
SEED_SCALE = 2
SEED_FORMAT = "PNG"
_MAX_URL_LENGTH = 4096
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_MARKET_TAKES_ONLY_AN_IMAGE = (
    "KIE's jobs API (dialect='market', the default) documents only an image for "
    "recraft/{model}: {names} cannot be sent; leave {them} unset, or use "
    "AsyncRecraft(dialect='recraft') for the seed's endpoints, which carry {them}"
)


@attrs.frozen
class LocalImage:
    """A checked local input, uploaded just before its submit."""

    name: str
    path: Path | None = None
    data: bytes | None = attrs.field(default=None, repr=False)


@attrs.frozen
class SubmitRequest:
    """A checked request: everything a dialect needs to build the submit body."""

    operation: Operation
    # None while a local image waits for its upload.
    image_url: str | None
    scale: int | None = None
    format: str | None = None
    output_format: str | None = None
    callback_url: str | None = None
    local: LocalImage | None = None

    @property
    def source(self) -> str:
        """What the job was made from: the URL, the file, or a note for raw bytes."""
        if self.local is None:
            return self.image_url or ""
        return str(self.local.path) if self.local.path is not None else self.local.name

    @property
    def params(self) -> dict[str, Any]:
        """The parameters that decide the output, in the user's spelling (for journals)."""
        if self.operation is Operation.UPSCALE:
            return {"scale": self.scale, "format": (self.format or "").lower()}
        return {"output_format": (self.output_format or "").lower()}


def check_image(value: object, operation: Operation) -> tuple[str | None, LocalImage | None]:
    """An image is an http(s) URL, a path to a local file, or the image's bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        probe_image_bytes(data, operation, name="image bytes")
        return None, LocalImage(name="image", data=data)
    if isinstance(value, os.PathLike):
        path = Path(value)
        probe_image_file(path, operation)
        return None, LocalImage(name=path.name, path=path)
    try:
        return check_url(value, "image"), None
    except InvalidInputError:
        hint = _path_hint(value) if isinstance(value, str) else None
        if hint is None:
            raise
        raise InvalidInputError(hint) from None


def _path_hint(value: str) -> str | None:
    """What to say of a ``str`` image that is no URL but a file's name or looks like one.

    A ``str`` is only ever a URL, so that a typo in a URL never reads a local file: a
    file's path comes as ``pathlib.Path``, which says which is meant.
    """
    if "://" in value or len(value) > _MAX_URL_LENGTH:
        return None
    path = f"pathlib.Path({value!r})"
    try:
        exists = os.path.lexists(value)
    except (OSError, ValueError):  # too long, or a NUL: no file's name
        exists = False
    if exists:
        return f"image {value!r} is a local file, but a str image is only ever a URL: pass {path}"
    looks_like_a_path = (
        any(sep in value for sep in ("/", "\\"))
        or value.startswith(("~", "."))
        or Path(value).suffix.lower() in _IMAGE_SUFFIXES
    )
    if looks_like_a_path:
        return (
            f"image {value!r} is not an http(s) URL; for a local file pass {path}"
            " (a str image is only ever a URL)"
        )
    return None


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


def check_dialect(value: object) -> DialectName:
    """A dialect is ``"market"`` (KIE's documented jobs API) or ``"recraft"`` (the seed's)."""
    for name in DIALECT_NAMES:
        if value == name:
            return name
    raise InvalidInputError(f"dialect must be one of {list(DIALECT_NAMES)}, got {value!r}")


def check_upscale(
    image: object, scale: object, format: object, callback_url: object, *, dialect: DialectName
) -> SubmitRequest:
    """Check an upscale call's arguments; None leaves an option to the service."""
    if dialect == "market":
        _refuse_market_options("crisp-upscale", scale=scale, format=format)
    else:
        scale = SEED_SCALE if scale is None else scale
        format = SEED_FORMAT if format is None else format  # noqa: A001 - the public name
    if scale is not None:
        if not isinstance(scale, int) or isinstance(scale, bool):
            raise InvalidInputError(f"scale must be an int, got {type(scale).__name__}")
        if scale not in _SCALES:
            raise InvalidInputError(f"scale must be 2 or 4, got {scale!r}")
    wire_format = None if format is None else check_format(format, "format")
    callback = _optional_url(callback_url)
    image_url, local = check_image(image, Operation.UPSCALE)
    return SubmitRequest(
        operation=Operation.UPSCALE,
        image_url=image_url,
        scale=scale,
        format=wire_format,
        callback_url=callback,
        local=local,
    )


def check_remove_background(
    image: object, output_format: object, callback_url: object, *, dialect: DialectName
) -> SubmitRequest:
    """Check a remove_background call's arguments; None leaves the format to the service."""
    if dialect == "market":
        _refuse_market_options("remove-background", output_format=output_format)
        wire_format = None
    else:
        given = SEED_FORMAT if output_format is None else output_format
        wire_format = check_format(given, "output_format")
        if wire_format != "PNG":
            # A transparent background needs an alpha channel; JPG has none.
            raise InvalidInputError("output_format must be 'png' for background removal")
    callback = _optional_url(callback_url)
    image_url, local = check_image(image, Operation.REMOVE_BACKGROUND)
    return SubmitRequest(
        operation=Operation.REMOVE_BACKGROUND,
        image_url=image_url,
        output_format=wire_format,
        callback_url=callback,
        local=local,
    )


def _refuse_market_options(model: str, **options: object) -> None:
    given = [name for name, value in options.items() if value is not None]
    if given:
        names = " and ".join(f"{name}={options[name]!r}" for name in given)
        them = "it" if len(given) == 1 else "them"
        raise InvalidInputError(
            _MARKET_TAKES_ONLY_AN_IMAGE.format(model=model, names=names, them=them)
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


def is_loopback_host(host: str, *, by_name: bool = False) -> bool:
    """Whether ``host`` is a literal loopback address: 127.0.0.0/8 or ::1.

    Only these are safe for plain http: a name ("localhost", "*.localhost") is resolved by
    the system's resolver, which may answer an address off this machine. ``by_name=True``
    also accepts those names, where only the intent matters (never for the key).
    """
    host = host.strip("[]").lower()
    name = host.rstrip(".")
    if by_name and (name == "localhost" or name.endswith(".localhost")):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_grace(value: object) -> float:
    """A shutdown's grace: a number of seconds >= 0."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
        raise InvalidInputError(f"grace must be a number of seconds >= 0, got {value!r}")
    return float(value)

"""Image headers, read by hand: format and size of a local image, checked against the limits.

Pure values and a short read of a file the caller names: no network, nothing written.
The argument checks (``_check``) use it; uploads and downloads live in ``_files``.
"""

from __future__ import annotations

import struct
from typing import IO, TYPE_CHECKING

import attrs

from ._errors import InvalidInputError
from ._limits import IMAGE_FORMATS, ImageFormat
from ._limits import LIMITS as _LIMITS
from ._limits import MB as _MB
from ._limits import MEGAPIXEL as _MP
from ._models import Operation

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# Pillow is not a core dependency (only the emulator extra needs it), so image headers
# are read by hand: a few bytes of PNG, JPEG and WEBP are enough for format and size.

MIME_TYPES: dict[str, str] = {fmt: names.mime for fmt, names in IMAGE_FORMATS.items()}

# JPEG metadata segments come before the frame header; a file that needs more hops than
# this to reach it is corrupt or hostile, and probing must stay cheap.
_MAX_JPEG_SEGMENTS = 256
HEAD_BYTES = 32


@attrs.frozen
class ImageInfo:
    """Format and dimensions of an image, read from its header."""

    format: ImageFormat
    width: int
    height: int


_OPERATION_WORDS = {Operation.UPSCALE: "upscale", Operation.REMOVE_BACKGROUND: "remove background"}


def probe_image_file(path: Path, operation: Operation) -> ImageInfo:
    """Check a local image against ``operation``'s input limits; cheap: a stat and a short read."""
    name = str(path)
    try:
        stat = path.stat()
        if not path.is_file():
            raise InvalidInputError(f"{name}: not a regular file")
        _check_size(name, stat.st_size, operation)
        with path.open("rb") as handle:
            fmt, width, height = _sniff(name, _file_reader(handle))
    except FileNotFoundError:
        raise InvalidInputError(f"{name}: no such file") from None
    except PermissionError:
        raise InvalidInputError(f"{name}: permission denied") from None
    except OSError as exc:
        raise InvalidInputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    return _checked(name, ImageInfo(fmt, width, height), operation)


def probe_image_bytes(data: bytes, operation: Operation, *, name: str) -> ImageInfo:
    """Check in-memory image bytes against ``operation``'s input limits."""
    _check_size(name, len(data), operation)
    fmt, width, height = _sniff(name, _bytes_reader(data))
    return _checked(name, ImageInfo(fmt, width, height), operation)


def sniff_format(head: bytes) -> ImageFormat | None:
    """Name the image format that ``head`` (the first bytes of a file) starts with, if any."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _check_size(name: str, size: int, operation: Operation) -> None:
    limit = _LIMITS[operation].max_bytes
    if size == 0:
        raise InvalidInputError(f"{name}: the file is empty")
    if size > limit:
        raise InvalidInputError(
            f"{name}: {size / _MB:.1f} MB is over the {limit // _MB} MB limit"
            f" for {_OPERATION_WORDS[operation]}"
        )


def _checked(name: str, info: ImageInfo, operation: Operation) -> ImageInfo:
    limits = _LIMITS[operation]
    words = _OPERATION_WORDS[operation]
    size = f"{info.width}x{info.height}"
    if info.width > limits.max_side or info.height > limits.max_side:
        raise InvalidInputError(
            f"{name}: {size} has a side over {limits.max_side} px, the limit for {words}"
        )
    if info.width < limits.min_side or info.height < limits.min_side:
        raise InvalidInputError(
            f"{name}: {size} has a side under {limits.min_side} px, the minimum for {words}"
        )
    if info.width * info.height > limits.max_pixels:
        raise InvalidInputError(
            f"{name}: {size} is {info.width * info.height / _MP:.1f} MP, over the"
            f" {limits.max_pixels // _MP} MP limit for {words}"
        )
    return info


# A reader answers "the bytes at this offset, at most n of them": files seek, bytes slice.
def _file_reader(handle: IO[bytes]) -> Callable[[int, int], bytes]:
    def read(offset: int, n: int) -> bytes:
        handle.seek(offset)
        return handle.read(n)

    return read


def _bytes_reader(data: bytes) -> Callable[[int, int], bytes]:
    return lambda offset, n: data[offset : offset + n]


def _sniff(name: str, read: Callable[[int, int], bytes]) -> tuple[ImageFormat, int, int]:
    head = read(0, HEAD_BYTES)
    fmt = sniff_format(head)
    if fmt is None:
        raise InvalidInputError(f"{name}: not a PNG, JPEG or WEBP image")
    if fmt == "PNG":
        width, height = _png_size(name, head)
    elif fmt == "JPEG":
        width, height = _jpeg_size(name, read)
    else:
        width, height = _webp_size(name, head)
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{name}: the {fmt} header gives an empty {width}x{height} image")
    return fmt, width, height


def _truncated(name: str, fmt: str) -> InvalidInputError:
    return InvalidInputError(f"{name}: truncated or damaged {fmt} header")


def _png_size(name: str, head: bytes) -> tuple[int, int]:
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise _truncated(name, "PNG")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _jpeg_size(name: str, read: Callable[[int, int], bytes]) -> tuple[int, int]:
    offset = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        marker = read(offset, 4)
        if len(marker) < 4 or marker[0] != 0xFF:
            break
        kind = marker[1]
        if kind == 0xFF:  # fill byte before a marker
            offset += 1
            continue
        if kind in (0x01, *range(0xD0, 0xD8)):  # markers without a length field
            offset += 2
            continue
        (length,) = struct.unpack(">H", marker[2:4])
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) share the range.
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            frame = read(offset + 5, 4)
            if len(frame) < 4:
                break
            height, width = struct.unpack(">HH", frame)
            return int(width), int(height)
        if kind in (0xD9, 0xDA) or length < 2:  # end of image, or scan data before a frame
            break
        offset += 2 + length
    raise _truncated(name, "JPEG")


def _webp_size(name: str, head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        (bits,) = struct.unpack("<I", head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    raise _truncated(name, "WEBP")

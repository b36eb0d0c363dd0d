"""Local image files: uploads, safe names and atomic downloads (headers: ``_images``)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import IO, TYPE_CHECKING

import anyio
import anyio.to_thread
import httpx

from ._errors import (
    APIConnectionError,
    APITimeoutError,
    ProtocolError,
)
from ._escape import loggable_url
from ._images import HEAD_BYTES, MIME_TYPES, sniff_format
from ._limits import IMAGE_FORMATS, ImageFormat
from ._transport import USER_AGENT, AttemptClock, Transport, url_problem
from ._validate import integer, positive

if TYPE_CHECKING:
    from ._identity import InputIdentity

logger = logging.getLogger("recraft_async")

UPLOAD_PATH = "recraft-async"
_UPLOAD_ENDPOINT = "/api/file-stream-upload"
_MAX_NAME_CHARS = 120
_CHUNK = 64 * 1024
# A download in progress: hidden, beside its final name; a killed run may leave one.
PART_PREFIX, PART_SUFFIX = ".recraft-", ".part"
# 10**18 bytes is far beyond any download; longer Content-Length strings are not numbers.
_MAX_LENGTH_DIGITS = 18
# A download must be whole within this many seconds (from the moment a connection is in
# hand): storage that trickles a byte now and then never trips a per-read timeout.
DEFAULT_DOWNLOAD_DEADLINE = 300.0
# A result image is a few MB; far more is a broken or hostile storage answer.
DEFAULT_MAX_DOWNLOAD_BYTES = 200_000_000
# Result storage redirects once or twice at most; a longer chain is a loop or a trap.
MAX_DOWNLOAD_REDIRECTS = 5
# How result storage says "not (or no longer) for you": an expired or revoked signed link,
# or a file it has moved. KIE's download-url endpoint makes a fresh link for such a file.
REFUSED_STATUSES = frozenset({401, 403, 404, 410})


class HostRefusedError(ProtocolError):
    """The result host refused the URL with one of REFUSED_STATUSES: a fresh link may work."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, body=None)
        self.status = status
        """The HTTP status the host answered."""


async def upload_image(
    transport: Transport, upload_base_url: str, data: bytes, filename: str, identity: InputIdentity
) -> str:
    """Upload image bytes (``identity``: their input's) to KIE's store; the ``downloadUrl``."""
    safe = safe_output_name(filename, "upload", _extension_of(filename, data))
    mime = MIME_TYPES.get(sniff_format(data[:HEAD_BYTES]) or "", "application/octet-stream")
    answer, body = await transport.request_json(
        "POST",
        upload_base_url.rstrip("/") + _UPLOAD_ENDPOINT,
        files={"file": (safe, data, mime)},
        # KIE replaces a file of the same path and name: a folder named by the content
        # keeps two images called IMG_0001.png apart, and the same image shares one.
        data={"uploadPath": upload_path(identity), "fileName": safe},
        # A repeated upload stores a second copy and costs nothing: safe to retry.
        idempotent=True,
    )
    url: object = answer.get("downloadUrl") if isinstance(answer, dict) else None
    if not isinstance(url, str) or url_problem(url) is not None:
        raise ProtocolError("the upload answer has no usable data.downloadUrl", body=body)
    return url


def upload_path(identity: InputIdentity) -> str:
    """The folder an image is uploaded into: unique to its content (hashed once, by its job)."""
    assert identity.content is not None  # noqa: S101 - only a local image is uploaded
    return f"{UPLOAD_PATH}/{identity.content[:32]}"


def _extension_of(filename: str, data: bytes) -> str:
    fmt = sniff_format(data[:HEAD_BYTES])
    if fmt is not None:
        return IMAGE_FORMATS[fmt].extension
    return filename.rpartition(".")[2] if "." in filename else "bin"


_UNSAFE = re.compile(r"[^\w.\- ]+")
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com\d|lpt\d)$", re.IGNORECASE)


def _clean_component(text: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\.{2,}", ".", text)
    text = text.strip(" .")[:limit].strip(" .")
    if _WINDOWS_RESERVED.match(text):
        text = "_" + text
    return text


def safe_output_name(hint: str | None, task_id: str, extension: str) -> str:
    """Make a file name from an input's name (else the task id) and ``extension``; never a path."""
    ext = re.sub(r"[^a-z0-9]", "", extension.lower().lstrip("."))[:8] or "png"
    stem = ""
    if hint:
        # The last component of a path or URL, minus query, fragment and old extension.
        last = re.split(r"[/\\]", hint.split("?", 1)[0].split("#", 1)[0].rstrip("/\\"))[-1]
        last = last.lstrip(". ")  # a leading dot would hide the file; "..." is no extension
        stem = _clean_component(last.rsplit(".", 1)[0] if "." in last else last, 100)
    if not stem:
        stem = _clean_component(task_id, 100)
    return f"{stem or 'image'}.{ext}"


async def download_to(
    http: httpx.AsyncClient,
    url: str,
    dest_dir: Path,
    name: str,
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
    part_tag: str = "",
) -> Path:
    """Stream ``url`` into ``dest_dir/name`` atomically; return the path written (or reused).

    At most ``max_bytes`` (decoded) within ``deadline`` seconds, else a ProtocolError or an
    APITimeoutError; at most MAX_DOWNLOAD_REDIRECTS redirects, each to an http(s) URL. A
    host that refuses (REFUSED_STATUSES) is a HostRefusedError; local trouble an OSError.
    ``part_tag`` goes into the name of the partial file (see ``part_glob``).
    """
    integer("max_bytes", max_bytes, minimum=1)
    positive("deadline", deadline)
    root = Path(await anyio.Path(dest_dir).resolve())
    await anyio.Path(root).mkdir(parents=True, exist_ok=True)
    wanted_ext = name.rpartition(".")[2] if "." in name else "png"
    stem, _, ext = safe_output_name(name, "download", wanted_ext).rpartition(".")
    fd, tmp_name = await anyio.to_thread.run_sync(_make_temp, root, part_tag)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            digest, fmt = await _stream_into(
                http, url, anyio.wrap_file(raw), max_bytes, AttemptClock(float(deadline))
            )
            await anyio.to_thread.run_sync(_flush_and_sync, raw)
        if fmt is not None:
            ext = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt]
        return await anyio.to_thread.run_sync(_place, tmp, root, stem, ext, digest)
    finally:
        # Runs on failure and on cancellation too; one unlink is cheap enough to do inline.
        tmp.unlink(missing_ok=True)  # noqa: ASYNC240


def part_glob(part_tag: str) -> str:
    """The glob of the partial downloads ``download_to`` makes with ``part_tag``."""
    return f"{_part_prefix(part_tag)}*{PART_SUFFIX}"


def _part_prefix(part_tag: str) -> str:
    # mkstemp's random part has no "-", so one tag's glob never matches another's files.
    return f"{PART_PREFIX}{part_tag}-" if part_tag else PART_PREFIX


def _make_temp(root: Path, part_tag: str) -> tuple[int, str]:
    # Hidden and in the destination folder, so the final rename never crosses file systems.
    fd, name = tempfile.mkstemp(dir=root, prefix=_part_prefix(part_tag), suffix=PART_SUFFIX)
    if hasattr(os, "fchmod"):  # not on Windows before 3.13
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would be a surprise on an output file
    return fd, name


def _flush_and_sync(raw: IO[bytes]) -> None:
    raw.flush()
    os.fsync(raw.fileno())


async def _open(http: httpx.AsyncClient, url: str, clock: AttemptClock) -> httpx.Response:
    """The streamed answer at ``url``, redirects followed here so that each hop is checked."""
    # Result URLs and their redirects come from the service and third-party storage: a URL
    # that httpx accepts can still fail below it with OverflowError (port 99999) or
    # UnicodeError (a 64-byte DNS label, on trio). Checked first, it is a ProtocolError.
    problem = url_problem(url)
    if problem is not None:
        raise ProtocolError(f"download of {loggable_url(url)}: {problem}", body=None)
    try:
        # The trace starts the clock once a connection is in hand; redirects carry it on.
        request = http.build_request("GET", url, extensions={"trace": clock.trace})
    except httpx.InvalidURL as exc:
        raise ProtocolError(
            f"download of {loggable_url(url)}: invalid URL ({exc})", body=None
        ) from exc
    # Result URLs are third-party storage: our API key must never travel there (nor on
    # redirects: httpx copies these headers, which no longer have it).
    request.headers.pop("Authorization", None)
    # Set on the request, not the client: a caller's client keeps its own defaults.
    request.headers["User-Agent"] = USER_AGENT
    logger.debug("downloading %s", loggable_url(url))
    hops = min(http.max_redirects, MAX_DOWNLOAD_REDIRECTS)
    for _ in range(hops + 1):
        try:
            response = await http.send(request, stream=True, auth=None, follow_redirects=False)
        except httpx.InvalidURL as exc:
            # httpx builds the next request as it answers: a Location such as "data:..."
            # (a scheme without a host) fails there, before url_problem can see it.
            raise ProtocolError(
                f"download of {loggable_url(url)} redirects to a bad URL: {exc}", body=None
            ) from exc
        clock.start()  # for transports that report no progress
        following = response.next_request
        if following is None:
            return response
        await response.aclose()
        problem = url_problem(following.url)
        if problem is not None:
            raise ProtocolError(
                f"download of {loggable_url(url)} redirects to a bad URL: {problem}", body=None
            )
        request = following
    # A redirect loop is the storage's broken answer, not a network failure.
    raise ProtocolError(
        f"download of {loggable_url(url)} redirects more than {hops} times", body=None
    )


async def _stream_into(
    http: httpx.AsyncClient,
    url: str,
    out: anyio.AsyncFile[bytes],
    max_bytes: int,
    clock: AttemptClock,
) -> tuple[str, ImageFormat | None]:
    digest = hashlib.sha256()
    head = b""
    total = 0
    kind: str | None = None
    with clock.scope:
        try:
            response = await _open(http, url, clock)
            try:
                kind = _check_response(response, url, max_bytes)
                async for chunk in response.aiter_bytes(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ProtocolError(
                            f"download of {loggable_url(url)} exceeds {max_bytes} bytes", body=None
                        )
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    await out.write(chunk)
            finally:
                with anyio.CancelScope(shield=True):
                    await response.aclose()
        except httpx.TimeoutException as exc:
            raise APITimeoutError(f"download of {loggable_url(url)} timed out") from exc
        except httpx.DecodingError as exc:
            # The storage answered, but its body does not decode (corrupt gzip): a bad
            # answer, like a truncated one, not a network failure.
            raise ProtocolError(
                f"download of {loggable_url(url)} does not decode: {exc}", body=None
            ) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"download of {loggable_url(url)} failed: {type(exc).__name__}"
            ) from exc
    if kind is None or clock.expired:
        raise APITimeoutError(
            f"download of {loggable_url(url)} did not finish within {clock.seconds:g} s"
        )
    fmt = sniff_format(head)
    if total == 0 or (fmt is None and not kind.startswith("image/")):
        raise ProtocolError(
            f"download of {loggable_url(url)} is not a PNG, JPEG or WEBP image", body=None
        )
    length = _content_length(response)
    encoded = "Content-Encoding" in response.headers  # then the length counts encoded bytes
    if length is not None and length != total and not encoded:
        raise ProtocolError(
            f"download of {loggable_url(url)} ended after {total} of {length} bytes", body=None
        )
    return digest.hexdigest(), fmt


def _check_response(response: httpx.Response, url: str, max_bytes: int) -> str:
    if response.status_code in REFUSED_STATUSES:
        raise HostRefusedError(
            f"download of {loggable_url(url)} answered HTTP {response.status_code}",
            status=response.status_code,
        )
    if response.status_code != 200:
        raise ProtocolError(
            f"download of {loggable_url(url)} answered HTTP {response.status_code}", body=None
        )
    length = _content_length(response)
    if length is not None and length > max_bytes:
        raise ProtocolError(
            f"download of {loggable_url(url)} is {length} bytes, over {max_bytes}", body=None
        )
    kind = str(response.headers.get("Content-Type", "")).split(";")[0].strip().lower()
    if not (kind.startswith("image/") or kind in ("", "application/octet-stream")):
        raise ProtocolError(f"download of {loggable_url(url)} is {kind}, not an image", body=None)
    return kind


def _content_length(response: httpx.Response) -> int | None:
    length = response.headers.get("Content-Length", "").strip()
    # ASCII digits of sane length only: "²" passes isdigit() but not int(), and int() of
    # thousands of digits raises ValueError. Anything else is no usable length.
    if not (length.isascii() and length.isdigit()) or len(length) > _MAX_LENGTH_DIGITS:
        return None
    return int(length)


def _place(tmp: Path, root: Path, stem: str, ext: str, digest: str) -> Path:
    """Move the finished temp file to the first free ``stem[-n].ext``, or reuse an identical one."""
    for n in range(10_000):
        target = root / (f"{stem}.{ext}" if n == 0 else f"{stem}-{n}.{ext}")
        # The name is sanitised already; this is the last line of defence all the same.
        if Path(os.path.normpath(target)).parent != root:
            raise ProtocolError(f"refusing to write {target} outside {root}", body=None)
        try:
            # link() fails if the name is taken, so two downloads can never clobber each other.
            os.link(tmp, target)
        except FileExistsError:
            if not target.is_symlink() and target.is_file() and _sha256_file(target) == digest:
                return target  # the same bytes: this job was downloaded before
            continue
        except OSError:
            # File systems without hard links: check, then rename (a narrow race, same process).
            if target.exists() or target.is_symlink():
                continue
            tmp.replace(target)
        return target
    raise ProtocolError(f"no free file name for {stem}.{ext} in {root}", body=None)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

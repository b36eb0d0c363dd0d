from __future__ import annotations

import hashlib
import io
import struct
from typing import TYPE_CHECKING

import anyio
import httpx
import pytest
import respx
from conftest import image_bytes
from PIL import Image

import recraft_async as ra
from recraft_async._core._files import download_to, safe_output_name, upload_image
from recraft_async._core._identity import identify
from recraft_async._core._images import ImageInfo, probe_image_bytes, probe_image_file
from recraft_async._core._models import Operation
from recraft_async._core._redact import Secret
from recraft_async._core._transport import Transport
from recraft_async.errors import (
    APIConnectionError,
    InvalidInputError,
    ProtocolError,
)

if TYPE_CHECKING:
    from pathlib import Path

UP = Operation.UPSCALE
RB = Operation.REMOVE_BACKGROUND


def _identity(data):
    """The identity a job computes for these bytes (names the upload folder)."""
    return identify(Operation.UPSCALE, data, {})


def png_header(width: int, height: int) -> bytes:
    """Just the PNG signature and IHDR, enough for the probe."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"


# --- probing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "save", "expected"),
    [
        ("PNG", {}, "PNG"),
        ("JPEG", {"quality": 80}, "JPEG"),
        ("JPEG", {"progressive": True}, "JPEG"),
        ("WEBP", {"quality": 80}, "WEBP"),
        ("WEBP", {"lossless": True}, "WEBP"),
    ],
)
def test_probe_reads_real_headers(tmp_path, fmt, save, expected):
    """Format and size come from the header of files Pillow wrote."""
    data = image_bytes((300, 257), fmt=fmt, **save)
    path = tmp_path / "x.img"
    path.write_bytes(data)
    assert probe_image_file(path, UP) == ImageInfo(expected, 300, 257)
    assert probe_image_bytes(data, RB, name="x") == ImageInfo(expected, 300, 257)


def test_probe_webp_extended_header():
    """A WEBP with alpha uses the VP8X chunk, which carries the canvas size."""
    buffer = io.BytesIO()
    Image.new("RGBA", (321, 260), (1, 2, 3, 100)).save(buffer, "WEBP")
    assert probe_image_bytes(buffer.getvalue(), UP, name="a").width == 321


def test_probe_jpeg_skips_large_metadata(tmp_path):
    """The frame header is found behind a big EXIF segment and an ICC profile."""
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription
    data = image_bytes((400, 300), fmt="JPEG", exif=exif.tobytes(), icc_profile=b"\0" * 30_000)
    path = tmp_path / "meta.jpg"
    path.write_bytes(data)
    info = probe_image_file(path, UP)
    assert (info.width, info.height) == (400, 300)


def test_probe_rejects_other_formats(tmp_path):
    """A GIF is refused with the file's name and the accepted formats."""
    path = tmp_path / "photo.gif"
    Image.new("RGB", (10, 10)).save(path, "GIF")
    with pytest.raises(InvalidInputError, match=r"photo\.gif: not a PNG, JPEG or WEBP image"):
        probe_image_file(path, UP)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\0\0",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"\xff\xd8\xff\xe1\xff\xff" + b"\0" * 10,
        png_header(0, 10),
    ],
)
def test_probe_rejects_truncated_headers(data):
    """Headers cut short (or describing an empty image) are refused, never crash."""
    with pytest.raises(InvalidInputError, match=r"^cut: "):
        probe_image_bytes(data, UP, name="cut")


def test_probe_missing_and_unreadable(tmp_path):
    """Missing files and folders are refused with a clear reason."""
    with pytest.raises(InvalidInputError, match="no such file"):
        probe_image_file(tmp_path / "nope.png", UP)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        probe_image_file(tmp_path, UP)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty"):
        probe_image_file(empty, UP)


def test_probe_size_limits_per_operation(tmp_path):
    """12.3 MB is too big for upscale (10 MB); 6 MB is too big for remove background (5 MB)."""
    big = tmp_path / "big.png"
    big.write_bytes(png_header(100, 100) + b"\0" * (12_300_000 - 33))
    with pytest.raises(InvalidInputError, match=r"big\.png: 12\.3 MB is over the 10 MB limit"):
        probe_image_file(big, UP)
    mid = png_header(300, 300) + b"\0" * 6_000_000
    assert probe_image_bytes(mid, UP, name="mid").format == "PNG"
    with pytest.raises(InvalidInputError, match="over the 5 MB limit for remove background"):
        probe_image_bytes(mid, RB, name="mid")


@pytest.mark.parametrize(
    ("size", "operation", "message"),
    [
        ((4097, 10), UP, "side over 4096"),
        ((4000, 4001), UP, "over the 16 MP limit"),
        ((255, 1000), RB, "under 256"),
        ((4096, 4096), RB, "over the 16 MP limit"),
    ],
)
def test_probe_dimension_limits(size, operation, message):
    """Each side and pixel-count limit is checked from the header alone."""
    with pytest.raises(InvalidInputError, match=message):
        probe_image_bytes(png_header(*size), operation, name="p")


def test_probe_dimension_edges_pass():
    """The limits themselves are allowed."""
    assert probe_image_bytes(png_header(4096, 3900), UP, name="p").width == 4096
    assert probe_image_bytes(png_header(256, 256), RB, name="p").height == 256
    assert probe_image_bytes(png_header(32, 32), UP, name="p").width == 32


def test_probe_refuses_upscale_sides_under_32():
    """Crisp upscale takes sides of 32 px and more (Recraft's published minimum)."""
    with pytest.raises(ra.InvalidInputError, match="under 32 px"):
        probe_image_bytes(png_header(31, 400), UP, name="p")


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("photo.jpg", "photo.png"),
        ("/some/dir/photo.final.jpeg", "photo.final.png"),
        ("https://cdn.example/a/b/out%20x.webp?sig=1#frag", "out_20x.png"),
        ("../../etc/passwd", "passwd.png"),
        ("..\\..\\windows\\evil.exe", "evil.png"),
        ("..", "task-1.png"),
        ("...hidden", "hidden.png"),
        (".bashrc", "bashrc.png"),
        ("a\x00b\nc\x1b[31m.png", "abc_31m.png"),
        ("CON.jpg", "_CON.png"),
        ("", "task-1.png"),
        (None, "task-1.png"),
        ("/", "task-1.png"),
        ("résumé.jpg", "résumé.png"),
    ],
)
def test_safe_output_name(hint, expected):
    """Hostile and odd hints become one plain file name."""
    assert safe_output_name(hint, "task-1", "png") == expected


def test_safe_output_name_bounds_length_and_extension():
    """Long names are cut, odd extensions cleaned, and nothing is ever empty."""
    name = safe_output_name("x" * 5000 + ".jpg", "t", "PNG")
    assert name.endswith(".png")
    assert len(name) <= 120
    assert safe_output_name(None, "../..", "../") == "_.png"
    assert safe_output_name(None, "t/../x", ".JPG") == "t_._x.jpg"
    assert safe_output_name("\x00\x01", "", "") == "image.png"


# --- upload ---------------------------------------------------------------------------


class FakeTransport(Transport):
    """Records request_json calls and answers with a canned envelope data value."""

    def __init__(self, answer):  # no super().__init__(): nothing is ever sent
        self.answer = answer
        self.calls = []

    async def request_json(self, method, url, **kwargs):
        """Record the call; answer the canned value."""
        self.calls.append((method, url, kwargs))
        return self.answer, f"raw:{self.answer!r}"


@pytest.mark.anyio
async def test_upload_image_posts_multipart_and_returns_url():
    """The upload goes to the stream endpoint and yields data.downloadUrl."""
    transport = FakeTransport({"downloadUrl": "https://files.test/u/a.png", "fileSize": 3})
    data = image_bytes()
    url = await upload_image(transport, "http://127.0.0.1:9/", data, "../a b.png", _identity(data))
    assert url == "https://files.test/u/a.png"
    ((method, target, kwargs),) = transport.calls
    assert (method, target) == ("POST", "http://127.0.0.1:9/api/file-stream-upload")
    folder = hashlib.sha256(data).hexdigest()[:32]
    assert kwargs["data"] == {"uploadPath": f"recraft-async/{folder}", "fileName": "a b.png"}
    assert kwargs["files"]["file"] == ("a b.png", data, "image/png")
    assert kwargs["idempotent"] is True


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [None, {}, {"downloadUrl": 5}, {"downloadUrl": "ftp://x"}, []])
async def test_upload_image_bad_answer_is_protocol_error(answer):
    """A missing or ill-typed downloadUrl is a ProtocolError carrying the body."""
    with pytest.raises(ProtocolError) as info:
        await upload_image(
            FakeTransport(answer),
            "http://127.0.0.1:9",
            b"\xff\xd8\xff",
            "a.jpg",
            _identity(b"\xff\xd8\xff"),
        )
    assert info.value.body == f"raw:{answer!r}"


# --- downloads ------------------------------------------------------------------------

RESULT = "https://results.test/r/out.png"


def files_in(folder: Path) -> list[str]:
    """Every name in a folder, hidden temp files included."""
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.anyio
@respx.mock
async def test_download_writes_atomically_without_auth(tmp_path):
    """The file appears complete under its name and the API key is not sent."""
    data = image_bytes()
    route = respx.get(RESULT).respond(200, content=data, headers={"Content-Type": "image/png"})
    headers = {"Authorization": "Bearer secret-key"}
    async with httpx.AsyncClient(headers=headers, auth=("u", "p")) as http:
        path = await download_to(http, RESULT, tmp_path / "out", "photo.png")
    assert path == (tmp_path / "out" / "photo.png").resolve()
    assert path.read_bytes() == data
    assert "authorization" not in route.calls.last.request.headers
    assert files_in(tmp_path / "out") == ["photo.png"]


@pytest.mark.anyio
@respx.mock
async def test_download_uses_real_extension_and_octet_stream_magic(tmp_path):
    """An octet-stream body is accepted when it is an image; the extension follows the bytes."""
    data = image_bytes(fmt="JPEG")
    respx.get(RESULT).respond(
        200, content=data, headers={"Content-Type": "application/octet-stream"}
    )
    async with httpx.AsyncClient() as http:
        path = await download_to(http, RESULT, tmp_path, "photo.png")
    assert path.name == "photo.jpg"


@pytest.mark.anyio
@respx.mock
async def test_download_idempotent_and_no_clobber(tmp_path):
    """Same bytes reuse the file; different bytes get a -1, -2 suffix."""
    first, second = image_bytes((10, 10)), image_bytes((11, 11))
    route = respx.get(RESULT)
    async with httpx.AsyncClient() as http:
        route.respond(200, content=first, headers={"Content-Type": "image/png"})
        a = await download_to(http, RESULT, tmp_path, "x.png")
        again = await download_to(http, RESULT, tmp_path, "x.png")
        route.respond(200, content=second, headers={"Content-Type": "image/png"})
        b = await download_to(http, RESULT, tmp_path, "x.png")
        route.respond(200, content=image_bytes((12, 12)), headers={"Content-Type": "image/png"})
        c = await download_to(http, RESULT, tmp_path, "x.png")
    assert (a.name, again.name, b.name, c.name) == ("x.png", "x.png", "x-1.png", "x-2.png")
    assert a.read_bytes() == first
    assert b.read_bytes() == second
    assert files_in(tmp_path) == ["x-1.png", "x-2.png", "x.png"]


@pytest.mark.anyio
@respx.mock
@pytest.mark.parametrize("name", ["../../escape.png", "/etc/escape.png", "..", "a/../../b.png"])
async def test_download_never_writes_outside(tmp_path, name):
    """Hostile names land inside the destination folder."""
    respx.get(RESULT).respond(200, content=image_bytes(), headers={"Content-Type": "image/png"})
    dest = tmp_path / "dest"
    async with httpx.AsyncClient() as http:
        path = await download_to(http, RESULT, dest, name)
    assert path.parent == dest.resolve()
    assert files_in(tmp_path) == ["dest"]


@pytest.mark.anyio
@respx.mock
@pytest.mark.parametrize(
    ("response", "message"),
    [
        (httpx.Response(404, content=b"gone"), "HTTP 404"),
        (
            httpx.Response(200, content=b"<html>", headers={"Content-Type": "text/html"}),
            "text/html",
        ),
        (httpx.Response(200, content=b"just bytes"), "not a PNG"),
        (httpx.Response(200, content=b"", headers={"Content-Type": "image/png"}), "not a PNG"),
        (httpx.Response(200, stream=httpx.ByteStream(b"\x89PNG" + b"\0" * 200)), "exceeds 100"),
        (
            httpx.Response(200, content=b"x", headers={"Content-Length": "1000"}),
            "1000 bytes, over 100",
        ),
    ],
)
async def test_download_rejections_leave_nothing(tmp_path, response, message):
    """Wrong status, non-images and oversized bodies raise and leave no file at all."""
    respx.get(RESULT).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProtocolError, match=message):
            await download_to(http, RESULT, tmp_path, "x.png", max_bytes=100)
    assert files_in(tmp_path) == []


class _Stream(httpx.AsyncByteStream):
    """A body that sends some bytes, then fails or hangs."""

    def __init__(self, head: bytes, *, hang: bool) -> None:
        self.head = head
        self.hang = hang

    async def __aiter__(self):
        yield self.head
        if self.hang:
            await anyio.sleep_forever()
        raise httpx.ReadError("connection reset")


@pytest.mark.anyio
@respx.mock
async def test_download_truncated_stream_leaves_no_partial_file(tmp_path):
    """A connection that dies mid-body raises APIConnectionError and leaves no file."""
    body = _Stream(image_bytes()[:50], hang=False)
    respx.get(RESULT).mock(return_value=httpx.Response(200, stream=body))
    async with httpx.AsyncClient() as http:
        with pytest.raises(APIConnectionError):
            await download_to(http, RESULT, tmp_path, "x.png")
    assert files_in(tmp_path) == []


@pytest.mark.anyio
@respx.mock
async def test_download_short_body_against_content_length(tmp_path):
    """A body shorter than its Content-Length is refused."""
    headers = {"Content-Type": "image/png", "Content-Length": "5000"}
    body = httpx.ByteStream(image_bytes()[:50])
    respx.get(RESULT).mock(return_value=httpx.Response(200, headers=headers, stream=body))
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProtocolError, match="ended after 50 of 5000"):
            await download_to(http, RESULT, tmp_path, "x.png")
    assert files_in(tmp_path) == []


@pytest.mark.anyio
@respx.mock
async def test_download_cancelled_midway_leaves_no_temp_file(tmp_path):
    """Cancelling a download while bytes arrive removes its temp file."""
    body = _Stream(image_bytes()[:50], hang=True)
    respx.get(RESULT).mock(return_value=httpx.Response(200, stream=body))
    async with httpx.AsyncClient() as http:
        with anyio.move_on_after(0.2) as scope:
            await download_to(http, RESULT, tmp_path, "x.png")
    assert scope.cancelled_caught
    assert files_in(tmp_path) == []


@pytest.mark.anyio
@respx.mock
async def test_upload_image_through_the_real_transport():
    """With the client's transport: auth header, multipart fields, envelope decoded."""
    answer = {
        "success": True,
        "code": 200,
        "msg": "ok",
        "data": {"fileName": "a.png", "downloadUrl": "https://files.test/u/a.png"},
    }
    route = respx.post("http://127.0.0.1:9/api/file-stream-upload").respond(200, json=answer)
    data = image_bytes()
    async with httpx.AsyncClient() as http:
        transport = Transport(
            http, base_url="http://127.0.0.1:9", api_key=Secret("k-1"), max_retries=0, timeout=5
        )
        url = await upload_image(transport, "http://127.0.0.1:9", data, "a.png", _identity(data))
        route.respond(200, json={"code": 200, "msg": "ok", "data": {"fileName": "a.png"}})
        with pytest.raises(ProtocolError) as info:
            await upload_image(transport, "http://127.0.0.1:9", data, "a.png", _identity(data))
    assert url == "https://files.test/u/a.png"
    request = route.calls[0].request
    assert request.headers["authorization"] == "Bearer k-1"
    body = request.content
    assert b'name="uploadPath"\r\n\r\nrecraft-async' in body
    assert b'name="fileName"\r\n\r\na.png' in body
    assert b'name="file"; filename="a.png"' in body
    assert "fileName" in (info.value.body or "")


def test_place_refuses_a_name_outside_the_folder(tmp_path):
    """The final check holds even if an unsanitised stem ever reached it."""
    from recraft_async._core._files import _place  # noqa: PLC0415 - a private last line of defence

    tmp = tmp_path / "t.part"
    tmp.write_bytes(b"x")
    root = tmp_path / "out"
    root.mkdir()
    with pytest.raises(ProtocolError, match="outside"):
        _place(tmp, root, "../escape", "png", "0" * 64)
    assert not (tmp_path / "escape.png").exists()

"""Hostile answers from the service or the result storage: always a RecraftError, never a crash."""

from __future__ import annotations

import json

import httpx
import pytest

import recraft_async as ra
from recraft_async._core._dialects import DIALECTS, parse_task_id
from recraft_async._core._files import download_to, upload_image
from recraft_async._core._identity import identify
from recraft_async._core._models import Operation
from recraft_async._core._redact import Secret
from recraft_async._core._transport import Transport, decode_envelope
from recraft_async.errors import (
    APIConnectionError,
    ProtocolError,
    ServerError,
    WebhookVerificationError,
)

DEEP = "[" * 100_000
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MARKET = {"taskId": "t1", "state": "waiting"}


def _identity(data):
    """The identity a job computes for these bytes (names the upload folder)."""
    return identify(Operation.UPSCALE, data, {})


def answer(body, status=200):
    """An httpx response with ``body`` as its JSON text."""
    return httpx.Response(status, content=json.dumps(body).encode())


# --- the envelope ---------------------------------------------------------------------


def test_deeply_nested_answer_is_protocol_error():
    """JSON nested past the decoder's depth is a ProtocolError carrying the raw body."""
    with pytest.raises(ProtocolError) as info:
        decode_envelope(httpx.Response(200, content=DEEP.encode()))
    assert info.value.body == DEEP


def test_deeply_nested_error_answer_keeps_its_status():
    """An unreadable error body still maps by its HTTP status."""
    with pytest.raises(ServerError) as info:
        decode_envelope(httpx.Response(500, content=DEEP.encode()))
    assert info.value.http_status == 500


@pytest.mark.parametrize("code", ["²", "٢٠٠", "1" * 5000, " 2" + "0" * 4999])
def test_unconvertible_code_is_protocol_error(code):
    """A code that passes str.isdigit() but not int() (or is too long) is no code."""
    with pytest.raises(ProtocolError, match="code or data") as info:
        decode_envelope(answer({"code": code, "data": {"taskId": "t1"}}))
    assert info.value.body is not None


@pytest.mark.parametrize("charset", ["idna", "punycode", "hex", "rot13", "zlib", "undefined"])
def test_charset_that_does_not_decode_falls_back_to_utf8(charset):
    """A Content-Type charset whose codec raises (httpx would run it) reads as UTF-8."""
    headers = {"Content-Type": f"application/json; charset={charset}"}
    content = b'{"code": 200, "msg": "ok", "data": {"taskId": "t\xc3\xa9"}}'
    data, _raw = decode_envelope(httpx.Response(200, content=content, headers=headers))
    assert data == {"taskId": "t\u00e9"}


def test_nested_message_is_not_the_message():
    """A msg that is an object is skipped for the next message, not printed."""
    with pytest.raises(ServerError, match="boom"):
        decode_envelope(answer({"code": 500, "msg": {"a": [1]}, "message": "boom"}))


# --- records and submits --------------------------------------------------------------


@pytest.mark.parametrize("moment", [10**400, -(10**400), "1e400", "nan", 1e308])
def test_impossible_times_are_none(moment):
    """A createTime or completeTime beyond float or datetime range reads as unknown."""
    data = {**MARKET, "createTime": moment, "completeTime": moment}
    record = DIALECTS["market"].parse_record(data, "raw")
    assert record.created_at is None
    assert record.completed_at is None


def test_deeply_nested_result_json_is_protocol_error():
    """A resultJson string nested past the decoder's depth is a ProtocolError."""
    data = {**MARKET, "state": "success", "resultJson": DEEP}
    with pytest.raises(ProtocolError, match="resultJson") as info:
        DIALECTS["market"].parse_record(data, "raw")
    assert info.value.body == "raw"


@pytest.mark.parametrize("result_json", ['"https://x.test/a.png"', "[1]", "null", "5"])
def test_result_json_that_is_no_object_gives_no_urls(result_json):
    """A resultJson that is not an object yields no URL: a success without one is refused."""
    failed = DIALECTS["market"].parse_record(
        {**MARKET, "state": "fail", "resultJson": result_json}, "raw"
    )
    assert failed.result_urls == ()
    with pytest.raises(ProtocolError, match="no result URL"):
        DIALECTS["market"].parse_record(
            {**MARKET, "state": "success", "resultJson": result_json}, "raw"
        )


@pytest.mark.parametrize("data", [["taskId"], "taskId", "xtaskIdx", 5, None])
def test_submit_data_that_is_no_object_is_protocol_error(data):
    """A submit answer's data that is not an object has no taskId, whatever ``in`` says."""
    with pytest.raises(ProtocolError, match="taskId"):
        parse_task_id(data, "raw")


# --- callbacks ------------------------------------------------------------------------


def test_deeply_nested_callback_is_protocol_error():
    """A callback body nested past the decoder's depth is a ProtocolError."""
    with pytest.raises(ProtocolError, match="not JSON"):
        ra.parse_callback(DEEP)


@pytest.mark.parametrize(
    "body",
    [
        {"taskId": [1]},
        {"taskId": {"a": 1}},
        {"data": {"task_id": [], "taskId": "t1"}},
        {"taskId": 5},
    ],
)
def test_callback_task_id_of_the_wrong_type_is_protocol_error(body):
    """A task id that is a list or object (unhashable) is a ProtocolError, not a TypeError."""
    with pytest.raises(ProtocolError, match="task id"):
        ra.parse_callback(json.dumps(body))


def test_callback_signature_with_a_lone_surrogate_does_not_verify():
    """A signature header that cannot even be encoded simply does not match."""
    headers = {"X-Webhook-Timestamp": "1000", "X-Webhook-Signature": "\ud800"}
    with pytest.raises(WebhookVerificationError, match="does not match"):
        ra.parse_callback('{"taskId": "t1"}', headers, webhook_key="k", now=1000.0)


# --- downloads ------------------------------------------------------------------------


async def download(url, handler, tmp_path, **client):
    """Download ``url`` through a MockTransport answering with ``handler``."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), **client) as http:
        return await download_to(http, url, tmp_path, "out.png")


def image(_request):
    """A 200 answer with PNG bytes."""
    return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/x.png",
        "http://results.test/x\x00.png",
        "http://results.test/x\n.png",
        "http://re\x7fsults.test/x.png",
        "http://" + "a" * 64 + ".test/x.png",
        "http://a..test/x.png",
        "http://[::1/x.png",
        "ftp://results.test/x.png",
        "",
    ],
)
async def test_download_of_an_unusable_url_is_protocol_error(url, tmp_path):
    """Bad ports, control characters, impossible host names: ProtocolError, nothing written."""
    with pytest.raises(ProtocolError):
        await download(url, image, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_download_of_an_unusable_url_fails_on_a_real_client(tmp_path):
    """Port 99999 with httpx's own network stack is refused before any socket is opened."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(ProtocolError, match="port"):
            await download_to(http, "http://127.0.0.1:99999/x.png", tmp_path, "out.png")


@pytest.mark.anyio
async def test_download_redirect_loop_is_protocol_error(tmp_path):
    """A redirect loop ends in a ProtocolError after the client's redirect budget."""
    hops = []

    def loop(request):
        hops.append(request.url)
        return httpx.Response(302, headers={"Location": str(request.url)})

    with pytest.raises(ProtocolError, match="redirects more than 3"):
        await download("https://results.test/x.png", loop, tmp_path, max_redirects=3)
    assert len(hops) == 4


@pytest.mark.anyio
async def test_download_redirect_to_a_bad_port_is_protocol_error(tmp_path):
    """A redirect's target is checked like the first URL."""

    def bounce(request):
        if request.url.host == "results.test":
            return httpx.Response(302, headers={"Location": "http://127.0.0.1:99999/x.png"})
        return image(request)

    with pytest.raises(ProtocolError, match="port 99999"):
        await download("https://results.test/x.png", bounce, tmp_path)


@pytest.mark.anyio
async def test_download_follows_redirects_without_the_key(tmp_path):
    """Redirects are still followed, and no hop carries an Authorization header."""
    seen = []

    def bounce(request):
        seen.append(request.headers.get("Authorization"))
        if request.url.path == "/first.png":
            return httpx.Response(307, headers={"Location": "https://cdn.test/second.png"})
        return image(request)

    path = await download(
        "https://results.test/first.png", bounce, tmp_path, headers={"Authorization": "Bearer k"}
    )
    assert path.read_bytes() == PNG
    assert seen == [None, None]


@pytest.mark.anyio
async def test_download_of_corrupt_gzip_is_protocol_error(tmp_path):
    """A body that claims gzip but is garbage is a ProtocolError, and leaves no file."""

    def corrupt(_request):
        headers = {"Content-Type": "image/png", "Content-Encoding": "gzip"}
        return httpx.Response(200, content=b"not gzip at all" * 10, headers=headers)

    with pytest.raises(ProtocolError, match="decode"):
        await download("https://results.test/x.png", corrupt, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.parametrize("length", ["²".encode("latin-1"), b"9" * 5000])
async def test_download_content_length_that_is_no_number_is_ignored(length, tmp_path):
    """A Content-Length int() cannot read is no length; the body is what counts."""

    def odd(_request):
        headers = {"Content-Type": "image/png", "Content-Length": length}
        return httpx.Response(200, content=PNG, headers=headers)

    path = await download("https://results.test/x.png", odd, tmp_path)
    assert path.read_bytes() == PNG


# --- requests and uploads -------------------------------------------------------------


def transport(handler, base_url="https://api.test", **client):
    """A Transport over a MockTransport, without retries."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), **client)
    return Transport(http, base_url=base_url, api_key=Secret("k"), max_retries=0, timeout=5.0)


def never(request):
    """A handler that fails the test if a request reaches it."""
    raise AssertionError(f"unexpected request to {request.url}")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:99999", "https://api\x00.test", "ftp://api.test", "https://[::1"]
)
async def test_request_to_an_unusable_url_is_unsent_connection_error(base_url):
    """A request that cannot even be built is an APIConnectionError that provably never left."""
    sender = transport(never, base_url=base_url)
    with pytest.raises(APIConnectionError) as info:
        await sender.send("GET", "/api/v1/jobs/recordInfo")
    assert info.value.request_sent is False


@pytest.mark.anyio
async def test_request_redirect_loop_is_protocol_error():
    """A redirect loop on a client that follows redirects is a bad answer: ProtocolError."""

    def loop(request):
        return httpx.Response(302, headers={"Location": str(request.url)})

    sender = transport(loop, follow_redirects=True, max_redirects=2)
    with pytest.raises(ProtocolError, match="redirect"):
        await sender.send("POST", "/api/v1/jobs/createTask", json={})


@pytest.mark.anyio
async def test_request_with_corrupt_gzip_is_protocol_error():
    """An answer whose gzip body does not decode is a ProtocolError, not a DecodingError."""

    def corrupt(_request):
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return httpx.Response(200, content=b"\x1f\x8b garbage", headers=headers)

    with pytest.raises(ProtocolError):
        await transport(corrupt).send("GET", "/api/v1/jobs/recordInfo")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["https://files.test:99999/a.png", "https://files.test/a\x00.png", "http://" + "a" * 64]
)
async def test_upload_answer_with_an_unusable_url_is_protocol_error(url):
    """An upload's downloadUrl that could never be fetched is a ProtocolError."""
    body = {"code": 200, "msg": "ok", "data": {"downloadUrl": url}}
    sender = transport(lambda _request: httpx.Response(200, json=body))
    with pytest.raises(ProtocolError, match="downloadUrl"):
        await upload_image(sender, "https://upload.test", PNG, "a.png", _identity(PNG))

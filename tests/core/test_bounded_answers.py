"""Bounded answers (issue 9.4): total deadlines and decoded size caps, API answers and downloads.

The trickles come from a tiny HTTP server on 127.0.0.1 started by each test: httpx's
per-read timeouts never end a body that sends a byte every tenth of a second, only the
total deadline does. Nothing leaves loopback.
"""

from __future__ import annotations

import gzip
import json
import zlib

import anyio
import anyio.abc
import httpx
import pytest
from conftest import MARKET_SUBMIT, envelope
from loopback_server import http_head, trickle_server

import recraft_async as ra
from recraft_async._core._files import MAX_DOWNLOAD_REDIRECTS, download_to
from recraft_async._core._redact import Secret
from recraft_async._core._transport import MAX_ANSWER_BYTES, Transport
from recraft_async.errors import APITimeoutError, ProtocolError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CREDIT = "/api/v1/chat/credit"
# A KIE envelope padded past the cap with JSON whitespace: valid, so only the cap refuses it.
BOMB_HEAD = b'{"code": 200, "msg": "ok", "data": 5'
BOMB = BOMB_HEAD + b" " * (50 * 1024 * 1024) + b"}"


def json_head_and_body(data: object) -> tuple[bytes, bytes]:
    """A whole envelope answer around ``data``: its head and its body."""
    body = json.dumps(envelope(data)).encode()
    return http_head("application/json", len(body)), body


# --- API answers: the total deadline --------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_trickling_read_answer_times_out_on_every_attempt(make_client):
    """A credits answer trickling past the deadline fails each attempt, then APITimeoutError."""
    head, body = json_head_and_body(5)
    async with (
        trickle_server(head, body) as (base, requests),
        make_client(base_url=base, timeout=0.3, max_retries=1) as client,
    ):
        with pytest.raises(APITimeoutError, match=r"no complete answer within 0\.3 s"):
            await client.credits()
    assert len(requests) == 2
    assert all(request.startswith(b"GET /api/v1/chat/credit") for request in requests)


@pytest.mark.anyio
async def test_trickling_submit_answer_is_uncertain_and_never_resent(make_client):
    """A submit whose answer trickles past the deadline may have landed: uncertain, sent once."""
    head, body = json_head_and_body({"taskId": "t1"})
    async with (
        trickle_server(head, body) as (base, requests),
        make_client(base_url=base, timeout=0.3, max_retries=3) as client,
    ):
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.SubmissionUncertainError) as caught:
            await job
    assert len(requests) == 1
    assert requests[0].startswith(f"POST {MARKET_SUBMIT} ".encode())
    cause = caught.value.__cause__
    assert isinstance(cause, APITimeoutError)
    assert cause.request_sent is True


@pytest.mark.slow
@pytest.mark.anyio
async def test_waiting_for_a_pooled_connection_is_not_counted():
    """The deadline starts once a connection is in hand: a queued request still succeeds."""
    head, body = json_head_and_body(5)
    results = []
    async with trickle_server(head, body, every=0) as (base, _requests):
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(limits=limits) as http:
            sender = Transport(http, base_url=base, api_key=Secret("k"), max_retries=0, timeout=0.5)

            async def credit() -> None:
                results.append(await sender.send("GET", CREDIT))

            # The only connection stays busy for more than twice the deadline.
            async with anyio.create_task_group() as group, http.stream("GET", base + "/busy"):
                group.start_soon(credit)
                await anyio.sleep(1.2)
    assert [data for data, _raw in results] == [5]


# --- API answers: the decoded size cap ------------------------------------------------


def raw_deflate(data: bytes) -> bytes:
    """``data`` as deflate without zlib's header (which servers send as "deflate" too)."""
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """The padded envelope compressed three ways, each some tens of KB."""
    return {
        "gzip": gzip.compress(BOMB, compresslevel=9),
        "deflate": zlib.compress(BOMB, 9),
        "raw-deflate": raw_deflate(BOMB),
    }


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw-deflate"])
async def test_compression_bomb_answer_is_protocol_error(kie, make_client, bombs, kind):
    """50 MB inflated from a small gzip or deflate answer: ProtocolError with a truncated body."""
    compressed = bombs[kind]
    assert len(compressed) < MAX_ANSWER_BYTES // 8
    coding = kind.removeprefix("raw-")
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    route = kie.get(CREDIT).mock(
        return_value=httpx.Response(200, headers=headers, stream=httpx.ByteStream(compressed))
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(ProtocolError, match=f"over {MAX_ANSWER_BYTES} bytes") as caught:
            await client.credits()
    assert route.call_count == 1
    kept = caught.value.body
    assert kept is not None
    assert kept.startswith(BOMB_HEAD.decode())
    assert len(kept) < MAX_ANSWER_BYTES


@pytest.mark.anyio
async def test_answer_in_a_coding_never_asked_for_is_protocol_error(kie, make_client):
    """Only gzip and deflate are asked for; an answer labelled otherwise is not guessed at."""
    body = json.dumps(envelope(5)).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "zstd"}
    route = kie.get(CREDIT).mock(
        return_value=httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(ProtocolError, match="zstd"):
            await client.credits()
    assert route.calls.last.request.headers["Accept-Encoding"] == "gzip, deflate"


# --- downloads ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_trickling_download_times_out_and_leaves_nothing(make_client, tmp_path):
    """A result trickling past the download deadline is an APITimeoutError; no file, no temp."""
    async with trickle_server(http_head("image/png", len(PNG)), PNG) as (base, requests):
        url = f"{base}/out.png"
        record = ra.TaskRecord("t1", ra.TaskState.SUCCESS, (url,))
        result = ra.Result("t1", ra.Operation.UPSCALE, (url,), None, None, record)
        async with make_client() as client:
            with pytest.raises(APITimeoutError, match=r"did not finish within 0\.3 s"):
                await client.download(result, tmp_path, deadline=0.3)
    assert len(requests) == 1
    assert list(tmp_path.iterdir()) == []


async def fetch(handler, tmp_path):
    """download_to through a MockTransport answering with ``handler``."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        return await download_to(http, "https://results.test/0.png", tmp_path, "out.png")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "location",
    ["ftp://results.test/x.png", "file:///etc/passwd", "data:image/png;base64,AA==", "mailto:a@b"],
)
async def test_download_redirect_off_http_is_protocol_error(location, tmp_path):
    """A redirect anywhere but http(s) is refused before it is followed; nothing is written."""
    hops = []

    def bounce(request):
        hops.append(request.url)
        return httpx.Response(302, headers={"Location": location})

    with pytest.raises(ProtocolError, match="redirects to a bad URL"):
        await fetch(bounce, tmp_path)
    assert len(hops) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
async def test_download_redirect_chain_is_capped(tmp_path):
    """MAX_DOWNLOAD_REDIRECTS hops are followed; one more is a ProtocolError (httpx allows 20)."""

    def chain(length):
        def answer(request):
            n = int(request.url.path.strip("/").removesuffix(".png"))
            if n < length:
                return httpx.Response(302, headers={"Location": f"/{n + 1}.png"})
            return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

        return answer

    path = await fetch(chain(MAX_DOWNLOAD_REDIRECTS), tmp_path / "ok")
    assert path.read_bytes() == PNG
    with pytest.raises(ProtocolError, match=f"redirects more than {MAX_DOWNLOAD_REDIRECTS}"):
        await fetch(chain(MAX_DOWNLOAD_REDIRECTS + 1), tmp_path / "long")
    assert list((tmp_path / "long").iterdir()) == []


@pytest.mark.anyio
async def test_api_redirect_to_a_hostless_url_is_a_bad_answer():
    """A followed redirect to "data:..." comes after sending: ProtocolError, never "unsent"."""

    def bounce(_request):
        return httpx.Response(302, headers={"Location": "data:text/plain,hi"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(bounce), follow_redirects=True)
    async with http:
        sender = Transport(
            http, base_url="https://api.test", api_key=Secret("k"), max_retries=0, timeout=5.0
        )
        with pytest.raises(ProtocolError, match=r"POST https://api\.test/"):
            await sender.send("POST", "/api/v1/jobs/createTask", json={})

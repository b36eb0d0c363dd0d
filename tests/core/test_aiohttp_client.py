"""AioHttpClient (the aiohttp extra): the transport behaviours of the httpx path, over aiohttp.

respx cannot stand in for aiohttp's connections, so every test talks to a real server on
127.0.0.1: the emulator (faults included) or tests/loopback_server.py's canned answers.

aiohttp runs on asyncio only, so its tests are parametrised over asyncio alone, not over
both backends as the house rule asks of async tests; the trio tests check its refusal.
"""

from __future__ import annotations

import gzip
import json
import socket
import sys

import pytest
from conftest import EMULATOR_POLL, emulator_with_image, envelope
from loopback_server import http_head, trickle_server

import recraft_async as ra
from recraft_async._core._transport import MAX_ANSWER_BYTES

pytest.importorskip("aiohttp")
pytest.importorskip("httpx_aiohttp")
pytest.importorskip("uvicorn")

from recraft_async.testing import Fault, serve

SECRET = "sk-aiohttp-secret-7"
# aiohttp is asyncio's: these tests cannot run on trio (see the module's docstring).
ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])
ON_TRIO = pytest.mark.parametrize("anyio_backend", ["trio"])
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def envelope_answer(data: object) -> tuple[bytes, bytes]:
    """A whole KIE answer around ``data``: its head and its body."""
    body = json.dumps(envelope(data)).encode()
    return http_head("application/json", len(body)), body


def client_over(http: ra.AioHttpClient, base_url: str, **options: object) -> ra.AsyncRecraft:
    """An AsyncRecraft on ``base_url`` through ``http``, reading fast, no rate limits."""
    options.setdefault("poll", EMULATOR_POLL)
    options.setdefault("submit_rate", None)
    options.setdefault("read_rate", None)
    return ra.AsyncRecraft(api_key=SECRET, base_url=base_url, http_client=http, **options)  # type: ignore[arg-type]


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_a_job_runs_end_to_end_over_aiohttp(tmp_path):
    """Credits, an upscale and its download through the emulator; the caller's client stays open."""
    emulator, url = emulator_with_image(api_key=SECRET)
    async with serve(emulator) as base_url, ra.AioHttpClient() as http:
        async with client_over(http, base_url) as client:
            balance = await client.credits()
            result = await client.upscale(url)
            path = await client.download(result, tmp_path)
        assert not http.is_closed
    assert balance > 0
    assert path.read_bytes()[:8] == PNG[:8]
    assert emulator.stats.tasks_created == 1


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_no_key_goes_to_a_result_host(tmp_path):
    """A download over aiohttp sends no Authorization header to the result host."""
    async with (
        trickle_server(http_head("image/png", len(PNG)), PNG, every=0) as (base, requests),
        ra.AioHttpClient() as http,
        client_over(http, "http://127.0.0.1:9") as client,
    ):
        urls = (f"{base}/out.png",)
        record = ra.TaskRecord("t1", ra.TaskState.SUCCESS, urls)
        result = ra.Result("t1", ra.Operation.UPSCALE, urls, None, None, record)
        path = await client.download(result, tmp_path)
    assert path.read_bytes() == PNG
    [head] = requests
    assert head.startswith(b"GET /out.png")
    assert b"authorization" not in head.lower()
    assert SECRET.encode() not in head


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_trickling_answer_times_out_on_every_attempt():
    """An answer trickling past the deadline fails each attempt, then APITimeoutError."""
    head, body = envelope_answer(5)
    async with (
        trickle_server(head, body) as (base, requests),
        ra.AioHttpClient() as http,
        client_over(http, base, timeout=0.3, max_retries=1) as client,
    ):
        with pytest.raises(ra.APITimeoutError, match=r"no complete answer within 0\.3 s"):
            await client.credits()
    assert len(requests) == 2
    assert all(b"authorization: bearer " + SECRET.encode() in r.lower() for r in requests)


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_oversized_compressed_answer_is_refused():
    """A small gzip answer inflating past the cap: ProtocolError (aiohttp leaves it deflated)."""
    padded = b'{"code": 200, "msg": "ok", "data": 5' + b" " * (2 * MAX_ANSWER_BYTES) + b"}"
    bomb = gzip.compress(padded, compresslevel=9)
    head = http_head("application/json", len(bomb)).replace(
        b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"
    )
    async with (
        trickle_server(head, bomb, every=0) as (base, _requests),
        ra.AioHttpClient() as http,
        client_over(http, base, max_retries=0) as client,
    ):
        with pytest.raises(ra.ProtocolError, match=f"over {MAX_ANSWER_BYTES} bytes"):
            await client.credits()


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_connection_refused_is_a_typed_error_never_sent():
    """Nothing listening: APIConnectionError (not a timeout), the request provably unsent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with (
        ra.AioHttpClient() as http,
        client_over(http, f"http://127.0.0.1:{port}", max_retries=0) as client,
    ):
        with pytest.raises(ra.APIConnectionError) as caught:
            await client.credits()
    assert not isinstance(caught.value, ra.APITimeoutError)
    assert caught.value.request_sent is False
    assert SECRET not in str(caught.value)


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_a_dropped_submit_is_uncertain_and_never_resent():
    """A submit that landed, then lost its connection: uncertain, sent and paid once."""
    emulator, url = emulator_with_image(api_key=SECRET)
    emulator.faults.next("submit", Fault.drop(processed=True))
    async with (
        serve(emulator) as base_url,
        ra.AioHttpClient() as http,
        client_over(http, base_url, max_retries=3) as client,
    ):
        with pytest.raises(ra.SubmissionUncertainError):
            await client.upscale(url)
    assert emulator.stats.submit_requests == 1
    assert emulator.stats.submits[("upscale", url)] == 1


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_an_answer_late_past_the_timeout_is_a_timeout():
    """Headers later than the timeout: APITimeoutError on a read, after its retries."""
    emulator, _url = emulator_with_image(api_key=SECRET)
    emulator.faults.next("status", Fault.delay(1.0), Fault.delay(1.0))
    async with (
        serve(emulator) as base_url,
        ra.AioHttpClient() as http,
        client_over(http, base_url, timeout=0.3, max_retries=1) as client,
    ):
        with pytest.raises(ra.APITimeoutError):
            await client.get_task("task_missing", "upscale")
    assert emulator.faults.pending("status") == 0


@pytest.mark.slow  # a real server on a loopback port
@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_plain_http_never_goes_through_an_environment_proxy(monkeypatch):
    """HTTP_PROXY/ALL_PROXY at a dead port: plain http to the emulator still goes direct."""
    for name in ("HTTP_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    emulator, _url = emulator_with_image(api_key=SECRET)
    async with (
        serve(emulator) as base_url,
        ra.AioHttpClient() as http,
        client_over(http, base_url, max_retries=0) as client,
    ):
        assert await client.credits() > 0


@pytest.mark.anyio
@ON_TRIO
async def test_refused_under_trio():
    """On trio, entering it or a client's first request through it is WrongEventLoopError."""
    with pytest.raises(ra.WrongEventLoopError, match="asyncio only"):
        async with ra.AioHttpClient():
            pass
    http = ra.AioHttpClient()
    async with client_over(http, "http://127.0.0.1:9", max_retries=0) as client:
        with pytest.raises(ra.WrongEventLoopError, match="leave http_client unset"):
            await client.credits()
    await http.aclose()


def test_without_the_extra_it_names_the_extra(monkeypatch):
    """Made without aiohttp installed: InvalidInputError saying which extra to install."""
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    named = r"'aiohttp' extra .*pip install '\.\[aiohttp\]'"
    with pytest.raises(ra.InvalidInputError, match=named):
        ra.AioHttpClient()


@pytest.mark.parametrize(
    "options", [{"max_connections": 0}, {"timeout": 0}, {"timeout": float("nan")}]
)
def test_bad_settings_are_refused(options):
    """Out-of-range settings are an InvalidInputError when it is made."""
    with pytest.raises(ra.InvalidInputError):
        ra.AioHttpClient(**options)


def test_it_has_the_library_pools_settings():
    """Its pool: no limit on the wait for a connection, the timeout given to every operation."""
    http = ra.AioHttpClient(max_connections=3, timeout=7.0)
    assert (http.timeout.pool, http.timeout.connect, http.timeout.read) == (None, 7.0, 7.0)

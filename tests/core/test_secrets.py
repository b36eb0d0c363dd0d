"""Secrets and trust: the key over plain http only to a literal loopback address, no proxy."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading

import pytest

import recraft_async as ra
from recraft_async._core._check import is_loopback_host

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")

from recraft_async.testing import Duration, KieEmulator, sample_images, serve

SECRET = "sk-secret-never-shown-42"
CIRCLE = dict(sample_images(256))["red-circle.png"]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000",
        "http://LOCALHOST.:8000",
        "http://kie-emulator.localhost",
        "http://a.b.localhost:9/api",
        "http://127.1:9",  # resolved by the system's parser, not a literal address
        "http://[::ffff:127.0.0.1]:9",
    ],
)
def test_plain_http_refused_to_loopback_names(url):
    """A name (even localhost) is resolved by DNS: plain http only to an address literal."""
    with pytest.raises(ra.InvalidInputError, match="literal loopback") as caught:
        ra.AsyncRecraft(api_key=SECRET, base_url=url)
    message = str(caught.value)
    assert "http://127.0.0.1:<port>" in message
    assert "https" in message
    assert SECRET not in message
    if "localhost" in url.lower():
        # The same name over https is fine, and its uploads stay there, not at KIE's host.
        secure = "https" + url.removeprefix("http")
        assert ra.AsyncRecraft(api_key=SECRET, base_url=secure).upload_base_url == secure


@pytest.mark.parametrize("url", ["http://localhost:8000", "http://up.localhost:8000"])
def test_plain_http_upload_url_refused_to_loopback_names(url):
    """The upload host, which also gets the key, follows the same rule."""
    with pytest.raises(ra.InvalidInputError, match=r"127\.0\.0\.1") as caught:
        ra.AsyncRecraft(api_key=SECRET, base_url="http://127.0.0.1:9", upload_base_url=url)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("host", "literal"),
    [
        ("127.0.0.1", True),
        ("127.200.3.4", True),
        ("[::1]", True),
        ("::1", True),
        ("localhost", False),
        ("emu.localhost", False),
        ("127.0.0.1.", False),
        ("10.0.0.1", False),
        ("", False),
    ],
)
def test_is_loopback_host_accepts_address_literals_only(host, literal):
    """is_loopback_host is true for 127.0.0.0/8 and ::1 literals, never for a name."""
    assert is_loopback_host(host) is literal


class _RecordingProxy(socketserver.ThreadingTCPServer):
    """A proxy on 127.0.0.1 that records every request it gets and answers 502."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"


class _ProxyHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        server = self.server
        assert isinstance(server, _RecordingProxy)
        with server.lock:
            server.received.append(data)
        with contextlib.suppress(OSError):
            sock.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def proxy():
    """A recording proxy on loopback, running for the test."""
    server = _RecordingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def proxy_environment(monkeypatch, proxy):
    """Every proxy variable, upper and lower case, points at the recording proxy."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.url)
        monkeypatch.setenv(name.lower(), proxy.url)
    return proxy


@pytest.mark.slow
@pytest.mark.anyio
async def test_plain_http_never_goes_through_an_environment_proxy(proxy_environment):
    """HTTP_PROXY/ALL_PROXY never see a plain-http request; https still uses a CONNECT tunnel."""
    proxy = proxy_environment
    emulator = KieEmulator(api_key=SECRET, duration=Duration.fixed(0.0), time_scale=1.0)
    url = emulator.add_image("c.png", CIRCLE)
    fast = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=30.0)
    async with serve(emulator) as base_url:
        client = ra.AsyncRecraft(api_key=SECRET, base_url=base_url, poll=fast)
        async with client:
            balance = await client.credits()
            result = await client.upscale(url)
    assert balance > 0
    assert result.url.startswith(base_url)
    assert proxy.received == []
    assert emulator.stats.tasks_created == 1
    # https keeps the environment's proxy, as a tunnel: the proxy sees the host, not the key.
    # An address literal: were the proxy skipped, nothing would even ask DNS.
    remote = "https://127.0.0.1:9"
    async with ra.AsyncRecraft(api_key=SECRET, base_url=remote, max_retries=0) as client:
        with pytest.raises(ra.APIConnectionError) as caught:
            await client.credits()
    assert SECRET not in str(caught.value)
    assert [data.split(b" ", 2)[:2] for data in proxy.received] == [[b"CONNECT", b"127.0.0.1:9"]]
    assert SECRET.encode() not in b"".join(proxy.received)


@pytest.mark.anyio
async def test_in_process_emulator_default_url_is_https_and_never_resolves():
    """The emulator's default base URL is https on .invalid; uploads stay in process."""
    emulator = KieEmulator(duration=Duration.fixed(0.0), time_scale=1.0)
    assert emulator.base_url == "https://kie-emulator.invalid"
    fast = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=30.0)
    async with (
        emulator,
        emulator.http_client() as http,
        ra.AsyncRecraft(
            api_key=emulator.api_key, base_url=emulator.base_url, poll=fast, http_client=http
        ) as client,
    ):
        assert client.upload_base_url == emulator.base_url
        result = await client.upscale(CIRCLE)
    assert result.url.startswith("https://kie-emulator.invalid/_emulator/results/")
    assert emulator.stats.uploads == 1

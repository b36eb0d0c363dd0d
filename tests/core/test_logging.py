"""RECRAFT_LOG, the User-Agent of every request, and result URLs logged without their query."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import respx
from conftest import CLI_ENV, MARKET_SUBMIT, cli, image_bytes, save_image
from PIL import Image

import recraft_async as ra
from recraft_async._core import _logging
from recraft_async._core._escape import loggable_source, loggable_url
from recraft_async._core._files import download_to
from recraft_async.testing import KieEmulator

AGENT = f"recraft-async/{ra.__version__}"
SIGNED = "https://cdn.test/r/o.png?X-Amz-Signature=SECRET&X-Amz-Expires=600#frag"


@pytest.fixture
def library_logger():
    """The library's logger, put back as it was after the test."""
    logger = logging.getLogger("recraft_async")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield logger
    logger.handlers, _, logger.propagate = saved
    logger.setLevel(saved[1])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SIGNED, "https://cdn.test/r/o.png"),
        ("https://cdn.test/a.png#x?y", "https://cdn.test/a.png"),
        ("https://cdn.test/plain.png", "https://cdn.test/plain.png"),
        ("https://cdn.test/a\n.png?sig=1", "https://cdn.test/a\\n.png"),
    ],
)
def test_loggable_url_drops_query_and_fragment_and_escapes(url, shown):
    """Query and fragment go (they may hold a signature); control characters are escaped."""
    assert loggable_url(url) == shown


def test_recraft_log_sets_level_and_one_handler(monkeypatch, library_logger):
    """RECRAFT_LOG=debug sets the level and adds one stderr handler, however often read."""
    library_logger.handlers = []
    monkeypatch.setenv("RECRAFT_LOG", "DEBUG")
    _logging.setup_from_env()
    _logging.setup_from_env()
    ra.AsyncRecraft(api_key="k")  # a client reads it again: still one handler
    assert library_logger.level == logging.DEBUG
    assert sum(isinstance(h, _logging.StderrHandler) for h in library_logger.handlers) == 1


def test_unknown_recraft_log_value_is_ignored_with_one_warning(monkeypatch, library_logger, caplog):
    """RECRAFT_LOG=loud changes nothing and says so once, not once per client."""
    library_logger.handlers = []
    library_logger.setLevel(logging.NOTSET)
    monkeypatch.setenv("RECRAFT_LOG", "loud")
    with caplog.at_level(logging.WARNING, logger="recraft_async"):
        _logging.setup_from_env()
        ra.AsyncRecraft(api_key="k")
    warnings = [r.getMessage() for r in caplog.records if "RECRAFT_LOG" in r.getMessage()]
    assert warnings == ["RECRAFT_LOG='loud' is not one of debug, info; ignored"]
    assert library_logger.level == logging.NOTSET
    assert not any(isinstance(h, _logging.StderrHandler) for h in library_logger.handlers)


@pytest.mark.slow
def test_recraft_log_configures_the_logger_at_import():
    """In a fresh interpreter, RECRAFT_LOG=info prints the library's info lines, formatted."""
    code = "import logging, recraft_async; logging.getLogger('recraft_async').info('hello')"
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], env={**CLI_ENV, "RECRAFT_LOG": "info"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("hello") == 1
    assert "recraft_async:1 - INFO] hello" in run.stderr
    quiet = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], env=CLI_ENV,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "hello" not in quiet.stderr


@pytest.mark.anyio
async def test_download_messages_and_logs_never_show_the_query(tmp_path, caplog):
    """A failed download names its URL without the presigned query, in the error and logs."""
    with caplog.at_level(logging.DEBUG, logger="recraft_async"), respx.mock() as mock:
        mock.get(url__startswith="https://cdn.test/").respond(403)
        async with httpx.AsyncClient() as http:
            with pytest.raises(ra.ProtocolError) as raised:
                await download_to(http, SIGNED, tmp_path, "o.png")
    assert str(raised.value) == "download of https://cdn.test/r/o.png answered HTTP 403"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "downloading https://cdn.test/r/o.png" in logged
    assert "SECRET" not in logged


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("https://in.test/a.png?X-Amz-Signature=SECRET", "https://in.test/a.png"),
        ("HTTP://in.test/b.png#frag", "HTTP://in.test/b.png"),
        ("photos/what?.png", "photos/what?.png"),  # a path keeps its name whole
        ("<bytes 12 B>\n", "<bytes 12 B>\\n"),
    ],
)
def test_loggable_source_drops_an_input_urls_query(source, shown):
    """An input URL is logged without its query (it may be presigned); a path is kept."""
    assert loggable_source(source) == shown


@pytest.mark.anyio
async def test_queued_and_cancelled_lines_never_show_an_input_query(kie, make_client, caplog):
    """The "queued" log line and a cancel message name a presigned input without its query."""
    kie.post(MARKET_SUBMIT).respond(json={"code": 200, "msg": "ok", "data": {"taskId": "t1"}})
    signed = "https://in.test/a.png?X-Amz-Signature=SECRET"
    never = ra.PollPolicy(initial=60.0, max_interval=60.0, timeout=600.0)
    with caplog.at_level(logging.INFO, logger="recraft_async"):
        async with make_client(submit_rate=ra.Rate(1, per=60.0), poll=never) as client:
            first = client.upscale("https://in.test/first.png")  # takes the one submit slot
            job = client.upscale(signed, submit_within=0.01)
            with pytest.raises(ra.JobCancelledError) as raised:
                await job
            first.cancel()
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "queued: https://in.test/a.png" in logged
    assert "SECRET" not in logged
    assert "not submitted within" in str(raised.value)
    assert "SECRET" not in str(raised.value)


@pytest.mark.anyio
async def test_every_request_carries_the_user_agent_with_respx(tmp_path, make_client):
    """API reads, uploads and downloads send User-Agent, on a caller's httpx client too."""
    with respx.mock(assert_all_called=True) as mock:
        credit = mock.get("https://api.kie.ai/api/v1/chat/credit").respond(
            json={"code": 200, "msg": "ok", "data": 5}
        )
        result = mock.get("https://cdn.test/r/o.png").respond(
            200, content=image_bytes(), headers={"Content-Type": "image/png"}
        )
        # A caller's client with its own default User-Agent: ours is set per request.
        async with httpx.AsyncClient(headers={"User-Agent": "theirs/1"}) as http:
            async with make_client(http_client=http) as client:
                assert await client.credits() == 5
            await download_to(http, "https://cdn.test/r/o.png", tmp_path, "o.png")
    assert credit.calls.last.request.headers["User-Agent"] == AGENT
    assert result.calls.last.request.headers["User-Agent"] == AGENT


def _recording(app, seen):
    """The emulator's ASGI app, noting each request's path and User-Agent as it arrives."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            seen.append((scope["path"], headers.get(b"user-agent", b"").decode()))
        await app(scope, receive, send)

    return asgi


@pytest.mark.anyio
async def test_user_agent_arrives_at_the_emulator(tmp_path):
    """Upload, submit, status reads and the download all reach the service with it."""
    emulator = KieEmulator(time_scale=0.001)
    seen: list[tuple[str, str]] = []
    poll = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.1, timeout=30.0)
    transport = httpx.ASGITransport(app=_recording(emulator.app, seen))
    async with (
        emulator,
        httpx.AsyncClient(transport=transport, base_url=emulator.base_url) as http,
        ra.AsyncRecraft(
            api_key=emulator.api_key,
            base_url=emulator.base_url,
            upload_base_url=emulator.base_url,
            http_client=http,
            poll=poll,
        ) as client,  # fmt: skip
    ):
        result = await client.upscale(image_bytes())
        await client.download(result, tmp_path)
    paths = [path for path, _ in seen]
    assert any("upload" in p for p in paths)
    assert len(paths) >= 4  # upload, submit, at least one read, the download
    assert {agent for _, agent in seen} == {AGENT}


class _SignedKie(BaseHTTPRequestHandler):
    """A fake KIE whose result URL is presigned; it notes every request's User-Agent."""

    server: ThreadingHTTPServer
    agents: list[tuple[str, str]] = []  # noqa: RUF012 - the test resets it
    png = b""
    result_status = 200

    def log_message(self, *args):
        """Stay quiet."""

    def _json(self, data):
        body = json.dumps({"code": 200, "msg": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        """Uploads and submits."""
        self.agents.append((self.path, self.headers.get("User-Agent", "")))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/api/file-stream-upload":
            self._json({"downloadUrl": f"{base}/files/in.png"})
        elif self.path == "/api/v1/common/download-url":
            self._json(f"{base}/r/fresh.png?X-Amz-Signature=SECRET")
        else:
            self._json({"taskId": "task-1"})

    def do_GET(self):
        """Status reads and the result download."""
        self.agents.append((self.path, self.headers.get("User-Agent", "")))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if "record-info" in self.path or "recordInfo" in self.path:
            urls = [f"{base}/r/out.png?X-Amz-Signature=SECRET"]
            self._json({"taskId": "task-1", "successFlag": 1, "response": {"resultUrls": urls}})
            return
        self.send_response(self.result_status)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.png)))
        self.end_headers()
        self.wfile.write(self.png)


def _run_against_signed_kie(tmp_path, status, *options):
    buffer = io.BytesIO()
    Image.new("RGB", (600, 600)).save(buffer, "PNG")
    _SignedKie.png, _SignedKie.result_status, _SignedKie.agents = buffer.getvalue(), status, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SignedKie)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        save_image(tmp_path / "in.png", (300, 300))
        url = f"http://127.0.0.1:{server.server_port}"
        return cli("upscale", "in.png", "--base-url", url, "--out", "out", "--poll-initial",
                   "0.05", "--dialect", "recraft", *options, cwd=tmp_path,
                   env={"KIE_API_KEY": "k"})  # fmt: skip
    finally:
        server.shutdown()


@pytest.mark.slow
def test_cli_requests_and_downloads_carry_the_user_agent(tmp_path):
    """The command's upload, submit, reads and download (its own client) all send it."""
    run = _run_against_signed_kie(tmp_path, 200)
    assert run.returncode == 0, run.stdout + run.stderr
    paths = [path for path, _ in _SignedKie.agents]
    assert any(p.startswith("/r/out.png") for p in paths)
    assert any(p == "/api/file-stream-upload" for p in paths)
    assert {agent for _, agent in _SignedKie.agents} == {AGENT}


@pytest.mark.slow
def test_cli_failure_and_debug_log_name_the_result_url_without_its_query(tmp_path):
    """A failed download is reported, and logged at -vv, without the presigned query."""
    run = _run_against_signed_kie(tmp_path, 403, "-vv")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "/r/out.png answered HTTP 403, and its fresh link too" in run.stdout
    assert "debug: downloading http://127.0.0.1:" in run.stderr
    assert "/r/fresh.png" in run.stderr  # the fresh link, logged without its query too
    assert "SECRET" not in run.stdout + run.stderr

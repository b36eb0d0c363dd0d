"""Task ids, URLs and messages from the service cannot forge or restyle a log line."""

import argparse
import io
import logging
from pathlib import Path

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, submitted

import recraft_async as ra
from recraft_async import cli
from recraft_async._bulk._batch import Outcome
from recraft_async._bulk._progress import Reporter
from recraft_async._core._escape import printable
from recraft_async._core._redact import Secret
from recraft_async._core._transport import Transport

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
HOSTILE_ID = "t1\nINFO recraft_async job upscale succeeded: task forged\x1b[31m"
HOSTILE_URL = "https://cdn.test/o.png\n\x1b[2Jforged"


def _forbidden(text):
    """The characters that would break or restyle a line, found in ``text``."""
    return [c for c in text if not c.isprintable()]


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "recraft_async"]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("t1\nforged", "t1\\nforged"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("x\x7fy\x00", "x\\x7fy\\x00"),
        ("line\u2028sep", "line\\u2028sep"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("lone\ud800", "lone\\ud800"),
        ("\U000e0001tag", "\\U000e0001tag"),
    ],
)
def test_printable_escapes_what_is_not_printable(raw, shown):
    """Control, format and separator characters become visible escapes on one line."""
    assert printable(raw) == shown


def test_printable_keeps_ordinary_text():
    """Printable text of any script, and non-strings, are shown as they are."""
    assert printable("été 東京 https://x.test/a?b=1") == "été 東京 https://x.test/a?b=1"
    assert printable(None) == "None"
    assert printable(ValueError("bad\nthing")) == "bad\\nthing"


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_task_id_from_the_service_is_logged_escaped(kie, make_client, caplog):
    """A task id with a newline and an ANSI escape is logged on one line, escaped."""
    caplog.set_level(logging.INFO, logger="recraft_async")
    kie.post(UPSCALE).respond(json=envelope({"taskId": HOSTILE_ID}))
    kie.get(READ).respond(json=market_record(HOSTILE_ID))
    async with make_client() as client:
        with anyio.fail_after(5):
            result = await client.upscale("https://i.test/a.png")
    assert result.task_id == HOSTILE_ID  # the value itself is kept as the service sent it
    messages = _messages(caplog)
    assert any("submitted" in m for m in messages)
    assert any("succeeded" in m for m in messages)
    for message in messages:
        assert not _forbidden(message), message
    assert any(printable(HOSTILE_ID) in m for m in messages)


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_failure_message_from_the_service_is_logged_escaped(kie, make_client, caplog):
    """A task's failure message with a newline and an escape sequence stays on one line."""
    caplog.set_level(logging.INFO, logger="recraft_async")
    failed = market_record("t1", state="fail", urls=())
    failed["data"]["failMsg"] = f"bad image\nINFO forged {HOSTILE_URL}"
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).respond(json=failed)
    async with make_client() as client:
        with anyio.fail_after(5), pytest.raises(ra.TaskFailedError):
            await client.upscale("https://i.test/a.png")
    messages = _messages(caplog)
    [ended] = [m for m in messages if "failed" in m]
    assert not _forbidden(ended)
    assert "\\x1b[2Jforged" in ended


@pytest.mark.anyio
async def test_retry_log_line_escapes_its_url_and_error(caplog):
    """The transport's retry line shows a hostile URL and error text escaped."""
    caplog.set_level(logging.DEBUG, logger="recraft_async")
    async with httpx.AsyncClient() as http:
        transport = Transport(
            http, base_url="https://api.test", api_key=Secret("k"), max_retries=1, timeout=1.0
        )
        with pytest.raises(ra.APIConnectionError):
            await transport.request_json("GET", HOSTILE_URL, idempotent=True)
    [retrying] = [m for m in _messages(caplog) if m.startswith("retrying")]
    assert not _forbidden(retrying)
    assert printable(HOSTILE_URL) in retrying


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_resubmit_log_line_escapes_the_services_message(kie, make_client, caplog):
    """A refused submit's message, logged before the resubmit, is escaped."""
    caplog.set_level(logging.INFO, logger="recraft_async")
    kie.post(UPSCALE).mock(
        side_effect=[
            httpx.Response(200, json=envelope(None, code=503, msg="busy\n\x1b[31mforged")),
            httpx.Response(200, json=envelope({"taskId": "t1"})),
        ]
    )
    kie.get(READ).respond(json=market_record("t1"))
    async with make_client() as client:
        with anyio.fail_after(10):
            await client.upscale("https://i.test/a.png")
    [resubmit] = [m for m in _messages(caplog) if "resubmitting" in m]
    assert not _forbidden(resubmit)
    assert "\\x1b[31mforged" in resubmit


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_stopped_jobs_warning_escapes_task_ids(kie, make_client, caplog):
    """The warning that lists stopped jobs' task ids for resume shows them escaped."""
    caplog.set_level(logging.WARNING, logger="recraft_async")
    kie.post(UPSCALE).respond(json=envelope({"taskId": HOSTILE_ID}))
    kie.get(READ).respond(json=market_record(HOSTILE_ID, state="generating", urls=()))
    poll = ra.PollPolicy(initial=30.0, factor=1.5, max_interval=30.0, timeout=60.0)
    with pytest.raises(KeyboardInterrupt):
        async with make_client(poll=poll) as client:
            await submitted(client.upscale("https://i.test/a.png"))
            raise KeyboardInterrupt
    [warning] = [m for m in _messages(caplog) if "resume" in m]
    assert not _forbidden(warning)
    assert printable(HOSTILE_ID) in warning


def test_reporter_lines_escape_labels_urls_and_messages():
    """The CLI's plain reporter prints one line per item, hostile text escaped."""
    stream = io.StringIO()
    with Reporter(stream) as reporter:
        reporter.start(1)
        reporter.update("in\nput.png", "failed", f"GET {HOSTILE_URL}: boom")
        reporter.line(f"stopped: {HOSTILE_ID}")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert not _forbidden(line), line
    assert printable(HOSTILE_URL) in lines[1]


def test_rich_reporter_escapes_control_characters_and_markup():
    """The progress bar's failure lines show hostile text literally: no escapes, no markup."""
    pytest.importorskip("rich")
    from recraft_async._bulk._progress import RichReporter  # noqa: PLC0415 - needs rich

    stream = io.StringIO()
    reporter = RichReporter(stream)
    reporter.finished("a.png", "failed", f"[bold]{HOSTILE_URL}[/bold]")
    reporter.line(f"stopped: {HOSTILE_ID}")
    out = stream.getvalue()
    assert "\x1b" not in out  # not a terminal: rich adds no styles of its own either
    assert f"[bold]{printable(HOSTILE_URL)}[/bold]" in out
    assert printable(HOSTILE_ID) in out


def test_cli_summary_escapes_failure_messages(capsys):
    """The command's closing summary shows each failure on its own single line."""
    outcomes = [
        Outcome("a\n.png", "failed", error=f"task failed: {HOSTILE_URL}"),
        Outcome("b.png", "uncertain", error=f"task {HOSTILE_ID} may exist"),
    ]
    args = argparse.Namespace(json=False, out=Path("out"))
    cli._summarise(args, outcomes, Path("out/journal.sqlite3"))
    lines = capsys.readouterr().out.splitlines()
    for line in lines:
        assert not _forbidden(line), line
    assert any(printable(HOSTILE_URL) in line for line in lines)
    assert any(printable(HOSTILE_ID) in line for line in lines)

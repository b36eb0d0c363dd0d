"""Odd keys: whitespace from a file or a Windows .env is stripped, the rest refused unshown.

And defence in depth: a key a lower library quotes (h11 refusing a header) is cut out of
every text that leaves the library.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import traceback

import httpx
import pytest
from conftest import API, MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra
from recraft_async import cli
from recraft_async._core._keys import checked_key
from recraft_async._core._redact import Secret, redact

KEY = "sk-hostile-0123456789abcdef"
IMAGE = "https://i.test/a.png"
# What a Windows .env, a key file or a careless paste leaves around a key.
SURROUNDINGS = {"CR": "\r", "CRLF": "\r\n", "space": " ", "tab and newline": "\t\n"}
# What a lower library may have quoted after "Bearer <key>": each kind of hostile key.
QUOTED_TAILS = {"CR": "\r", "CRLF": "\r\n", "space": " ", "NUL": "\x00", "non-ASCII": "é"}
REFUSED = {
    "inner CR": (KEY[:5] + "\r" + KEY[5:], "a control character at position 6"),
    "inner LF": (KEY[:9] + "\n" + KEY[9:], "a control character at position 10"),
    "NUL": (KEY + "\x00", "a control character at position 28"),
    "DEL": (KEY[:3] + "\x7f" + KEY[3:], "a control character at position 4"),
    "non-ASCII": ("sk-clé-" + KEY, "a non-ASCII character at position 6"),
    "whitespace only": (" \r\n", "is empty once surrounding whitespace is stripped"),
}


def _quoting_error(tail: str) -> httpx.LocalProtocolError:
    """What h11 raises for a header it refuses: the value quoted as bytes."""
    header = ("Bearer " + KEY + tail).encode("utf-8")
    return httpx.LocalProtocolError(f"Illegal header value {header!r}")


def _shows_key(text: str) -> bool:
    # Any stretch of the key long enough to use: its halves, let alone the whole.
    half = len(KEY) // 2
    return KEY[:half] in text or KEY[half:] in text


@pytest.mark.parametrize("around", SURROUNDINGS.values(), ids=SURROUNDINGS)
@pytest.mark.parametrize("source", ["argument", "environment"])
@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_surrounding_whitespace_is_stripped_before_the_key_is_sent(
    kie, make_client, monkeypatch, around, source
):
    """A key with a trailing CR, CRLF or space (argument or $KIE_API_KEY) is sent bare."""
    route = kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1", urls=(IMAGE,)))
    if source == "environment":
        monkeypatch.setenv("KIE_API_KEY", around + KEY + around)
        options = {"api_key": None}
    else:
        options = {"api_key": KEY + around}
    async with make_client(**options) as client:
        await client.upscale(IMAGE)
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"


# Every refused key in every place a key enters; an environment variable cannot hold NUL.
REFUSED_WHERE = [
    pytest.param(key, problem, where, id=f"{where}-{name}")
    for where in ("api_key", "KIE_API_KEY", "webhook_key", "KIE_WEBHOOK_KEY")
    for name, (key, problem) in REFUSED.items()
    if not (where.isupper() and "\x00" in key)
]


@pytest.mark.parametrize(("key", "problem", "where"), REFUSED_WHERE)
def test_a_key_no_header_can_carry_is_refused_naming_the_problem_not_the_key(
    kie, monkeypatch, key, problem, where
):
    """Inner CR/LF, NUL, DEL, non-ASCII or nothing but whitespace: InvalidInputError, unshown."""
    api_key: str | None = key if where == "api_key" else KEY
    webhook_key = key if where == "webhook_key" else None
    if where.isupper():
        monkeypatch.setenv(where, key)
        if where == "KIE_API_KEY":
            api_key = None
    with pytest.raises(ra.InvalidInputError, match=problem) as caught:
        ra.AsyncRecraft(api_key=api_key, webhook_key=webhook_key)
    assert "webhook" in str(caught.value) or "webhook" not in where.lower()
    assert (where in str(caught.value)) is where.isupper()
    for text in (str(caught.value), repr(caught.value)):
        assert not _shows_key(text)
        assert not key.strip() or key.strip() not in text
    assert not kie.calls


@pytest.mark.parametrize(("key", "problem"), REFUSED.values(), ids=REFUSED)
def test_parse_callback_checks_its_webhook_key_the_same_way(key, problem):
    """parse_callback refuses an unusable webhook_key before reading the body."""
    with pytest.raises(ra.InvalidInputError, match=problem) as caught:
        ra.parse_callback(b"not even JSON", {}, webhook_key=key)
    assert not _shows_key(str(caught.value))


def test_checked_key_strips_and_keeps_inner_printable_ascii():
    """Only surrounding whitespace goes; a key of printable ASCII stays as it is."""
    assert checked_key("\r\n\t " + KEY + " \r\n", "the key") == KEY
    assert checked_key("a b", "the key") == "a b"
    with pytest.raises(ra.InvalidInputError, match="must be a str"):
        checked_key(b"sk", "the key")


@pytest.mark.parametrize("tail", QUOTED_TAILS.values(), ids=QUOTED_TAILS)
def test_redact_cuts_every_quoted_form_of_a_registered_key(tail):
    """The raw, repr, bytes-repr, JSON and printable forms of a hostile key all vanish."""
    hostile = KEY + tail
    Secret(hostile)
    forms = [hostile, repr(hostile), repr(hostile.encode()), json.dumps(hostile)]
    for form in forms:
        text = redact(f"Illegal header value {form}; more")
        assert not _shows_key(text), text
        assert text.endswith("; more")


def test_redact_leaves_short_keys_and_other_text_alone():
    """A key under eight characters is not looked for: it would blank ordinary words."""
    Secret("k")
    Secret("key-1")
    assert redact("a key-1 look at keys") == "a key-1 look at keys"


@pytest.mark.parametrize("tail", QUOTED_TAILS.values(), ids=QUOTED_TAILS)
@pytest.mark.parametrize("path", ["submit", "status read"])
@pytest.mark.anyio
async def test_a_key_a_lower_library_quotes_leaves_through_no_output(
    kie, make_client, tmp_path, caplog, tail, path
):
    """h11's message quoting the key reaches no error, event, dict, log record or journal row."""
    if path == "submit":
        kie.post(MARKET_SUBMIT).mock(side_effect=_quoting_error(tail))
    else:
        kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
        kie.get(MARKET_READ).mock(side_effect=_quoting_error(tail))
    seen: list[ra.JobEvent] = []
    journal = ra.Journal(tmp_path / "journal.sqlite")
    with caplog.at_level(logging.DEBUG, logger="recraft_async"):
        async with make_client(
            api_key=KEY + " \r\n",
            journal=journal,
            on_event=lambda _job, event: seen.append(event),
            max_retries=0,
            poll=ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=0.1),
        ) as client:
            job = client.upscale(IMAGE)
            with pytest.raises(ra.RecraftError) as caught:
                await job
    error = caught.value
    if path == "submit":
        assert isinstance(error, ra.SubmissionUncertainError)
    outputs = {
        "str": str(error),
        "repr": repr(error),
        "traceback": "".join(traceback.format_exception(error)),
        "to_dict": json.dumps(job.to_dict(), ensure_ascii=False),
        "events": repr(job.events) + repr(seen),
        "log": "\n".join(caplog.messages + [r.exc_text or "" for r in caplog.records]),
        "journal": repr(_journal_rows(tmp_path / "journal.sqlite")),
    }
    assert "Illegal header value" in outputs["to_dict"]  # the lower message does come through
    assert {name: text for name, text in outputs.items() if _shows_key(text)} == {}


def _journal_rows(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM entries").fetchall()


@pytest.mark.parametrize("tail", QUOTED_TAILS.values(), ids=QUOTED_TAILS)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_command_line_prints_no_key_a_lower_library_quoted(
    kie, tmp_path, capsys, monkeypatch, tail, as_json
):
    """The CLI's summary (text and --json), its log lines and its journal never show the key."""
    monkeypatch.setenv("RECRAFT_LOG", "debug")
    kie.route().mock(side_effect=_quoting_error(tail))
    out = tmp_path / "out"
    argv = ["upscale", IMAGE, "--base-url", API, "--api-key", KEY + "\r\n", "--out", str(out)]
    status = cli.main([*argv, "--quiet", *(["--json"] if as_json else [])])
    printed = capsys.readouterr()
    assert status == cli.EXIT_FAILED
    assert "uncertain" in printed.out
    assert "Traceback" not in printed.err
    rows = _journal_rows(out / cli.JOURNAL_NAME)
    assert rows
    for text in (printed.out, printed.err, repr(rows)):
        assert not _shows_key(text)

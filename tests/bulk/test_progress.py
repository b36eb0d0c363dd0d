from __future__ import annotations

import io

import pytest

from recraft_async._bulk._progress import QuietReporter, Reporter, RichReporter, waiting_text


def test_plain_reporter_logs_final_states_with_counts():
    """One line per finished item, numbered, with where it went or why it failed."""
    out = io.StringIO()
    with Reporter(out) as reporter:
        reporter.start(2)
        reporter.update("a.png", "preparing")
        reporter.update("a.png", "submitting")
        reporter.update("a.png", "done", "out/a.png")
        reporter.update("b.png", "failed", "b.png: no such file")
    lines = out.getvalue().splitlines()
    assert lines[0] == "recraft-async: 2 image(s) to process"
    assert lines[1].split() == ["recraft-async:", "[1/2]", "done", "a.png", "->", "out/a.png"]
    assert "[2/2] failed" in lines[2]
    assert "b.png: no such file" in lines[2]
    assert reporter.counts["submitting"] == 0
    assert reporter.counts["done"] == 1


def test_rich_reporter_draws_counts_and_failures(monkeypatch):
    """The bar shows per-state counts and prints failures above itself."""
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "150")
    out = io.StringIO()
    with RichReporter(out) as reporter:
        reporter.start(3)
        reporter.update("a.png", "submitting")
        reporter.update("b.png", "done", "out/b.png")
        reporter.update("c.png", "uncertain", "may have been billed")
    text = out.getvalue()
    assert "uncertain c.png: may have been billed" in text
    assert "2/3" in text
    assert "submitting 1" in text


@pytest.mark.parametrize(
    ("next_submit_in", "in_flight", "text"),
    [
        (5.2, 3, "throttled, next submit in 6 s"),
        (0.4, 3, "waiting on processing (3 in flight)"),
        (None, 12, "waiting on processing (12 in flight)"),
        (None, 0, ""),
    ],
)
def test_waiting_text_names_the_rate_first_then_the_service(next_submit_in, in_flight, text):
    """A wait for the submit rate is said first; else the items the service is processing."""
    assert waiting_text(next_submit_in, in_flight) == text


def test_plain_reporter_says_a_throttle_once_per_episode():
    """Plain lines: one line when a long wait starts, none while it lasts, one for the next."""
    out = io.StringIO()
    reporter = Reporter(out)
    reporter.start(1)
    for wait in (0.5, 6.0, 5.0, 4.0, None, 3.0, 2.5):
        reporter.waiting(wait, 1)
    throttled = [line for line in out.getvalue().splitlines() if "throttled" in line]
    assert throttled == [
        "recraft-async: throttled, next submit in 6 s (the submit rate limit)",
        "recraft-async: throttled, next submit in 3 s (the submit rate limit)",
    ]


def test_rich_reporter_shows_the_wait_in_its_description(monkeypatch):
    """The bar's description says what the run waits on, and clears when nothing waits."""
    pytest.importorskip("rich")
    monkeypatch.setenv("COLUMNS", "150")
    out = io.StringIO()
    reporter = RichReporter(out)  # the rich subclass: its bar is what is checked
    with reporter:
        reporter.start(2)
        reporter.update("a.png", "submitting")
        reporter.waiting(6.0, 1)
        assert reporter._progress.tasks[0].description == "throttled, next submit in 6 s"
        reporter.waiting(None, 1)
        assert reporter._progress.tasks[0].description == "waiting on processing (1 in flight)"
        reporter.waiting(None, 0)
        assert reporter._progress.tasks[0].description == ""
    assert "0/2 submitting 1" in out.getvalue()


def test_quiet_reporter_prints_nothing():
    """-q: no start line, no per-item lines, no waits, no messages; the counts still move."""
    out = io.StringIO()
    with QuietReporter(out) as reporter:
        reporter.start(1)
        reporter.update("a.png", "failed", "nope")
        reporter.waiting(9.0, 0)
        reporter.line("stopped")
    assert out.getvalue() == ""
    assert reporter.counts["failed"] == 1

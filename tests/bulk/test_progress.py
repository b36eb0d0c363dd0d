from __future__ import annotations

import io

import pytest

from recraft_async._bulk._progress import (
    QuietReporter,
    Reporter,
    RichReporter,
    eta_seconds,
    eta_text,
    waiting_text,
)
from recraft_async._core._policy import Rate


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
    assert "0/2 ETA ? submitting 1" in out.getvalue()


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


def test_eta_is_paced_by_the_submit_window():
    """40 to submit at 20 per 10 s, 20 s processing: 20 s of submits then 20 s, not 4 s."""
    eta = eta_seconds(unsubmitted=40, in_flight_ages=[], submit_rate=Rate(20, per=10.0),
                      concurrency=100, processing=20.0)  # fmt: skip
    assert eta == pytest.approx(40.0)
    # A throttle already holding the next submit 5 s back adds its wait.
    held = eta_seconds(unsubmitted=40, in_flight_ages=[], submit_rate=Rate(20, per=10.0),
                       concurrency=100, processing=20.0, next_submit_in=5.0)  # fmt: skip
    assert held == pytest.approx(45.0)


def test_eta_is_paced_by_concurrency_when_it_binds():
    """8 at a time of 20 s each is 0.4 per second: slower than the window, so it counts."""
    eta = eta_seconds(unsubmitted=8, in_flight_ages=[], submit_rate=Rate(20, per=10.0),
                      concurrency=8, processing=20.0)  # fmt: skip
    assert eta == pytest.approx(40.0)


def test_eta_of_the_last_ones_in_flight_is_what_is_left_of_processing():
    """All submitted: the youngest in flight decides; unknown processing: no ETA."""
    ages = [15.0, 4.0, 30.0]
    eta = eta_seconds(unsubmitted=0, in_flight_ages=ages, submit_rate=None,
                      concurrency=8, processing=20.0)  # fmt: skip
    assert eta == pytest.approx(16.0)
    assert eta_seconds(unsubmitted=3, in_flight_ages=[], submit_rate=None, concurrency=8,
                       processing=None) is None  # fmt: skip
    assert eta_text(None) == "ETA ?"
    assert eta_text(95.2) == "ETA 1:36"
    assert eta_text(3725.0) == "ETA 1:02:05"


@pytest.mark.parametrize("width", [60, 80, 120])
def test_bar_fits_the_terminal_with_its_eta(width):
    """At 60 and 80 columns the bar, the count and the ETA are drawn, on one line."""
    pytest.importorskip("rich")
    out = io.StringIO()
    with RichReporter(out, width=width) as reporter:
        reporter.start(40)
        for i in range(12):
            reporter.update(f"photos/summer/img-{i:04}.png", "done", "out/x.png")
        for i in range(12, 20):
            reporter.update(f"photos/summer/img-{i:04}.png", "submitting")
        window = Rate(20, per=10.0)
        eta = eta_seconds(unsubmitted=20, in_flight_ages=[1.0] * 8, submit_rate=window,
                          concurrency=8, processing=20.0)  # fmt: skip
        reporter.waiting(7.0, 8, eta)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    bar = lines[-1]
    assert "━" in bar
    assert "12/40" in bar
    assert f"{eta_text(eta)} " in bar
    assert all(len(line) <= width for line in lines)

from __future__ import annotations

import io

import pytest

from recraft_async._progress import Reporter, RichReporter


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

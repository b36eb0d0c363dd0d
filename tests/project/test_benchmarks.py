"""A small-N smoke run of the benchmark runner, so that it cannot rot.

It checks that every number is produced and sane, never how fast anything is.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "benchmarks" / "run.py"
N = 6

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("uvicorn") is None, reason="needs the emulator extra"
    ),
    pytest.mark.slow,  # benchmarks run as processes: in the full run, not the quick loop
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable,
        str(RUNNER),
        "--quick",
        "--n",
        str(N),
        "--warm-n",
        "3",
        # A short window: each warm batch first waits one out (the window's seconds).
        "--rate",
        "20/0.2",
        "--time-scale",
        "0.01",
        "--queued",
        "2000",
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(  # noqa: S603 - our own runner, loopback only
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_every_family_reports_a_row(results):
    """The quick run has recraft-async (cold and warm), the naive loop and fixed polling."""
    _, data = results
    families = [row["family"] for row in data["rows"]]
    assert families == [
        "recraft-async",
        "recraft-async (warm)",
        "recraft-async (old prior)",
        "recraft-async (no read limit)",
        "recraft-async (no read limit) (warm)",
        "recraft-async (restarted)",
        "recraft-async (restarted) (warm)",
        "recraft-async (pool per job)",
        "recraft-async (pool per job) (warm)",
        "callbacks",
        "callbacks (warm)",
        "load",
        "naive",
        "fixed",
    ]


def test_numbers_are_sane(results):
    """Every job finishes; requests, latencies, CPU and RSS are finite and plausible."""
    _, data = results
    for row in data["rows"]:
        n = 3 if "warm" in row["family"] else N
        assert row["jobs"] == n, row
        assert row["errors"] == 0, row
        # Integer totals: per-job ratios of equal totals differ in their last bits.
        assert row["reads"] >= n
        assert row["requests"] >= row["reads"] + n  # a submit each
        # No wall-clock ceilings (a loaded machine is slow, not wrong): a task is detected
        # after it finishes, so no detection latency exceeds the whole batch's makespan.
        assert 0 <= row["latency_p50"] <= row["latency_p95"] <= row["makespan"]
        assert 0 < row["makespan"] < math.inf
        assert row["makespan_ratio"] > 0
        assert 0 < row["cpu_ms_per_job"] < math.inf
        assert 1 < row["peak_rss_mb"] < 2_000
        for value in row.values():
            assert not (isinstance(value, float) and math.isnan(value)), row


def test_callback_rows_read_about_once_per_job(results):
    """Driven by the emulator's callbacks (some lost), every job ends after about one read."""
    _, data = results
    rows = [r for r in data["rows"] if r["family"].startswith("callbacks")]
    assert len(rows) == 2
    for row in rows:
        n = 3 if "warm" in row["family"] else N
        assert row["errors"] == 0
        assert row["jobs"] == n
        # One confirming read per job; a lost callback's safety read finds the task done,
        # unless it came before a slow task's end.
        assert n <= row["reads"] <= 2 * n
        assert row["after_callback_p50"] is not None
        assert row["after_callback_p50"] >= 0


def test_load_row_keeps_the_read_budget(results):
    """The load row never had a status read refused, and its peak is within the budget."""
    _, data = results
    [row] = [r for r in data["rows"] if r["family"] == "load"]
    assert row["read_429s"] == 0
    assert 0 < row["peak_reads_per_second"] <= 10
    assert row["max_in_flight"] >= 1


def test_targets_table_is_written(results):
    """results.md ends with the targets, each said met or not."""
    out, _ = results
    table = (out / "results.md").read_text()
    assert "| target | measured | met? |" in table
    assert "CPU/request" in table


def test_recraft_async_paces_its_submits(results):
    """With submit_rate matching the emulator, recraft-async gets no 429."""
    _, data = results
    assert all(r["rate_limited"] == 0 for r in data["rows"] if r["family"].startswith("recraft"))


def test_queued_memory_is_measured(results):
    """The RSS per queued job is measured for recraft-async and for gathered coroutines."""
    _, data = results
    memory = data["queued_bytes_per_job"]
    assert memory["jobs"] == 2000
    assert math.isfinite(memory["queued-recraft"])
    assert math.isfinite(memory["queued-naive"])
    assert data["httpx_cpu_ms_per_request"] > 0


def test_table_and_plot_are_written(results):
    """results.md holds the table; polling.png exists when matplotlib is installed."""
    out, _ = results
    table = (out / "results.md").read_text()
    assert "| contender |" in table
    assert "fixed poll" in table
    assert "ratio" in table
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    assert (out / "polling.png").exists() == has_matplotlib


def test_the_oracle_is_never_beaten(results):
    """Every row's makespan is at least the oracle's; polling rows have a frontier."""
    _, data = results
    for row in data["rows"]:
        assert 0 < row["oracle_makespan"] <= row["makespan"], row
        if row["family"].startswith("callbacks"):
            assert row["frontier_p50"] is None
        else:
            assert 0 < row["frontier_p50"] <= row["frontier_p95"], row

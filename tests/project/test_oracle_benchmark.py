"""benchmarks/oracle.py: the oracle's makespan and the polling frontier the benchmarks use."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("numpy")
_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "oracle.py"
_SPEC = importlib.util.spec_from_file_location("oracle", _PATH)
assert _SPEC is not None
assert _SPEC.loader is not None
oracle = importlib.util.module_from_spec(_SPEC)
sys.modules["oracle"] = oracle  # attrs resolves the module's classes through it
_SPEC.loader.exec_module(oracle)


def test_the_oracle_submits_as_the_window_allows():
    """Two per 10 s: the 3rd and 4th submits leave at 10 s, the 5th at 20 s."""
    durations = [5.0, 1.0, 3.0, 0.5, 2.0]
    assert oracle.oracle_makespan(durations, 2, 10.0) == pytest.approx(22.0)
    assert oracle.oracle_makespan([30.0, 1.0, 1.0], 2, 10.0) == pytest.approx(30.0)


def test_durations_come_in_creation_order():
    """The emulator's task list, in any order, gives the durations by creation time."""
    tasks = [
        {"createTime": 2.0, "finishTime": 5.0},
        {"createTime": 1.0, "finishTime": 1.5},
    ]
    assert oracle.durations_in_order(tasks) == pytest.approx([0.5, 3.0])


def _fixed_interval(median, sigma, interval):
    """Reads per job and p50 delay of polling every ``interval`` seconds, exactly."""
    schedule = [interval * i for i in range(1, 400)]
    survival = [1 - oracle._cdf(median, sigma, t) for t in schedule]
    reads = 1 + sum(survival[:-1])
    return reads, oracle.delay_quantile(median, sigma, schedule, 0.5)


def test_the_frontier_beats_fixed_interval_polling_at_its_reads():
    """At the reads per job of 0.5 s polling, the frontier detects sooner (p50)."""
    reads, p50 = _fixed_interval(2.0, 0.5, 0.5)
    best = oracle.frontier(2.0, 0.5, reads)
    assert best.reads_per_job <= reads + 1e-9
    assert best.p50 < p50
    assert 0 < best.p50 <= best.p95


def test_more_reads_detect_sooner():
    """The frontier's mean delay falls as reads per job rise, and stays within budget."""
    found = [oracle.frontier(2.0, 0.5, k) for k in (2.0, 3.0, 6.0)]
    assert [f.reads_per_job <= k + 1e-9 for f, k in zip(found, (2, 3, 6), strict=True)] == [
        True
    ] * 3
    assert found[0].mean > found[1].mean > found[2].mean > 0
    assert not any(math.isnan(f.p95) for f in found)

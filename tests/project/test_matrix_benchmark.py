"""benchmarks/matrix.py: the robustness matrix runs, on virtual time, and holds its targets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "matrix.py"
_SPEC = importlib.util.spec_from_file_location("matrix", _PATH)
assert _SPEC is not None
assert _SPEC.loader is not None
matrix = importlib.util.module_from_spec(_SPEC)
sys.modules["matrix"] = matrix  # attrs resolves the module's classes through it
_SPEC.loader.exec_module(matrix)


# The matrix benchmark: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows():
    """One service (1 s and 20 s tasks, sigma 0.5), one job at a time and a bulk of 40."""
    return matrix.run([1.0, 20.0], [0.5], bulk=40, seed=matrix.SEED)


def _row(rows, pattern, median, contender, start="cold"):
    """The row of one contender in one cell."""
    return next(
        r
        for r in rows
        if r.cell.pattern == pattern
        and r.cell.median == median
        and r.contender == contender
        and r.start == start
    )


def test_every_contender_reports_every_cell(rows):
    """Four contenders, the default cold and warm, in each of the four cells."""
    assert len(rows) == 4 * 5
    assert all(r.jobs == r.cell.jobs for r in rows)  # every task ended and was found


def test_the_default_is_never_later_than_kies_advice(rows):
    """In every cell the default finds results no later than the advised schedule."""
    assert matrix.verdicts(rows)["later_than_advised"] == []


def test_the_default_reads_less_than_fixed_polling_in_bulk(rows):
    """In bulk the default reads less than fixed 2 s polling, and meets no 429 of its own."""
    assert matrix.verdicts(rows)["not_fewer_reads_than_fixed_2s_in_bulk"] == []
    assert _row(rows, "bulk", 20.0, "fixed 2 s").refused > 0


def test_a_warm_default_finds_one_second_tasks_first(rows):
    """Warm, one job at a time, 1 s tasks: found sooner than by fixed 2 s polling."""
    warm = _row(rows, "one at a time", 1.0, "default", "warm")
    fixed = _row(rows, "one at a time", 1.0, "fixed 2 s")
    assert warm.p50 < fixed.p50
    assert warm.p95 < fixed.p95


def test_the_table_names_every_row(rows):
    """The Markdown table has a line per row under its header."""
    assert len(matrix.table(rows).splitlines()) == 2 + len(rows)

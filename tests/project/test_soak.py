"""Short runs of the soak and of the kill-and-resume loop, asserting their targets.

The full runs (10,000 jobs, 20 kills) are benchmarks/README.md's; these keep the scripts
from rotting and the targets from regressing. Neither asserts anything about time.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("uvicorn") is None, reason="needs the emulator extra"
    ),
    pytest.mark.slow,  # benchmarks run as processes: in the full run, not the quick loop
]


def run(script, *options):
    """Run a benchmark script with --json; its exit status and report."""
    done = subprocess.run(  # noqa: S603 - our own scripts, loopback only
        [sys.executable, str(BENCHMARKS / script), *map(str, options), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_short_soak_meets_every_target(backend):
    """100 jobs through every fault kind: none hung, duplicated, wrong or untyped."""
    # Shorter delays than the full run's (the tail of a small run is its delay faults),
    # still beyond the client's timeout: a delayed answer is a lost one.
    options = ["--jobs", 100, "--check-downloads", 20, "--deadline", 240, "--delay", 1.5]
    code, report = run("soak.py", *options, "--http-timeout", 1, "--backend", backend)
    assert report["missed"] == [], report
    assert code == 0
    assert report["hung"] == 0
    assert report["duplicate_submits"] == 0
    assert report["tasks_for_unknown_inputs"] == 0
    assert report["non_recraft_errors"] == 0
    assert report["wrong_results"] == 0
    assert report["downloads"] == {"checked": 20, "mismatched": 0}
    assert report["paid_without_task_id_silent"] == 0
    assert sum(report["outcomes"].values()) == 100
    assert report["outcomes"]["succeeded"] > 0
    targets = {name.partition(":")[0] for name in report["faults_injected"]}
    assert {"submit", "status", "upload", "task"} <= targets
    assert report["resources"]["end"]["open_files"] > 0


def test_short_kill_and_resume_loses_nothing():
    """Three SIGKILLs, then resume: no duplicate, no missing, wrong or partial file."""
    # Kill moments from 0.1 s: once both batches are journalled, a resume with little left
    # can end within half a second, and a window starting there may never land a third
    # kill (seen on a loaded machine: 198 resumes in a row ended first).
    options = ["--rounds", 3, "--inputs", 6, "--kill-after", 0.1, 2, "--time-scale", 0.02]
    code, report = run("kill_resume.py", *options)
    assert report["missed"] == [], report
    assert code == 0
    assert report["kills"] >= 3
    assert report["runs_blocked_by_lock"] == 0
    assert report["duplicate_submits"] == 0
    assert report["missing_silent"] == 0
    assert report["wrong_outputs"] == 0
    assert report["partial_files"] == 0
    assert report["stray_files"] == []
    assert report["outputs_outside_out"] == []
    assert report["paid_without_task_id_silent"] == 0
    # Every input ends with its output, or is flagged UNCERTAIN (killed mid-submit).
    uncertain = report["journal_states"].get("UNCERTAIN", 0)
    assert report["outputs"] + uncertain == 12

"""In CI nothing may skip: conftest turns a skip into a failure when CI=true."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
PROBE = """
import pytest

def test_skips():
    pytest.skip("no server here")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    raise AssertionError
"""


# pytest run as a process: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_skip_fails_only_in_ci(tmp_path, ci, outcome):
    """Under CI=true the probe's skip is reported failed; elsewhere it stays a skip."""
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(TESTS)}
    env.pop("COVERAGE_PROCESS_START", None)
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "conftest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert outcome in run.stdout, run.stdout + run.stderr
    assert "1 xfailed" in run.stdout

"""The live suite: the doctor's checks against the real service (``pytest -m live``).

Deselected unless ``-m`` names ``live`` (see conftest), so CI neither runs nor skips it.
With ``KIE_API_KEY`` set it spends about 1.5 credits; ``KIE_BASE_URL`` is honoured.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import cli

pytestmark = pytest.mark.live


@pytest.fixture
def live_key() -> str:
    """The real key, from the environment; without one the live suite cannot run."""
    key = os.environ.get("KIE_API_KEY", "")
    if not key:
        pytest.skip("the live suite needs KIE_API_KEY")
    return key


def test_the_real_service_confirms_the_librarys_assumptions(live_key, tmp_path):
    """`recraft-async doctor --yes` against the real service: everything seen is confirmed."""
    trace = tmp_path / "trace.json"
    env = {"KIE_API_KEY": live_key}
    done = cli("doctor", "--yes", "--trace", trace, cwd=tmp_path, env=env, timeout=2000)
    assert live_key not in done.stdout + done.stderr
    assert live_key not in trace.read_text()
    findings = json.loads(trace.read_text())["findings"]
    different = [f for f in findings if f["verdict"] == "different"]
    assert done.returncode == 0, json.dumps(different, indent=2)

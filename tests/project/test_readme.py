"""The README's example runs as written against a loopback emulator."""

import os
import re
import sys
from pathlib import Path

import anyio
import pytest

from recraft_async.testing import KieEmulator, sample_images, serve

README = Path(__file__).parents[2] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_one_runnable_example():
    """The README carries a Python example that uses the public client."""
    blocks = _python_blocks()
    assert blocks
    assert "ra.AsyncRecraft(" in blocks[0]


@pytest.mark.anyio
async def test_readme_example_runs_against_a_local_server(tmp_path):
    """The first Python block, saved to a file and run, upscales real images offline."""
    script = tmp_path / "example.py"
    script.write_text(_python_blocks()[0])
    emulator = KieEmulator(time_scale=0.0005)
    urls = [emulator.add_image(name, data) for name, data in sample_images()[:3]]
    async with serve(emulator) as base_url:
        env = {**os.environ, "KIE_API_KEY": emulator.api_key, "KIE_BASE_URL": base_url}
        done = await anyio.run_process([sys.executable, str(script), *urls], env=env, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert all(base_url in line and "failed" not in line for line in lines)
    assert sum(emulator.stats.submits.values()) == 3

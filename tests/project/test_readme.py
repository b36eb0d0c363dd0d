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


@pytest.mark.slow
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


def _readme_lines():
    return README.read_text(encoding="utf-8").splitlines()


def test_readme_is_a_newcomers_page():
    """At most 300 lines, with its first Python example starting within the first 80."""
    lines = _readme_lines()
    assert len(lines) <= 300
    assert lines.index("```python") < 80


def test_readme_says_how_to_install_what_is_not_published():
    """Install from a clone or a built wheel, saying plainly the package is not on PyPI."""
    text = README.read_text(encoding="utf-8")
    assert "not on PyPI yet" in text
    assert ".whl[" in text


def test_readme_documents_the_emulators_key():
    """The offline run names the key the emulator accepts, the one it really uses."""
    assert KieEmulator().api_key in README.read_text(encoding="utf-8")


def test_ci_runs_the_readmes_test_command_verbatim():
    """.ci/run calls the README's test command, its install and its pytest, as written."""
    command = next(line for line in _readme_lines() if line.endswith("-m pytest"))
    script = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    install, _, run = command.partition(" && .venv/bin/python -m pytest")[0].partition(" && ")
    assert install == "python3 -m venv .venv"
    # The same install, through `python -m pip` and quietly, as the rest of .ci/run does.
    assert run.replace("pip install", "python -m pip install --quiet") in script
    assert "\nCOVERAGE_PROCESS_START=" in script
    assert ".venv/bin/python -m pytest\n" in script


def test_no_page_shows_installing_from_a_registry():
    """Nothing tells a user to ``pip install recraft-async``: the package is unpublished."""
    pages = [README, *(README.parent / "docs").rglob("*.md")]
    offenders = [
        page.name
        for page in pages
        if re.search(r"pip install '?recraft-async", page.read_text(encoding="utf-8"))
    ]
    assert not offenders


def test_ci_installs_and_runs_the_wheel_as_the_readme_says():
    """.ci/run runs the wheel check, which runs the README's example and its main job."""
    ci = README.parent / ".ci"
    assert "bash .ci/wheel_check.sh" in (ci / "run").read_text(encoding="utf-8")
    check = (ci / "wheel_check.sh").read_text(encoding="utf-8")
    main_job = next(line for line in _readme_lines() if "upscale samples --emulator" in line)
    for command in ("recraft-async samples", "recraft-async upscale samples --emulator"):
        assert command in main_job
        assert command in check
    assert "twine check --strict" in check
    assert "[cli,emulator]" in check

"""Outputs already there are skipped, unpaid, or replaced with --overwrite."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import EMULATOR_KEY, cli_in_process, emulator_process, save_image
from PIL import Image

pytest.importorskip("recraft_async.testing")


# End to end, with an emulator process: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


def submits(url: str) -> int:
    """How many submit requests the emulator at ``url`` has answered."""
    return int(httpx.get(f"{url}/_emulator/stats").json()["submit_requests"])


def run_on(url: str, *argv: str, cwd):
    """The command line against the emulator process at ``url``."""
    options = ["--base-url", url, "--poll-initial", "0.05"]
    return cli_in_process(*argv, *options, cwd=cwd, env={"KIE_API_KEY": EMULATOR_KEY})


@pytest.fixture
def three(tmp_path):
    """Three different images, a.png, b.png and c.png, in tmp_path/in."""
    for i, name in enumerate("abc"):
        save_image(tmp_path / "in" / f"{name}.png", (256, 256 + i))
    return tmp_path


def test_a_fresh_journal_skips_outputs_already_there_unpaid(three):
    """A second batch (another journal) into the same folder pays only for the new input."""
    with emulator_process("--time-scale", "0.01") as url:
        first = run_on(url, "upscale", "in/a.png", "in/b.png", "--out", "out", cwd=three)
        assert first.returncode == 0, first.stderr
        before = submits(url)
        again = run_on(url, "upscale", "in", "--out", "out", "--journal", "other.sqlite",
                       "--json", cwd=three)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert submits(url) == before + 1  # c.png only
    summary = json.loads(again.stdout)
    assert (summary["done"], summary["skipped"]) == (1, 2)
    assert {s["input"]: s["reason"] for s in summary["skipped_inputs"]} == {
        "in/a.png": "output exists",
        "in/b.png": "output exists",
    }
    assert sorted(p.name for p in (three / "out").glob("*.png")) == ["a.png", "b.png", "c.png"]


def test_changed_input_with_its_output_there_is_skipped_and_said(three):
    """An input edited since (a new fingerprint) is not paid for again: the text says so."""
    with emulator_process("--time-scale", "0.01") as url:
        assert run_on(url, "upscale", "in/a.png", "--out", "out", cwd=three).returncode == 0
        save_image(three / "in" / "a.png", (300, 300))  # other bytes, same name
        before = submits(url)
        again = run_on(url, "upscale", "in/a.png", "--out", "out", cwd=three)
        assert submits(url) == before
    assert again.returncode == 0, again.stderr
    assert "done: 0, skipped: 1 (output exists), failed: 0, uncertain: 0" in again.stdout
    assert [p.name for p in (three / "out").glob("*.png")] == ["a.png"]


def test_overwrite_processes_and_replaces_the_existing_output(three):
    """--overwrite pays for the input and its result replaces the file, under its name."""
    out = three / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"an old output")
    with emulator_process("--time-scale", "0.01") as url:
        run = run_on(url, "upscale", "in/a.png", "--out", "out", "--overwrite", "--json",
                     cwd=three)  # fmt: skip
        assert submits(url) == 1
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["done"] == 1
    assert [p.name for p in out.glob("*.png")] == ["a.png"]
    assert Image.open(out / "a.png").size == (512, 512)


def test_a_paid_input_is_finished_whatever_the_folder_holds(three):
    """The journal's paid input is never skipped: it is done from its task, not paid again."""
    with emulator_process("--time-scale", "0.01") as url:
        assert run_on(url, "upscale", "in/a.png", "--out", "out", cwd=three).returncode == 0
        before = submits(url)
        again = run_on(url, "upscale", "in/a.png", "--out", "out", "--json", cwd=three)
        assert submits(url) == before
    summary = json.loads(again.stdout)
    assert (summary["done"], summary["skipped"]) == (1, 0)

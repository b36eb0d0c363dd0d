"""The command line explains itself: --version, usage mistakes, URL inputs, waits, -v and -q."""

from __future__ import annotations

import json

import pytest
from conftest import EMULATOR_KEY, cli, cli_in_process, emulator_process, save_image

import recraft_async as ra
from recraft_async._bulk._inputs import expand_inputs

pytest.importorskip("recraft_async.testing")


@pytest.mark.slow
def test_version_prints_the_package_version(tmp_path):
    """--version prints "recraft-async <version>" and exits 0."""
    run = cli("--version", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"recraft-async {ra.__version__}"


def test_unknown_option_shows_the_subcommands_usage(tmp_path):
    """An unknown option exits 2 with the sub-command's usage, not the top level's."""
    run = cli_in_process("upscale", "a.png", "--frobnicate", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("usage: recraft-async upscale ")
    assert "recraft-async upscale: error: unrecognized arguments: --frobnicate" in run.stderr


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (["upscale", "a.png", "--concurency", "4"], "--concurrency"),
        (["remove-bg", "a.png", "--emulater"], "--emulator"),
        (["resume", "--retry-faild"], "--retry-failed"),
        (["upscale", "a.png", "--jsn"], "--json"),
    ],
)
def test_misspelt_option_gets_a_did_you_mean(tmp_path, args, meant):
    """A misspelt option exits 2, naming the option meant and showing the usage."""
    run = cli_in_process(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert f"did you mean {meant}?" in run.stderr
    assert run.stderr.startswith(f"usage: recraft-async {args[0]} ")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["remove-bg", "a.png", "--scale", "4"], "--scale does not apply to remove-bg"),
        (["remove-bg", "a.png", "--format=jpg"], "--format does not apply to remove-bg"),
        (["upscale", "a.png", "--retry-failed"], "--retry-failed does not apply to upscale"),
    ],
)
def test_option_of_another_subcommand_is_named_as_such(tmp_path, args, said):
    """An option of another sub-command exits 2, saying where it belongs."""
    run = cli_in_process(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert said in run.stderr
    assert run.stderr.startswith(f"usage: recraft-async {args[0]} ")
    assert not (tmp_path / "recraft-out").exists()


def test_misspelt_command_gets_a_did_you_mean(tmp_path):
    """A misspelt sub-command exits 2 with a suggestion."""
    run = cli_in_process("upscal", "a.png", cwd=tmp_path)
    assert run.returncode == 2
    assert "did you mean upscale?" in run.stderr


def test_quiet_and_verbose_are_exclusive(tmp_path):
    """-q with -v is a usage error of the sub-command."""
    run = cli_in_process("upscale", "a.png", "-q", "-v", cwd=tmp_path)
    assert run.returncode == 2
    assert "not allowed with argument" in run.stderr


@pytest.mark.parametrize("url", ["ftp://x.test/y.png", "s3://bucket/a.png", "file:///tmp/a.png"])
def test_non_http_url_is_a_problem_of_its_own(url, tmp_path, monkeypatch):
    """Another scheme is named as such, not looked up as a file."""
    monkeypatch.chdir(tmp_path)
    (item,) = expand_inputs([url])
    assert item.problem is not None
    assert item.problem.startswith(f"{url}: only http(s) URLs are accepted")
    assert "no such file" not in item.problem


@pytest.mark.slow
def test_non_http_url_input_fails_alone(tmp_path):
    """A non-http(s) URL fails with its reason (exit 1); the other inputs are processed."""
    save_image(tmp_path / "a.png", (300, 300))
    (tmp_path / "list.txt").write_text("s3://bucket/b.png\n")
    run = cli_in_process(
        "upscale", "a.png", "ftp://x.test/y.png", "@list.txt", "--emulator", "--json", cwd=tmp_path
    )
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert summary["done"] == 1
    reasons = {f["input"]: f["error"] for f in summary["failures"]}
    assert reasons == {
        "ftp://x.test/y.png": "only http(s) URLs are accepted",
        "s3://bucket/b.png": "only http(s) URLs are accepted",
    }


@pytest.mark.slow
def test_quiet_prints_the_summary_only(tmp_path):
    """-q: no progress lines on stderr; the summary on stdout."""
    save_image(tmp_path / "a.png", (300, 300))
    run = cli_in_process("upscale", "a.png", "--emulator", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert "done: 1, failed: 0, uncertain: 0" in run.stdout


@pytest.mark.slow
def test_verbose_shows_the_librarys_log_as_lines(tmp_path):
    """-v shows each job's life (info lines) as the command's own lines."""
    save_image(tmp_path / "a.png", (300, 300))
    run = cli_in_process("upscale", "a.png", "--emulator", "-v", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "recraft-async: info: job upscale submitted: task " in run.stderr
    assert "debug:" not in run.stderr
    plain = cli_in_process("upscale", "a.png", "--emulator", "--out", "o2", cwd=tmp_path)
    assert "info:" not in plain.stderr


@pytest.mark.slow
def test_throttled_wait_is_said_once(tmp_path):
    """A 429 with Retry-After holds the submits: plain output says so, once, with the wait."""
    for name in ("a", "b", "c"):
        save_image(tmp_path / f"{name}.png", (300, 300), mode="RGB")
    # The first submit answers 429, Retry-After 4 s (said from 2 s: the first status
    # tick, a second in, still sees 3); the rest are accepted.
    with emulator_process("--time-scale", "0.01", "--fault", "submit=http:429:4*1") as url:
        run = cli_in_process(
            "upscale", "a.png", "b.png", "c.png", "--base-url", url, "--poll-initial", "0.1",
            cwd=tmp_path, env={"KIE_API_KEY": EMULATOR_KEY}
        )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if "throttled" in line]
    assert len(lines) == 1, run.stderr
    assert "throttled, next submit in " in lines[0]
    assert "done: 3, failed: 0, uncertain: 0" in run.stdout

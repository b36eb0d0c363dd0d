"""Input mistakes on the command line exit 2 and make nothing; the emulator's own --help."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys

import pytest
from conftest import CLI_ENV, cli_in_process, journal_reaches, save_image

from recraft_async import cli as command
from recraft_async._core import _poll

pytest.importorskip("recraft_async.testing")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder holding one image, a.png, and no dialect in the environment."""
    monkeypatch.delenv("KIE_DIALECT", raising=False)
    save_image(tmp_path / "a.png", (64, 64))
    return tmp_path


@pytest.mark.parametrize(
    "argv",
    [
        ["upscale", "no-such-folder", "--emulator"],
        ["remove-bg", "a.png", "missing.png", "--emulator"],
        ["upscale", "@no-such-list.txt", "--emulator"],
        ["upscale", "a.png", "--emulator", "--poll-initial", "0"],
        ["upscale", "a.png", "--api-key-file", "no-such-key-file"],
        ["upscale", "a.png"],  # no key at all
        ["upscale", "a.png", "--base-url", "ftp://x.test"],
        ["upscale", "a.png", "--emulator", "--concurrency", "0"],
    ],
)
def test_input_mistakes_exit_2_and_make_nothing(workdir, argv):
    """A mistyped input or a bad option value: exit 2, no output folder, no journal."""
    run = cli_in_process(*argv, "--out", "out", cwd=workdir)
    assert run.returncode == 2
    assert sorted(p.name for p in workdir.iterdir()) == ["a.png"]
    assert "error:" in run.stderr


def test_missing_default_folder_is_not_created(workdir):
    """Without --out, a missing input makes no recraft-out folder either."""
    run = cli_in_process("upscale", "photos/", "--emulator", cwd=workdir)
    assert run.returncode == 2
    assert not (workdir / "recraft-out").exists()
    assert "photos/: no such file or folder" in run.stderr


@pytest.mark.slow
def test_a_lists_bad_line_still_fails_alone(workdir):
    """Inside an @list a missing file is that input's failure (exit 1); the rest is done."""
    (workdir / "list.txt").write_text("a.png\ngone.png\n")
    run = cli_in_process("upscale", "@list.txt", "--emulator", "--out", "out", cwd=workdir)
    assert run.returncode == 1
    assert "done: 1, failed: 1" in run.stdout


def test_emulator_help_names_the_command_it_was_run_as(tmp_path):
    """`recraft-async emulator --help` says recraft-async emulator, not python -m ..."""
    run = cli_in_process("emulator", "--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: recraft-async emulator ")
    assert "python -m recraft_async.testing [" not in run.stdout


def test_resume_hint_carries_every_option_resume_needs(monkeypatch):
    """The hint names the emulator, the dialect, the journal, the folder and the base URLs."""
    monkeypatch.delenv("KIE_DIALECT", raising=False)
    argv = ["upscale", "in", "--emulator", "--dialect", "recraft", "--out", "my out",
            "--journal", "j.sqlite", "--base-url", "http://127.0.0.1:9"]  # fmt: skip
    hint = command.resume_command(command.build_parser().parse_args(argv))
    words = shlex.split(hint)
    assert words[:2] == ["recraft-async", "resume"]
    again = command.build_parser().parse_args(words[1:])
    assert (again.emulator, again.dialect, str(again.out), str(again.journal)) == (
        True, "recraft", "my out", "j.sqlite",
    )  # fmt: skip
    assert again.base_url == "http://127.0.0.1:9"


def test_resume_hint_leaves_out_the_defaults_and_the_key(monkeypatch):
    """A default run's hint has no --emulator nor --dialect, and never the key."""
    monkeypatch.delenv("KIE_DIALECT", raising=False)
    args = command.build_parser().parse_args(["upscale", "in", "--api-key", "sk-secret"])
    hint = command.resume_command(args)
    assert hint == "recraft-async resume --journal recraft-out/journal.sqlite --out recraft-out"
    monkeypatch.setenv("KIE_DIALECT", "recraft")  # from the environment: said all the same
    assert command.resume_command(args).endswith(" --dialect recraft")


@pytest.mark.slow
def test_resume_hint_after_an_emulator_run_works_as_printed(tmp_path, monkeypatch):
    """Ctrl-C during an --emulator run: the printed hint, run as is, is no usage error."""
    # One more than a submit window (20 per 10 s): the run lasts seconds, and its resume,
    # left with at most 20 unsent, fits in one window.
    for i in range(21):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    proc = subprocess.Popen(
        [sys.executable, "-m", "recraft_async.cli", "upscale", "in", "--emulator", "--out", "o"],
        cwd=tmp_path, env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    journal_reaches(tmp_path / "o" / "journal.sqlite", lambda s: s.get("SUBMITTED", 0) >= 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    (hint,) = [line.strip() for line in err.splitlines() if "recraft-async resume" in line]
    assert "--emulator" in shlex.split(hint)
    assert "forgot the tasks it had started" in err  # and says what the resume can do
    # The resume's emulator is a new one, which never heard of the tasks submitted before
    # the signal: each is "not found" until the grace for a task just created is over.
    # That wait (10 s) is not what this test is about.
    monkeypatch.setattr(_poll, "NOT_FOUND_GRACE", 0.05)
    run = cli_in_process(*shlex.split(hint)[1:], cwd=tmp_path)
    assert run.returncode in (0, 1), run.stderr
    assert "error:" not in run.stderr

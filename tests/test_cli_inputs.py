"""Input mistakes on the command line exit 2 and make nothing; the emulator's own --help."""

from __future__ import annotations

import pytest
from conftest import cli, save_image

from recraft_async import cli as command

pytest.importorskip("recraft_async.testing")


def exit_status(*argv: str) -> int:
    """The exit status of ``recraft-async ARGV`` run in this process."""
    try:
        return command.main(list(argv))
    except SystemExit as exc:  # argparse and usage errors leave through parser.exit
        return int(exc.code or 0)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder holding one image, a.png, and no API key in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KIE_API_KEY", raising=False)
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
def test_input_mistakes_exit_2_and_make_nothing(workdir, argv, capsys):
    """A mistyped input or a bad option value: exit 2, no output folder, no journal."""
    assert exit_status(*argv, "--out", "out") == 2
    assert sorted(p.name for p in workdir.iterdir()) == ["a.png"]
    assert "error:" in capsys.readouterr().err


def test_missing_default_folder_is_not_created(workdir, capsys):
    """Without --out, a missing input makes no recraft-out folder either."""
    assert exit_status("upscale", "photos/", "--emulator") == 2
    assert not (workdir / "recraft-out").exists()
    assert "photos/: no such file or folder" in capsys.readouterr().err


def test_a_lists_bad_line_still_fails_alone(workdir, capsys):
    """Inside an @list a missing file is that input's failure (exit 1); the rest is done."""
    (workdir / "list.txt").write_text("a.png\ngone.png\n")
    assert exit_status("upscale", "@list.txt", "--emulator", "--out", "out") == 1
    assert "done: 1, failed: 1" in capsys.readouterr().out


def test_emulator_help_names_the_command_it_was_run_as(tmp_path):
    """`recraft-async emulator --help` says recraft-async emulator, not python -m ..."""
    run = cli("emulator", "--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: recraft-async emulator ")
    assert "python -m recraft_async.testing [" not in run.stdout

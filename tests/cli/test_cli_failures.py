"""The command line when inputs fail: local write errors, bad --out, reasons grouped.

The runs are in this process (``cli_in_process``), but for the progress bar's, which
needs a real terminal.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import threading

import pytest
from conftest import CLI_ENV, cli_in_process, emulator_process, images_in, save_image
from conftest import EMULATOR_KEY as KEY

import recraft_async._core._files as files


def _disk_full_for_img1(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk is "full" for img1's output alone: ENOSPC from the place step, as a real one."""
    place = files._place

    def full_for_img1(tmp, root, stem, ext, digest):
        if stem == "img1":
            raise OSError(errno.ENOSPC, "No space left on device")
        return place(tmp, root, stem, ext, digest)

    monkeypatch.setattr(files, "_place", full_for_img1)


# End to end, with servers and processes: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


def test_a_local_write_error_fails_one_input_and_resume_downloads_it(tmp_path):
    """Disk full for one output: that input fails alone, no traceback; resume fetches it unpaid."""
    for i in range(3):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    with emulator_process("--time-scale", "0.1", "--duration", "fixed:1") as url:
        common = ["--base-url", url, "--api-key", KEY, "--out", "out", "--poll-initial", "0.05",
                  "--json"]  # fmt: skip
        with pytest.MonkeyPatch.context() as patch:
            _disk_full_for_img1(patch)
            first = cli_in_process("upscale", "in", *common, cwd=tmp_path)
        before_resume = [p.name for p in images_in(tmp_path / "out")]
        resumed = cli_in_process("resume", *common, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    summary = json.loads(first.stdout)
    assert (summary["done"], summary["failed"], summary["uncertain"]) == (2, 1, 0)
    [failure] = summary["failures"]
    assert failure["input"].endswith("img1.png")
    assert failure["error"] == (
        "cannot save the result: No space left on device; `resume` downloads it again"
    )
    assert failure["task_id"]
    assert before_resume == ["img0.png", "img2.png"]
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(resumed.stdout)
    assert after["done"] == 3
    # The same task as the failed run's: downloaded again, not submitted again.
    [img1] = [o for o in after["outputs"] if o["input"].endswith("img1.png")]
    assert img1["task_id"] == failure["task_id"]
    assert [p.name for p in images_in(tmp_path / "out")] == ["img0.png", "img1.png", "img2.png"]


@pytest.mark.parametrize("command", ["upscale", "resume"])
def test_out_naming_a_file_is_a_usage_error_before_anything_runs(tmp_path, command):
    """--out pointing at an existing file exits 2 with a clear line; no journal is made."""
    save_image(tmp_path / "in" / "a.png", (256, 256))
    (tmp_path / "taken.png").write_bytes(b"the user's file")
    args = ["in"] if command == "upscale" else []
    run = cli_in_process(command, *args, "--emulator", "--out", "taken.png", cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "--out taken.png: a file, not a folder" in run.stderr
    assert "Traceback" not in run.stderr
    assert (tmp_path / "taken.png").read_bytes() == b"the user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "taken.png"]


def test_a_journal_refuses_a_second_output_folder(tmp_path):
    """A journal keeps its batch's --out: another one exits 2; no --out uses the journal's."""
    save_image(tmp_path / "in" / "a.png", (256, 256))
    first = cli_in_process(
        "upscale", "in", "--emulator", "--out", "a", "--journal", "j.sqlite", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    for command in (["upscale", "in"], ["resume"]):
        run = cli_in_process(
            *command, "--emulator", "--out", "b", "--journal", "j.sqlite", cwd=tmp_path
        )
        assert run.returncode == 2, run.stdout + run.stderr
        assert "the journal j.sqlite holds the outputs of" in run.stderr
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "b").exists()
    # Without --out, a new run with this journal writes where the batch did.
    save_image(tmp_path / "in" / "c.png", (300, 256))
    again = cli_in_process("upscale", "in", "--emulator", "--journal", "j.sqlite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in images_in(tmp_path / "a")] == ["a.png", "c.png"]
    assert not (tmp_path / "recraft-out").exists()


def _failing_batch(tmp_path, *extra):
    """Three tasks that fail for one reason, one success and one missing file (listed)."""
    for i in range(4):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    # In a list: a list's missing line fails alone; a missing argument would be exit 2.
    (tmp_path / "more.txt").write_text("nope1.png\n")
    with emulator_process("--time-scale", "0.1", "--duration", "fixed:1",
                          "--fault", "task=fail*3") as url:  # fmt: skip
        return cli_in_process(
            "upscale", "in", "@more.txt", "--base-url", url, "--api-key", KEY, "--out", "out",
            "--poll-initial", "0.05", *extra, cwd=tmp_path
        )  # fmt: skip


def test_failures_are_grouped_by_reason_in_the_summary(tmp_path):
    """Three tasks failed alike print one reason line with a count; no label is said twice."""
    run = _failing_batch(tmp_path)
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("done: 1, failed: 4, uncertain: 0")
    grouped = [line for line in lines if line.startswith("  failed     3 inputs: ")]
    assert len(grouped) == 1, run.stdout
    assert "task failed" in grouped[0] or "fail" in grouped[0]
    listed = lines[lines.index(grouped[0]) + 1]
    assert sum(f"img{i}.png" in listed for i in range(4)) == 3
    assert "  failed     nope1.png: no such file or folder" in lines
    assert run.stdout.count("nope1.png") == 1
    assert "nope1.png: nope1.png" not in run.stderr
    # The failed tasks' ids, all different, are not part of the reason.
    assert sum(line.startswith("  failed") for line in lines) == 2


def test_failures_are_grouped_by_reason_in_json(tmp_path):
    """--json lists each reason once, with its type, count and inputs; labels said once."""
    run = _failing_batch(tmp_path, "--json")
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    reasons = {(r["count"], r["type"]) for r in summary["failure_reasons"]}
    assert reasons == {(3, "TaskFailedError"), (1, None)}
    [missing] = [r for r in summary["failure_reasons"] if r["count"] == 1]
    assert missing == {"reason": "no such file or folder", "type": None, "count": 1,
                       "inputs": ["nope1.png"]}  # fmt: skip
    [tasks] = [r for r in summary["failure_reasons"] if r["count"] == 3]
    assert len(set(tasks["inputs"])) == 3
    assert all(f["task_id"] not in tasks["reason"] for f in summary["failures"] if f["task_id"])


@pytest.mark.skipif(sys.platform == "win32", reason="a pseudo-terminal is POSIX")
def test_the_bar_says_it_waits_on_processing(tmp_path):
    """On a terminal, while tasks process, the progress bar says "waiting on processing"."""
    import fcntl  # noqa: PLC0415 - POSIX only
    import pty  # noqa: PLC0415 - POSIX only
    import struct  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import termios  # noqa: PLC0415

    pytest.importorskip("rich")  # the bar is the `cli` extra's; plain lines say no waits
    save_image(tmp_path / "in" / "a.png", (256, 256))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    chunks: list[bytes] = []

    def drain():
        # The child blocks once the terminal's buffer is full: read all it writes.
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    # Processing takes 2 s; the bar is told what the run waits on every second.
    with emulator_process("--time-scale", "1", "--duration", "fixed:2") as url:
        env = {**CLI_ENV, "TERM": "xterm", "COLUMNS": "200", "LINES": "50"}
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "recraft_async.cli", "upscale", "in", "--base-url", url,
             "--api-key", KEY, "--out", "out", "--poll-initial", "0.05"],
            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        try:
            code = proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    reader.join(30)
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert code == 0, shown
    assert "waiting on processing (1 in flight)" in shown
    assert [p.name for p in images_in(tmp_path / "out")] == ["a.png"]


def test_a_refusing_result_host_is_passed_by_a_fresh_link(tmp_path):
    """The emulator's result host refuses one download (403): a fresh link saves it all the same."""
    for i in range(2):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    with emulator_process(
        "--time-scale", "0.1", "--duration", "fixed:1", "--fault", "result=http:403*1"
    ) as url:
        run = cli_in_process(
            "upscale", "in", "--base-url", url, "--api-key", KEY, "--out", "out", "--poll-initial",
            "0.05", "--json", cwd=tmp_path
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["done"] == 2
    assert [p.name for p in images_in(tmp_path / "out")] == ["img0.png", "img1.png"]


def test_an_expired_result_and_link_fail_typed_with_the_task_id(tmp_path):
    """Result URL and link both expired: the input fails as ResultUnavailableError, task kept."""
    save_image(tmp_path / "in" / "img0.png", (256, 256))
    with emulator_process(
        "--time-scale", "0.1", "--duration", "fixed:1",
        "--result-url-lifetime", "0", "--download-link-lifetime", "0",
    ) as url:  # fmt: skip
        run = cli_in_process(
            "upscale", "in", "--base-url", url, "--api-key", KEY, "--out", "out", "--poll-initial",
            "0.05", "--json", cwd=tmp_path
        )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    summary = json.loads(run.stdout)
    [failure] = summary["failures"]
    assert failure["task_id"]
    assert failure["error"].startswith("task result: download of http://127.0.0.1:")
    assert failure["error"].endswith("answered HTTP 403, and its fresh link too (HTTP 403)")
    [reason] = summary["failure_reasons"]
    assert reason["type"] == "ResultUnavailableError"

"""The command line after things went wrong: bad result URLs, kills, two runs at once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import pytest
from conftest import (
    CLI_ENV,
    cli_in_process,
    emulator_process,
    images_in,
    journal_reaches,
    no_partials,
    save_image,
)
from conftest import EMULATOR_KEY as KEY

from recraft_async import Journal
from recraft_async.testing import Duration, KieEmulator, serve
from recraft_async.testing._tasks import Task

# End to end, with servers and processes: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


class _BadResults(BaseHTTPRequestHandler):
    """Result URLs that no download can use: a redirect loop and a corrupt gzip body."""

    def log_message(self, *args):
        """Stay quiet."""

    def do_GET(self):
        """/loop redirects to itself; /gzip claims gzip and sends garbage."""
        if self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"\x1f\x8b\x08\x00 certainly not deflate data " * 20
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def bad_results():
    """A loopback server of unusable results; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BadResults)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def _hostile_urls(monkeypatch, bad: list[str]) -> None:
    """Give the first tasks the emulator creates the ``bad`` result URLs, one each."""
    given: dict[str, str | None] = {}
    original = Task.result_url

    def result_url(self, base_url):
        if self.task_id not in given:
            given[self.task_id] = bad.pop(0) if bad else None
        return given[self.task_id] or original(self, base_url)

    monkeypatch.setattr(Task, "result_url", result_url)


async def _cli(*args, cwd):
    """Run the command line in a subprocess without blocking the event loop."""
    command = [sys.executable, "-m", "recraft_async.cli", *map(str, args)]
    return await anyio.run_process(command, cwd=cwd, env=CLI_ENV, check=False)


@pytest.mark.anyio
async def test_bad_result_urls_fail_alone_and_resume_goes_on(tmp_path, monkeypatch, bad_results):
    """Four unusable result URLs fail their own inputs; the fifth succeeds, now and on resume."""
    for i in range(5):
        save_image(tmp_path / "in" / f"img{i}.png", (256 + i, 256))
    _hostile_urls(
        monkeypatch,
        [
            "http://127.0.0.1:99999/bad-port.png",
            "http://127.0.0.1/\x01control.png",
            f"{bad_results}/loop",
            f"{bad_results}/gzip",
        ],
    )
    emulator = KieEmulator(api_key=KEY, duration=Duration.fixed(0.05), time_scale=1.0)
    async with serve(emulator) as url:
        common = ["--base-url", url, "--api-key", KEY, "--out", "out", "--poll-initial", "0.05",
                  "--json"]  # fmt: skip
        runs = [await _cli("upscale", "in", *common, cwd=tmp_path)]
        runs += [await _cli("resume", *common, cwd=tmp_path) for _ in range(2)]
    for run in runs:
        stderr = run.stderr.decode()
        assert run.returncode == 1, stderr
        assert "Traceback" not in stderr
        summary = json.loads(run.stdout)
        assert (summary["done"], summary["failed"], summary["uncertain"]) == (1, 4, 0)
        assert all(f["error"] for f in summary["failures"])
    assert len(images_in(tmp_path / "out")) == 1
    assert no_partials(tmp_path)
    # Each image was paid for once: resume downloads again, it never submits again.
    assert len(emulator.stats.submits) == 5
    assert set(emulator.stats.submits.values()) == {1}


def test_resume_with_only_the_journal_writes_to_the_batch_folder(tmp_path):
    """`resume --journal J` (no --out) finishes into the folder the batch was started with."""
    for i in range(3):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with emulator_process("--time-scale", "0.1", "--duration", "fixed:1") as url:
        common = ["--base-url", url, "--api-key", KEY, "--poll-initial", "0.05", "--json"]
        first = cli_in_process(
            "upscale", "in", "--out", "batch-out", "--journal", "j.sqlite", *common, cwd=tmp_path
        )
        assert first.returncode == 0, first.stderr
        (tmp_path / "batch-out" / "img1.png").unlink()  # lost since: resume fetches it again
        run = cli_in_process("resume", "--journal", tmp_path / "j.sqlite", *common, cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in images_in(tmp_path / "batch-out")] == ["img0.png", "img1.png",
                                                                    "img2.png"]  # fmt: skip
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "recraft-out").exists()


def test_leftover_partial_downloads_are_removed_on_the_next_run(tmp_path):
    """A killed run's partial files go at the next run of its journal; other files stay."""
    save_image(tmp_path / "in" / "a.png", (256, 256))
    out = tmp_path / "out"
    out.mkdir()
    tag = Journal(out / "journal.sqlite").part_tag
    leftovers = [out / f".recraft-{tag}-k1l2m3.part", out / f".recraft-{tag}-x9.part"]
    for path in leftovers:
        path.write_bytes(b"half an image")
    (out / "notes.part").write_text("the user's own file")
    # Another batch's download in progress in the same folder (its own journal).
    theirs = out / f".recraft-{Journal(tmp_path / 'other.sqlite').part_tag}-q7.part"
    theirs.write_bytes(b"another batch's half image")
    run = cli_in_process("upscale", "in", "--emulator", "--out", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "removed 2 partial download(s)" in run.stdout + run.stderr
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".part") == sorted(
        ["notes.part", theirs.name]
    )
    assert [p.name for p in images_in(out)] == ["a.png"]


def test_two_runs_on_one_journal_the_second_is_refused(tmp_path):
    """A second run on a journal in use exits 1 at once with a clear line, no traceback."""
    for i in range(4):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    # Slow tasks keep the first run busy while the second starts.
    first = subprocess.Popen(
        [sys.executable, "-m", "recraft_async.cli", "emulator", "--port", "0",
         "--duration", "fixed:600", "--time-scale", "1"],
        env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    runner = None
    try:
        assert first.stdout is not None
        url = first.stdout.readline().strip()
        common = ["--base-url", url, "--api-key", KEY, "--out", "out"]
        runner = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "recraft_async.cli", "upscale", "in", *common],
            cwd=tmp_path, env=CLI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        journal = tmp_path / "out" / "journal.sqlite"
        journal_reaches(journal, lambda states: sum(states.values()) >= 4)
        second = cli_in_process("upscale", "in", *common, cwd=tmp_path)
        resumed = cli_in_process("resume", *common, cwd=tmp_path)
    finally:
        if runner is not None:
            runner.kill()
            runner.wait(10)
        first.kill()
        first.wait(10)
    for run in (second, resumed):
        assert run.returncode == 1, run.stdout + run.stderr
        assert "in use by another recraft-async run" in run.stderr
        assert f"process {runner.pid}" in run.stderr
        assert "Traceback" not in run.stderr

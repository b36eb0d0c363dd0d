"""End to end: the recraft-async command against loopback servers.

Most runs are in this process (``cli_in_process``): what they check is the command's
work, not the process. A process stays where it is the point: the exit status the OS
sees, a SIGKILL or SIGINT mid-batch.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from conftest import (
    CLI_ENV,
    cli,
    cli_in_process,
    emulator_process,
    images_in,
    journal_reaches,
    no_partials,
    save_image,
)
from conftest import EMULATOR_KEY as KEY
from PIL import Image

pytest.importorskip("recraft_async.testing")


# End to end, with servers and processes: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


@pytest.fixture
def emulator(tmp_path):
    """The emulator as its own process (its stats outlive a killed client)."""
    with emulator_process("--time-scale", "0.1", "--duration", "fixed:15") as url:
        yield url


def test_upscale_folder_with_builtin_emulator(tmp_path):
    """A folder of PNG/JPEG/WEBP is upscaled into valid images twice the size."""
    save_image(tmp_path / "in" / "a.png", (300, 200))
    save_image(tmp_path / "in" / "sub" / "b.jpg", (256, 256), "JPEG")
    save_image(tmp_path / "in" / "c.webp", (320, 240), "WEBP")
    run = cli_in_process("upscale", "in", "--emulator", "--out", "out", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["done"], summary["failed"], summary["uncertain"]) == (3, 0, 0)
    sizes = {p.name: Image.open(p).size for p in images_in(tmp_path / "out")}
    assert sizes == {"a.png": (600, 400), "b.png": (512, 512), "c.png": (640, 480)}
    assert no_partials(tmp_path)
    # Run again: everything is already done, nothing new is written.
    again = cli_in_process("upscale", "in", "--emulator", "--out", "out", "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert json.loads(again.stdout)["done"] == 3
    assert len(images_in(tmp_path / "out")) == 3


def test_summary_shows_the_credits_the_service_stated(tmp_path):
    """Two crisp upscales at 0.5 credits: the summary says 1 credit, in text and in JSON."""
    save_image(tmp_path / "in" / "a.png", (64, 64))
    save_image(tmp_path / "in" / "b.png", (64, 64))
    run = cli_in_process("upscale", "in", "--emulator", "--out", "out", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["credits"] == pytest.approx(1)
    save_image(tmp_path / "more" / "c.png", (64, 64))
    text = cli_in_process("upscale", "more", "--emulator", "--out", "out2", cwd=tmp_path)
    assert "done: 1, failed: 0, uncertain: 0, credits: 0.5 (" in text.stdout


def test_remove_bg_writes_transparent_png(tmp_path):
    """remove-bg answers a PNG with an alpha channel, named after the input."""
    save_image(tmp_path / "photo.jpg", (300, 300), "JPEG")
    run = cli_in_process("remove-bg", "photo.jpg", "--emulator", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    (out,) = images_in(tmp_path / "recraft-out")
    assert out.name == "photo.png"
    assert Image.open(out).mode == "RGBA"
    assert "done: 1, failed: 0, uncertain: 0" in run.stdout


def test_mixed_list_reports_each_problem_and_processes_the_rest(tmp_path):
    """Missing, non-image and too-large inputs fail with clear reasons; exit status 1."""
    save_image(tmp_path / "ok.png", (300, 300))
    (tmp_path / "notes.txt").write_text("not an image")
    big = tmp_path / "big.png"
    big.write_bytes(Image.new("RGB", (8, 8)).tobytes() + b"\0" * 10_600_000)
    big.write_bytes(save_image(tmp_path / "tmp.png", (300, 300)).read_bytes() + b"\0" * 10_600_000)
    (tmp_path / "list.txt").write_text("ok.png\nmissing.png\nnotes.txt\nbig.png\n")
    run = cli_in_process(
        "upscale", "@list.txt", "--emulator", "--out", "out", "--json", cwd=tmp_path
    )
    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert summary["done"] == 1
    reasons = {f["input"]: f["error"] for f in summary["failures"]}
    # The reason alone: the input is named beside it, once.
    assert reasons == {
        "missing.png": "no such file or folder",
        "notes.txt": "not a PNG, JPEG or WEBP image",
        "big.png": "10.6 MB is over the 10 MB limit for upscale",
    }
    assert [p.name for p in images_in(tmp_path / "out")] == ["ok.png"]


def test_usage_errors_exit_2(tmp_path):
    """No key, bad options, no journal or no inputs are usage errors."""
    save_image(tmp_path / "a.png", (300, 300))
    assert cli("upscale", "a.png", cwd=tmp_path).returncode == 2
    assert cli("upscale", "a.png", "--scale", "3", cwd=tmp_path).returncode == 2
    run = cli("resume", "--out", "nowhere", "--emulator", cwd=tmp_path)
    assert run.returncode == 2
    assert "no journal at nowhere/journal.sqlite" in run.stderr
    assert not (tmp_path / "nowhere").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    run = cli("upscale", "empty", "--emulator", cwd=tmp_path)
    assert run.returncode == 2
    assert "no image files" in run.stderr


def test_market_dialect_refuses_scale_and_format_as_usage_errors(tmp_path):
    """--scale/--format in the default (market) dialect exit 2 and say where they exist."""
    save_image(tmp_path / "a.png", (300, 300))
    for extra in (["--scale", "4"], ["--format", "jpg"]):
        run = cli_in_process("upscale", "a.png", "--emulator", *extra, cwd=tmp_path)
        assert run.returncode == 2, run.stderr
        assert "--dialect recraft" in run.stderr
    assert not (tmp_path / "recraft-out").exists()


def test_dialect_from_the_environment(tmp_path):
    """KIE_DIALECT=recraft lets --scale through; a misspelt KIE_DIALECT is a usage error."""
    save_image(tmp_path / "a.png", (300, 300))
    run = cli_in_process(
        "upscale", "a.png", "--emulator", "--scale", "4", "--json", cwd=tmp_path,
        env={"KIE_DIALECT": "recraft"}
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with Image.open(tmp_path / "recraft-out" / "a.png") as image:
        assert image.size == (1200, 1200)
    run = cli_in_process(
        "upscale", "a.png", "--emulator", cwd=tmp_path, env={"KIE_DIALECT": "marketplace"}
    )
    assert run.returncode == 2
    assert "KIE_DIALECT" in run.stderr


def test_account_error_stops_the_batch_in_one_line(tmp_path):
    """A 402 fails the batch once: nothing more is submitted, one summary line for all."""
    with emulator_process("--time-scale", "0.01", "--credits", "0") as url:
        for i in range(5):
            save_image(tmp_path / f"{i}.png", (300 + i, 300))  # five different images
        run = cli_in_process(
            "upscale", ".", "--base-url", url, "--api-key", KEY, "--concurrency", "1", cwd=tmp_path
        )
        assert run.returncode == 1
        lines = [line for line in run.stdout.splitlines() if "[402]" in line]
        assert len(lines) == 1, run.stdout
        assert "5 inputs" in lines[0]
        stats = httpx.get(f"{url}/_emulator/stats").json()
        assert stats["submit_requests"] == 1


def test_credits_against_emulator_process(tmp_path, emulator):
    """The credits command prints the balance; a wrong key fails without being shown."""
    run = cli_in_process(
        "credits", "--base-url", emulator, "--api-key", KEY, "--json", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"credits": 100000}
    secret = "sk-very-secret-123"
    run = cli_in_process("credits", "--base-url", emulator, "--api-key", secret, cwd=tmp_path)
    assert run.returncode == 1
    assert "[401]" in run.stderr
    assert secret not in run.stdout + run.stderr


def test_sigkill_mid_batch_then_resume(tmp_path, emulator):
    """Killed with SIGKILL mid-batch, `resume` finishes: no duplicate submit, no partial file."""
    for i in range(8):
        save_image(tmp_path / "in" / f"img{i}.png", (256 + i, 256))
    common = ["--base-url", emulator, "--api-key", KEY, "--out", "out", "--poll-initial", "0.2",
              "--concurrency", "4"]  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "recraft_async.cli", "upscale", "in", *common],
        cwd=tmp_path, env=CLI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    journal = tmp_path / "out" / "journal.sqlite"
    # Killed while four tasks are being polled and four wait their turn; a kill during a
    # submit request would rightly leave that input UNCERTAIN instead.
    states = journal_reaches(journal, lambda s: s.get("SUBMITTED") == 4 and s.get("PENDING") == 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert states == {"SUBMITTED": 4, "PENDING": 4}, states
    run = cli_in_process("resume", *common, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["done"] == 8
    outputs = images_in(tmp_path / "out")
    assert len(outputs) == 8
    for out in outputs:
        with Image.open(out) as image:
            image.load()
            assert image.size[1] == 512
    assert no_partials(tmp_path)
    # Running the original command again finds everything done and sends nothing.
    rerun = cli_in_process("upscale", "in", *common, "--json", cwd=tmp_path)
    assert rerun.returncode == 0
    assert json.loads(rerun.stdout)["done"] == 8
    stats = httpx.get(f"{emulator}/_emulator/stats").json()
    assert len(stats["submits"]) == 8
    assert {s["count"] for s in stats["submits"]} == {1}


def test_ctrl_c_stops_cleanly_with_resume_hint(tmp_path, emulator):
    """SIGINT mid-batch exits 130, says how to resume, and resume completes the batch."""
    for i in range(4):
        save_image(tmp_path / "in" / f"img{i}.png", (256, 256 + i))
    common = ["--base-url", emulator, "--api-key", KEY, "--out", "out", "--poll-initial", "0.2"]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "recraft_async.cli", "upscale", "in", *common],
        cwd=tmp_path, env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    journal_reaches(tmp_path / "out" / "journal.sqlite", lambda s: s.get("SUBMITTED", 0) >= 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "recraft-async resume" in err
    run = cli_in_process("resume", *common, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(images_in(tmp_path / "out")) == 4


class _HostileKie(BaseHTTPRequestHandler):
    """A fake KIE whose result URLs try to climb out of the output folder."""

    server: ThreadingHTTPServer
    png = b""

    def log_message(self, *args):
        """Stay quiet."""

    def _json(self, data):
        body = json.dumps({"code": 200, "msg": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        """Uploads and submits."""
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/api/file-stream-upload":
            self._json({"downloadUrl": f"{base}/files/in.png"})
        else:
            self._json({"taskId": "task-1"})

    def do_GET(self):
        """Status reads and result downloads."""
        base = f"http://127.0.0.1:{self.server.server_port}"
        if "record-info" in self.path:
            urls = [f"{base}/r/..%2F..%2F..%2Fescape.png?x=/../../e.png"]
            self._json({"taskId": "task-1", "successFlag": 1, "response": {"resultUrls": urls}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Disposition", 'attachment; filename="../../escape.png"')
        self.send_header("Content-Length", str(len(self.png)))
        self.end_headers()
        self.wfile.write(self.png)


def test_hostile_result_url_cannot_escape_output_folder(tmp_path):
    """A result URL named ../../escape.png still lands inside --out, under the input's name."""
    buffer = io.BytesIO()
    Image.new("RGB", (600, 600)).save(buffer, "PNG")
    _HostileKie.png = buffer.getvalue()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileKie)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        work = tmp_path / "deep" / "work"
        save_image(work / "in.png", (300, 300))
        url = f"http://127.0.0.1:{server.server_port}"
        run = cli_in_process(
            "upscale", "in.png", "--base-url", url, "--api-key", "k", "--out", "out",
            "--poll-initial", "0.05", "--dialect", "recraft", cwd=work
        )  # fmt: skip
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stdout + run.stderr
    assert [p.name for p in images_in(work / "out")] == ["in.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["work"]


def test_newcomer_flow_samples_then_upscale_4x_jpg(tmp_path):
    """`samples` draws images; the seed's upscale --scale 4 --format jpg writes 4x JPEGs."""
    made = cli_in_process("samples", "pics", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert len(images_in(tmp_path / "pics")) == 3
    run = cli_in_process(
        "upscale", "pics", "--emulator", "--dialect", "recraft", "--scale", "4", "--format", "jpg",
        cwd=tmp_path
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    outputs = images_in(tmp_path / "recraft-out")
    assert [p.suffix for p in outputs] == [".jpg"] * 3
    for out in outputs:
        with Image.open(out) as image:
            assert (image.format, image.size) == ("JPEG", (1024, 1024))


def test_url_input_is_named_after_the_url(tmp_path, emulator):
    """An http(s) INPUT is submitted as is; the output takes the URL's file name."""
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300)).save(buffer, "PNG")
    url = httpx.post(f"{emulator}/_emulator/images/cat.png", content=buffer.getvalue()).json()
    run = cli_in_process(
        "upscale", url["url"], "--base-url", emulator, "--api-key", KEY, "--poll-initial", "0.2",
        "--json", cwd=tmp_path
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["outputs"][0]["output"].endswith("recraft-out/cat.png")
    stats = httpx.get(f"{emulator}/_emulator/stats").json()
    assert stats["uploads"] == 0


def test_failed_task_is_retried_only_on_request(tmp_path):
    """A task the service failed is left alone by `resume`, and resent with --retry-failed."""
    with emulator_process("--time-scale", "0.01", "--fault", "task=fail*1") as url:
        save_image(tmp_path / "a.png", (300, 300))
        common = ["--base-url", url, "--api-key", KEY, "--poll-initial", "0.05"]
        first = cli_in_process("upscale", "a.png", *common, cwd=tmp_path)
        assert first.returncode == 1
        assert "failed     a.png: task" in first.stdout
        again = cli_in_process("resume", *common, cwd=tmp_path)
        assert again.returncode == 0
        assert "1 input(s) failed earlier" in again.stderr
        retry = cli_in_process("resume", "--retry-failed", *common, cwd=tmp_path)
        assert retry.returncode == 0, retry.stdout + retry.stderr
        assert [p.name for p in images_in(tmp_path / "recraft-out")] == ["a.png"]
        stats = httpx.get(f"{url}/_emulator/stats").json()
        assert [s["count"] for s in stats["submits"]] == [2]


def test_api_key_file_is_read_and_beats_the_environment(tmp_path, emulator):
    """--api-key-file reads the key (newline stripped), over $KIE_API_KEY, with no warning."""
    (tmp_path / "key.txt").write_text(f"  {KEY}\n")
    run = cli_in_process(
        "credits", "--base-url", emulator, "--api-key-file", "key.txt", "--json", cwd=tmp_path,
        env={"KIE_API_KEY": "sk-wrong-key"}
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"credits": 100000}
    assert run.stderr == ""
    assert "--api-key-file" in cli_in_process("credits", "--help", cwd=tmp_path).stdout


def test_api_key_option_warns_once_without_showing_the_key(tmp_path, emulator):
    """--api-key still works, with one stderr line saying the process list shows it."""
    run = cli_in_process("credits", "--base-url", emulator, "--api-key", KEY, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "process list" in line]
    assert len(warnings) == 1, run.stderr
    assert KEY not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read it"),
        ("", "is empty"),
        (" \n\n", "is empty"),
        ("sk-secret-in-file\nsk-secret-second-line\n", "key alone, on one line"),
        ("sk-secret in-file", "key alone, on one line"),
        (b"sk-secret-in-file\xff", "not UTF-8"),
        ("folder", "cannot read it"),
    ],
)
def test_unusable_api_key_file_is_a_usage_error(tmp_path, content, problem):
    """A missing, empty, multi-line, binary or unreadable key file exits 2, contents unshown."""
    path = tmp_path / "key.txt"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    run = cli_in_process(
        "credits", "--base-url", "https://127.0.0.1:9", "--api-key-file", path, cwd=tmp_path
    )
    assert run.returncode == 2
    assert problem in run.stderr
    assert f"--api-key-file {path}" in run.stderr
    assert "secret" not in run.stdout + run.stderr


def test_both_key_options_are_refused(tmp_path):
    """--api-key and --api-key-file together are a usage error, not a silent choice."""
    (tmp_path / "key.txt").write_text(KEY)
    run = cli_in_process(
        "credits", "--api-key", "sk-secret-x", "--api-key-file", "key.txt", cwd=tmp_path
    )
    assert run.returncode == 2
    assert "not allowed with argument" in run.stderr


def test_plain_http_to_localhost_is_refused_before_sending(tmp_path, emulator):
    """A name is resolved by DNS: plain http to localhost exits 2 and suggests 127.0.0.1."""
    by_name = emulator.replace("127.0.0.1", "localhost")
    run = cli_in_process("credits", "--base-url", by_name, cwd=tmp_path, env={"KIE_API_KEY": KEY})
    assert run.returncode == 2
    assert "http://127.0.0.1:<port>" in run.stderr
    assert KEY not in run.stdout + run.stderr
    assert run.stdout == ""

"""Four worker processes on one key and one Redis behave as one client (issue 14, point 6).

The emulator runs as its own process with KIE's limits scaled ten times faster on both
sides (submits 20 per 1 s, reads 10 per 0.1 s; the workers pace to the same), so the run
stays short. Every worker is given the same images; two run on asyncio, two on trio.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "benchmarks" / "fleet_worker.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
WORKERS = 4
IMAGES = 24


# Worker processes and a real redis-server: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


@contextlib.contextmanager
def emulator(*options):
    """The emulator as its own process; yields its base URL and a stored image's URL."""
    process = subprocess.Popen(  # noqa: S603 - our own module, loopback only
        [sys.executable, "-m", "recraft_async.testing", "--port", "0", "--samples", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        base_url = process.stdout.readline().strip()
        image = process.stderr.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert image.startswith(base_url)
        yield base_url, image
    finally:
        process.kill()
        process.wait(10)


def stats(base_url):
    """The emulator's counters."""
    with urllib.request.urlopen(base_url + "/_emulator/stats", timeout=10) as answer:  # noqa: S310
        return json.load(answer)


def worker_command(i, base_url, images, redis_url, ports):
    """The command line of worker ``i``: half on asyncio, half on trio."""
    return [
        sys.executable, str(WORKER), "--base-url", base_url,
        "--images", str(images), "--redis", redis_url,
        "--namespace", "fleet-test", "--backend", ("asyncio", "trio")[i % 2],
        "--submit-rate", "20/1", "--read-rate", "10/0.1",
        # A first status read only after 300 s: within this test, only a callback (or
        # attaching to a task already finished) can end a job.
        "--poll", "300,1.5,300,600",
        "--listen", str(ports[i]),
        # Callbacks go to the next worker: never to the one that submitted.
        "--callback-url", f"http://127.0.0.1:{ports[(i + 1) % WORKERS]}/hook",
    ]  # fmt: skip


def test_four_worker_processes_hold_the_limits_pay_once_and_get_every_callback(
    durable_redis_server, tmp_path
):
    """0 429s, each image submitted once, and every job ended by a callback to another worker."""
    with emulator(
        "--rate", "20/1", "--read-rate", "10/0.1", "--time-scale", "0.01",
        "--duration", "fixed:100",
    ) as (base_url, image):  # fmt: skip
        images = tmp_path / "images.json"
        images.write_text(json.dumps([f"{image}?n={i}" for i in range(IMAGES)]))
        ports = [free_port() for _ in range(WORKERS)]
        workers = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and script
                worker_command(i, base_url, images, durable_redis_server.url, ports),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
            )
            for i in range(WORKERS)
        ]
        try:
            for worker in workers:  # every client open and every listener up: then all go
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready"
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            reports = []
            for worker in workers:
                out, err = worker.communicate(timeout=60)
                assert worker.returncode == 0, err[-3000:]
                reports.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for worker in workers:  # none is left behind by a failed assertion
                worker.kill()
                worker.wait(10)
        seen = stats(base_url)
    assert [report["outcomes"] for report in reports] == [{"ok": IMAGES}] * WORKERS
    assert seen["rate_limited"] == 0
    assert seen["read_rate_limited"] == 0
    assert sorted(entry["count"] for entry in seen["submits"]) == [1] * IMAGES
    # Every worker's job for an image ended with the one task made for it.
    task_ids = [report["task_ids"] for report in reports]
    assert all(ids == task_ids[0] for ids in task_ids)
    assert seen["callbacks_delivered"] == IMAGES
    received = sum(sum(report["callbacks"].values()) for report in reports)
    assert received == IMAGES

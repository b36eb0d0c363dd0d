"""CPU per request with 10, 100 and 1,000 jobs in flight, through pools of two sizes.

The pool's own default against a pool sized to the jobs in flight (``max_in_flight + 8``,
the library's sizing before ``max_connections``).

    PYTHONPATH=. python benchmarks/pool_cpu.py                     # 10, 100, 1,000 jobs
    PYTHONPATH=. python benchmarks/pool_cpu.py --jobs 100 --seconds 10

Each measurement starts the emulator afresh (its own process, on loopback; tasks that
outlast the run), submits every job at once (no submit limit: all of them in flight
within a second, the pool's worst case: each opens a connection when none is free), then
counts, for ``--seconds``, this process's CPU time and the status reads the emulator
answered. The reads are paced by the default read budget (10 a second), on a poll
schedule ten times KIE's advised one (0.2 s growing by 1.5 to 1.5 s), so that 10 jobs
make several reads a second too. CPU ms per request = CPU time / status reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from contenders import API_KEY
from run import emulator_process

import recraft_async as ra

POLL = ra.PollPolicy(initial=0.2, factor=1.5, max_interval=1.5, timeout=3600.0)
SETTLE = 3.0  # seconds after the submits before measuring: the first reads' burst passes


def _stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url + "/_emulator/stats", timeout=30) as answer:  # noqa: S310 - loopback
        found: dict[str, int] = json.load(answer)
        return found


async def measure(
    base_url: str, image: str, jobs: int, pool: int, seconds: float, *, budget: bool
) -> tuple[float, int]:
    """CPU ms per status read with ``jobs`` in flight through a pool of ``pool``.

    And the connections the pool held at the end (how many it had to open).
    """
    submitted = asyncio.Event()
    count = 0

    def note(_job: object, event: ra.JobEvent) -> None:
        nonlocal count
        count += event.kind == "submitted"
        if count == jobs:
            submitted.set()

    async with ra.AsyncRecraft(
        api_key=API_KEY,
        base_url=base_url,
        max_in_flight=jobs,
        max_connections=pool,
        submit_rate=None,
        poll=POLL,
        read_rate=ra.AsyncRecraft(api_key="k").read_rate if budget else None,
        tracing=False,
        on_event=note,
    ) as client:
        for _ in range(jobs):
            client.upscale(image)
        await submitted.wait()
        await asyncio.sleep(SETTLE)
        before, cpu0 = _stats(base_url), time.process_time()
        await asyncio.sleep(seconds)
        after, cpu1 = _stats(base_url), time.process_time()
        connections = _connections(client)
        # The tasks would run for hours: stop them (their task ids are logged, muted here).
        await client.shutdown(grace=0)
    reads = after["status_reads"] - before["status_reads"]
    return 1000 * (cpu1 - cpu0) / max(reads, 1), connections


def _connections(client: ra.AsyncRecraft) -> int:
    """Connections in the client's pools (loopback goes through its plain-http mount)."""
    http = client._http  # noqa: SLF001 - a benchmark looks inside, on purpose
    assert http is not None  # noqa: S101 - the client is open
    transports = [http._transport, *http._mounts.values()]  # noqa: SLF001
    return sum(len(t._pool.connections) for t in transports if t is not None)  # type: ignore[attr-defined]  # noqa: SLF001


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every (jobs, pool) pair and print a Markdown table."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--jobs", type=int, nargs="+", default=[10, 100, 1000])
    cli.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    cli.add_argument(
        "--no-read-budget", action="store_true", help="read_rate=None: reads as they fall due"
    )
    args = cli.parse_args(argv)
    logging.getLogger("recraft_async").setLevel(logging.ERROR)  # the stopped jobs' warning
    default = ra.AsyncRecraft(api_key="k").max_connections
    lines = [
        (
            f"| jobs in flight | CPU ms/request, pool {default} (default) "
            "| CPU ms/request, pool max_in_flight + 8 |"
        ),
        "|---:|---:|---:|",
    ]
    for jobs in args.jobs:
        figures = []
        for pool in (default, jobs + 8):
            options = ["--rate", "none", "--read-rate", "none", "--duration", "fixed:36000"]
            with emulator_process(options) as (base_url, image):
                figures.append(
                    asyncio.run(
                        measure(
                            base_url,
                            image,
                            jobs,
                            pool,
                            args.seconds,
                            budget=not args.no_read_budget,
                        )
                    )
                )
        cells = [f"{ms:.2f} ({held} connections)" for ms, held in figures]
        lines.append(f"| {jobs:,} | " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

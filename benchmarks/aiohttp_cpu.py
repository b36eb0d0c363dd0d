"""CPU per job at the default settings: the library's own httpx pool against AioHttpClient.

    PYTHONPATH=. python benchmarks/aiohttp_cpu.py            # 40 jobs a row (about a minute)
    PYTHONPATH=. python benchmarks/aiohttp_cpu.py --n 150

Each row starts the emulator afresh (its own process, on loopback) with KIE's limits (20
submits per 10 s, 10 status reads a second) and the same seeded processing times (median
3 s), then runs ``--n`` upscales through ``AsyncRecraft`` at its defaults, on asyncio, with
its own pool or with ``http_client=AioHttpClient()``. CPU is this process's (user +
system) from the first submit to the last result, the client's set-up excluded; requests
are the submits and status reads the emulator answered. Target: at most 5 ms CPU per job
for the default setting (issue 23.4).
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

EMULATOR = ["--rate", "20/10", "--read-rate", "10/1", "--seed", "7"]
DURATIONS = "lognormal:median=3,sigma=0.5"
TARGET_MS_PER_JOB = 5.0


def _stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url + "/_emulator/stats", timeout=30) as answer:  # noqa: S310 - loopback
        found: dict[str, int] = json.load(answer)
        return found


async def run_batch(base_url: str, image: str, n: int, *, aiohttp: bool) -> tuple[float, float]:
    """CPU ms per job and per request for ``n`` jobs at the defaults."""
    http = ra.AioHttpClient() if aiohttp else None
    try:
        async with ra.AsyncRecraft(api_key=API_KEY, base_url=base_url, http_client=http) as client:
            before, cpu0 = _stats(base_url), time.process_time()
            jobs = [client.upscale(image) for _ in range(n)]
            for job in jobs:
                await job
            cpu = time.process_time() - cpu0
            after = _stats(base_url)
    finally:
        if http is not None:
            await http.aclose()
    requests = sum(after[k] - before[k] for k in ("submit_requests", "status_reads"))
    return 1000 * cpu / n, 1000 * cpu / max(requests, 1)


def main(argv: Sequence[str] | None = None) -> int:
    """One row per transport, as a Markdown table."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--n", type=int, default=40, help="jobs per row")
    args = cli.parse_args(argv)
    logging.getLogger("recraft_async").setLevel(logging.ERROR)
    lines = [
        "| transport (defaults, asyncio) | jobs | CPU ms/job | CPU ms/request | ≤ 5 ms/job |",
        "|---|---:|---:|---:|---|",
    ]
    for name, aiohttp in (("httpx (the library's own pool)", False), ("AioHttpClient", True)):
        with emulator_process([*EMULATOR, "--duration", DURATIONS]) as (base_url, image):
            per_job, per_request = asyncio.run(run_batch(base_url, image, args.n, aiohttp=aiohttp))
        met = "yes" if per_job <= TARGET_MS_PER_JOB else "no"
        lines.append(f"| {name} | {args.n} | {per_job:.2f} | {per_request:.2f} | {met} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

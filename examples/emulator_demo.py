# ruff: noqa: INP001, T201 - a script beside the package, printing its progress
"""Drive real jobs through the client against the KIE emulator, offline.

    python examples/emulator_demo.py out/ --jobs 60

The emulator serves on a loopback port with a realistic pace (a lognormal processing time,
scaled down) and a few injected faults; the client must finish every job and pay each
image once. Results are downloaded into the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
import httpx

import recraft_async as ra
from recraft_async.testing import Duration, Fault, KieEmulator, sample_images, serve


async def run(folder: Path, jobs: int) -> None:
    """Serve an emulator, run ``jobs`` jobs through the client, save the results."""
    emulator = KieEmulator(
        rate=ra.Rate(20, per=1.0),
        duration=Duration.lognormal(median=20.0, sigma=0.5),
        time_scale=0.02,
        seed=1,
    )
    emulator.faults.chance("status", Fault.http(500), 0.05)
    emulator.faults.chance("submit", Fault.http(503), 0.05)
    samples = sample_images(256)
    async with (
        serve(emulator) as base_url,
        httpx.AsyncClient() as http,
        ra.AsyncRecraft(
            api_key=emulator.api_key,
            base_url=base_url,
            submit_rate=ra.Rate(20, per=1.0),
            poll=ra.PollPolicy(initial=0.1, factor=1.5, max_interval=1.0),
        ) as client,
    ):
        urls = [emulator.add_image(f"{i}-{name}", data) for i, (name, data) in enumerate(samples)]
        batch = [
            client.upscale(urls[i % len(urls)])
            if i % 2
            else client.remove_background(urls[i % len(urls)])
            for i in range(jobs)
        ]
        async for job in client.as_completed(batch):
            result = await job
            target = anyio.Path(folder) / f"{job.operation.value}-{result.task_id}.png"
            await target.write_bytes((await http.get(result.url)).content)
            print(job.operation.value, result.task_id, "->", target)
    stats = emulator.stats
    print(
        f"{stats.tasks_created} tasks, {stats.status_reads} status reads, "
        f"{stats.rate_limited} rate-limited, faults {dict(stats.faults)}, "
        f"credits spent {stats.credits_spent:g}"
    )


def main() -> None:
    """Parse the command line and run the demo."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("folder", type=Path)
    cli.add_argument("--jobs", type=int, default=30)
    args = cli.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    anyio.run(run, args.folder, args.jobs)


if __name__ == "__main__":
    main()

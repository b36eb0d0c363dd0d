# ruff: noqa: INP001, T201 - a script beside the package, printing its progress
"""A batch on trio: start every upscale, save each result as soon as it is ready.

    pip install . trio                    # in a clone of recraft-async
    KIE_API_KEY=... python examples/trio_batch.py out/ a.png https://example.com/b.jpg ...

Every image (a local path or an http(s) URL) becomes a job at once; the client paces
their submits and status reads to KIE's limits. ``client.as_completed`` gives the jobs in
the order they finish, and each result is downloaded into the folder in a nursery, at
most ``--downloads`` at a time, while the other jobs go on. ``KIE_BASE_URL`` points it
elsewhere (an emulator).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import trio

import recraft_async as ra


def _image(arg: str) -> str | Path:
    """A URL stays a string; anything else is a local file's path."""
    return arg if arg.startswith(("http://", "https://")) else Path(arg)


async def save(
    client: ra.AsyncRecraft,
    job: ra.Job,
    folder: Path,
    limiter: trio.CapacityLimiter,
    failures: list[str],
) -> None:
    """Download one finished job's result into ``folder``."""
    async with limiter:
        try:
            path = await client.download(job.result(), folder)
        except ra.RecraftError as exc:
            failures.append(str(job.source))
            print(f"{job.source}: download failed: {exc}")
        else:
            print(f"{job.source} -> {path}")


async def main() -> int:
    """Upscale the images given on the command line and save them; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the results are saved")
    parser.add_argument("images", nargs="+", help="local paths or http(s) URLs")
    parser.add_argument("--downloads", type=int, default=4, help="downloads at once")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    limiter = trio.CapacityLimiter(args.downloads)
    failures: list[str] = []
    # KIE_API_KEY, KIE_BASE_URL from the environment.
    async with ra.AsyncRecraft() as client, trio.open_nursery() as nursery:
        jobs = [client.upscale(_image(image)) for image in args.images]
        async for job in client.as_completed(jobs):
            if job.exception() is not None:
                failures.append(str(job.source))
                print(f"{job.source}: failed: {job.exception()}")
                continue
            nursery.start_soon(save, client, job, args.folder, limiter, failures)
    print(f"{len(args.images) - len(failures)} saved, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(trio.run(main))

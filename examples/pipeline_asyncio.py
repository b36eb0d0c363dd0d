# ruff: noqa: INP001, T201 - a script beside the package, printing its progress
"""An asyncio pipeline: a producer, a bounded queue and N workers upscaling and saving.

    KIE_API_KEY=... python examples/pipeline_asyncio.py out/ --workers 4 a.png b.png ...

The producer puts each image (a local path or an http(s) URL) on an ``asyncio.Queue`` of
``--workers`` places and waits while it is full, so that a long list is never held as
pending jobs all at once. Each worker takes an image, awaits its upscale, saves the
result into the folder and takes the next: at most ``--workers`` images are in progress.
The workers share one client, which paces them all to KIE's limits; its ``max_queued``
bounds the jobs waiting for a turn across everything sharing the client, and
``enqueue_upscale`` waits for room there instead of raising ``QueueFullError``.
``KIE_BASE_URL`` points it elsewhere (an emulator).

(The library itself runs on anyio, under asyncio or trio; this example is plain asyncio.)
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

import recraft_async as ra

_DONE = None  # the marker a worker stops at, one per worker


def _image(arg: str) -> str | Path:
    """A URL stays a string; anything else is a local file's path."""
    return arg if arg.startswith(("http://", "https://")) else Path(arg)


async def produce(images: Sequence[str], queue: asyncio.Queue[str | None], workers: int) -> None:
    """Feed the images to the workers, waiting while the queue is full; then stop them."""
    for image in images:
        await queue.put(image)
    for _ in range(workers):
        await queue.put(_DONE)


async def upscale_one(client: ra.AsyncRecraft, image: str, folder: Path) -> bool:
    """Upscale one image and save its result; False (and a line said) if it failed."""
    try:
        job = await client.enqueue_upscale(_image(image))  # waits for room: max_queued
        result = await job
        path = await client.download(result, folder)
    except ra.RecraftError as exc:
        print(f"{image}: failed: {exc}")
        return False
    print(f"{image} -> {path}")
    return True


async def work(
    client: ra.AsyncRecraft, queue: asyncio.Queue[str | None], folder: Path, failures: list[str]
) -> None:
    """Take image after image from the queue until the stop marker comes."""
    while (image := await queue.get()) is not _DONE:
        if not await upscale_one(client, image, folder):
            failures.append(image)


async def main() -> int:
    """Run the pipeline over the images given on the command line; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the results are saved")
    parser.add_argument("images", nargs="+", help="local paths or http(s) URLs")
    parser.add_argument("--workers", type=int, default=4, help="images in progress at once")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=args.workers)
    failures: list[str] = []
    # KIE_API_KEY, KIE_BASE_URL from the environment.
    async with ra.AsyncRecraft(max_queued=2 * args.workers) as client:
        await asyncio.gather(
            produce(args.images, queue, args.workers),
            *(work(client, queue, args.folder, failures) for _ in range(args.workers)),
        )
    done = len(args.images) - len(failures)
    print(f"{done} saved, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

# ruff: noqa: INP001, T201 - a script beside the package, printing its progress
"""Upscale images with the blocking client: no async, no event loop of your own.

    KIE_API_KEY=... python examples/script_sync.py out/ photo.png https://example.com/b.jpg

Each image (a local path or an http(s) URL) is upscaled and its result saved into the
folder, in the order they finish. ``KIE_BASE_URL`` points it elsewhere (an emulator).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import recraft_async as ra


def _image(arg: str) -> str | Path:
    """A URL stays a string; anything else is a local file's path."""
    return arg if arg.startswith(("http://", "https://")) else Path(arg)


def main() -> None:
    """Upscale the images given on the command line and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the results are saved")
    parser.add_argument("images", nargs="+", help="local paths or http(s) URLs")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    with ra.Recraft() as client:  # KIE_API_KEY, KIE_BASE_URL from the environment
        jobs = [client.upscale(_image(image)) for image in args.images]
        for job in client.as_completed(jobs):
            try:
                path = client.download(job.result(), args.folder)
            except ra.RecraftError as exc:  # noqa: PERF203 - one line per failed image
                print(f"{job.source}: failed: {exc}")
            else:
                print(f"{job.source} -> {path}")
        print(f"credits left: {client.credits():g}")


if __name__ == "__main__":
    main()

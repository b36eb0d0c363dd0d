# ruff: noqa: INP001, T201 - a script beside the package, printing what it wrote
"""Write the emulator's drawn samples (subjects on plain backgrounds) as PNG files.

Usage: ``python examples/sample_images.py out/samples --size 512``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recraft_async.testing import sample_images


def main() -> None:
    """Draw the samples and save them as PNG files."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("folder", type=Path)
    cli.add_argument("--size", type=int, default=256)
    args = cli.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for name, data in sample_images(args.size):
        path = args.folder / name
        path.write_bytes(data)
        print(path)


if __name__ == "__main__":
    main()

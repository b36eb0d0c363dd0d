"""Start-up: ``import recraft_async`` against ``import httpx``, and ``recraft-async --version``.

    PYTHONPATH=. python benchmarks/startup.py            # 20 runs of each, interleaved
    PYTHONPATH=. python benchmarks/startup.py --runs 5 --modules 15

Each command runs ``--runs`` times in a fresh interpreter (hyperfine-style: runs of the
commands interleaved, so that a busy moment of the machine hits all of them alike); the
report gives the median and the minimum wall time of each, the ratio of the medians, and
``python -X importtime``'s heaviest modules that ``import recraft_async`` adds to
``import httpx``'s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def commands() -> dict[str, list[str]]:
    """The timed commands by label: the two imports and the CLI's --version."""
    cli = shutil.which("recraft-async", path=str(Path(PYTHON).parent)) or ""
    found = {
        "python (nothing imported)": [PYTHON, "-c", "pass"],
        "import httpx": [PYTHON, "-c", "import httpx"],
        "import recraft_async": [PYTHON, "-c", "import recraft_async"],
        # What a program using the client pays: the names are imported when first used.
        "from recraft_async import AsyncRecraft": [
            PYTHON,
            "-c",
            "from recraft_async import AsyncRecraft",
        ],
    }
    found["recraft-async --version"] = (
        [cli, "--version"] if cli else [PYTHON, "-m", "recraft_async.cli", "--version"]
    )
    return found


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def timings(runs: int) -> dict[str, list[float]]:
    """Wall seconds of every command, ``runs`` times each, interleaved (one warm-up run)."""
    found: dict[str, list[float]] = {label: [] for label in commands()}
    for attempt in range(runs + 1):
        for label, command in commands().items():
            began = time.perf_counter()
            subprocess.run(command, check=True, env=_env(), capture_output=True)  # noqa: S603
            if attempt:  # the first round warms the disk cache
                found[label].append(time.perf_counter() - began)
    return found


def import_times(statement: str) -> dict[str, int]:
    """``-X importtime``'s cumulative microseconds of every module ``statement`` loads."""
    done = subprocess.run(  # noqa: S603 - this interpreter
        [PYTHON, "-X", "importtime", "-c", statement],
        check=True,
        env=_env(),
        capture_output=True,
        text=True,
    )
    found = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|")
        found[name.strip()] = int(cumulative)
    return found


def added_modules(count: int) -> list[tuple[str, int]]:
    """The heaviest top-level packages recraft_async loads that httpx does not."""
    base = import_times("import httpx")
    ours = import_times("from recraft_async import AsyncRecraft")
    extra = {
        name: micros
        for name, micros in ours.items()
        if name not in base and "." not in name.removeprefix("recraft_async.")
    }
    return sorted(extra.items(), key=lambda item: -item[1])[:count]


def report(found: dict[str, list[float]], modules: Sequence[tuple[str, int]]) -> str:
    """The Markdown report."""
    lines = ["| command | median ms | min ms |", "|---|---:|---:|"]
    medians = {label: statistics.median(values) for label, values in found.items()}
    lines.extend(
        f"| `{label}` | {1000 * medians[label]:.0f} | {1000 * min(values):.0f} |"
        for label, values in found.items()
    )
    ratio = medians["import recraft_async"] / medians["import httpx"]
    client = medians["from recraft_async import AsyncRecraft"] / medians["import httpx"]
    version = 1000 * medians["recraft-async --version"]
    lines += [
        "",
        (
            f"`import recraft_async` / `import httpx` (medians): {ratio:.2f} (target <= 1.2); "
            f"with the client loaded: {client:.2f}; `recraft-async --version` {version:.0f} "
            "ms (target < 200 ms)."
        ),
        "",
        (
            "Heaviest modules the client (`from recraft_async import AsyncRecraft`) adds to "
            "`import httpx`'s (cumulative, one run of `-X importtime`):"
        ),
        "",
    ]
    lines.extend(f"- `{name}` {micros / 1000:.1f} ms" for name, micros in modules)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Time the commands and print the report."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--runs", type=int, default=20)
    cli.add_argument("--modules", type=int, default=12, help="heaviest added modules listed")
    args = cli.parse_args(argv)
    print(report(timings(args.runs), added_modules(args.modules)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

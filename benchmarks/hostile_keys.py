"""Hostile keys: the client and the command line given keys no header can carry as they are.

    PYTHONPATH=. python benchmarks/hostile_keys.py            # about half a minute
    PYTHONPATH=. python benchmarks/hostile_keys.py --json

The emulator runs as its own process on 127.0.0.1 and accepts one key, K. Each hostile
variant of K (a trailing CR, CRLF or space, as a Windows ``.env`` or a key file leaves
it; a NUL; a non-ASCII character; a CR inside) is given to ``AsyncRecraft`` (with a
journal, an ``on_event`` and the library's log captured) and to ``recraft-async
upscale`` (by ``$KIE_API_KEY``, or ``--api-key-file`` for the NUL no environment
variable can hold; text and ``--json``). Counted over every run:

- leaked: runs where any stretch of K (its first or second half) appears in an
  exception's text, repr or traceback, ``job.to_dict()``, the job's events, a log
  record, the command's stdout or stderr, or a journal row;
- tracebacks: a command that printed one, a client that raised anything but a
  ``RecraftError``;
- paid when refused: emulator tasks created by a key the library must refuse;
- uncertain: jobs reported ``SubmissionUncertainError``;
- hung: runs that did not end within ``--deadline`` seconds.

Keys with only surrounding whitespace are stripped and must run (``stripped ok``);
the others must be refused before anything is sent. Exits 1 when a count is not 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import traceback
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

import recraft_async as ra
from recraft_async.testing import sample_images

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import emulator_url  # noqa: E402 - a sibling script, found through the path above

KEY = "sk-probe-0123456789abcdef0123"
# name -> (key as given, whether surrounding-whitespace stripping makes it usable)
VARIANTS: dict[str, tuple[str, bool]] = {
    "trailing CR": (KEY + "\r", True),
    "trailing CRLF": (KEY + "\r\n", True),
    "trailing space": (KEY + " ", True),
    "NUL": (KEY + "\x00", False),
    "non-ASCII": (KEY[:8] + "é" + KEY[8:], False),
    "inner CR": (KEY[:8] + "\r" + KEY[8:], False),
}
DEADLINE = 120.0  # seconds a run may take before it counts as hung
POLL = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=30.0)


def shows_key(text: str) -> bool:
    """Whether ``text`` holds a usable stretch of the key: either half of it."""
    half = len(KEY) // 2
    return KEY[:half] in text or KEY[half:] in text


@contextmanager
def emulator() -> Iterator[str]:
    """The emulator as its own process on 127.0.0.1, accepting KEY; yields its URL."""
    with emulator_url(["--api-key", KEY, "--duration", "fixed:0", "--time-scale", "1"]) as url:
        yield url


def side_door(url: str, data: bytes | None = None) -> Any:
    """A GET (or, with ``data``, a PUT) to the emulator's side door, as JSON."""
    method = "GET" if data is None else "PUT"
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read())


def tasks_created(base_url: str) -> int:
    """How many tasks the emulator has created (each one paid)."""
    return int(side_door(f"{base_url}/_emulator/stats")["tasks_created"])


def journal_text(path: Path) -> str:
    """Every row of a journal, as text ("" when there is none)."""
    if not path.exists():
        return ""
    with sqlite3.connect(path) as conn:
        return repr(conn.execute("SELECT * FROM entries").fetchall())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(logging.Formatter().format(record))


async def client_run(base_url: str, image: str, key: str, work: Path) -> dict[str, Any]:
    """One job through AsyncRecraft with ``key``; what it showed and how it ended."""
    texts: list[str] = []
    events: list[ra.JobEvent] = []
    records = _Records()
    library = logging.getLogger("recraft_async")
    library.addHandler(records)
    library.setLevel(logging.DEBUG)
    outcome = "ok"
    journal_path = work / "client.sqlite"
    try:
        client = ra.AsyncRecraft(
            api_key=key,
            base_url=base_url,
            poll=POLL,
            journal=ra.Journal(journal_path),
            on_event=lambda _job, event: events.append(event),
        )
        async with client:
            job = client.upscale(image)
            try:
                await job
            finally:
                texts += [json.dumps(job.to_dict(), ensure_ascii=False), repr(job.events)]
    except ra.RecraftError as exc:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        outcome = "refused" if isinstance(exc, ra.InvalidInputError) else type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - what the probe counts: any other exception
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        outcome = "traceback"
    finally:
        library.removeHandler(records)
    texts += [repr(events), *records.texts, journal_text(journal_path)]
    return {"outcome": outcome, "leaked": any(shows_key(t) for t in texts)}


def cli_run(base_url: str, image: str, key: str, work: Path, *, as_json: bool) -> dict[str, Any]:
    """One ``recraft-async upscale`` with ``$KIE_API_KEY=key`` (a key file for a NUL)."""
    out = work / ("cli-json" if as_json else "cli-text")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KIE_API_KEY": "", "RECRAFT_LOG": "debug"}
    command = [sys.executable, "-m", "recraft_async.cli", "upscale", image,
               "--base-url", base_url, "--out", str(out), "--quiet"]  # fmt: skip
    if as_json:
        command.append("--json")
    if "\x00" in key:  # no environment variable can hold a NUL; a file can
        (work / "key.txt").write_text(key, encoding="utf-8")
        command += ["--api-key-file", str(work / "key.txt")]
    else:
        env["KIE_API_KEY"] = key
    run = subprocess.run(  # noqa: S603 - our own module, loopback only
        command, env=env, capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    texts = [run.stdout, run.stderr, journal_text(out / "journal.sqlite")]
    outcome = {0: "ok", 2: "refused"}.get(run.returncode, f"exit {run.returncode}")
    if "Traceback" in run.stderr:
        outcome = "traceback"
    if "uncertain: 1" in run.stdout or '"uncertain": 1' in run.stdout:
        outcome = "SubmissionUncertainError"
    return {"outcome": outcome, "leaked": any(shows_key(t) for t in texts)}


async def probe(base_url: str, image: str, work: Path) -> dict[str, Any]:
    """Every variant through every path; the counts and each run's outcome."""
    counts = dict.fromkeys(
        ("runs", "leaked", "tracebacks", "paid when refused", "uncertain", "hung", "stripped ok"), 0
    )
    runs: list[dict[str, Any]] = []
    for name, (key, usable) in VARIANTS.items():
        for path in ("client", "cli text", "cli --json"):
            folder = work / f"{name}-{path}".replace(" ", "_")
            folder.mkdir()
            before = tasks_created(base_url)
            try:
                if path == "client":
                    with anyio.fail_after(DEADLINE):
                        run = await client_run(base_url, image, key, folder)
                else:
                    as_json = path == "cli --json"
                    run = await anyio.to_thread.run_sync(
                        functools.partial(cli_run, base_url, image, key, folder, as_json=as_json)
                    )
            except (TimeoutError, subprocess.TimeoutExpired):
                run = {"outcome": "hung", "leaked": False}
            paid = tasks_created(base_url) - before
            runs.append({"variant": name, "path": path, "paid": paid, **run})
            counts["runs"] += 1
            counts["leaked"] += run["leaked"]
            counts["tracebacks"] += run["outcome"] == "traceback"
            counts["hung"] += run["outcome"] == "hung"
            counts["uncertain"] += run["outcome"] == "SubmissionUncertainError"
            counts["paid when refused"] += 0 if usable else paid
            counts["stripped ok"] += usable and run["outcome"] == "ok" and paid == 1
    return {"counts": counts, "runs": runs}


def main() -> int:
    """Run the probe; print its counts (or JSON); exit 1 unless every bad count is 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    args = parser.parse_args()
    image_bytes = dict(sample_images(256))["red-circle.png"]
    with emulator() as base_url, tempfile.TemporaryDirectory() as tmp:
        image = side_door(f"{base_url}/_emulator/images/probe.png", image_bytes)["url"]
        report = anyio.run(probe, base_url, image, Path(tmp))
    counts = report["counts"]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, value in counts.items():
            print(f"{name:>18}: {value}")
    usable = sum(1 for _, ok in VARIANTS.values() if ok) * 3
    bad = ("leaked", "tracebacks", "paid when refused", "uncertain", "hung")
    return 0 if all(counts[n] == 0 for n in bad) and counts["stripped ok"] == usable else 1


if __name__ == "__main__":
    sys.exit(main())

"""Hostile journal: a finished batch's journal damaged, then `upscale` again and `resume`.

    PYTHONPATH=. python benchmarks/hostile_journal.py              # 100 random trials
    PYTHONPATH=. python benchmarks/hostile_journal.py --trials 20 --inputs 4 --seed 3 --json

The emulator runs as its own process on 127.0.0.1 (its counters outlive every run). One
`recraft-async upscale` finishes a folder of distinct images; its output folder (journal
included) is kept. Then, for each damage, the folder is put back as it was, its journal
damaged, and `upscale` over the same inputs and `resume` each run once: every named
damage (an empty file, not SQLite, the table gone, a newer version, a key unlike its
index, a truncated file; a row with bad JSON, a wrong type, a missing task id, an
unknown state...), then seeded random trials (1 to 8 bytes flipped at random offsets, or
the file truncated at a random offset). It counts, over every run:

- paid twice: tasks the emulator created after the first batch (every input was done);
- tracebacks: a Python traceback on stderr;
- lost: inputs neither done nor reported (a run refused whole, exit 2 with a message
  naming the journal, reports them all: the journal is left as it was);
- hung: runs still going after ``--timeout`` seconds;
- odd exits: a status other than 0, 1 or 2, or exit 1 without a summary.

Each must be 0; the script exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import PYTHON, child_env, emulator_process  # noqa: E402 - sibling scripts, via HERE
from soak import make_image  # noqa: E402

KEY = "emulator-key"
COUNTS = ("runs", "paid_twice", "tracebacks", "lost", "hung", "odd_exits", "refused", "reported")
Damage = Callable[[Path, random.Random], None]


def _sql(statement: str) -> Damage:
    def damage(path: Path, _rng: random.Random) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(statement)
        conn.close()

    return damage


def _write(content: bytes) -> Damage:
    def damage(path: Path, _rng: random.Random) -> None:
        path.write_bytes(content)

    return damage


def _key_unlike_its_index(path: Path, _rng: random.Random) -> None:
    with sqlite3.connect(path) as conn:
        fp = conn.execute("SELECT fingerprint FROM entries LIMIT 1").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[data.index(fp.encode() + b"upscale")] ^= 1  # the table's copy, not the index's
    path.write_bytes(bytes(data))


def _flips(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    path.write_bytes(bytes(data))


def _truncation(path: Path, rng: random.Random) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: rng.randrange(len(data))])


_ROW = "UPDATE entries SET {} WHERE rowid = (SELECT min(rowid) FROM entries)"
NAMED: dict[str, Damage] = {
    "empty file": _write(b""),
    "not SQLite": _write(b"not a database\n" * 200),
    "table gone": _sql("DROP TABLE entries"),
    "other table": _sql("ALTER TABLE entries RENAME COLUMN error TO note"),
    "newer version": _sql("PRAGMA user_version=99"),
    "key unlike its index": _key_unlike_its_index,
    "row: bad JSON": _sql(_ROW.format("params='{oops'")),
    "row: wrong type": _sql(_ROW.format("created_at='yesterday'")),
    "row: blob": _sql(_ROW.format("result_urls=X'00ff'")),
    "row: missing task id": _sql(_ROW.format("task_id=NULL")),
    "row: unknown state": _sql(_ROW.format("state='ARCHIVED'")),
    "row: unknown operation": _sql(_ROW.format("operation='sharpen'")),
}


def main(argv: list[str] | None = None) -> int:
    """Run the probe; print its counts; 1 when any count that must be 0 is not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=6)
    parser.add_argument("--trials", type=int, default=100, help="random damages (100)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a run may take")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    damages = list(NAMED.items())
    damages += [
        (f"random {i}", _flips if rng.random() < 0.5 else _truncation) for i in range(args.trials)
    ]
    with (
        tempfile.TemporaryDirectory() as tmp,
        emulator_process(["--time-scale", "0.02"]) as (
            url,
            _,
        ),
    ):
        folder = Path(tmp)
        counts, by_damage = _probe(folder, url, args, damages, rng)
    failed = any(counts[k] for k in ("paid_twice", "tracebacks", "lost", "hung", "odd_exits"))
    if args.json:
        print(json.dumps({"counts": counts, "named": by_damage}, indent=2))
    else:
        for name, outcome in by_damage.items():
            print(f"{name:24} {outcome}")
        print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 1 if failed else 0


def _probe(
    folder: Path, url: str, args: argparse.Namespace, damages: list[tuple[str, Damage]],
    rng: random.Random,
) -> tuple[dict[str, int], dict[str, str]]:  # fmt: skip
    inputs = folder / "in"
    inputs.mkdir()
    labels = []
    for i in range(args.inputs):
        (inputs / f"img{i}.png").write_bytes(make_image(i, args.seed))
        labels.append(f"img{i}.png")
    common = ["--base-url", url, "--api-key", KEY, "--out", "out", "--json"]
    first = _cli(["upscale", "in", *common], folder, args.timeout)
    if first is None or first.returncode != 0:
        raise RuntimeError(f"the first batch failed: {first and first.stderr}")
    pristine = folder / "pristine"
    shutil.copytree(folder / "out", pristine)
    counts = dict.fromkeys(COUNTS, 0)
    by_damage: dict[str, str] = {}
    for name, damage in damages:
        seen = []
        for command in (["upscale", "in"], ["resume"]):
            shutil.rmtree(folder / "out")
            shutil.copytree(pristine, folder / "out")
            damage(folder / "out" / "journal.sqlite", rng)
            before = _submits(url)
            run = _cli([*command, *common], folder, args.timeout)
            counts["runs"] += 1
            counts["paid_twice"] += _submits(url) - before
            seen.append(_judge(run, labels, counts))
        said = " / ".join(seen)
        # The random trials are listed only when one went wrong.
        if not name.startswith("random") or any(w in said for w in ("hung", "summary", "LOST")):
            by_damage[name] = said
    return counts, by_damage


def _judge(
    run: subprocess.CompletedProcess[str] | None, labels: list[str], counts: dict[str, int]
) -> str:
    """Count what one run did; answer it in a word."""
    if run is None:
        counts["hung"] += 1
        return "hung"
    if "Traceback" in run.stderr:
        counts["tracebacks"] += 1
        return "no summary: " + run.stderr.strip()[-300:]
    if run.returncode == 2 and "cannot be read" in run.stderr:
        counts["refused"] += 1
        return "refused (exit 2)"
    try:
        summary = json.loads(run.stdout)
    except ValueError:
        counts["odd_exits"] += 1
        return f"exit {run.returncode}, no summary: {run.stderr.strip()[-200:]}"
    if run.returncode not in (0, 1):
        counts["odd_exits"] += 1
    # By file name: `upscale` says the inputs as given, `resume` as the journal holds them.
    outcomes = summary["outputs"] + summary["failures"] + summary["uncertain_inputs"]
    said = [Path(o["input"]).name for o in outcomes]
    lost = _unmatched(labels, said)
    counts["lost"] += lost
    counts["reported"] += summary["failed"] + summary["uncertain"]
    return (
        f"exit {run.returncode}: done {summary['done']}, reported "
        + str(summary["failed"] + summary["uncertain"])
        + (f", LOST {lost}" if lost else "")
    )


def _unmatched(labels: list[str], said: list[str]) -> int:
    """Inputs no outcome names; a label the damage mangled counts for the input it is closest to."""
    left = [label for label in labels if label not in said]
    others = [s for s in said if s not in labels]
    for label in list(left):
        close = difflib.get_close_matches(label, others, n=1, cutoff=0.6)
        if close:
            left.remove(label)
            others.remove(close[0])
    return len(left)


def _cli(
    arguments: list[str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(  # noqa: S603 - our own interpreter and module, loopback only
            [PYTHON, "-m", "recraft_async.cli", *arguments],
            cwd=cwd, env={**child_env(), "NO_COLOR": "1"}, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None


def _submits(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=30) as answer:  # noqa: S310
        stats: dict[str, Any] = json.load(answer)
    return sum(int(s["count"]) for s in stats["submits"])


if __name__ == "__main__":
    sys.exit(main())

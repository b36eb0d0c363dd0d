"""Kill and resume: the command line SIGKILLed at random moments, then finished by resume.

    PYTHONPATH=. python benchmarks/kill_resume.py               # 20 kills, about 2 minutes
    PYTHONPATH=. python benchmarks/kill_resume.py --rounds 3 --inputs 8 --json

The emulator runs as its own process on 127.0.0.1 (its counters outlive every killed
client), with KIE's rate limits and occasional faults. Over a folder of distinct images
for each operation, each round starts ``recraft-async`` and SIGKILLs it at a random
moment: ``upscale`` until its inputs are all journalled, then ``remove-bg`` likewise,
then ``resume --journal J`` (no ``--out``: resume must find the batch's folder itself).
After the kills, ``resume`` runs to its end. Then it counts duplicate submits (the
emulator's tasks per input image), missing and wrong outputs, partial and stray files,
runs blocked by a stale journal lock, and paid tasks whose id the journal does not hold;
it exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import emulator_url, machine  # noqa: E402 - sibling scripts, found via HERE
from soak import make_image  # noqa: E402

from recraft_async.testing import _images as images  # noqa: E402

KEY = "emulator-key"
PREFIX = {"upscale": "up", "remove-background": "bg"}  # by the journal's operation names
COMMAND = {"upscale": "upscale", "remove-background": "remove-bg"}
# Faults the batch must recover from without a trace: status reads and uploads of every
# kind (half of them processed), submits the service refuses (resent), tasks at first
# "not found". Lost submit answers and failed tasks are the soak's: here they would only
# add inputs that are rightly left undone (uncertain or failed) to the missing count.
FAULTS = (
    *(
        f"{target}={spec}"
        for target in ("status", "upload")
        for spec in (
            "http:503",
            "http:500+processed",
            "body:455",
            "body:500+processed",
            "drop",
            "drop+processed",
            "delay:3",
            "delay:3+processed",
            "nonjson:502",
            "nonjson:502+processed",
        )
    ),
    "submit=http:503",
    "submit=body:455",
    "task=notfound",
)


@attrs.frozen
class Config:
    """One kill-and-resume run."""

    rounds: int = 20
    inputs: int = 60  # per operation
    seed: int = 1
    fault_rate: float = 0.02
    time_scale: float = 0.05  # median processing 1 s
    kill_after: tuple[float, float] = (0.3, 4.0)  # a kill's moment, seconds after start
    max_runs: int = 200  # rounds that end by themselves count too; a safety stop


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "KIE_API_KEY": KEY, "NO_COLOR": "1"}


@contextmanager
def emulator(config: Config) -> Iterator[str]:
    """The emulator as its own process; yields its base URL."""
    options = [
        "--time-scale", str(config.time_scale),
        "--duration", "lognormal:median=20,sigma=0.5", "--seed", str(config.seed),
    ]  # fmt: skip
    if config.fault_rate > 0:
        for fault in FAULTS:
            options += ["--fault", f"{fault}@{config.fault_rate:g}"]
    with emulator_url(options) as url:
        yield url


def get(url: str) -> bytes:
    """A GET to the emulator's side door."""
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback only
        data: bytes = answer.read()
    return data


Inputs = dict[str, tuple[str, str, bytes]]  # digest -> (operation, file stem, image)


def make_inputs(config: Config, folder: Path) -> Inputs:
    """Distinct images per operation under ``folder``, by their digest."""
    found: Inputs = {}
    for n, operation in enumerate(PREFIX):
        where = folder / PREFIX[operation]
        where.mkdir(parents=True)
        for i in range(config.inputs):
            data = make_image(n * config.inputs + i, config.seed)
            stem = f"{PREFIX[operation]}-{i:04d}"
            (where / f"{stem}.png").write_bytes(data)
            found[hashlib.sha256(data).hexdigest()] = (operation, stem, data)
    return found


def journal_rows(path: Path) -> list[tuple[str, str, str, str | None]]:
    """(operation, source, state, task_id) of every journal entry; [] when none yet."""
    if not path.exists():
        return []
    # Read-write, between runs only: a killed run may leave a hot rollback journal, which
    # only a writable connection recovers (a read-only one fails to open the database).
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            rows = conn.execute("SELECT operation, source, state, task_id FROM entries").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # killed before the schema was written
            return []
        raise
    return [(str(a), str(b), str(c), d) for a, b, c, d in rows]


def partials(folder: Path) -> list[Path]:
    """Partial downloads (``*.part``) anywhere under ``folder``."""
    return [p for p in folder.rglob("*") if p.name.endswith(".part")] if folder.exists() else []


def command_for(config: Config, work: Path, journal: Path, out: Path) -> list[str]:
    """The round's command: the batches until every input is journalled, then resume."""
    counts = collections.Counter(row[0] for row in journal_rows(journal))
    common = ["--journal", str(journal), "--poll-initial", "0.1", "--concurrency", "8"]
    for operation, prefix in PREFIX.items():
        if counts[operation] < config.inputs:
            folder = work / "in" / prefix
            return [COMMAND[operation], str(folder), "--out", str(out), *common]
    return ["resume", *common]


def run_cli(args: list[str], base_url: str, work: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``recraft-async ARGS`` against the emulator, output to ``log``."""
    with log.open("ab") as sink:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "recraft_async.cli", *args,
             "--base-url", base_url],
            cwd=work, env=_env(), stdout=sink, stderr=sink,
        )  # fmt: skip


def kill_rounds(config: Config, base_url: str, work: Path) -> dict[str, Any]:
    """Start, SIGKILL at a random moment, repeat until ``config.rounds`` kills landed."""
    rng = random.Random(config.seed)
    journal, out, log = work / "journal.sqlite", work / "out", work / "cli.log"
    kills = runs = blocked = 0
    ended: collections.Counter[str] = collections.Counter()
    parts_after_kill: list[int] = []
    commands: collections.Counter[str] = collections.Counter()
    while kills < config.rounds and runs < config.max_runs:
        args = command_for(config, work, journal, out)
        commands[args[0]] += 1
        mark = log.stat().st_size if log.exists() else 0
        process = run_cli(args, base_url, work, log)
        runs += 1
        try:
            process.wait(rng.uniform(*config.kill_after))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            kills += 1
            parts_after_kill.append(len(partials(out)))
        else:
            ended[str(process.returncode)] += 1
        with log.open("rb") as text:
            text.seek(mark)
            if b"in use by another" in text.read():
                blocked += 1
    return {
        "kills": kills,
        "runs": runs,
        "commands": dict(commands),
        "runs_ended_by_themselves": dict(ended),
        "runs_blocked_by_lock": blocked,
        "part_files_after_a_kill_max": max(parts_after_kill, default=0),
    }


def finish(config: Config, base_url: str, work: Path) -> dict[str, Any]:
    """Each batch whose inputs are not all journalled yet, then ``resume``, run to the end.

    ``resume`` runs again while it changes anything (at most three times).
    """
    journal, out = work / "journal.sqlite", work / "out"
    batches, codes = [], []
    while True:
        args = command_for(config, work, journal, out)
        before = journal_rows(journal)
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "recraft_async.cli", *args, "--base-url", base_url, "--json"],
            cwd=work, env=_env(), capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if args[0] != "resume":
            batches.append(done.returncode)
            if len(batches) > len(PREFIX):
                break  # a batch that cannot journal its inputs: the audit tells
            continue
        codes.append(done.returncode)
        if done.returncode == 0 or journal_rows(journal) == before or len(codes) == 3:
            break
    return {
        "final_batch_exit_codes": batches,
        "final_resume_exit_codes": codes,
        "final_resume_stderr": done.stderr[-2000:],
    }


def audit(config: Config, base_url: str, work: Path, inputs: Inputs) -> dict[str, Any]:
    """Duplicates, missing, wrong, partial and stray files, lost task ids."""
    out = work / "out"
    tasks = json.loads(get(f"{base_url}/_emulator/tasks"))["tasks"]
    stats = json.loads(get(f"{base_url}/_emulator/stats"))
    per_input: collections.Counter[tuple[str, str | None]] = collections.Counter()
    digest_of: dict[str, str | None] = {}
    for task in tasks:
        try:
            digest: str | None = hashlib.sha256(get(task["imageUrl"])).hexdigest()
        except OSError:
            digest = None
        digest_of[task["taskId"]] = digest
        per_input[(task["operation"], digest)] += 1
    rows = journal_rows(work / "journal.sqlite")
    states = collections.Counter(row[2] for row in rows)
    state_of = {hashlib.sha256(Path(row[1]).read_bytes()).hexdigest(): row[2] for row in rows}
    journal_ids = {row[3] for row in rows if row[3]}
    missing: collections.Counter[str] = collections.Counter()
    wrong = 0
    expected: set[Path] = set()
    for digest, (operation, stem, data) in inputs.items():
        path = out / f"{stem}.png"
        expected.add(path)
        if not path.is_file():
            missing[state_of.get(digest, "not journalled")] += 1
            continue
        if operation == "upscale":
            want = images.upscale(data, 2, "PNG")
        else:
            want = images.remove_background(data)
        wrong += path.read_bytes() != want
    present = {p for p in out.rglob("*") if p.is_file()} if out.exists() else set()
    stray = sorted(
        str(p.relative_to(work)) for p in present - expected if not p.name.endswith(".part")
    )
    outside = sorted(
        str(p.relative_to(work)) for p in work.rglob("*.png")
        if p.is_file() and not p.is_relative_to(out) and not p.is_relative_to(work / "in")
    )  # fmt: skip
    uncertain = [d for d, state in state_of.items() if state == "UNCERTAIN"]
    unpaid = [d for d in uncertain if per_input[(inputs[d][0], d)] == 0]
    # Every task but a "creation failed" one (outcome 3) is charged.
    lost = [t for t in tasks if t["outcome"] != 3 and t["taskId"] not in journal_ids]
    flagged = [t for t in lost if state_of.get(digest_of[t["taskId"]] or "") == "UNCERTAIN"]
    return {
        "config": {**attrs.asdict(config), "kill_after": list(config.kill_after)},
        "inputs": len(inputs),
        "tasks_created": len(tasks),
        "submit_requests": stats["submit_requests"],
        "submits_refused_429": stats["rate_limited"],
        "duplicate_submits": sum(n - 1 for n in per_input.values() if n > 1),
        "tasks_for_unknown_inputs": sum(
            n for (_, digest), n in per_input.items() if digest not in inputs
        ),
        "journal_states": dict(states),
        "outputs": len(inputs) - sum(missing.values()),
        "missing_outputs": sum(missing.values()),
        "missing_by_journal_state": dict(missing),
        "missing_silent": sum(n for state, n in missing.items() if state != "UNCERTAIN"),
        "uncertain_without_a_task": len(unpaid),
        "wrong_outputs": wrong,
        "partial_files": len(partials(work)),
        "stray_files": stray[:20],
        "outputs_outside_out": outside[:20],
        "paid_without_task_id": len(lost),
        "paid_without_task_id_flagged_uncertain": len(flagged),
        "paid_without_task_id_silent": len(lost) - len(flagged),
    }


def kill_resume(config: Config, keep: Path | None = None) -> dict[str, Any]:
    """Run every round and the final resume; the report (``missed``: targets missed)."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="recraft-kill-") as tmp:
        work = keep if keep is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        inputs = make_inputs(config, work / "in")
        with emulator(config) as base_url:
            report = kill_rounds(config, base_url, work)
            report.update(finish(config, base_url, work))
            report.update(audit(config, base_url, work, inputs))
    report["wall_s"] = round(time.monotonic() - began, 1)
    report["machine"] = machine()
    checks = {
        f">= {config.rounds} kills": report["kills"] >= config.rounds,
        "0 runs blocked by a stale lock": report["runs_blocked_by_lock"] == 0,
        "0 duplicate submits": report["duplicate_submits"] == 0,
        "0 tasks for unknown inputs": report["tasks_for_unknown_inputs"] == 0,
        "0 missing outputs (beyond inputs flagged UNCERTAIN)": report["missing_silent"] == 0,
        "0 wrong outputs": report["wrong_outputs"] == 0,
        "0 partial files": report["partial_files"] == 0,
        "0 stray files": not report["stray_files"] and not report["outputs_outside_out"],
        "0 paid results lost silently": report["paid_without_task_id_silent"] == 0,
    }
    report["missed"] = [name for name, ok in checks.items() if not ok]
    return report


def text(report: dict[str, Any]) -> str:
    """The report for people."""
    cfg = report["config"]
    lines = [
        (
            f"kill-and-resume: {report['inputs']} images ({cfg['inputs']} per operation), "
            f"{report['kills']} SIGKILLs in {report['runs']} runs "
            f"({json.dumps(report['commands'])}), kill moments uniform in "
            f"{cfg['kill_after'][0]:g}-{cfg['kill_after'][1]:g} s, fault rate {cfg['fault_rate']:g}"
        ),
        (
            f"runs that ended before their kill (exit code: runs): "
            f"{json.dumps(report['runs_ended_by_themselves'])}"
        ),
        f"runs blocked by a stale lock:   {report['runs_blocked_by_lock']}",
        (
            f"final runs' exit codes:         batches {report['final_batch_exit_codes']}, "
            f"resume {report['final_resume_exit_codes']}"
        ),
        f"journal:                        {json.dumps(report['journal_states'])}",
        (
            f"tasks created:                  {report['tasks_created']} "
            f"({report['submit_requests']} submit requests, "
            f"{report['submits_refused_429']} refused with a 429)"
        ),
        f"duplicate submits:              {report['duplicate_submits']}",
        f"tasks for unknown inputs:       {report['tasks_for_unknown_inputs']}",
        f"outputs:                        {report['outputs']} of {report['inputs']}",
        (
            f"missing outputs:                {report['missing_outputs']} (by journal state: "
            f"{json.dumps(report['missing_by_journal_state'])}; UNCERTAIN with no task at the "
            f"service: {report['uncertain_without_a_task']})"
        ),
        f"wrong outputs:                  {report['wrong_outputs']}",
        (
            f"partial files:                  {report['partial_files']} at the end (at most "
            f"{report['part_files_after_a_kill_max']} right after a kill)"
        ),
        f"stray files:                    {report['stray_files'] + report['outputs_outside_out']}",
        (
            f"paid tasks without their id in the journal: {report['paid_without_task_id']} "
            f"(flagged UNCERTAIN: {report['paid_without_task_id_flagged_uncertain']}, silent: "
            f"{report['paid_without_task_id_silent']})"
        ),
        f"took {report['wall_s']} s on {report['machine']}",
    ]
    if report["final_resume_exit_codes"][-1:] != [0]:
        lines.append(f"final resume said: {report['final_resume_stderr'][-600:]}")
    verdict = (
        "all targets met" if not report["missed"] else "MISSED: " + ", ".join(report["missed"])
    )
    lines.append(verdict)
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The options."""
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = Config()
    cli.add_argument("--rounds", type=int, default=default.rounds, help="SIGKILLs to land")
    cli.add_argument("--inputs", type=int, default=default.inputs, help="images per operation")
    cli.add_argument("--seed", type=int, default=default.seed)
    cli.add_argument("--fault-rate", type=float, default=default.fault_rate)
    cli.add_argument("--time-scale", type=float, default=default.time_scale)
    cli.add_argument(
        "--kill-after", type=float, nargs=2, default=default.kill_after, metavar=("LO", "HI")
    )
    cli.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    cli.add_argument("--json", action="store_true", help="print the report as JSON")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run it and print the report; 1 when a target is missed."""
    args = parser().parse_args(argv)
    config = Config(
        rounds=args.rounds,
        inputs=args.inputs,
        seed=args.seed,
        fault_rate=args.fault_rate,
        time_scale=args.time_scale,
        kill_after=tuple(args.kill_after),
    )
    report = kill_resume(config, args.keep)
    print(json.dumps(report, indent=2) if args.json else text(report), flush=True)
    return 1 if report["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""The soak: thousands of jobs of both operations through faults of every kind, counted.

    PYTHONPATH=. python benchmarks/soak.py                  # 10,000 jobs, a few minutes
    PYTHONPATH=. python benchmarks/soak.py --jobs 300 --json

One process: the emulator served on 127.0.0.1 (``serve()``, its own thread and event
loop) and one ``AsyncRecraft`` driving every job at once. Processing times, the poll
policy and KIE's rate limits (20 submits per 10 s, 10 status reads per second) are all
multiplied by ``--time-scale``, so the client paces against limits as tight, relative to
the work, as the live service's. Every fault kind strikes its targets with probability
``--fault-rate``, request faults half of the time after the request was processed (the
answer lost, the work done). Inputs are distinct images, a third each given as a URL, as
bytes and as a file; half the jobs ask for a (signed) callback.

It prints the jobs by outcome, hung jobs, duplicate submits, exceptions that are not
``RecraftError``, wrong results, paid tasks whose id the client lost, and RSS and open
files at the start and the end; it exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import collections
import gc
import hashlib
import io
import json
import random
import resource
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread
import attrs
import httpx

# The sibling script (benchmarks/ is on the path when a script here runs): one way to say
# where the numbers were measured.
from run import machine

import recraft_async as ra
from recraft_async.testing import Duration, Fault, FaultPlan, KieEmulator, Target, serve
from recraft_async.testing import _images as images

if TYPE_CHECKING:
    from recraft_async.testing._tasks import Task

WEBHOOK_KEY = "soak-webhook-key"
SIDE = 256  # remove-background's smallest accepted side
KINDS = ("url", "bytes", "path")
# Each request fault kind twice: as the service refusing or failing the request, and
# "+processed": the request was handled (a submit created and charged its task), only
# the answer was lost. A 503/455 in KIE's envelope is the service's word that nothing
# was created, so the processed variants use 500 instead: a processed 503 would be a
# service that lies, and a client that trusts it must resend.
REQUEST_FAULTS = {
    "http": ("http:503", "http:500+processed"),
    "body": ("body:455", "body:500+processed"),
    "drop": ("drop", "drop+processed"),
    "delay": ("delay:{delay}", "delay:{delay}+processed"),
    "nonjson": ("nonjson:502", "nonjson:502+processed"),
}
TASK_FAULTS = ("fail", "createfail", "notfound")
CALLBACK_FAULTS = ("duplicate", "late:1")


@attrs.frozen
class Config:
    """One soak's workload and its service."""

    jobs: int = 10_000
    fault_rate: float = 0.05
    seed: int = 1
    time_scale: float = 0.01
    max_in_flight: int = 100
    http_timeout: float = 5.0  # the client's per-request timeout (real seconds)
    delay: float = 6.0  # a delay fault's seconds: beyond http_timeout, the answer is lost
    poll_timeout: float = 60.0  # the client's PollPolicy.timeout (real seconds)
    deadline: float = 900.0  # a job not finished this long after the start is hung
    check_downloads: int = 300  # results downloaded and compared byte for byte
    backend: str = "asyncio"


@attrs.define
class Input:
    """One job's input: the image, how it is handed over, and what the job did."""

    index: int
    operation: ra.Operation
    kind: str  # url, bytes or path
    data: bytes
    digest: str
    callback: bool
    job: ra.Job | None = None
    refused: BaseException | None = None  # raised by the call itself, before a Job


def fault_plan(config: Config) -> FaultPlan:
    """Every fault kind at every target it can strike, each with ``fault_rate``."""
    plan = FaultPlan(config.seed)
    half = config.fault_rate / 2
    for target in (Target.SUBMIT, Target.STATUS, Target.UPLOAD):
        for plain, processed in REQUEST_FAULTS.values():
            for spec in (plain, processed):
                plan.chance(target, Fault.parse(spec.format(delay=config.delay)), half)
    for spec in TASK_FAULTS:
        plan.chance(Target.TASK, Fault.parse(spec), config.fault_rate)
    for spec in CALLBACK_FAULTS:
        plan.chance(Target.CALLBACK, Fault.parse(spec), config.fault_rate)
    return plan


def make_image(index: int, seed: int) -> bytes:
    """A distinct PNG: a background colour that encodes ``index``, a square subject."""
    from PIL import Image  # noqa: PLC0415 - the emulator extra

    mask = random.Random(seed).getrandbits(24)
    code = (index ^ mask) & 0xFFFFFF
    background = (code >> 16, (code >> 8) & 0xFF, code & 0xFF)
    subject = tuple(255 - c for c in background)
    image = Image.new("RGB", (SIDE, SIDE), background)
    image.paste(subject, (SIDE // 4, SIDE // 4, 3 * SIDE // 4, 3 * SIDE // 4))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def make_inputs(config: Config) -> list[Input]:
    """``config.jobs`` distinct inputs: both operations, URL/bytes/path, half with callbacks."""
    if config.jobs >= 1 << 24:
        raise ValueError("at most 16,777,215 distinct images")
    found = []
    for i in range(config.jobs):
        data = make_image(i, config.seed)
        found.append(
            Input(
                index=i,
                operation=ra.Operation.UPSCALE if i % 2 == 0 else ra.Operation.REMOVE_BACKGROUND,
                kind=KINDS[(i // 2) % 3],
                data=data,
                digest=hashlib.sha256(data).hexdigest(),
                callback=(i // 6) % 2 == 0,
            )
        )
    return found


def rss_kb() -> int:
    """The resident set of the process now, in kB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_files() -> int:
    """File descriptors this process holds open now."""
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


class CallbackReceiver:
    """A minimal HTTP endpoint on loopback that hands KIE callbacks to the client."""

    def __init__(self) -> None:
        self.client: ra.AsyncRecraft | None = None
        self.received = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.port = 0

    async def start(self, group: anyio.abc.TaskGroup) -> None:
        """Listen on 127.0.0.1 (a free port), serving in ``group``."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio
        group.start_soon(listener.serve, self._handle)

    @property
    def url(self) -> str:
        """Where the emulator is told to send callbacks."""
        return f"http://127.0.0.1:{self.port}/kie-callback"

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            raw = b""
            with anyio.move_on_after(10):
                while b"\r\n\r\n" not in raw:
                    chunk = await stream.receive()
                    raw += chunk
                head, _, body = raw.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                while len(body) < length:
                    body += await stream.receive()
                self._deliver(body, headers)
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                )

    def _deliver(self, body: bytes, headers: dict[str, str]) -> None:
        self.received += 1
        if self.client is None:
            self.rejected["client closed"] += 1
            return
        try:
            self.client.handle_callback(body, headers)
        except ra.RecraftError as exc:
            self.rejected[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - counted as a non-RecraftError
            self.rejected[f"NON-RECRAFT {type(exc).__name__}"] += 1


def start_job(client: ra.AsyncRecraft, item: Input, folder: Path, emulator: KieEmulator,
              callback_url: str) -> None:  # fmt: skip
    """Make ``item``'s job (the URL or file is set up here)."""
    if item.kind == "url":
        source: Any = emulator.add_image(f"soak-{item.index}.png", item.data)
    elif item.kind == "path":
        source = folder / f"soak-{item.index}.png"
        source.write_bytes(item.data)
    else:
        source = item.data
    callback = callback_url if item.callback else None
    try:
        if item.operation is ra.Operation.UPSCALE:
            item.job = client.upscale(source, callback_url=callback)
        else:
            item.job = client.remove_background(source, callback_url=callback)
    except BaseException as exc:  # noqa: BLE001 - counted: a RecraftError or not
        item.refused = exc


def error_of(item: Input) -> BaseException | None:
    """The exception that ended ``item``'s job, or None if it succeeded."""
    if item.refused is not None:
        return item.refused
    assert item.job is not None  # noqa: S101
    return item.job.exception()


async def run_jobs(config: Config, inputs: list[Input], folder: Path) -> dict[str, Any]:
    """Serve the emulator, drive every input through one client, and audit the outcome."""
    scale = config.time_scale
    emulator = KieEmulator(
        rate=ra.Rate(20, per=10 * scale),
        read_rate=ra.Rate(10, per=1 * scale),
        duration=Duration.lognormal(median=20.0, sigma=0.5),
        time_scale=scale,
        faults=fault_plan(config),
        seed=config.seed,
        webhook_key=WEBHOOK_KEY,
    )
    receiver = CallbackReceiver()
    poll = ra.PollPolicy(
        initial=2 * scale, factor=1.5, max_interval=15 * scale, timeout=config.poll_timeout
    )
    began = time.monotonic()
    report: dict[str, Any] = {}
    async with serve(emulator) as base_url, anyio.create_task_group() as group:
        await receiver.start(group)
        client = ra.AsyncRecraft(
            api_key=emulator.api_key,
            base_url=base_url,
            upload_base_url=base_url,
            max_in_flight=config.max_in_flight,
            submit_rate=emulator.rate,
            read_rate=emulator.read_rate,
            poll=poll,
            timeout=config.http_timeout,
            webhook_key=WEBHOOK_KEY,
        )
        async with client:
            receiver.client = client
            for item in inputs:
                start_job(client, item, folder, emulator, receiver.url)
            jobs = [item.job for item in inputs if item.job is not None]
            finished: list[float] = []
            with anyio.move_on_after(max(config.deadline - (time.monotonic() - began), 0)):
                async for _ in client.as_completed(jobs):
                    # A loop, not a comprehension: what finished before a timeout is kept.
                    finished.append(time.monotonic() - began)  # noqa: PERF401
            hung = [item for item in inputs if item.job is not None and not item.job.done()]
            report["hung"] = len(hung)
            report["hung_jobs"] = [repr(item.job) for item in hung[:20]]
            report["makespan_s"] = round(time.monotonic() - began, 1)
            report["finished_by_s"] = {
                f"{share:g} %": round(finished[max(int(len(finished) * share / 100) - 1, 0)], 1)
                for share in (50, 90, 99, 100)
                if finished
            }
            for item in hung:
                assert item.job is not None  # noqa: S101
                item.job.cancel()
            # Late and duplicate callbacks still arrive for a moment; they must not fail.
            await anyio.sleep(1.5)
            receiver.client = None
        report.update(audit(config, inputs, emulator, {id(i) for i in hung}))
        report["downloads"] = await check_downloads(config, inputs)
        stats = emulator.stats
        report["service"] = {
            "submit_requests": stats.submit_requests,
            "tasks_created": stats.tasks_created,
            "status_reads": stats.status_reads,
            "uploads": stats.uploads,
            "submits_refused_429": stats.rate_limited,
            "reads_refused_429": stats.read_rate_limited,
            "callbacks_delivered": stats.callbacks_delivered,
            "callbacks_failed": stats.callbacks_failed,
            "credits_spent": stats.credits_spent,
        }
        report["callbacks"] = {"received": receiver.received, "rejected": dict(receiver.rejected)}
        report["faults_injected"] = dict(sorted(emulator.faults.injected.items()))
        group.cancel_scope.cancel()
    return report


def audit(
    config: Config, inputs: list[Input], emulator: KieEmulator, hung: set[int]
) -> dict[str, Any]:
    """Outcomes, duplicates, wrong results and lost task ids, from the emulator's records."""
    by_digest = {item.digest: item for item in inputs}
    tasks: list[Task] = list(emulator.service.tasks.values())
    now = time.time()
    task_of: dict[str, Task] = {task.task_id: task for task in tasks}

    def digest_of(task: Task) -> str | None:
        data = emulator.service.files.get(task.image_key) if task.image_key else None
        return hashlib.sha256(data).hexdigest() if data is not None else None

    per_input: collections.Counter[tuple[str, str | None]] = collections.Counter(
        (task.operation.value, digest_of(task)) for task in tasks
    )
    duplicates = sum(n - 1 for n in per_input.values() if n > 1)
    strangers = sum(n for (_, digest), n in per_input.items() if digest not in by_digest)

    outcomes: collections.Counter[str] = collections.Counter()
    non_recraft: list[str] = []
    wrong: list[str] = []
    known_ids: set[str] = set()
    flagged: set[str] = set()  # digests whose job said its submit may have created a task
    for item in inputs:
        if id(item) in hung:
            outcomes["hung (cancelled at the deadline)"] += 1
            continue
        error = error_of(item)
        job = item.job
        if job is not None and job.task_id is not None:
            known_ids.add(job.task_id)
        task_id = getattr(error, "task_id", None)
        if isinstance(task_id, str):
            known_ids.add(task_id)
        if error is None:
            assert job is not None  # noqa: S101
            outcomes["succeeded"] += 1
            problem = wrong_result(item, job.result(), task_of, digest_of, now)
            if problem is not None:
                wrong.append(f"input {item.index}: {problem}")
            continue
        outcomes[f"failed: {type(error).__name__}"] += 1
        if not isinstance(error, ra.RecraftError):
            non_recraft.append(f"input {item.index}: {type(error).__name__}: {error}")
        if isinstance(error, ra.SubmissionUncertainError):
            flagged.add(item.digest)
    lost = [task for task in tasks if task.cost > 0 and task.task_id not in known_ids]
    silent = [task for task in lost if digest_of(task) not in flagged]
    return {
        "config": attrs.asdict(config),
        "jobs": len(inputs),
        "outcomes": dict(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
        "duplicate_submits": duplicates,
        "tasks_for_unknown_inputs": strangers,
        "non_recraft_errors": len(non_recraft),
        "non_recraft_examples": non_recraft[:10],
        "wrong_results": len(wrong),
        "wrong_examples": wrong[:10],
        "paid_tasks": sum(1 for task in tasks if task.cost > 0),
        "paid_without_task_id": len(lost),
        "paid_without_task_id_flagged_uncertain": len(lost) - len(silent),
        "paid_without_task_id_silent": len(silent),
    }


def wrong_result(  # noqa: PLR0911 - one return per way a result can be wrong
    item: Input, result: ra.Result, task_of: dict[str, Task], digest_of: Any, now: float
) -> str | None:
    """Why ``result`` is not ``item``'s own result, or None when it is."""
    task = task_of.get(result.task_id)
    if task is None:
        return f"result names task {result.task_id}, which the service never made"
    if item.job is not None and item.job.task_id != result.task_id:
        return f"job holds task {item.job.task_id} but its result is {result.task_id}'s"
    if task.operation is not item.operation or result.operation is not item.operation:
        return f"task {task.task_id} is a {task.operation.value}"
    if digest_of(task) != item.digest:
        return f"task {task.task_id} processed another image"
    if task.status(now) != 1:
        return f"task {task.task_id} did not succeed (status {task.status(now)})"
    path = urllib.parse.urlsplit(result.url).path
    if path != f"/_emulator/results/{task.result_name}":
        return f"result URL {result.url} is not task {task.task_id}'s"
    return None


async def check_downloads(config: Config, inputs: list[Input]) -> dict[str, int]:
    """Download a sample of results; each must equal the image rendered from its own input."""
    done = [i for i in inputs if i.job is not None and i.job.done() and i.job.exception() is None]
    sample = random.Random(config.seed).sample(done, min(config.check_downloads, len(done)))
    mismatched = 0
    async with httpx.AsyncClient(timeout=30) as http:
        for item in sample:
            assert item.job is not None  # noqa: S101
            answer = await http.get(item.job.result().url)
            if item.operation is ra.Operation.UPSCALE:
                expected = await anyio.to_thread.run_sync(images.upscale, item.data, 2, "PNG")
            else:
                expected = await anyio.to_thread.run_sync(images.remove_background, item.data)
            if answer.status_code != 200 or answer.content != expected:
                mismatched += 1
    return {"checked": len(sample), "mismatched": mismatched}


def soak(config: Config) -> dict[str, Any]:
    """Run one soak; the report as a JSON-ready dict (``missed`` lists the targets missed)."""
    with tempfile.TemporaryDirectory(prefix="recraft-soak-") as tmp:
        inputs = make_inputs(config)
        gc.collect()
        start = {"rss_kb": rss_kb(), "open_files": open_files()}
        cpu = time.process_time()
        began = time.monotonic()
        report = anyio.run(run_jobs, config, inputs, Path(tmp), backend=config.backend)
        wall = time.monotonic() - began
        cpu = time.process_time() - cpu
        del inputs
        gc.collect()
        end = {"rss_kb": rss_kb(), "open_files": open_files()}
    report["resources"] = {
        "start": start,
        "end": end,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
    }
    report["machine"] = machine()
    report["missed"] = missed(report)
    return report


def missed(report: dict[str, Any]) -> list[str]:
    """The targets a report misses."""
    checks = {
        "0 hung": report["hung"] == 0,
        "0 duplicate submits": report["duplicate_submits"] == 0,
        "0 tasks for unknown inputs": report["tasks_for_unknown_inputs"] == 0,
        "0 wrong results": report["wrong_results"] == 0 and report["downloads"]["mismatched"] == 0,
        "0 non-RecraftError": report["non_recraft_errors"] == 0
        and not any(k.startswith("NON-RECRAFT") for k in report["callbacks"]["rejected"]),
        "0 paid results lost silently": report["paid_without_task_id_silent"] == 0,
    }
    return [name for name, ok in checks.items() if not ok]


def text(report: dict[str, Any]) -> str:
    """The report for people."""
    cfg = report["config"]
    res = report["resources"]
    lines = [
        (
            f"soak: {report['jobs']:,} jobs (upscale and remove_background; URL, bytes, file), "
            f"fault rate {cfg['fault_rate']:g} per kind, seed {cfg['seed']}, "
            f"time scale {cfg['time_scale']:g}, {cfg['backend']}"
        ),
        (
            f"finished in {report['makespan_s']} s (wall {res['wall_s']} s, CPU {res['cpu_s']} s); "
            f"share of jobs finished by: {json.dumps(report['finished_by_s'])}"
        ),
        "outcomes:",
        *[f"  {name:<40} {count:>7,}" for name, count in report["outcomes"].items()],
        f"hung:                           {report['hung']}",
        f"duplicate submits:              {report['duplicate_submits']}",
        f"tasks for unknown inputs:       {report['tasks_for_unknown_inputs']}",
        f"non-RecraftError exceptions:    {report['non_recraft_errors']}",
        (
            f"wrong results:                  {report['wrong_results']} (downloads checked "
            f"{report['downloads']['checked']}, mismatched {report['downloads']['mismatched']})"
        ),
        (
            f"paid tasks:                     {report['paid_tasks']:,}; without their task id in "
            f"the client: {report['paid_without_task_id']} (flagged SubmissionUncertainError: "
            f"{report['paid_without_task_id_flagged_uncertain']}, silent: "
            f"{report['paid_without_task_id_silent']})"
        ),
        (
            f"RSS:                            start {res['start']['rss_kb'] / 1024:.1f} MB, end "
            f"{res['end']['rss_kb'] / 1024:.1f} MB, peak {res['peak_rss_kb'] / 1024:.1f} MB"
        ),
        (
            f"open files:                     start {res['start']['open_files']}, end "
            f"{res['end']['open_files']}"
        ),
        f"service: {json.dumps(report['service'])}",
        f"callbacks: {json.dumps(report['callbacks'])}",
        f"faults injected: {json.dumps(report['faults_injected'])}",
        f"machine: {report['machine']}",
    ]
    for key in ("hung_jobs", "non_recraft_examples", "wrong_examples"):
        lines += [f"  {key}: {example}" for example in report[key]]
    verdict = (
        "all targets met" if not report["missed"] else "MISSED: " + ", ".join(report["missed"])
    )
    lines.append(verdict)
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The soak's options."""
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = Config()
    cli.add_argument("--jobs", type=int, default=default.jobs)
    cli.add_argument(
        "--fault-rate", type=float, default=default.fault_rate, help="per kind and target"
    )
    cli.add_argument("--seed", type=int, default=default.seed)
    cli.add_argument("--time-scale", type=float, default=default.time_scale)
    cli.add_argument("--max-in-flight", type=int, default=default.max_in_flight)
    cli.add_argument(
        "--http-timeout", type=float, default=default.http_timeout, help="the client's (s)"
    )
    cli.add_argument("--delay", type=float, default=default.delay, help="a delay fault's seconds")
    cli.add_argument("--deadline", type=float, default=default.deadline, help="hung after (s)")
    cli.add_argument("--check-downloads", type=int, default=default.check_downloads)
    cli.add_argument("--backend", choices=("asyncio", "trio"), default=default.backend)
    cli.add_argument("--json", action="store_true", help="print the report as JSON")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and print its report; 1 when a target is missed."""
    args = parser().parse_args(argv)
    config = Config(
        jobs=args.jobs,
        fault_rate=args.fault_rate,
        seed=args.seed,
        time_scale=args.time_scale,
        max_in_flight=args.max_in_flight,
        http_timeout=args.http_timeout,
        delay=args.delay,
        deadline=args.deadline,
        check_downloads=args.check_downloads,
        backend=args.backend,
    )
    report = soak(config)
    print(json.dumps(report, indent=2) if args.json else text(report), flush=True)
    return 1 if report["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())

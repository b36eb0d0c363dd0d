"""The robustness matrix: how soon each contender learns that a task ended, whatever it takes.

Nobody publishes how long Recraft tasks take on KIE, so the default must be quick for
tasks of 1 s and sparing for tasks of minutes without knowing which. This benchmark runs
every contender against services whose tasks take a median of 1, 4, 20 and 60 s (fixed,
and lognormal with sigma 0.5), one job at a time (10 in a row: a web request awaiting its
image) and as a bulk batch, a fresh client cold and warm (started from the state file a
first client wrote). Columns: seconds from the task's end to the status read that saw it
ended (p50, p95), status reads per job, and 429s.

It runs on virtual time (trio's MockClock, jumping to the next timer whenever every task
waits), against an in-process model of the service (httpx.MockTransport) with KIE's
limits: 20 submits per 10 s and 10 status reads per second, refused with 429 beyond. The
library's own code runs unchanged (its planner, read budget, pacing and retries); a minute
of service time costs no wall time, so the whole matrix takes about a minute.

    PYTHONPATH=. python benchmarks/matrix.py                  # the table, JSON and plot
    PYTHONPATH=. python benchmarks/matrix.py --medians 1 --sigmas 0 --bulk 20
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import httpx
import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import recraft_async as ra

HERE = Path(__file__).resolve().parent
SUBMIT = "/api/v1/jobs/createTask"
STATUS = "/api/v1/jobs/recordInfo"
MEDIANS = (1.0, 4.0, 20.0, 60.0)
SIGMAS = (0.1, 0.5)
IN_A_ROW = 10
BULK = 100
SEED = 11
# KIE's published limits: submits per window, status reads per second (per key).
SUBMIT_LIMIT = (20, 10.0)
READ_LIMIT = (10, 1.0)
FIXED_INTERVAL = 2.0
NAIVE_INTERVAL = 3.0  # benchmarks/run.py's naive loop
RETRY_SLEEP = 1.0
CONTENDERS = ("default", "advised", "fixed 2 s", "naive 3 s")


class SlidingWindow:
    """At most ``n`` events in any ``per`` seconds: the service's own counting."""

    def __init__(self, n: int, per: float) -> None:
        self.n, self.per = n, per
        self._times: deque[float] = deque()

    def admit(self, now: float) -> bool:
        """Whether one more event fits now (and count it if so)."""
        while self._times and self._times[0] <= now - self.per:
            self._times.popleft()
        if len(self._times) >= self.n:
            return False
        self._times.append(now)
        return True


class Service:
    """KIE's jobs API as a model: tasks of sampled durations, KIE's limits, 429 beyond."""

    def __init__(self, durations: Callable[[], float]) -> None:
        self._durations = durations
        self._submits = SlidingWindow(*SUBMIT_LIMIT)
        self._reads = SlidingWindow(*READ_LIMIT)
        self.ends: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.found: dict[str, float] = {}  # task -> when a read first saw it ended
        self.reads = 0
        self.refused = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request at the current virtual moment."""
        now = trio.current_time()
        if request.url.path == SUBMIT:
            if not self._submits.admit(now):
                self.refused += 1
                return _envelope(None, 429, "Rate limit exceeded", status=429)
            task_id = f"task_{len(self.ends)}"
            self.durations[task_id] = self._durations()
            self.ends[task_id] = now + self.durations[task_id]
            return _envelope({"taskId": task_id})
        self.reads += 1
        if not self._reads.admit(now):
            self.refused += 1
            return _envelope(None, 429, "Rate limit exceeded", status=429)
        task_id = request.url.params["taskId"]
        end = self.ends[task_id]
        done = now >= end
        if done:
            self.found.setdefault(task_id, now)
        return _envelope(_record(task_id, self.durations[task_id] if done else None))

    def delays(self) -> list[float]:
        """Seconds from each task's end to the read that saw it ended."""
        return [self.found[t] - self.ends[t] for t in self.found]


def _record(task_id: str, processing: float | None) -> dict[str, Any]:
    """A recordInfo ``data``: running, or ended after ``processing`` seconds."""
    created = 1_700_000_000_000
    data: dict[str, Any] = {
        "taskId": task_id,
        "model": "recraft/crisp-upscale",
        "state": "generating" if processing is None else "success",
        "param": "{}",
        "resultJson": "",
        "failCode": "",
        "failMsg": "",
        "createTime": created,
    }
    if processing is not None:
        data["resultJson"] = json.dumps({"resultUrls": [f"https://r.test/{task_id}.png"]})
        # The processing time the client learns from: the service's own timestamps.
        data["completeTime"] = created + round(1000 * processing)
    return data


def _envelope(
    data: object, code: int = 200, msg: str = "success", status: int = 200
) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg, "data": data})


@attrs.frozen
class Cell:
    """One service and one way of driving it."""

    median: float
    sigma: float
    pattern: str  # "one at a time" or "bulk"
    jobs: int


@attrs.frozen
class Row:
    """What one contender measured in one cell."""

    cell: Cell
    contender: str
    start: str  # "cold" or "warm"
    p50: float
    p95: float
    reads_per_job: float
    refused: int
    jobs: int


def _sampler(cell: Cell, seed: int) -> Callable[[], float]:
    rng = random.Random(seed)
    if cell.sigma == 0:
        return lambda: cell.median
    return lambda: rng.lognormvariate(math.log(cell.median), cell.sigma)


async def _drive(cell: Cell, submit_one: Callable[[int], Awaitable[None]]) -> None:
    if cell.pattern == "one at a time":
        for index in range(cell.jobs):
            await submit_one(index)
        return
    async with anyio.create_task_group() as group:
        for index in range(cell.jobs):
            group.start_soon(submit_one, index)


async def _run_library(
    cell: Cell, service: Service, state: Path | None, poll: ra.PollPolicy | None
) -> None:
    options: dict[str, Any] = {"max_in_flight": max(cell.jobs, 32)}
    if poll is not None:
        options["poll"] = poll
    if state is not None:
        options["state_file"] = state
    transport = httpx.MockTransport(service.handle)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        ra.AsyncRecraft(api_key="bench-key", http_client=http, **options) as client,
    ):

        async def one(index: int) -> None:
            await client.upscale(f"https://i.test/{index}.png")

        await _drive(cell, one)


async def _run_loop(cell: Cell, service: Service, interval: float) -> None:
    """A hand-written loop: submit (sleeping on 429), then read every ``interval`` seconds."""
    transport = httpx.MockTransport(service.handle)
    async with httpx.AsyncClient(transport=transport, base_url="https://api.kie.ai") as http:

        async def one(index: int) -> None:
            body = {"model": "recraft/crisp-upscale", "input": {"image": f"https://i.test/{index}"}}
            while True:
                answer = (await http.post(SUBMIT, json=body)).json()
                if answer["code"] == 200:
                    break
                await anyio.sleep(RETRY_SLEEP)
            task_id = answer["data"]["taskId"]
            while True:
                await anyio.sleep(interval)
                answer = (await http.get(STATUS, params={"taskId": task_id})).json()
                if answer["code"] == 200 and answer["data"]["state"] in ("success", "fail"):
                    return

        await _drive(cell, one)


def _service(cell: Cell, seed: int) -> Service:
    return Service(_sampler(cell, seed))


def _measure(cell: Cell, contender: str, start: str, seed: int) -> Row:
    """Run one contender in one cell on a fresh virtual clock; its row."""
    service = _service(cell, seed)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "poll-state.json" if contender == "default" else None

        async def main() -> None:
            if start == "warm":
                assert state is not None  # noqa: S101 - only the library starts warm
                # A first client learns on other tasks of the same service, then closes.
                await _run_library(cell, _service(cell, seed + 1), state, None)
            if contender == "default":
                await _run_library(cell, service, state, None)
            elif contender == "advised":
                await _run_library(cell, service, None, ra.PollPolicy(adaptive=False))
            else:
                interval = FIXED_INTERVAL if contender == "fixed 2 s" else NAIVE_INTERVAL
                await _run_loop(cell, service, interval)

        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    delays = service.delays()
    return Row(
        cell=cell,
        contender=contender,
        start=start,
        p50=_percentile(delays, 50),
        p95=_percentile(delays, 95),
        reads_per_job=service.reads / cell.jobs,
        refused=service.refused,
        jobs=len(delays),
    )


def _percentile(values: Sequence[float], level: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    position = level / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cells(medians: Sequence[float], sigmas: Sequence[float], bulk: int) -> list[Cell]:
    """Every service (median x sigma), one job at a time and in bulk."""
    return [
        Cell(median, sigma, pattern, jobs)
        for pattern, jobs in (("one at a time", IN_A_ROW), ("bulk", bulk))
        for median in medians
        for sigma in sigmas
    ]


def run(medians: Sequence[float], sigmas: Sequence[float], bulk: int, seed: int) -> list[Row]:
    """Every contender in every cell (the default cold and warm; the loops learn nothing)."""
    rows = []
    for cell in cells(medians, sigmas, bulk):
        for contender in CONTENDERS:
            starts = ("cold", "warm") if contender == "default" else ("cold",)
            rows.extend(_measure(cell, contender, start, seed) for start in starts)
    return rows


def verdicts(rows: Sequence[Row]) -> dict[str, Any]:
    """The cells that miss a target: later than fixed 2 s polling or than KIE's advice.

    And the bulk cells where the default does not read less than fixed 2 s polling.
    """
    by = {(r.cell, r.contender, r.start): r for r in rows}
    later_than_fixed, later_than_advised, more_reads_in_bulk = [], [], []
    for row in rows:
        if row.contender != "default":
            continue
        fixed = by[(row.cell, "fixed 2 s", "cold")]
        advised = by[(row.cell, "advised", "cold")]
        cell = row.cell
        name = f"{cell.pattern}, median {cell.median:g} s, sigma {cell.sigma:g}, {row.start}"
        if row.p50 > fixed.p50 + 1e-6 or row.p95 > fixed.p95 + 1e-6:
            later_than_fixed.append(name)
        # The promise holds while the read budget has room: one job at a time. In bulk
        # the budget binds, and reads near expected finishes go first by design.
        room = row.cell.pattern == "one at a time"
        if room and (row.p50 > advised.p50 + 1e-6 or row.p95 > advised.p95 + 1e-6):
            later_than_advised.append(name)
        if row.cell.pattern == "bulk" and row.reads_per_job >= fixed.reads_per_job:
            more_reads_in_bulk.append(name)
    return {
        "later_than_fixed_2s": later_than_fixed,
        "later_than_advised": later_than_advised,
        "not_fewer_reads_than_fixed_2s_in_bulk": more_reads_in_bulk,
    }


def table(rows: Sequence[Row]) -> str:
    """The matrix as a Markdown table."""
    head = (
        "| pattern | median | sigma | contender | start | delay p50 (s) | delay p95 (s) "
        "| reads/job | 429s |"
    )
    lines = [head, "|---|---:|---:|---|---|---:|---:|---:|---:|"]
    lines.extend(
        f"| {r.cell.pattern} | {r.cell.median:g} s | {r.cell.sigma:g} | {r.contender} "
        f"| {r.start} | {r.p50:.2f} | {r.p95:.2f} | {r.reads_per_job:.1f} | {r.refused} |"
        for r in rows
    )
    return "\n".join(lines)


def compact_table(rows: Sequence[Row]) -> str:
    """One line per cell: each contender's "p50 / p95 s, reads per job"."""
    columns = [("default", "cold"), ("default", "warm")] + [(c, "cold") for c in CONTENDERS[1:]]
    names = ["default cold", "default warm", *CONTENDERS[1:]]
    lines = [
        "| tasks | median | sigma | " + " | ".join(names) + " |",
        "|---|---:|---:|" + "---:|" * len(names),
    ]
    by = {(r.cell, r.contender, r.start): r for r in rows}
    for cell in dict.fromkeys(r.cell for r in rows):
        values = []
        for contender, start in columns:
            r = by[(cell, contender, start)]
            values.append(f"{r.p50:.1f} / {r.p95:.1f} s, {r.reads_per_job:.1f}")
        lines.append(
            f"| {cell.pattern} | {cell.median:g} s | {cell.sigma:g} | " + " | ".join(values) + " |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: Path) -> bool:
    """Detect delay (p50, p95 dashed) against the service median; False without matplotlib."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - the bench extra only

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    patterns = ("one at a time", "bulk")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, pattern in zip(axes, patterns, strict=True):
        for contender, start in [(c, "cold") for c in CONTENDERS] + [("default", "warm")]:
            chosen = sorted(
                (
                    r
                    for r in rows
                    if r.cell.pattern == pattern
                    and r.cell.sigma == 0.5
                    and r.contender == contender
                    and r.start == start
                ),
                key=lambda r: r.cell.median,
            )
            if not chosen:
                continue
            label = contender if contender != "default" else f"default ({start})"
            medians = [r.cell.median for r in chosen]
            line = axis.plot(medians, [r.p50 for r in chosen], marker="o", label=label)[0]
            axis.plot(medians, [r.p95 for r in chosen], linestyle="--", color=line.get_color())
        axis.set_xscale("log")
        axis.set_title(f"{pattern} (sigma 0.5)")
        axis.set_xlabel("service median (s)")
    axes[0].set_ylabel("task end -> result known (s): p50, p95 dashed")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix; print the table and the verdicts; write JSON (and the plot)."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--medians", type=float, nargs="+", default=list(MEDIANS))
    cli.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS))
    cli.add_argument("--bulk", type=int, default=BULK, help="jobs of the bulk batch")
    cli.add_argument("--seed", type=int, default=SEED)
    cli.add_argument("--out", type=Path, default=HERE / "results")
    args = cli.parse_args(argv)
    rows = run(args.medians, args.sigmas, args.bulk, args.seed)
    found = verdicts(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "matrix.json").write_text(
        json.dumps({"rows": [attrs.asdict(r) for r in rows], "verdicts": found}, indent=1)
    )
    print(table(rows))
    print()
    print(compact_table(rows))
    print(json.dumps(found, indent=1))
    if plot(rows, args.out / "matrix.png"):
        print(f"plot: {args.out / 'matrix.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

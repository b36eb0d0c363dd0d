"""The benchmark runner: every contender drives the same N jobs against the emulator.

    PYTHONPATH=. python benchmarks/run.py            # the full run (a few minutes)
    PYTHONPATH=. python benchmarks/run.py --quick    # a smoke run (seconds)
    PYTHONPATH=. python benchmarks/run.py --memory-only   # the queued-jobs RSS alone

For each contender the emulator is started afresh as its own process on loopback, with
the same seed, so every contender meets the same processing times (lognormal, scaled by
``--time-scale``) and the same sliding-window submit limit (``--rate``, in real seconds:
the emulator does not scale its rate window). The contender runs in a process of its own
too (``contenders.py``), so that its CPU time and peak RSS are its alone.

Writes ``results.md`` (the table), ``results.json`` (every number) and, when matplotlib
is installed, ``polling.png`` (status reads per job against p50 detection latency).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
# Poll intervals of fixed-interval clients, in the service's (unscaled) seconds: the
# 0.1, 0.5 and 1 s popular clients use, and longer ones to draw the curve.
FIXED_INTERVALS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)
# KIE's examples poll every few seconds ("2-3 s first intervals"); the naive contender
# polls at 3 s and sleeps 1 s (real: the rate window is not scaled) after a 429.
NAIVE_INTERVAL = 3.0
NAIVE_RETRY_SLEEP = 1.0
READS_PER_JOB = (2.0, 3.0, 4.0, 6.0)
DEFAULT_READS_PER_JOB = 3.0
QUEUED_JOBS = 100_000
_START_TIMEOUT = 30.0


@attrs.frozen
class Scenario:
    """What every contender faces."""

    n: int
    rate_n: int
    rate_per: float
    time_scale: float
    median: float  # unscaled seconds
    sigma: float
    seed: int

    @property
    def median_real(self) -> float:
        """The median processing time in real seconds."""
        return self.median * self.time_scale

    @property
    def lower_bound(self) -> float:
        """N / submit rate + the median processing time (real seconds)."""
        return self.bound_for(self.n)

    def bound_for(self, n: int) -> float:
        """The lower bound for a batch of ``n`` jobs."""
        return n * self.rate_per / self.rate_n + self.median_real

    @property
    def max_in_flight(self) -> int:
        """Room for a full window plus what the rate keeps busy through a slow task."""
        slow = self.median_real * math.exp(2.33 * self.sigma)  # about the 99th percentile
        return self.rate_n + math.ceil(self.rate_n / self.rate_per * slow)


@attrs.frozen
class Contender:
    """One way of driving the jobs: its label, its family and its command-line options."""

    label: str
    family: str  # "recraft-async", "naive" or "fixed"
    options: tuple[str, ...]
    setting: str


@attrs.frozen
class Row:
    """What one contender achieved."""

    label: str
    family: str
    setting: str
    jobs: int
    errors: int
    makespan: float
    makespan_ratio: float
    requests_per_job: float
    reads_per_job: float
    requests: int
    reads: int
    rate_limited: int
    latency_p50: float
    latency_p95: float
    cpu_ms_per_job: float
    peak_rss_mb: float


def contenders(scenario: Scenario, *, quick: bool) -> list[Contender]:
    """recraft-async at several reads_per_job, the naive loop, fixed-interval polling."""
    scale = scenario.time_scale
    common = ("--time-scale", str(scale))
    found = [
        Contender(
            f"recraft-async reads_per_job={rpj:g}" + (" (default)" if default else ""),
            "recraft-async",
            (
                "recraft",
                *common,
                "--reads-per-job",
                str(rpj),
                "--rate-n",
                str(scenario.rate_n),
                "--rate-per",
                str(scenario.rate_per),
                "--max-in-flight",
                str(scenario.max_in_flight),
            ),
            f"reads_per_job={rpj:g}",
        )
        for rpj in ((DEFAULT_READS_PER_JOB,) if quick else READS_PER_JOB)
        for default in [rpj == DEFAULT_READS_PER_JOB]
    ]
    found.append(
        Contender(
            f"naive gather, poll {NAIVE_INTERVAL:g} s",
            "naive",
            (
                "fixed",
                "--interval",
                str(NAIVE_INTERVAL * scale),
                "--retry-sleep",
                str(NAIVE_RETRY_SLEEP),
            ),
            f"interval={NAIVE_INTERVAL:g}s",
        )
    )
    found.extend(
        Contender(
            f"fixed poll {interval:g} s",
            "fixed",
            ("fixed", "--interval", str(interval * scale), "--retry-sleep", str(NAIVE_RETRY_SLEEP)),
            f"interval={interval:g}s",
        )
        for interval in ((1.0,) if quick else FIXED_INTERVALS)
    )
    return found


@contextmanager
def emulator(scenario: Scenario) -> Iterator[tuple[str, str]]:
    """Start the emulator process; yields its base URL and a sample image's URL."""
    command = [
        PYTHON,
        "-m",
        "recraft_async.testing",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--rate",
        f"{scenario.rate_n}/{scenario.rate_per:g}",
        # KIE's 10 status reads per second, on the scaled clock of the processing times.
        "--read-rate",
        f"10/{scenario.time_scale:g}",
        "--time-scale",
        str(scenario.time_scale),
        "--duration",
        f"lognormal:median={scenario.median:g},sigma={scenario.sigma:g}",
        "--seed",
        str(scenario.seed),
        "--samples",
    ]
    process = subprocess.Popen(  # noqa: S603 - our own module, loopback only
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None  # noqa: S101
        assert process.stderr is not None  # noqa: S101
        base_url = process.stdout.readline().strip()
        image = process.stderr.readline().strip()
        if not base_url.startswith("http://127.0.0.1:") or not image.startswith(base_url):
            raise RuntimeError(f"the emulator did not start: {base_url!r} {image!r}")
        yield base_url, image
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback only
        return json.load(answer)


def _contender_process(options: Sequence[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - our own script
        [PYTHON, str(HERE / "contenders.py"), *options],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"contender {options[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def percentile(values: Sequence[float], level: float) -> float:
    """The ``level`` (0-100) percentile, linearly interpolated; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = level / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_contender(scenario: Scenario, contender: Contender, warm_n: int) -> list[Row]:
    """Drive the scenario's jobs with ``contender`` against a fresh emulator.

    One row per batch: recraft-async contenders drive a second, "warm" batch of
    ``warm_n`` jobs on the same client when ``warm_n`` is not 0.
    """
    warm = warm_n if contender.family == "recraft-async" else 0
    with emulator(scenario) as (base_url, image):
        budget = 10 * (scenario.lower_bound + scenario.bound_for(warm)) + 60
        measured = _contender_process(
            [
                *contender.options,
                "--base-url",
                base_url,
                "--image",
                image,
                "--n",
                str(scenario.n),
                "--warm-n",
                str(warm),
            ],
            timeout=budget,
        )
        tasks = {t["taskId"]: t for t in _get_json(base_url + "/_emulator/tasks")["tasks"]}
    rows = []
    before: dict[str, Any] = {"submit_requests": 0, "status_reads": 0, "rate_limited": 0}
    for index, batch in enumerate(measured["batches"]):
        stats = batch["stats_after"]
        n = scenario.n if index == 0 else warm
        learnt: dict[str, float] = batch["learnt"]
        latencies = [at - tasks[task_id]["finishTime"] for task_id, at in learnt.items()]
        makespan = max(learnt.values(), default=math.nan) - batch["started"]
        reads = stats["status_reads"] - before["status_reads"]
        requests = stats["submit_requests"] - before["submit_requests"] + reads
        suffix = ", warm" if index else ""
        rows.append(
            Row(
                label=contender.label + suffix,
                family=contender.family + (" (warm)" if index else ""),
                setting=contender.setting,
                jobs=len(learnt),
                errors=batch["errors"],
                makespan=makespan,
                makespan_ratio=makespan / scenario.bound_for(n),
                requests_per_job=requests / n,
                reads_per_job=reads / n,
                requests=requests,
                reads=reads,
                rate_limited=stats["rate_limited"] - before["rate_limited"],
                latency_p50=percentile(latencies, 50),
                latency_p95=percentile(latencies, 95),
                cpu_ms_per_job=batch["cpu_seconds"] * 1000 / n,
                peak_rss_mb=measured["peak_rss_kb"] / 1024,
            )
        )
        before = stats
    return rows


def httpx_floor(scenario: Scenario, requests: int) -> float:
    """CPU milliseconds one bare httpx status read costs on this machine."""
    with emulator(scenario) as (base_url, _image):
        measured = _contender_process(
            ["httpx-floor", "--base-url", base_url, "--n", str(requests)], timeout=120
        )
    return float(measured["cpu_ms_per_request"])


def queued_memory(jobs: int) -> dict[str, float]:
    """Bytes of RSS per queued job: recraft-async's queue against gathered coroutines."""
    found = {"jobs": float(jobs)}
    for kind in ("queued-recraft", "queued-naive"):
        measured = _contender_process([kind, "--n", str(jobs)], timeout=300)
        found[kind] = measured["rss_growth_kb"] * 1024 / jobs
    return found


def memory_line(memory: dict[str, float]) -> str:
    """The report's line on the RSS of queued jobs."""
    return (
        f"RSS of {memory['jobs']:,.0f} queued jobs: recraft-async "
        f"{memory['queued-recraft']:.0f} B/job; asyncio.gather of per-job coroutines "
        f"{memory['queued-naive']:.0f} B/job."
    )


def table(
    scenario: Scenario,
    rows: Sequence[Row],
    memory: dict[str, float],
    warm_n: int,
    floor_ms: float,
) -> str:
    """The markdown report."""
    med = scenario.median_real
    lines = [
        f"N = {scenario.n} upscales; submit limit {scenario.rate_n} per "
        f"{scenario.rate_per:g} s (sliding window); processing lognormal, median "
        f"{scenario.median:g} s x time scale {scenario.time_scale:g} = {med:g} s, "
        f"sigma {scenario.sigma:g}; lower bound N/rate + median = "
        f"{scenario.lower_bound:.2f} s. Latencies in real seconds and in % of the median. "
        + (
            f"Rows marked warm: a second batch of {warm_n} jobs on the same client, once its "
            f"planner has learnt (bound {scenario.bound_for(warm_n):.2f} s)."
            if warm_n
            else ""
        ),
        "",
        (
            "| contender | makespan s | / bound | requests/job | status reads/job | 429s "
            "| detect p50 | detect p95 | CPU ms/job | peak RSS MB | errors |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {r.label} | {r.makespan:.2f} | {r.makespan_ratio:.3f} | {r.requests_per_job:.2f} "
        f"| {r.reads_per_job:.2f} | {r.rate_limited} "
        f"| {r.latency_p50:.3f} s ({100 * r.latency_p50 / med:.1f} %) "
        f"| {r.latency_p95:.3f} s ({100 * r.latency_p95 / med:.1f} %) "
        f"| {r.cpu_ms_per_job:.2f} | {r.peak_rss_mb:.1f} | {r.errors} |"
        for r in rows
    )
    if memory:
        lines += ["", memory_line(memory)]
    lines += [
        "",
        (
            f"A bare httpx status read (one at a time, keep-alive) costs {floor_ms:.2f} ms of "
            "CPU here: the floor under any httpx-based client's CPU per request."
        ),
        "",
        *comparison(rows, med),
    ]
    return "\n".join(lines) + "\n"


def fixed_reads_at(rows: Sequence[Row], latency: float) -> float:
    """Status reads per job of fixed-interval polling at ``latency``, log-log interpolated."""
    curve = sorted(
        (r.latency_p50, r.reads_per_job)
        for r in rows
        if r.family in ("fixed", "naive") and r.latency_p50 > 0 and r.reads_per_job > 0
    )
    if len(curve) < 2:
        return math.nan
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= latency <= x1 or (x1, y1) == curve[-1]:
            if x1 == x0:
                return y0
            t = (math.log(latency) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return math.exp(math.log(y0) + t * (math.log(y1) - math.log(y0)))
    return math.nan


def comparison(rows: Sequence[Row], median: float) -> list[str]:
    """recraft-async's status reads against fixed-interval polling at equal p50 latency."""
    lines = [
        (
            "| recraft-async setting | detect p50 | its reads/job | fixed-interval reads/job "
            "at that p50 | ratio (target <= 0.70) |"
        ),
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if not r.family.startswith("recraft-async"):
            continue
        fixed = fixed_reads_at(rows, r.latency_p50)
        warm = " (warm)" if "warm" in r.family else ""
        lines.append(
            f"| {r.setting}{warm} | {100 * r.latency_p50 / median:.1f} % "
            f"| {r.reads_per_job:.2f} | {fixed:.2f} | {r.reads_per_job / fixed:.2f} |"
        )
    return lines


def plot(rows: Sequence[Row], median: float, path: Path) -> bool:
    """Status reads per job against p50 detection latency; False without matplotlib."""
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional, the bench extra
        import matplotlib.ticker  # noqa: PLC0415

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    styles = {
        "recraft-async": ("o-", "tab:blue"),
        "recraft-async (warm)": ("o:", "tab:green"),
        "fixed": ("s--", "tab:orange"),
    }
    for family, (style, colour) in styles.items():
        points = sorted(
            (100 * r.latency_p50 / median, r.reads_per_job, r.setting)
            for r in rows
            if r.family == family
        )
        if points:
            xs = [x for x, _, _ in points]
            ys = [y for _, y, _ in points]
            label = "recraft-async (cold)" if family == "recraft-async" else family
            axes.plot(xs, ys, style, color=colour, label=label)
            for x, y, text in points:
                axes.annotate(text, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    for r in rows:
        if r.family == "naive":
            x = 100 * r.latency_p50 / median
            axes.plot([x], [r.reads_per_job], "k^", label=f"naive ({r.setting})")
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis, ticks in ((axes.xaxis, (1, 2, 5, 10, 20, 50)), (axes.yaxis, (2, 3, 5, 10, 20, 50))):
        axis.set_major_locator(mpl.ticker.FixedLocator(ticks))
        axis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
        axis.set_minor_formatter(mpl.ticker.NullFormatter())
    axes.set_xlabel("p50 detection latency, % of the median processing time")
    axes.set_ylabel("status reads per job")
    axes.set_title("Polling efficiency (lower left is better)")
    axes.grid(visible=True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def parser() -> argparse.ArgumentParser:
    """The runner's options."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--n", type=int, default=150, help="jobs per contender")
    cli.add_argument(
        "--warm-n", type=int, default=100, help="recraft-async: a second batch (0: none)"
    )
    cli.add_argument("--rate", default="50/10", help="the emulator's submit limit, N/SECONDS")
    cli.add_argument("--time-scale", type=float, default=0.1)
    cli.add_argument("--median", type=float, default=20.0, help="unscaled seconds")
    cli.add_argument("--sigma", type=float, default=0.5)
    cli.add_argument("--seed", type=int, default=7)
    cli.add_argument("--queued", type=int, default=QUEUED_JOBS, help="0 skips the RSS test")
    cli.add_argument(
        "--memory-only",
        action="store_true",
        help="only the RSS of --queued jobs (seconds), printed; no emulator, no files written",
    )
    cli.add_argument("--quick", action="store_true", help="one setting per family")
    cli.add_argument("--out", type=Path, default=HERE / "results")
    cli.add_argument("--no-plot", action="store_true")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run every contender in turn and write the table, the numbers and the plot."""
    args = parser().parse_args(argv)
    count, _, per = args.rate.partition("/")
    scenario = Scenario(
        n=args.n,
        rate_n=int(count),
        rate_per=float(per or 1),
        time_scale=args.time_scale,
        median=args.median,
        sigma=args.sigma,
        seed=args.seed,
    )
    if args.memory_only:
        print(memory_line(queued_memory(args.queued or QUEUED_JOBS)))
        return 0
    began = time.monotonic()
    rows: list[Row] = []
    for contender in contenders(scenario, quick=args.quick):
        for row in run_contender(scenario, contender, args.warm_n):
            print(
                f"{row.label}: makespan {row.makespan:.2f} s, {row.reads_per_job:.2f} "
                f"reads/job, p50 {row.latency_p50:.3f} s, CPU {row.cpu_ms_per_job:.2f} ms/job",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    memory = queued_memory(args.queued) if args.queued else {}
    floor_ms = httpx_floor(scenario, 50 if args.quick else 500)
    args.out.mkdir(parents=True, exist_ok=True)
    report = table(scenario, rows, memory, args.warm_n, floor_ms)
    report += f"\nMachine: {machine()}. Run took {time.monotonic() - began:.0f} s.\n"
    (args.out / "results.md").write_text(report)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "scenario": attrs.asdict(scenario),
                "rows": [attrs.asdict(r) for r in rows],
                "queued_bytes_per_job": memory,
                "httpx_cpu_ms_per_request": floor_ms,
            },
            indent=2,
        )
    )
    if not args.no_plot:
        plot(rows, scenario.median_real, args.out / "polling.png")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

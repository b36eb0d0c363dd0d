"""What the best possible client would achieve: the oracle's makespan, the polling frontier.

Both benchmarks (``run.py`` against the emulator, ``matrix.py`` on virtual time) report
against these two references rather than against a formula's bound:

- **The oracle's makespan** knows every task's processing time in advance. It submits
  as early as the sliding submit window allows (the k-th submit at ``(k // n) * per``
  seconds after the first) and reads each task exactly once, at the moment it ends: its
  makespan is ``max_k(submit_k + duration_k)``. The emulator draws processing times in
  the order tasks are created, so the k-th created task's duration is the one the k-th
  submit would meet whoever submits it. No client can finish before it.
- **The polling frontier** knows the distribution of processing times (lognormal with
  the row's median and sigma) but not a task's own. Among the read schedules a task can
  follow (reads at fixed times after its submit, until one sees it ended), the frontier
  at ``k`` reads per job is the one whose expected detection delay (task end to the read
  that sees it) is least while its expected number of reads per job is at most ``k``.
  Its p50 and p95 are that schedule's quantiles of detection delay, computed exactly from
  the distribution. It minimises the mean delay, not each quantile alone: a schedule
  built for p95 only could beat its p95 at the cost of its p50.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

# The schedule's search grid: reads on GRID points from the submit to the distribution's
# TAIL quantile (what lies beyond, one task in 100,000, is ignored).
GRID = 1200
TAIL = 1e-5


def oracle_makespan(durations: Sequence[float], rate_n: int, rate_per: float) -> float:
    """Seconds from the first submit to the last task's end, submits as early as allowed."""
    return max(
        ((k // rate_n) * rate_per + d for k, d in enumerate(durations)),
        default=math.nan,
    )


def durations_in_order(tasks: Iterable[Mapping[str, Any]]) -> list[float]:
    """The processing times of the emulator's task list (``/_emulator/tasks``), by creation."""
    ordered = sorted(tasks, key=lambda t: float(t["createTime"]))
    return [float(t["finishTime"]) - float(t["createTime"]) for t in ordered]


@attrs.frozen
class Frontier:
    """The best read schedule at a number of reads per job, and its detection delays."""

    reads_per_job: float
    mean: float
    p50: float
    p95: float
    schedule: tuple[float, ...]


def _cdf(median: float, sigma: float, t: float) -> float:
    if t <= 0:
        return 0.0
    return 0.5 * (1 + math.erf((math.log(t / median)) / (sigma * math.sqrt(2))))


def _quantile(median: float, sigma: float, q: float) -> float:
    # Bisection on the CDF: no SciPy needed.
    low, high = 0.0, median * math.exp(12 * sigma)
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if _cdf(median, sigma, mid) < q else (low, mid)
    return high


def delay_quantile(median: float, sigma: float, schedule: Sequence[float], q: float) -> float:
    """The ``q`` quantile of detection delay of a task polled at ``schedule``."""

    def covered(delay: float) -> float:
        # A task is detected within ``delay`` when it ends in [t_i - delay, t_i] of its
        # first read t_i at or after its end.
        total, previous = 0.0, 0.0
        for t in schedule:
            total += _cdf(median, sigma, t) - _cdf(median, sigma, max(t - delay, previous))
            previous = t
        return total

    low, high = 0.0, schedule[-1] if schedule else 0.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if covered(mid) < q else (low, mid)
    return high


def frontier(median: float, sigma: float, reads_per_job: float) -> Frontier:
    """The read schedule of least mean detection delay within ``reads_per_job``.

    A schedule reads at t_1 < t_2 < ... after the submit, the read at t_i only when the
    task had not ended by t_(i-1): its expected reads are ``1 + sum S(t_i)`` (S the
    survival). Dynamic programming on a grid finds, for a price ``lam`` per read, the
    schedule minimising mean delay + lam x reads; bisection on ``lam`` meets the budget.
    """
    if sigma <= 0 or reads_per_job < 1:
        # Known durations: one read at the end (or no schedule within less than one read).
        nothing = math.inf if reads_per_job < 1 else 0.0
        return Frontier(reads_per_job, nothing, nothing, nothing, (median,))
    import numpy as np  # noqa: PLC0415 - the bench extra (matplotlib's dependency)

    end = _quantile(median, sigma, 1 - TAIL)
    t = np.linspace(0.0, end, GRID + 1)
    z = np.log(np.maximum(t, 1e-300) / median) / sigma
    erf = np.vectorize(math.erf)
    cdf = np.where(t > 0, 0.5 * (1 + erf(z / math.sqrt(2))), 0.0)
    # The partial first moment M(t) = E[T; T <= t] of a lognormal.
    mu = math.log(median)
    shifted = (np.log(np.maximum(t, 1e-300)) - mu - sigma**2) / sigma
    moment = np.where(
        t > 0, math.exp(mu + sigma**2 / 2) * 0.5 * (1 + erf(shifted / math.sqrt(2))), 0.0
    )
    survival = 1 - cdf

    def solve(lam: float) -> tuple[float, float, list[int]]:
        value = np.zeros(GRID + 1)
        step = np.zeros(GRID + 1, dtype=int)
        for j in range(GRID - 1, -1, -1):
            ks = slice(j + 1, GRID + 1)
            costs = (
                lam * survival[j]
                + t[ks] * (cdf[ks] - cdf[j])
                - (moment[ks] - moment[j])
                + value[ks]
            )
            best = int(np.argmin(costs))
            value[j] = costs[best]
            step[j] = j + 1 + best
        path, j = [], 0
        while j < GRID:
            j = int(step[j])
            path.append(j)
        reads = float(1 + sum(survival[k] for k in path[:-1]))
        mean = float(value[0]) - lam * reads
        return reads, mean, path

    low, high = 0.0, median * 10
    found = solve(high)
    for _ in range(40):
        lam = (low + high) / 2
        attempt = solve(lam)
        if attempt[0] <= reads_per_job:
            high, found = lam, attempt
        else:
            low = lam
    reads, mean, path = found
    schedule = tuple(float(t[k]) for k in path)
    return Frontier(
        reads_per_job=reads,
        mean=mean,
        p50=delay_quantile(median, sigma, schedule, 0.50),
        p95=delay_quantile(median, sigma, schedule, 0.95),
        schedule=schedule,
    )

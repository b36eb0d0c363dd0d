"""The adaptive poll schedule: learn how long tasks take, read near their likely finish.

Pure arithmetic and in-memory state, no I/O. With nothing learned yet a job reads on the
PollPolicy's fixed schedule. Once a few tasks of an operation have finished, a log-normal
distribution is fitted to the recent tasks' processing times, counting the tasks still
running as "at least this long" (right-censored), so that the first, fast finishes of a
batch do not pass for the whole distribution. The first read then comes where about 60 %
of the tasks are still running, and each next one where a constant share of the
still-running tasks is expected to have finished (a constant hazard per read): the
expected number of reads per job is about ``PollPolicy.reads_per_job``, and the reads
bunch where finishes bunch, which is where a read buys the most latency.

Costs: a fit is a few dozen passes over at most ``MAX_SAMPLES`` numbers, made after each
finish while little is known and after every ``REFIT_EVERY`` finishes later; it yields a
list of read moments, and each read's decision is a binary search in it.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from collections.abc import Hashable
from statistics import NormalDist

from ._models import Operation
from ._policy import (
    PollPolicy,
    ProcessingTime,
    advised_read_after,
    growing_read_after,
    lognormal_quantile,
    next_safety_read,
)

# Finished tasks needed before reads follow the fitted distribution (censored tasks help:
# they say how many are still running).
MIN_SAMPLES = 5
# Recent tasks only: the service's speed drifts with its load.
MAX_SAMPLES = 256
# Two reads closer than this (seconds) would learn nothing new.
MIN_GAP = 0.01
# Refit after every finish until this many are known, then after every REFIT_EVERY.
EAGER_FITS = 32
REFIT_EVERY = 16
# The fit's floor on the spread (of the log): identical durations must not give a
# zero-width distribution.
MIN_SIGMA = 0.05
# The schedule ends where this share of tasks is still running: the fixed schedule's
# growing intervals take over beyond it.
TAIL_SURVIVAL = 1e-4
# Below this share of tasks still running, the gaps between reads grow geometrically.
TAIL_START = 0.1
# The first read waits until no more than this share of tasks is still running: the
# reads saved on the fast few pay for denser reads where most tasks finish.
FIRST_SURVIVAL = 0.6
# The fixed reads left out once tasks were seen to finish: those before the fastest of
# this process's last RECENT_FINISHES finishes, and before where SKIP_SHARE of the fitted
# distribution has finished. Only this process's own finishes count: a warm start's may be
# from a service that has since become faster.
RECENT_FINISHES = 32
SKIP_SHARE = 0.01
# While the read budget has room, the gap between reads is at most the "dense gap"
# (PollPlanner.next_read) from where DENSE_FROM of the learnt tasks have finished to where
# DENSE_TO have: fixed-interval polling must not find a result sooner.
DENSE_FROM = 0.01
DENSE_TO = 0.99
_EM_ROUNDS = 60
_EM_TOLERANCE = 1e-5
_STANDARD = NormalDist()
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def fit_lognormal(finished: list[float], running: list[float]) -> tuple[float, float]:
    """(mu, sigma) of the log-normal best explaining finished and still-running tasks.

    ``finished`` are processing times, ``running`` how long unfinished tasks have taken so
    far (all seconds > 0). Maximum likelihood with right-censored data, by
    expectation-maximisation on the logs.
    """
    logs = [math.log(value) for value in finished]
    censored = [math.log(value) for value in running]
    count = len(logs) + len(censored)
    total = math.fsum(logs)
    squares = math.fsum(value * value for value in logs)
    mu = total / len(logs)
    sigma = max(math.sqrt(max(squares / len(logs) - mu * mu, 0.0)), MIN_SIGMA)
    for _ in range(_EM_ROUNDS):
        s1, s2 = total, squares
        for c in censored:
            # E[X | X > c] and E[X^2 | X > c] for X ~ N(mu, sigma^2).
            z = (c - mu) / sigma
            tail = 0.5 * math.erfc(z / _SQRT2)
            ratio = z if tail < 1e-300 else _INV_SQRT_2PI * math.exp(-0.5 * z * z) / tail
            s1 += mu + sigma * ratio
            s2 += mu * mu + sigma * sigma + sigma * (mu + c) * ratio
        new_mu = s1 / count
        new_sigma = max(math.sqrt(max(s2 / count - new_mu * new_mu, 0.0)), MIN_SIGMA)
        done = abs(new_mu - mu) < _EM_TOLERANCE and abs(new_sigma - sigma) < _EM_TOLERANCE
        mu, sigma = new_mu, new_sigma
        if done:
            break
    return mu, sigma


def constant_hazard_schedule(
    mu: float, sigma: float, reads_per_job: float, growth: float = 1.5
) -> list[float]:
    """Read moments (seconds after submit): a constant hazard through the bulk, then growing.

    The first read comes where FIRST_SURVIVAL of the tasks of log-normal(mu, sigma) are
    still running (or 1 - 1/reads_per_job, if that is later); each next read where a
    constant share h of those still running at the previous one has finished, h chosen so
    that a job reads ``reads_per_job`` times on average. Once fewer than TAIL_START are
    still running, the gaps grow by ``growth`` per read instead: the few slow tasks do not
    each pay for many reads. The moments increase strictly.
    """
    first = min(FIRST_SURVIVAL, 1.0 - 1.0 / reads_per_job)
    keep = 1.0 - first / (reads_per_job - 1.0)
    moments: list[float] = []
    survival = first
    while survival >= TAIL_START:
        at = math.exp(mu + sigma * _STANDARD.inv_cdf(1.0 - survival))
        if not moments or at > moments[-1] + MIN_GAP:
            moments.append(at)
        survival *= keep
    end = math.exp(mu + sigma * _STANDARD.inv_cdf(1.0 - TAIL_SURVIVAL))
    gap = moments[-1] - moments[-2] if len(moments) > 1 else moments[-1] * (1 - keep)
    while moments[-1] < end:
        gap = max(gap * growth, MIN_GAP)
        moments.append(moments[-1] + gap)
    return moments


class DurationModel:
    """The recent tasks of one operation, in start order.

    It keeps how long the finished ones took, and how long the running ones have run so far.
    """

    __slots__ = ("_cohort", "_done", "_finished", "_fit", "_fitted_at", "_own", "_schedule")

    def __init__(self) -> None:
        # key -> (processing time, None) once finished, or (None, seconds run so far).
        self._cohort: OrderedDict[Hashable, tuple[float | None, float]] = OrderedDict()
        self._done = 0  # finished tasks in the cohort
        self._finished = 0  # finishes ever observed, to pace the refits
        self._fitted_at = -1
        self._fit: tuple[float, float] | None = None  # (mu, sigma) as of _fitted_at
        self._schedule: tuple[float, list[float]] | None = None  # (reads_per_job, moments)
        self._own: deque[float] = deque(maxlen=RECENT_FINISHES)  # this process's finishes

    def __len__(self) -> int:
        return self._done

    def running(self, key: Hashable, seconds: float) -> None:
        """Note that the task ``key`` is still running ``seconds`` after its submit."""
        entry = self._cohort.get(key)
        if entry is None:
            self._add(key, (None, seconds))
        elif entry[0] is None and seconds > entry[1]:
            self._cohort[key] = (None, seconds)

    def forget(self, key: Hashable) -> None:
        """Drop a task that ended without a usable processing time (failed, cancelled)."""
        entry = self._cohort.get(key)
        if entry is not None and entry[0] is None:
            del self._cohort[key]

    def observe(self, seconds: float, key: Hashable | None = None, *, own: bool = True) -> None:
        """Add one finished task's processing time (``own``: seen by this process)."""
        if not math.isfinite(seconds) or seconds < 0:
            if key is not None:
                self.forget(key)
            return
        entry = self._cohort.get(key) if key is not None else None
        if entry is not None and entry[0] is None:
            self._cohort[key] = (seconds, 0.0)
        else:
            self._add(object() if key is None or entry is not None else key, (seconds, 0.0))
        self._done += 1
        self._finished += 1
        if own:
            self._own.append(seconds)

    def dense_window(self) -> tuple[float, float]:
        """(from, to): seconds after the submit between which most learnt tasks finish."""
        mu, sigma = self.current_fit()
        return lognormal_quantile(mu, sigma, DENSE_FROM), lognormal_quantile(mu, sigma, DENSE_TO)

    def no_finish_before(self) -> float:
        """Seconds after the submit before which this process saw no task finish (0: unsure)."""
        if len(self._own) < MIN_SAMPLES:
            return 0.0
        mu, sigma = self.current_fit()
        return min(*self._own, lognormal_quantile(mu, sigma, SKIP_SHARE))

    def _add(self, key: Hashable, entry: tuple[float | None, float]) -> None:
        if len(self._cohort) >= MAX_SAMPLES:
            _, (oldest, _) = self._cohort.popitem(last=False)
            if oldest is not None:
                self._done -= 1
        self._cohort[key] = entry

    def fit(self) -> tuple[float, float]:
        """(mu, sigma) of the log-normal fitted to the cohort (censoring the running)."""
        finished = [max(d, MIN_GAP) for d, _ in self._cohort.values() if d is not None]
        running = [r for d, r in self._cohort.values() if d is None and r > 0]
        return fit_lognormal(finished, running)

    def fit_due(self) -> bool:
        """Whether the next use of the fit will refit it."""
        every = 1 if self._finished < EAGER_FITS else REFIT_EVERY
        return self._fit is None or self._finished - self._fitted_at >= every

    def current_fit(self) -> tuple[float, float]:
        """(mu, sigma), refitted when enough has changed since the last fit."""
        if self._fit is None or self.fit_due():
            self._fit = self.fit()
            self._fitted_at = self._finished
            self._schedule = None
        return self._fit

    def schedule(self, reads_per_job: float) -> list[float]:
        """The read moments for ``reads_per_job``, refitted when enough has changed."""
        mu, sigma = self.current_fit()
        if self._schedule is None or self._schedule[0] != reads_per_job:
            self._schedule = (reads_per_job, constant_hazard_schedule(mu, sigma, reads_per_job))
        return self._schedule[1]

    def finished_times(self) -> list[float]:
        """The processing times of the finished tasks in the window, oldest first."""
        return [d for d, _ in self._cohort.values() if d is not None]


class PollPlanner:
    """Decides, for each job, how long to wait before its next status read."""

    def __init__(self, policy: PollPolicy) -> None:
        self.policy = policy
        self._models: dict[Operation, DurationModel] = {}
        # The prior's read moments, made once per (prior, reads_per_job).
        self._prior_schedule: tuple[ProcessingTime, float, list[float]] | None = None

    def observe(self, operation: Operation, seconds: float, key: Hashable | None = None) -> None:
        """Learn from one finished task of ``operation`` (``key``: as given to next_delay)."""
        self._model(operation).observe(seconds, key)

    def running(self, operation: Operation, key: Hashable, seconds: float) -> None:
        """Note that the task ``key`` has been running ``seconds`` (nobody reads it)."""
        self._model(operation).running(key, seconds)

    def fit_due(self, operation: Operation) -> bool:
        """Whether the next schedule of ``operation`` will refit its distribution."""
        model = self._models.get(operation)
        return model is not None and model.fit_due()

    def forget(self, operation: Operation, key: Hashable) -> None:
        """The task ``key`` ended without teaching anything (failed, cancelled, timed out)."""
        model = self._models.get(operation)
        if model is not None:
            model.forget(key)

    def next_delay(
        self,
        operation: Operation,
        elapsed: float,
        reads_done: int,
        key: Hashable | None = None,
    ) -> float:
        """Seconds from now to the next read of a task submitted ``elapsed`` seconds ago."""
        return self.next_read(operation, elapsed, reads_done, key)[0]

    def next_read(
        self,
        operation: Operation,
        elapsed: float,
        reads_done: int,
        key: Hashable | None = None,
        dense_gap: float | None = None,
    ) -> tuple[float, bool]:
        """(seconds from now to the next read, whether a finish is expected near it).

        The read comes no later than the policy's fixed schedule would make it, counted
        from the submit: that schedule is KIE's advice, and a learnt or assumed
        distribution may be wrong. What is learnt adds reads where finishes are likely
        (those are "expected": they go first when the read budget binds), at most
        ``dense_gap`` seconds apart where most tasks finish (the read budget's room: None
        adds none), and, once this process has seen tasks finish, leaves out the fixed
        reads before the fastest of them, where a read would only find the task still
        running. With a ``key`` (any hashable naming the task) the planner also learns
        that the task still runs: the fit then counts it as "at least ``elapsed`` long".
        """
        policy = self.policy
        if not policy.adaptive:
            return policy.interval(reads_done), True
        model = self._models.get(operation)
        if key is not None:
            if model is None:
                model = self._model(operation)
            model.running(key, elapsed)
        plan = self._plan(model)
        if plan is None:
            return max(advised_read_after(policy, elapsed) - elapsed, MIN_GAP), True
        moments, skip_until = plan
        advised = advised_read_after(policy, max(elapsed, skip_until))
        learnt = _next_moment(moments, elapsed)
        if dense_gap is not None and model is not None and len(model) >= MIN_SAMPLES:
            start, end = model.dense_window()
            dense = max(start, elapsed + dense_gap)
            if dense > end:
                # Past nearly every learnt finish: the gaps grow again from the dense one,
                # so that a task far slower than expected does not hold its caller for a
                # whole max_interval while the budget has room (and costs few reads).
                dense = growing_read_after(
                    end, dense_gap, policy.factor, policy.max_interval, elapsed
                )
            if learnt is None or dense < learnt:
                learnt = dense
        if learnt is not None and learnt <= advised:
            return max(learnt - elapsed, MIN_GAP), True
        return max(advised - elapsed, MIN_GAP), False

    def _plan(self, model: DurationModel | None) -> tuple[list[float], float] | None:
        """The read moments expected finishes ask for, and the time no read is needed before.

        From what this process learnt (or was preloaded with); else from the prior, which
        saves no read; else None: the fixed schedule alone.
        """
        policy = self.policy
        if model is not None and len(model) >= MIN_SAMPLES:
            moments = model.schedule(policy.reads_per_job)
            return moments, model.no_finish_before()
        if policy.prior is None:
            return None
        return self._prior_moments(policy.prior, policy.reads_per_job), 0.0

    def safety_delay(self, operation: Operation, elapsed: float) -> float:
        """Seconds from now to the next safety read of a job that waits for its callback.

        The first comes at the policy's ``callback_quantile`` of the learnt processing
        times (else of its prior, else at ``max_interval``), each next one
        ``callback_growth`` times later (counted from the submit).
        """
        policy = self.policy
        fitted = self.distribution(operation)
        if fitted is None:
            first = policy.max_interval
        else:
            first = lognormal_quantile(fitted[0], fitted[1], policy.callback_quantile)
        return next_safety_read(first, policy.callback_growth, elapsed, MIN_GAP)

    def distribution(self, operation: Operation) -> tuple[float, float] | None:
        """(mu, sigma) of the processing times learnt for ``operation``, else of the prior."""
        fitted = self.learnt_fit(operation) if self.policy.adaptive else None
        if fitted is not None:
            return fitted
        prior = self.policy.prior
        return None if prior is None else (math.log(prior.median), prior.sigma)

    def learnt_fit(self, operation: Operation) -> tuple[float, float] | None:
        """(mu, sigma) fitted to what was learnt for ``operation``; None: too little yet."""
        model = self._models.get(operation)
        if model is None or len(model) < MIN_SAMPLES:
            return None
        return model.current_fit()

    def learnt(self) -> dict[Operation, list[float]]:
        """The finished tasks' processing times per operation, oldest first (to persist)."""
        return {
            op: times for op, model in self._models.items() if (times := model.finished_times())
        }

    def preload(self, learnt: dict[Operation, list[float]]) -> None:
        """Start from processing times an earlier process learnt (a warm start)."""
        for operation, times in learnt.items():
            model = self._model(operation)
            for seconds in times[-MAX_SAMPLES:]:
                model.observe(seconds, own=False)

    def _prior_moments(self, prior: ProcessingTime, reads_per_job: float) -> list[float]:
        cached = self._prior_schedule
        if cached is None or cached[0] != prior or cached[1] != reads_per_job:
            moments = constant_hazard_schedule(math.log(prior.median), prior.sigma, reads_per_job)
            cached = self._prior_schedule = (prior, reads_per_job, moments)
        return cached[2]

    def _model(self, operation: Operation) -> DurationModel:
        model = self._models.get(operation)
        if model is None:
            model = self._models[operation] = DurationModel()
        return model


def _next_moment(moments: list[float], elapsed: float) -> float | None:
    """The next of ``moments`` after ``elapsed``; None past the last one.

    A moment less than half its gap away was stood in for by a read that came early (a
    fixed one): the one after it is next.
    """
    index = bisect.bisect_right(moments, elapsed + MIN_GAP)
    if index < len(moments):
        before = moments[index - 1] if index else 0.0
        if moments[index] - elapsed < (moments[index] - before) / 2:
            index += 1
    return moments[index] if index < len(moments) else None

"""The adaptive poll schedule: learn how long tasks take, read near their likely finish.

Pure arithmetic and in-memory state, no I/O. With nothing learned yet a job reads on the
PollPolicy's fixed schedule. Once enough tasks of an operation have finished, reads are
placed where a constant share of the still-running tasks is expected to have finished
(a constant hazard per read): the expected number of reads per job is then
``PollPolicy.reads_per_job`` whatever the shape of the distribution, and the reads bunch
where finishes bunch, which is where a read buys the most latency.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from ._models import Operation
from ._policy import PollPolicy

# Enough finished tasks to place a quantile with some confidence.
MIN_SAMPLES = 8
# Recent tasks only: the service's speed drifts with its load.
MAX_SAMPLES = 256
# Two reads closer than this (seconds) would learn nothing new.
MIN_GAP = 0.01


class DurationModel:
    """The recent processing times of one operation, kept sorted for quantiles."""

    __slots__ = ("_recent", "_sorted")

    def __init__(self) -> None:
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def observe(self, seconds: float) -> None:
        """Add one finished task's processing time."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        if len(self._recent) >= MAX_SAMPLES:
            oldest = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]
        self._recent.append(seconds)
        bisect.insort(self._sorted, seconds)

    def quantile(self, level: float) -> float:
        """The empirical quantile at ``level`` in [0, 1], linearly interpolated."""
        values = self._sorted
        position = min(max(level, 0.0), 1.0) * (len(values) - 1)
        low = math.floor(position)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (position - low)


class PollPlanner:
    """Decides, for each job, how long to wait before its next status read."""

    def __init__(self, policy: PollPolicy) -> None:
        self.policy = policy
        self._models: dict[Operation, DurationModel] = {}

    def observe(self, operation: Operation, seconds: float) -> None:
        """Learn from one finished task of ``operation``."""
        self._models.setdefault(operation, DurationModel()).observe(seconds)

    def next_delay(self, operation: Operation, elapsed: float, reads_done: int) -> float:
        """Seconds from now to the next read of a task submitted ``elapsed`` seconds ago."""
        policy = self.policy
        model = self._models.get(operation)
        fixed = policy.interval(reads_done)
        if not policy.adaptive or model is None or len(model) < MIN_SAMPLES:
            return fixed
        target = self._next_read_at(model, elapsed, reads_done)
        if target is None:
            # Slower than anything seen lately: fall back to the fixed, growing schedule.
            return fixed
        return min(max(target - elapsed, MIN_GAP), policy.max_interval)

    def _next_read_at(self, model: DurationModel, elapsed: float, reads_done: int) -> float | None:
        # Read k (1-based) comes where the share of tasks still running is (1 - h)**k.
        hazard = 1.0 / self.policy.reads_per_job
        k = reads_done + 1
        while True:
            survival = (1.0 - hazard) ** k
            if survival < 1.0 / (2 * len(model)):
                return None
            at = model.quantile(1.0 - survival)
            if at > elapsed + MIN_GAP:
                return at
            k += 1

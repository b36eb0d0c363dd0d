"""Traffic: the emulated account's rate windows, and the peaks of load it records.

The submit and read windows (KIE's limits, sliding windows) and the two peaks a test may
want proved (tasks pending at once, status reads in one second), apart from the tasks
and files of :class:`~._service.KieService`, which asks it at each submit and read.
"""

from __future__ import annotations

import collections
import heapq

from recraft_async._core._policy import Rate

from ._stats import EmulatorStats
from ._window import SlidingWindow


class Traffic:
    """The submit and read windows, and the load peaks, counted in ``stats``.

    The rates are passed on each call: the service's ``rate`` and ``read_rate`` are plain
    attributes that a test may change between requests.
    """

    def __init__(self, stats: EmulatorStats) -> None:
        self._stats = stats
        self._submits = SlidingWindow()
        self._reads = SlidingWindow()
        self._recent_reads: collections.deque[float] = collections.deque()
        self._pending: list[float] = []

    def submit_refused(self, rate: Rate | None, now: float) -> float | None:
        """Seconds to wait when a submit now is over ``rate`` (counted), else None."""
        retry = None if rate is None else self._submits.retry_after(rate, now)
        if retry is not None:
            self._stats.rate_limited += 1
        return retry

    def take_submit(self, rate: Rate | None, now: float) -> None:
        """A submit goes ahead: it takes its slot (after ``submit_refused`` said None)."""
        if rate is not None:
            self._submits.take(now)

    def admit_read(self, rate: Rate | None, now: float) -> float | None:
        """None when a status read may go ahead (its slot taken), else seconds to wait."""
        if rate is None:
            return None
        retry = self._reads.retry_after(rate, now)
        if retry is not None:
            self._stats.read_rate_limited += 1
            return retry
        self._reads.take(now)
        return None

    def note_pending(self, now: float, finished: float) -> None:
        """A task was created that finishes at ``finished``: the peak of pending tasks."""
        # Pending tasks only grow at a submit, so the maximum is always seen right here.
        while self._pending and self._pending[0] <= now:
            heapq.heappop(self._pending)
        if finished > now:
            heapq.heappush(self._pending, finished)
        self._stats.max_pending = max(self._stats.max_pending, len(self._pending))

    def note_read(self, now: float, second: float) -> None:
        """A status read arrived: the busiest ``second`` (the service's scaled second)."""
        reads = self._recent_reads
        reads.append(now)
        while reads[0] <= now - second:
            reads.popleft()
        self._stats.peak_reads_per_second = max(self._stats.peak_reads_per_second, len(reads))

"""A sliding-window rate limit, as the service applies to submits and to status reads."""

from __future__ import annotations

import collections

from recraft_async._core._policy import Rate


class SlidingWindow:
    """The arrival moments of the requests let through in the last ``rate.per`` seconds.

    The rate is passed on each call, so that a test may change the emulator's ``rate``
    or ``read_rate`` between requests. Refused requests take no slot: the service says
    so much ("rejected, not queued").
    """

    def __init__(self) -> None:
        self._moments: collections.deque[float] = collections.deque()

    def retry_after(self, rate: Rate, now: float) -> float | None:
        """Seconds until a slot frees, or None when one is free now."""
        while self._moments and self._moments[0] <= now - rate.per:
            self._moments.popleft()
        if len(self._moments) < rate.n:
            return None
        return max(self._moments[0] + rate.per - now, 0.001)

    def take(self, now: float) -> None:
        """Use one slot (after ``retry_after`` said one is free)."""
        self._moments.append(now)

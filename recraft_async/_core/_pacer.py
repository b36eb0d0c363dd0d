"""Pacing: a sliding-window rate shared by many tasks, with a pause after a 429.

One class serves both of KIE's per-key limits: submits (20 per 10 s, first come first
served) and status reads (10 per second, the read that is due first goes first).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ._policy import MAX_RETRY_AFTER, Rate


class Pacer:
    """Lets a request go only when the service's sliding window has room for it.

    The service counts a request when it arrives, which we cannot see; we only know it
    arrived between our send and its answer. So a slot is given back ``per`` seconds after
    the answer, not after the send: n requests can then never land within one window,
    whatever the network's delays. Waiters are served in ``priority`` order (lowest
    first; by default the order they asked in). anyio's CapacityLimiter has no notion of
    time or priority, hence this small class.
    """

    def __init__(self, rate: Rate | None) -> None:
        self.rate = rate
        # Min-heap of the moments at which each free slot may be used again.
        self._free_at: list[float] = [-math.inf] * (rate.n if rate else 0)
        # Min-heap of waiters: [priority, arrival, event]; only the first one watches the
        # clock, the others sleep on their event until they come first.
        self._waiters: list[list[object]] = []
        self._arrivals = itertools.count()
        self._paused_until = -math.inf

    def pause(self, seconds: float) -> None:
        """Hold every request of this pacer for ``seconds`` (a 429's Retry-After)."""
        until = anyio.current_time() + min(max(seconds, 0.0), MAX_RETRY_AFTER)
        self._paused_until = max(self._paused_until, until)

    def delay(self) -> float | None:
        """Seconds until the first waiting request may go; None when none waits on the clock.

        None too when there is room now, or when every slot is held by a request still
        on the wire (its answer, not the clock, frees the next one). Read-only.
        """
        if not self._waiters:
            return None
        left = self._ready_at() - anyio.current_time()
        return left if 0 < left < math.inf else None

    @asynccontextmanager
    async def slot(self, priority: float | None = None) -> AsyncIterator[None]:
        """Wait for room in the window, hold it for one request, then give it back."""
        await self._acquire(anyio.current_time() if priority is None else priority)
        try:
            yield
        finally:
            if self.rate is not None:
                heapq.heappush(self._free_at, anyio.current_time() + self.rate.per)
                self._wake_first()

    def _ready_at(self) -> float:
        if self.rate is None:
            return self._paused_until
        if not self._free_at:
            return math.inf  # every slot is held: a release wakes the first waiter
        return max(self._free_at[0], self._paused_until)

    async def _acquire(self, priority: float) -> None:
        if not self._waiters and self._ready_at() <= anyio.current_time():
            self._take()  # the common case: no queue, room now
            return
        entry: list[object] = [priority, next(self._arrivals), anyio.Event()]
        heapq.heappush(self._waiters, entry)
        self._wake_first()  # a new first waiter must take over the clock
        try:
            while True:
                event = entry[2]
                assert isinstance(event, anyio.Event)  # noqa: S101 - the entry's shape
                if self._waiters[0] is entry:
                    delay = self._ready_at() - anyio.current_time()
                    if delay <= 0:
                        heapq.heappop(self._waiters)
                        self._take()
                        self._wake_first()
                        return
                    with anyio.move_on_after(delay):
                        await event.wait()
                else:
                    await event.wait()
                if event.is_set():  # anyio events cannot be cleared
                    entry[2] = anyio.Event()
        except BaseException:
            if entry in self._waiters:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
                self._wake_first()
            raise

    def _take(self) -> None:
        if self.rate is not None:
            heapq.heappop(self._free_at)

    def _wake_first(self) -> None:
        if self._waiters:
            event = self._waiters[0][2]
            assert isinstance(event, anyio.Event)  # noqa: S101 - the entry's shape
            event.set()

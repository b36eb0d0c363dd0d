"""Submit pacing: the sliding-window rate and the client-wide pause after a 429."""

from __future__ import annotations

import heapq
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ._policy import MAX_RETRY_AFTER, Rate


class SubmitPacer:
    """Lets a submit go only when the service's sliding window has room for it.

    The service counts a submit when it arrives, which we cannot see; we only know it
    arrived between our send and its answer. So a slot is given back ``per`` seconds after
    the answer, not after the send: n submits can then never land within one window,
    whatever the network's delays (anyio's CapacityLimiter has no notion of time, hence
    this small class).
    """

    def __init__(self, rate: Rate | None) -> None:
        self.rate = rate
        # Min-heap of the moments at which each free slot may be used again.
        self._free_at: list[float] = [-math.inf] * (rate.n if rate else 0)
        self._lock = anyio.Lock()
        self._released = anyio.Event()
        self._paused_until = -math.inf

    def pause(self, seconds: float) -> None:
        """Hold every submit of the client for ``seconds`` (a 429's Retry-After)."""
        until = anyio.current_time() + min(max(seconds, 0.0), MAX_RETRY_AFTER)
        self._paused_until = max(self._paused_until, until)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for room in the window, hold it for one submit, then give it back."""
        if self.rate is None:
            await self._wait_unpaused()
            yield
            return
        per = self.rate.per
        async with self._lock:  # FIFO: submits leave in the order they asked
            while True:
                if not self._free_at:
                    self._released = anyio.Event()
                    await self._released.wait()
                    continue
                wake = max(self._free_at[0], self._paused_until)
                now = anyio.current_time()
                if wake <= now:
                    break
                await anyio.sleep(wake - now)
            heapq.heappop(self._free_at)
        try:
            yield
        finally:
            heapq.heappush(self._free_at, anyio.current_time() + per)
            self._released.set()

    async def _wait_unpaused(self) -> None:
        # A loop, not an Event: a later 429 may push the pause further while we sleep.
        while (delay := self._paused_until - anyio.current_time()) > 0:  # noqa: ASYNC110
            await anyio.sleep(delay)

"""A lock whose waiters take their turn by priority (lowest first, then arrival)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio


class Turn:
    """One holder at a time, the waiter of lowest priority next (anyio's Lock is FIFO)."""

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[float, int, anyio.Event]] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def hold(self, priority: float) -> AsyncIterator[None]:
        """Wait for this turn, hold it inside the block, then hand it to the next waiter."""
        if self._held or self._waiters:
            entry = (priority, next(self._arrivals), anyio.Event())
            heapq.heappush(self._waiters, entry)
            try:
                await entry[2].wait()
            except BaseException:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                    heapq.heapify(self._waiters)
                else:  # handed the turn while being cancelled: pass it on
                    self._pass_on()
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        if self._waiters:
            heapq.heappop(self._waiters)[2].set()  # the turn goes straight to it: still held
        else:
            self._held = False

"""The emulator's clock: the one owner of the time every part of the service reads.

Two readings: ``wall`` (epoch seconds: when tasks are created and end, the times in
records and callbacks, link expiry, task ids) and ``monotonic`` (the rate windows and the
read peaks). The real clock is ``time.time()`` and ``time.monotonic()``. The event loop's
clock (``"loop"``) is ``anyio.current_time()``, for ``wall`` offset once to the epoch so
that records still carry plausible dates: on a test's fake clock (trio's ``MockClock``, a virtual
asyncio loop) an in-process emulator's windows, durations and lifetimes then pass in
virtual time. A callable gives both readings itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeAlias

import anyio

ClockChoice: TypeAlias = Literal["real", "loop"] | Callable[[], float]
CLOCK_CHOICES = ("real", "loop")


class Clock:
    """Where the service reads the time; made from a ``clock=`` choice of ``KieEmulator``."""

    def __init__(self, choice: ClockChoice = "real") -> None:
        if choice == "real":
            self._wall: Callable[[], float] = time.time
            self._monotonic: Callable[[], float] = time.monotonic
        elif choice == "loop":
            self._wall, self._monotonic = self._loop_epoch, anyio.current_time
        elif callable(choice):
            self._wall = self._monotonic = choice
        else:
            raise ValueError(f"clock must be one of {CLOCK_CHOICES} or a callable")
        self.real = choice == "real"
        """Whether this is the real clock, which threads do not disturb.

        On any other clock the service does its image work inline, not in a worker
        thread: a virtual clock jumps forward while a thread works, as if time passed.
        """
        self._offset: float | None = None

    def wall(self) -> float:
        """Epoch seconds now."""
        return self._wall()

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back: for windows and intervals."""
        return self._monotonic()

    def _loop_epoch(self) -> float:
        now = anyio.current_time()
        if self._offset is None:
            # Fixed at the first reading: the loop's clock then passes as the epoch does.
            self._offset = time.time() - now
        return now + self._offset

"""Home: the thread and event loop a client lives in; a call from elsewhere fails at once.

anyio's primitives belong to the event loop that made them: awaited from another loop or
thread they hang or break in ways that name nothing of the cause. So the client, and the
jobs it owns, check the caller first and say what is wrong.
"""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel

from ._errors import WrongEventLoopError


class Home:
    """The thread, event loop and task that opened a client (taken where it is made)."""

    __slots__ = ("loop", "task", "thread")

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.loop: object = anyio.lowlevel.current_token()
        self.task = anyio.get_current_task().id

    def is_current_task(self) -> bool:
        """Whether the caller is the task that opened the client."""
        return anyio.get_current_task().id == self.task

    def check(self, what: str = "this client") -> None:
        """Raise ``WrongEventLoopError`` unless called from this thread and event loop."""
        if threading.get_ident() != self.thread:
            raise WrongEventLoopError(
                f"{what} belongs to another thread; an async client works only in its own"
                " thread and event loop: make one per thread (or use the sync client,"
                " recraft_async.Recraft)"
            )
        try:
            loop: object = anyio.lowlevel.current_token()
        except Exception:  # noqa: BLE001 - no event loop runs here at all
            loop = None
        if loop != self.loop:
            raise WrongEventLoopError(
                f"{what} belongs to another event loop (a second asyncio.run?); it works"
                " only in the loop that opened its client: make a client per event loop"
            )

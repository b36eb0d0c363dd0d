"""A client held open by a task of its own, for callers whose tasks end between uses.

A notebook runs every cell as a task of its own in one event loop: a client opened by
``async with`` in one cell is closed when the cell ends, and one entered by hand in a cell
cannot be left from the next (a task group ends only in the task that began it). So
``AsyncRecraft.open()`` opens the client in a task of its own, in the caller's event
loop, which any task of that loop may then use and close.

anyio starts tasks only inside a task group, which binds them to the task that entered
it. The one way it gives to start a task that belongs to no caller is ``from_thread.run``
with the loop's token: it runs a coroutine as a task of its own in that loop. So one idle
thread waits, for the client's life, on the task that holds it open.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import anyio
import anyio.from_thread
import anyio.lowlevel

from .errors import ClientNotOpenError

if TYPE_CHECKING:
    from ._lifecycle import Lifecycle


class BackgroundHost:
    """The task that opens a client's life, holds it open and closes it when told."""

    def __init__(self, life: Lifecycle) -> None:
        self._life = life
        self._opened = anyio.Event()
        self._stop = anyio.Event()
        self._closed = anyio.Event()
        self._error: BaseException | None = None  # the open's or the close's, for the caller

    async def start(self) -> None:
        """Open the client in a task of its own; return once it is open (or raise why not)."""
        token = anyio.lowlevel.current_token()
        threading.Thread(
            target=self._hold, args=(token,), name="recraft-async client", daemon=True
        ).start()
        await self._opened.wait()
        self._raise_error()
        if self._life.state != "open":  # the event loop cancelled the opening task
            raise ClientNotOpenError("the client's event loop cancelled its opening")

    async def close(self) -> None:
        """Let the holding task close the client (waiting for its jobs); raise what it did."""
        self._stop.set()
        await self._closed.wait()
        self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _hold(self, token: anyio.lowlevel.EventLoopToken) -> None:
        """The thread: run the holding task in the caller's loop until it ends."""
        try:
            anyio.from_thread.run(self._held, token=token)
        except BaseException:  # noqa: BLE001 - the loop ended or cancelled it: nothing waits
            return

    async def _held(self) -> None:
        """Open, wait to be told to close, close: all in this one task."""
        try:
            await self._life.open()
        except Exception as exc:  # noqa: BLE001 - raised to the caller of start()
            self._error = exc
        finally:
            self._opened.set()
            if self._life.state != "open":
                self._closed.set()  # nothing to close
        if self._life.state != "open":
            return
        stop = True  # the event loop ends without a close: stop the jobs, log their ids
        try:
            await self._stop.wait()
            stop = False
        finally:
            try:
                await self._life.close(stop=stop)
            except Exception as exc:  # noqa: BLE001 - raised to the caller of close()
                self._error = exc
            finally:
                self._closed.set()

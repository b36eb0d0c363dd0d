"""``shutdown_on_signals``: a client's shutdown begun at a server's stop signal.

uvicorn (and gunicorn's uvicorn workers) run the lifespan's exit only after the open
requests have ended. Requests that await jobs would then keep the jobs going, queued ones
submitted and paid, long after the signal: the client must hear the signal itself.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

import anyio

from ._client import check_can_shut_down
from ._core import _validate as check

if TYPE_CHECKING:
    from ._client import AsyncRecraft

logger = logging.getLogger("recraft_async")

_Handler = Callable[[int, FrameType | None], Any] | int | None


@contextlib.asynccontextmanager
async def shutdown_on_signals(
    client: AsyncRecraft,
    *,
    grace: float = 30.0,
    signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
) -> AsyncIterator[None]:
    """Begin ``client.shutdown(grace)`` the moment one of ``signals`` arrives.

    For a server's lifespan, around its ``yield``: uvicorn runs the lifespan's exit only
    once the open requests have ended, and until then the client would go on submitting
    (and paying for) the jobs those requests wait for. At the signal, the handler the
    server installed runs as before (it stops the server), and the client's shutdown
    begins at once: new jobs are refused, unsent ones cancelled unpaid, submitted ones
    read and delivered, and after ``grace`` seconds those still running are stopped with
    their task ids logged, so the requests waiting for them end within the grace. The
    lifespan's own ``await client.shutdown(...)`` afterwards waits for that one.
    ``client`` is the client itself: a view made by ``with_options`` raises
    ``ClientNotOpenError``, as its ``shutdown`` would.

    Keep ``grace`` a few seconds under the server's own limit (uvicorn's
    ``--timeout-graceful-shutdown``, gunicorn's ``--graceful-timeout``): a request still
    running when the server's limit ends is cancelled. Leaving the block restores the
    handlers it replaced. Signal handlers exist only in the main thread: elsewhere (a
    server run in a thread) nothing is installed, as uvicorn does then.
    """
    grace = check.non_negative("grace", grace)
    check_can_shut_down(client)  # a view (with_options) raises, as its shutdown would
    if threading.current_thread() is not threading.main_thread():
        logger.debug("shutdown_on_signals: not the main thread, no signal handler installed")
        yield
        return
    reader, writer = socket.socketpair()
    reader.settimeout(0.0)  # non-blocking
    writer.settimeout(0.0)
    previous: dict[int, _Handler] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # A signal handler may interrupt the event loop anywhere: it only writes a byte,
        # which wakes the task below, and runs the server's own handler.
        with contextlib.suppress(OSError):  # full: a wake-up is pending already
            writer.send(b"\0")
        _chain(previous[signum], signum, frame)

    try:
        for sig in dict.fromkeys(signals):  # once each: ours must never chain to ours
            previous[sig] = signal.signal(sig, on_signal)
        async with anyio.create_task_group() as group:
            began = False

            async def shut_down_at_the_signal() -> None:
                nonlocal began
                await anyio.wait_readable(reader)
                began = True
                logger.info("a stop signal came: the client shuts down (grace %g s)", grace)
                await client.shutdown(grace)

            group.start_soon(shut_down_at_the_signal)
            try:
                yield
            finally:
                _restore(previous, on_signal)
                if not began:
                    group.cancel_scope.cancel()
    finally:
        _restore(previous, on_signal)
        reader.close()
        writer.close()


def _chain(previous: _Handler, signum: int, frame: FrameType | None) -> None:
    """Do what the signal did before: the server's handler, or the signal's default."""
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:  # no handler was there: SIGTERM ends the process
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def _restore(previous: dict[int, _Handler], ours: _Handler) -> None:
    """Put back each handler we replaced, unless someone replaced ours meanwhile."""
    for sig, handler in previous.items():
        if handler is not None and signal.getsignal(sig) is ours:
            signal.signal(sig, handler)

"""Job events: what happened to a job and when, for ``job.events`` and ``on_event``."""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._escape import printable
from ._models import Operation

logger = logging.getLogger("recraft_async")

JobEventKind = Literal[
    "queued", "uploading", "submitted", "status", "succeeded", "failed", "cancelled"
]
FINAL_KINDS: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@attrs.frozen
class JobEvent:
    """One transition of a job, with the wall-clock moment it happened.

    ``kind`` is one of ``JobEventKind``: ``"queued"`` (the job was made), ``"uploading"``
    (a local image's upload starts), ``"submitted"`` (the service gave its task id),
    ``"status"`` (one status read answered), then one of ``"succeeded"``, ``"failed"`` or
    ``"cancelled"``, after which nothing more is recorded.

    ``time`` is seconds since the epoch (``time.time()``): comparable with log lines and
    other processes' clocks; the differences between a job's events are its phases'
    durations, as exactly as the system clock allows. ``task_id`` is the job's task id as
    it was known at that moment (None before the submit answered). ``state`` is, for a
    ``"status"`` event, the task's state as read (``"processing"``, ``"success"``,
    ``"failed"``, ``"create-failed"``) or the class name of the error a failed read met
    (``"ServerError"``), and for ``"failed"`` the class name of the job's error; ``detail``
    is that error's message.
    """

    kind: JobEventKind
    time: float
    operation: Operation
    task_id: str | None = None
    state: str | None = None
    detail: str | None = None


J = TypeVar("J")


def is_async_callable(callback: object) -> bool:
    """Whether calling ``callback`` gives a coroutine (an ``async def``, or an object's)."""
    if inspect.iscoroutinefunction(callback):
        return True
    call = getattr(callback, "__call__", None)  # noqa: B004 - an object with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class Listener(Generic[J]):
    """Hands every job event to the user's ``on_event`` without ever hurting the job.

    A plain function is called at once, in the task where the event happened. An async
    one is awaited by one task of its own (``run``), in the order the events happened;
    the jobs never wait for it. Either way, an exception it raises is logged and dropped.
    """

    def __init__(self, callback: Callable[[J, JobEvent], object]) -> None:
        self._callback = callback
        self.is_async = is_async_callable(callback)
        self._send: MemoryObjectSendStream[tuple[J, JobEvent]] | None = None
        self._receive: MemoryObjectReceiveStream[tuple[J, JobEvent]] | None = None
        if self.is_async:
            self._send, self._receive = anyio.create_memory_object_stream[tuple[J, JobEvent]](
                math.inf
            )

    def deliver(self, job: J, event: JobEvent) -> None:
        """Give ``event`` to the callback (an async one: queue it for ``run``)."""
        if self._send is not None:
            # Closed: the client has closed, and nobody awaits the callback any more.
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                self._send.send_nowait((job, event))
            return
        try:
            self._callback(job, event)
        except Exception as exc:  # noqa: BLE001 - the user's code must never fail the job
            _log_failure(event, exc)

    async def run(self) -> None:
        """Await the async callback for each queued event in turn, until ``close``."""
        assert self._receive is not None  # noqa: S101 - run only for an async callback
        with self._receive:
            async for job, event in self._receive:
                try:
                    await self._callback(job, event)  # type: ignore[misc]
                except Exception as exc:  # noqa: BLE001 - the user's code must never fail the job
                    _log_failure(event, exc)

    def close(self) -> None:
        """No more events: ``run`` ends once it has delivered those already queued."""
        if self._send is not None:
            self._send.close()


def _log_failure(event: JobEvent, error: Exception) -> None:
    logger.error(
        "on_event callback raised on the %s event of %s job %s; ignored",
        event.kind,
        event.operation.value,
        printable(event.task_id),
        exc_info=error,
    )

"""Job: the awaitable handle of one image's work, and as_completed over many of them."""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any

import anyio

from ._check import SubmitRequest
from ._escape import printable
from ._models import Operation, Result
from .errors import InvalidStateError, JobCancelledError

logger = logging.getLogger("recraft_async")


class JobStatus(str, enum.Enum):
    """Where a job stands."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


_FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Job:
    """The handle of one image's work: await it for the Result."""

    # Slots and a lazily made Event keep 100,000 queued jobs to a few hundred bytes each.
    __slots__ = (
        "_callbacks",
        "_cancel_hook",
        "_error",
        "_event",
        "_result",
        "operation",
        "request",
        "source",
        "status",
        "task_id",
    )

    def __init__(
        self,
        operation: Operation,
        request: SubmitRequest | None,
        *,
        task_id: str | None = None,
        source: str | None = None,
    ) -> None:
        self.operation = operation
        # None for a resumed task: there is nothing to submit.
        self.request = request
        self.task_id = task_id
        self.source = source
        self.status = JobStatus.QUEUED if task_id is None else JobStatus.SUBMITTED
        self._result: Result | None = None
        self._error: BaseException | None = None
        self._event: anyio.Event | None = None
        self._callbacks: list[Callable[[Job], object]] | None = None
        self._cancel_hook: Callable[[], object] | None = None

    def __repr__(self) -> str:
        return f"<Job {self.operation.value} {self.status.value} task_id={self.task_id!r}>"

    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled)."""
        return self.status in _FINAL

    def cancel(self) -> bool:
        """Stop the job's work; False if it had already finished.

        A submit already on the wire is let finish, so its task id is kept for resume.
        """
        if self.done():
            return False
        hook = self._cancel_hook
        self._finish(JobStatus.CANCELLED)
        if hook is not None:
            hook()
        return True

    def result(self) -> Result:
        """The Result of a finished job, or its exception raised."""
        if not self.done():
            raise InvalidStateError(f"{self!r} has not finished")
        if self._result is None:
            raise self._exception()
        return self._result

    def exception(self) -> BaseException | None:
        """The exception of a finished job, or None if it succeeded."""
        if not self.done():
            raise InvalidStateError(f"{self!r} has not finished")
        return None if self._result is not None else self._exception()

    async def wait(self, timeout: float | None = None) -> Result:
        """Await the Result; TimeoutError after ``timeout`` seconds leaves the job running."""
        if not self.done():
            with anyio.fail_after(timeout):
                await self._done_event().wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, Result]:
        return self.wait().__await__()

    def _exception(self) -> BaseException:
        if self.status is JobStatus.CANCELLED:
            # Built when asked: the task id may arrive after cancel() (a submit in flight).
            return JobCancelledError(f"{self!r} was cancelled", task_id=self.task_id)
        assert self._error is not None  # noqa: S101 - FAILED always has an error
        return self._error

    def _done_event(self) -> anyio.Event:
        if self._event is None:
            self._event = anyio.Event()
            if self.done():
                self._event.set()
        return self._event

    def _add_done_callback(self, callback: Callable[[Job], object]) -> None:
        if self.done():
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    def _remove_done_callback(self, callback: Callable[[Job], object]) -> None:
        if self._callbacks and callback in self._callbacks:
            self._callbacks.remove(callback)

    def _mark_submitted(self, task_id: str) -> None:
        self.task_id = task_id
        if not self.done():
            self.status = JobStatus.SUBMITTED
            logger.info("job %s submitted: task %s", self.operation.value, printable(task_id))

    def _succeed(self, result: Result) -> None:
        if not self.done():
            self._result = result
            self._finish(JobStatus.SUCCEEDED)

    def _fail(self, error: BaseException) -> None:
        if not self.done():
            self._error = error
            self._finish(JobStatus.FAILED)

    def _finish(self, status: JobStatus) -> None:
        self.status = status
        self._cancel_hook = None
        if logger.isEnabledFor(logging.INFO):  # str(error) is not free; skip it when unused
            logger.info(
                "job %s %s: task %s%s",
                self.operation.value,
                status.value,
                printable(self.task_id),
                f" ({printable(self._error)})" if self._error is not None else "",
            )
        if self._event is not None:
            self._event.set()
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback(self)


async def as_completed(jobs: Iterable[Job]) -> AsyncIterator[Job]:
    """Yield the given jobs as they finish, first finished first."""
    pending = list(dict.fromkeys(jobs))
    send, receive = anyio.create_memory_object_stream[Job](math.inf)
    for job in pending:
        job._add_done_callback(send.send_nowait)
    try:
        with receive:
            for _ in pending:
                yield await receive.receive()
    finally:
        for job in pending:
            job._remove_done_callback(send.send_nowait)
        send.close()

"""Job: the awaitable handle of one image's work, and as_completed over many of them."""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable
from typing import Any, Protocol

import anyio

from ._check import SubmitRequest
from ._errors import InvalidStateError, JobCancelledError
from ._escape import printable
from ._events import FINAL_KINDS, JobEvent, JobEventKind
from ._models import Operation, Result, iso_time
from ._redact import redact

logger = logging.getLogger("recraft_async")


class JobStatus(str, enum.Enum):
    """Where a job stands."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


_FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
_FINAL_KIND: dict[JobStatus, JobEventKind] = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.CANCELLED: "cancelled",
}


class JobOwner(Protocol):
    """What runs a job: told of each of its events, and asked to stop its work."""

    def job_event(self, job: Job, event: JobEvent) -> None:
        """``event`` was just recorded on ``job``."""

    def stop_job(self, job: Job) -> None:
        """Stop whatever work ``job`` has running (it has just finished)."""

    def check_caller(self) -> None:
        """Raise ``WrongEventLoopError`` if called from another thread or event loop."""


class Job:
    """The handle of one image's work: await it for the Result.

    ``events`` is what happened to it so far, each ``JobEvent`` with its moment.
    """

    # Slots, one outcome and lazily made events keep 100,000 queued jobs to a few hundred
    # bytes each: a queued job holds its queued moment alone (a float), and its list of
    # events is made at its second event.
    __slots__ = (
        "_outcome",
        "_owner",
        "_trail",
        "_waiters",
        "operation",
        "request",
        "status",
        "task_id",
    )

    def __init__(
        self,
        operation: Operation,
        request: SubmitRequest | None,
        *,
        task_id: str | None = None,
    ) -> None:
        self.operation = operation
        """What the job does to its image."""
        self.request = request
        """The checked submit request; None for a resumed task: there is nothing to submit."""
        self.task_id = task_id
        """The service's task id, once the submit is answered (None before)."""
        self.status = JobStatus.QUEUED if task_id is None else JobStatus.SUBMITTED
        """Where the job stands."""
        # The Result, the error of a failed job, or None.
        self._outcome: Result | BaseException | None = None
        self._waiters: list[Callable[[Job], object]] | None = None
        self._owner: JobOwner | None = None
        # The queued moment until a second event, then the list of every event.
        self._trail: float | list[JobEvent] = time.time()

    def __repr__(self) -> str:
        return f"<Job {self.operation.value} {self.status.value} task_id={self.task_id!r}>"

    @property
    def source(self) -> str | None:
        """What the job was made from (URL, file or a note for bytes); None if resumed."""
        return None if self.request is None else self.request.source

    @property
    def events(self) -> tuple[JobEvent, ...]:
        """What happened to the job so far, oldest first: "queued" ... its end."""
        trail = self._trail
        if isinstance(trail, list):
            return tuple(trail)
        return (self._queued_event(trail),)

    def to_dict(self) -> dict[str, Any]:
        """Where the job stands, as JSON-safe values: for ``json.dumps`` or a web answer.

        ``operation`` and ``status`` as strings; ``task_id`` and ``source`` (None when
        unknown); ``queued_at`` and ``finished_at`` (None while it runs) as ISO 8601 in
        UTC; ``events``, each ``{"kind", "at", "task_id", "state", "detail"}``; ``result``,
        the ``Result.to_dict()`` of a job that succeeded, else None; and ``error``, the
        ``{"type", "message", "task_id"}`` of one that failed or was cancelled, else None.
        """
        events = self.events
        outcome = self.exception() if self.done() else None
        result = self._outcome if isinstance(self._outcome, Result) else None
        return {
            "operation": self.operation.value,
            "status": self.status.value,
            "task_id": self.task_id,
            "source": self.source,
            "queued_at": iso_time(events[0].time),
            "finished_at": iso_time(events[-1].time) if self.done() else None,
            "events": [_event_dict(event) for event in events],
            "result": None if result is None else result.to_dict(),
            "error": None if outcome is None else _error_dict(outcome, self.task_id),
        }

    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled)."""
        return self.status in _FINAL

    def cancel(self) -> bool:
        """Stop the job's work; False if it had already finished.

        A job not yet submitted is never submitted: nothing is paid for it. A submit
        already on the wire is let finish, so its task id is kept for resume
        (``JobCancelledError.task_id``); the task itself goes on at the service, paid for.
        From another thread or event loop than its client's it raises
        ``WrongEventLoopError``.
        """
        if self.done():
            return False
        if self._owner is not None:
            self._owner.check_caller()
        return self._cancel(None)

    def _cancel(self, error: JobCancelledError | None) -> bool:
        """Cancel, with ``error`` as the exception the job raises (None: the usual one)."""
        if self.done():
            return False
        self._outcome = error
        self._finish(JobStatus.CANCELLED)
        self._stop_work()
        return True

    def result(self) -> Result:
        """The Result of a finished job, or its exception raised."""
        if not self.done():
            raise InvalidStateError(f"{self!r} has not finished")
        if not isinstance(self._outcome, Result):
            raise self._exception()
        return self._outcome

    def exception(self) -> BaseException | None:
        """The exception of a finished job, or None if it succeeded."""
        if not self.done():
            raise InvalidStateError(f"{self!r} has not finished")
        return None if isinstance(self._outcome, Result) else self._exception()

    async def wait(self, timeout: float | None = None) -> Result:
        """Await the Result, or raise the job's exception.

        After ``timeout`` seconds without an end it raises ``TimeoutError`` (the builtin)
        and cancels nothing: the job goes on, and ``job.cancel()`` stops it. Cancelling
        the task that waits does not cancel the job either. From another thread or event
        loop than its client's it raises ``WrongEventLoopError`` rather than hang.
        """
        if not self.done():
            if self._owner is not None:
                self._owner.check_caller()
            finished = anyio.Event()

            def wake(_job: Job) -> None:
                finished.set()

            self._add_done_callback(wake)
            try:
                with anyio.move_on_after(timeout):
                    await finished.wait()
            finally:
                self._remove_done_callback(wake)
            if not self.done():
                raise TimeoutError(
                    f"{self!r} did not finish within {timeout:g} s; it goes on (nothing was"
                    " cancelled): wait again, or stop it with job.cancel()"
                )
        return self.result()

    def __await__(self) -> Generator[Any, None, Result]:
        return self.wait().__await__()

    def _exception(self) -> BaseException:
        if self.status is JobStatus.CANCELLED and not isinstance(self._outcome, BaseException):
            # Built when asked: the task id may arrive after cancel() (a submit in flight).
            return JobCancelledError(f"{self!r} was cancelled", task_id=self.task_id)
        assert isinstance(self._outcome, BaseException)  # noqa: S101 - FAILED has an error
        return self._outcome

    def _queued_event(self, at: float) -> JobEvent:
        # A resumed job knew its task id from the start; a fresh one had none yet.
        task_id = self.task_id if self.request is None else None
        return JobEvent("queued", at, self.operation, task_id)

    def _record(
        self, kind: JobEventKind, state: str | None = None, detail: str | None = None
    ) -> None:
        """Record an event now and tell the owner; nothing once the job has finished."""
        if self.done() and kind not in FINAL_KINDS:
            return
        # Events leave the library (job.events, on_event, to_dict): their one choke point.
        detail = None if detail is None else redact(detail)
        event = JobEvent(kind, time.time(), self.operation, self.task_id, state, detail)
        trail = self._trail
        if isinstance(trail, list):
            trail.append(event)
        else:
            self._trail = [self._queued_event(trail), event]
        if self._owner is not None:
            self._owner.job_event(self, event)

    def _stop_work(self) -> None:
        """Have the owner stop the job's running work (after a cancel or an outside fail)."""
        if self._owner is not None:
            self._owner.stop_job(self)

    def _add_done_callback(self, callback: Callable[[Job], object]) -> None:
        if self.done():
            callback(self)
            return
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(callback)

    def _remove_done_callback(self, callback: Callable[[Job], object]) -> None:
        if self._waiters and callback in self._waiters:
            self._waiters.remove(callback)

    def _mark_submitted(self, task_id: str) -> None:
        self.task_id = task_id
        if not self.done():
            self.status = JobStatus.SUBMITTED
            logger.info("job %s submitted: task %s", self.operation.value, printable(task_id))
            self._record("submitted")

    def _succeed(self, result: Result) -> None:
        if not self.done():
            self._outcome = result
            self._finish(JobStatus.SUCCEEDED)

    def _fail(self, error: BaseException) -> None:
        if not self.done():
            self._outcome = error
            self._finish(JobStatus.FAILED)

    def _finish(self, status: JobStatus) -> None:
        self.status = status
        error = self._outcome if isinstance(self._outcome, BaseException) else None
        if logger.isEnabledFor(logging.INFO):  # str(error) is not free; skip it when unused
            logger.info(
                "job %s %s: task %s%s",
                self.operation.value,
                status.value,
                printable(self.task_id),
                f" ({printable(error)})" if error is not None else "",
            )
        if status is not JobStatus.FAILED:
            self._record(_FINAL_KIND[status], detail=None if error is None else str(error))
        else:
            self._record("failed", type(error).__name__, str(error))
        waiters, self._waiters = self._waiters, None
        for callback in waiters or ():
            callback(self)


def _event_dict(event: JobEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "at": iso_time(event.time),
        "task_id": event.task_id,
        "state": event.state,
        "detail": event.detail,
    }


def _error_dict(error: BaseException, task_id: str | None) -> dict[str, Any]:
    return {
        "type": type(error).__name__,
        "message": redact(str(error)),  # any exception, not only ours (redacted already)
        "task_id": getattr(error, "task_id", None) or task_id,
    }


# The engine's interface to a Job: the scheduler, dispatcher, poller, submitter and the
# blocking client drive jobs through these functions, never through Job's private names,
# and users never see them (Job's public surface is what its docs show). Functions of
# Job's own module rather than an object per job: a queued job stays a few hundred bytes
# (tests/project/test_memory.py), so the state stays in Job's slots, reached from here.


def attach(job: Job, owner: JobOwner) -> None:
    """Make ``owner`` the one that runs ``job``: told of its events, asked to stop it."""
    job._owner = owner  # noqa: SLF001 - Job's engine interface, in Job's own module


def record(
    job: Job, kind: JobEventKind, state: str | None = None, detail: str | None = None
) -> None:
    """Record an event of ``job`` now and tell its owner; nothing once it has finished."""
    job._record(kind, state, detail)  # noqa: SLF001 - Job's engine interface


def mark_submitted(job: Job, task_id: str) -> None:
    """The service accepted ``job``'s task (or it attaches to one): keep its id."""
    job._mark_submitted(task_id)  # noqa: SLF001 - Job's engine interface


def succeed(job: Job, result: Result) -> None:
    """End ``job`` with ``result`` (nothing if it has already finished)."""
    job._succeed(result)  # noqa: SLF001 - Job's engine interface


def fail(job: Job, error: BaseException) -> None:
    """End ``job`` with ``error`` (nothing if it has already finished)."""
    job._fail(error)  # noqa: SLF001 - Job's engine interface


def cancel(job: Job, error: JobCancelledError) -> bool:
    """Cancel ``job`` with ``error`` as what it raises; False if it had already finished."""
    return job._cancel(error)  # noqa: SLF001 - Job's engine interface


def stop_work(job: Job) -> None:
    """Have ``job``'s owner stop its running work (after an outside fail)."""
    job._stop_work()  # noqa: SLF001 - Job's engine interface


def add_done_callback(job: Job, callback: Callable[[Job], object]) -> None:
    """Call ``callback(job)`` when ``job`` finishes (at once if it has)."""
    job._add_done_callback(callback)  # noqa: SLF001 - Job's engine interface


def remove_done_callback(job: Job, callback: Callable[[Job], object]) -> None:
    """Forget ``callback`` if it has not been called yet."""
    job._remove_done_callback(callback)  # noqa: SLF001 - Job's engine interface


async def as_completed(jobs: Iterable[Job]) -> AsyncIterator[Job]:
    """Yield the given jobs as they finish, first finished first."""
    pending = list(dict.fromkeys(jobs))
    send, receive = anyio.create_memory_object_stream[Job](math.inf)
    for job in pending:
        add_done_callback(job, send.send_nowait)
    try:
        with receive:
            for _ in pending:
                yield await receive.receive()
    finally:
        for job in pending:
            remove_done_callback(job, send.send_nowait)
        send.close()

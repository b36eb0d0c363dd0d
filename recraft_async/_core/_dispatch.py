"""The dispatcher: queued jobs started in a task group, at most ``max_in_flight`` at once.

It also keeps the queue's bound (``max_queued``), cancels jobs whose submit deadline
passed before they were sent, and stops everything on an exception or a shutdown.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Container
from types import TracebackType

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from . import _jobs
from ._errors import ClientNotOpenError, JobCancelledError
from ._escape import loggable_source, printable
from ._jobs import Job, JobStatus

logger = logging.getLogger("recraft_async")


class Dispatcher:
    """Runs ``life(job)`` for each queued job; leaving on an exception cancels them all.

    ``on_the_wire`` holds the jobs whose submit is being sent (journalled or in flight):
    those are never cancelled as "unsent", their task id is on its way.
    """

    def __init__(
        self,
        life: Callable[[Job], Awaitable[None]],
        *,
        max_in_flight: int,
        max_queued: int | None = None,
        on_the_wire: Container[Job] = frozenset(),
    ) -> None:
        self._life = life
        self._in_flight = anyio.Semaphore(max_in_flight)
        self._max_queued = max_queued
        self._on_the_wire = on_the_wire
        # Queued jobs are plain objects here, not tasks: 100,000 of them stay cheap.
        self._queue: deque[Job] = deque()
        # Queued, not started, not finished: the bound's count. Kept only with a bound, so
        # that the default (unbounded) queue costs no set entry per job.
        self._waiting: set[Job] = set()
        self._room = anyio.Event()  # set when a queued job leaves the queue
        self._running: dict[Job, None] = {}  # an ordered set
        self._wakeup = anyio.Event()
        self._closing = False
        self._drained = anyio.Event()  # set when every job has ended after closing
        self._ended = anyio.Event()  # ... and every task of ours too (after a stop)
        self._stopped: list[Job] = []  # jobs stopped unfinished, for the WARNING
        self._task_group: TaskGroup | None = None
        # Submit deadlines: (moment, order, job, seconds), the earliest first.
        self._deadlines: list[tuple[float, int, Job, float]] = []
        self._order = itertools.count()
        self._deadline_added = anyio.Event()
        self._watch = anyio.CancelScope()

    async def __aenter__(self) -> Dispatcher:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._dispatch)
        self._task_group.start_soon(self._expire)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(stop=exc is not None)

    async def close(self, *, stop: bool) -> None:
        """Wait for every job (``stop``: cancel them first), then end the task group."""
        assert self._task_group is not None  # noqa: S101 - entered before exited
        self._begin_closing()
        if stop:
            self.stop()
            self._task_group.cancel_scope.cancel()
        try:
            # Our tasks never raise, so after the cancel above the group ends cleanly; the
            # caller's exception then propagates as it is, not wrapped in an ExceptionGroup.
            await self._task_group.__aexit__(None, None, None)
        finally:
            # Logged after the task group ended: a submit that was on the wire when we
            # stopped has recorded its task id by now.
            self.warn_stopped()

    def stop(self, spare: Container[Job] = frozenset()) -> None:
        """Cancel every job now, from any task of the loop; ``ended()`` waits for them.

        ``spare``: running jobs left to end by themselves (submits cut on the wire, which
        end in their own error). The task group's own scope is not cancelled here: the
        task that opened it runs in it, and only ``close`` (its exit) may cancel that.
        """
        self._begin_closing()
        self._stopped += self._stop_all(spare)

    async def ended(self) -> None:
        """Wait until every task of ours has ended (after ``stop`` or ``drain``)."""
        await self._ended.wait()

    def warn_stopped(self) -> None:
        """Log the stopped jobs' task ids (one WARNING line), once."""
        stopped, self._stopped = self._stopped, []
        # Cancelled by the stop (or just before it) with a task: a job that ended on its
        # own meanwhile, a cut submit's uncertain one included, is no resume's.
        cancelled = [job for job in stopped if job.status is JobStatus.CANCELLED]
        _warn_resumable([job for job in cancelled if job.task_id is not None])

    async def drain(self) -> None:
        """Take no more jobs and wait until every job has ended."""
        self._begin_closing()
        await self._drained.wait()

    def full(self) -> bool:
        """Whether ``max_queued`` jobs already wait for their turn."""
        return self._max_queued is not None and len(self._waiting) >= self._max_queued

    async def wait_for_room(self) -> None:
        """Wait until the queue has room for one more job.

        It returns with room and without yielding after its last look, so the caller's
        ``schedule`` right after it takes that room: no other waiter can take it between.
        """
        await anyio.lowlevel.checkpoint()
        while self.full():
            if self._closing:
                raise ClientNotOpenError("the client closed while waiting for room in its queue")
            room = self._room
            await room.wait()

    def schedule(self, job: Job, submit_within: float | None = None) -> None:
        """Queue ``job``; it starts when the in-flight bound allows.

        ``submit_within``: seconds from now by which its submit must have gone out, else
        the job is cancelled unsent.
        """
        self._queue.append(job)
        if self._max_queued is not None:
            self._waiting.add(job)
        self._wakeup.set()
        if submit_within is not None and job.task_id is None:
            at = anyio.current_time() + submit_within
            heapq.heappush(self._deadlines, (at, next(self._order), job, submit_within))
            self._deadline_added.set()
        source = loggable_source(job.source or job.task_id)
        logger.info("job %s queued: %s", job.operation.value, source)

    def job_finished(self, job: Job) -> None:
        """``job`` has ended: it no longer counts against ``max_queued``."""
        if job in self._waiting:
            self._waiting.discard(job)
            self._free_room()

    def fail_unsent(self, error: Exception) -> None:
        """Fail every queued or running job that has not sent its submit."""
        for job in self._unsent():
            _jobs.fail(job, error)
            _jobs.stop_work(job)

    def cancel_unsent(self, error: Callable[[Job], JobCancelledError]) -> int:
        """Cancel every queued or running job that has not sent its submit; how many."""
        jobs = self._unsent()
        for job in jobs:
            _jobs.cancel(job, error(job))
        return len(jobs)

    def _unsent(self) -> list[Job]:
        return [
            job
            for job in [*self._running, *self._queue]
            if job.task_id is None and job not in self._on_the_wire and not job.done()
        ]

    def _begin_closing(self) -> None:
        self._closing = True
        self._wakeup.set()
        self._free_room()  # waiters for room learn that the client closes

    def _free_room(self) -> None:
        self._room.set()
        self._room = anyio.Event()

    def _stop_all(self, spare: Container[Job] = frozenset()) -> list[Job]:
        jobs = [*self._running, *self._queue]
        self._queue.clear()
        for job in jobs:
            if job not in spare:
                job.cancel()
        return jobs

    async def _dispatch(self) -> None:
        assert self._task_group is not None  # noqa: S101 - started by __aenter__
        try:
            while True:
                while not self._queue:
                    if self._closing and not self._running:
                        return
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                # Capacity first, then the job: a queued job stays visible to _stop_all.
                await self._in_flight.acquire()
                job = self._next_live_job()
                if job is None:
                    self._in_flight.release()
                    continue
                self._running[job] = None
                self._task_group.start_soon(self._run, job)
        finally:
            self._watch.cancel()  # no job left to give a deadline to
            self._drained.set()
            if not self._running:
                self._ended.set()

    def _next_live_job(self) -> Job | None:
        while self._queue:
            job = self._queue.popleft()
            if job in self._waiting:
                self._waiting.discard(job)
                self._free_room()
            if not job.done():  # else cancelled while queued
                return job
        return None

    async def _run(self, job: Job) -> None:
        try:
            if not job.done():  # else cancelled between dispatch and start
                await self._life(job)
        finally:
            if not job.done():
                # Cut off from outside (a cancel scope around the client, an event loop
                # that ends): a stop all the same, whose task id is logged for resume.
                job.cancel()
                self._stopped.append(job)
            self._running.pop(job, None)
            self._in_flight.release()
            self._wakeup.set()
            if self._drained.is_set() and not self._running:
                self._ended.set()

    async def _expire(self) -> None:
        """Cancel each job still unsent at its submit deadline."""
        with self._watch:
            while True:
                while not self._deadlines:
                    self._deadline_added = anyio.Event()
                    await self._deadline_added.wait()
                at, _, job, seconds = self._deadlines[0]
                if anyio.current_time() < at:
                    self._deadline_added = anyio.Event()
                    with anyio.move_on_after(at - anyio.current_time()):
                        await self._deadline_added.wait()  # an earlier deadline may come
                    continue
                heapq.heappop(self._deadlines)
                if job.task_id is None and job not in self._on_the_wire and not job.done():
                    _jobs.cancel(job, _not_submitted_in_time(job, seconds))


def _not_submitted_in_time(job: Job, seconds: float) -> JobCancelledError:
    return JobCancelledError(
        f"job {job.operation.value} of {loggable_source(job.source)} was not submitted within"
        f" {seconds:g} s (submit_within): cancelled before its submit, nothing was paid"
    )


def _warn_resumable(jobs: list[Job]) -> None:
    if jobs:
        logger.warning(
            "stopped %d submitted job(s) before they finished; resume them with "
            "client.resume(task_id, operation): %s",
            len(jobs),
            ", ".join(f"{job.operation.value}:{printable(job.task_id)}" for job in jobs),
        )

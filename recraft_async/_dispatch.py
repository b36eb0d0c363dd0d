"""The dispatcher: queued jobs started in a task group, at most ``max_in_flight`` at once."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Container
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from ._escape import printable
from ._jobs import Job

logger = logging.getLogger("recraft_async")


class Dispatcher:
    """Runs ``life(job)`` for each queued job; leaving on an exception cancels them all."""

    def __init__(self, life: Callable[[Job], Awaitable[None]], *, max_in_flight: int) -> None:
        self._life = life
        self._in_flight = anyio.Semaphore(max_in_flight)
        # Queued jobs are plain objects here, not tasks: 100,000 of them stay cheap.
        self._queue: deque[Job] = deque()
        self._running: dict[Job, None] = {}  # an ordered set
        self._wakeup = anyio.Event()
        self._closing = False
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> Dispatcher:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._dispatch)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task_group is not None  # noqa: S101 - entered before exited
        self._closing = True
        self._wakeup.set()
        stopped: list[Job] = []
        if exc is not None:
            stopped = self._stop_all()
            self._task_group.cancel_scope.cancel()
        try:
            # Our tasks never raise, so after the cancel above the group ends cleanly; the
            # caller's exception then propagates as it is, not wrapped in an ExceptionGroup.
            await self._task_group.__aexit__(None, None, None)
        finally:
            # Logged after the task group ended: a submit that was on the wire when we
            # stopped has recorded its task id by now.
            _warn_resumable([job for job in stopped if job.task_id is not None])

    def schedule(self, job: Job) -> None:
        """Queue ``job``; it starts when the in-flight bound allows."""
        self._queue.append(job)
        self._wakeup.set()
        logger.info("job %s queued: %s", job.operation.value, printable(job.source or job.task_id))

    def fail_unsent(self, error: Exception, on_the_wire: Container[Job]) -> None:
        """Fail every queued or running job that has not sent its submit."""
        for job in [*self._running, *self._queue]:
            if job.task_id is None and job not in on_the_wire and not job.done():
                job._fail(error)
                job._stop_work()

    def _stop_all(self) -> list[Job]:
        jobs = [*self._running, *self._queue]
        self._queue.clear()
        for job in jobs:
            job.cancel()
        return jobs

    async def _dispatch(self) -> None:
        assert self._task_group is not None  # noqa: S101 - started by __aenter__
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

    def _next_live_job(self) -> Job | None:
        while self._queue:
            job = self._queue.popleft()
            if not job.done():  # else cancelled while queued
                return job
        return None

    async def _run(self, job: Job) -> None:
        try:
            if not job.done():  # else cancelled between dispatch and start
                await self._life(job)
        finally:
            self._running.pop(job, None)
            self._in_flight.release()
            self._wakeup.set()


def _warn_resumable(jobs: list[Job]) -> None:
    if jobs:
        logger.warning(
            "stopped %d submitted job(s) before they finished; resume them with "
            "client.resume(task_id, operation): %s",
            len(jobs),
            ", ".join(f"{job.operation.value}:{printable(job.task_id)}" for job in jobs),
        )

"""The scheduler: queue, in-flight bound, submit pacing, and each job's submit-then-poll."""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import attrs
from anyio.abc import TaskGroup

from ._adaptive import PollPlanner
from ._dialects import Dialect, parse_task_id
from ._escape import printable
from ._files import upload_image
from ._jobs import Job
from ._journal import Journal, JournalState, fingerprint
from ._models import Operation, Result, TaskRecord, TaskState
from ._pacer import Pacer
from ._policy import (
    NOT_FOUND_GRACE,
    PollPolicy,
    Rate,
    _is_refusal,
    _is_transient,
    _never_landed,
    _retry_delay,
    _should_resubmit,
    _should_retry,
)
from ._transport import Transport
from .errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    InvalidInputError,
    JobTimeoutError,
    JournalStateError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RecraftError,
    SubmissionUncertainError,
    TaskFailedError,
)

logger = logging.getLogger("recraft_async")

_SubmitFailure = APIError | APIConnectionError | ProtocolError
_RESUMABLE = frozenset({JournalState.SUBMITTED, JournalState.SUCCEEDED, JournalState.DOWNLOADED})
# Errors about the account, not the image: every later submit would meet them too.
_AccountError = AuthenticationError | InsufficientCreditsError


class Scheduler:
    """Runs jobs in a task group: at most ``max_in_flight`` at once, submits paced."""

    def __init__(
        self,
        transport: Transport,
        dialect: Dialect,
        *,
        max_in_flight: int,
        submit_rate: Rate | None,
        read_rate: Rate | None,
        poll: PollPolicy,
        max_retries: int,
        upload_base_url: str,
        journal: Journal | None = None,
    ) -> None:
        self.transport = transport
        self.dialect = dialect
        self.upload_base_url = upload_base_url
        self.journal = journal
        self.poll = poll
        self.planner = PollPlanner(poll)
        self._max_retries = max_retries
        self._submits = Pacer(submit_rate)
        # One budget for every status read of the client: KIE allows 10 a second per key.
        self._reads = Pacer(read_rate)
        self._read_throttles = 0  # 429s on reads in a row, for the shared pause
        # Set by the first 401 or 402 of a submit or upload: nothing more is sent.
        self.account_error: APIError | None = None
        self._sending: set[Job] = set()  # jobs whose submit is on the wire
        self._in_flight = anyio.Semaphore(max_in_flight)
        # Queued jobs are plain objects here, not tasks: 100,000 of them stay cheap.
        self._queue: deque[Job] = deque()
        self._running: dict[Job, None] = {}  # an ordered set
        # Task id -> the event that wakes its poll loop early (a callback's hint).
        self._hints: dict[str, anyio.Event] = {}
        self._wakeup = anyio.Event()
        self._closing = False
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> Scheduler:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._dispatch)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
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
            resumable = [job for job in stopped if job.task_id is not None]
            if resumable:
                logger.warning(
                    "stopped %d submitted job(s) before they finished; resume them with "
                    "client.resume(task_id, operation): %s",
                    len(resumable),
                    ", ".join(
                        f"{job.operation.value}:{printable(job.task_id)}" for job in resumable
                    ),
                )
        return None

    def schedule(self, job: Job) -> None:
        """Queue ``job``; it starts when the in-flight bound allows."""
        if self.account_error is not None and job.task_id is None:
            job._fail(self.account_error)
            return
        self._queue.append(job)
        self._wakeup.set()
        logger.info("job %s queued: %s", job.operation.value, printable(job.source or job.task_id))

    async def read_record(self, operation: Operation, task_id: str) -> TaskRecord:
        """One status read (transient failures retried up to ``max_retries``)."""
        attempt = 0
        while True:
            try:
                return await self._read(operation, task_id)
            except RecraftError as exc:
                if not _should_retry(exc, attempt, self._max_retries):
                    raise
                # After a 429 the read budget itself holds every read back.
                delay = 0.0 if isinstance(exc, RateLimitError) else _retry_delay(attempt)
            await anyio.sleep(delay)
            attempt += 1

    async def _read(
        self, operation: Operation, task_id: str, due: float | None = None
    ) -> TaskRecord:
        """One status read within the client's read budget; reads due first go first."""
        path, params = self.dialect.status(operation, task_id)
        async with self._reads.slot(due):
            try:
                data, body = await self.transport.send("GET", path, params=params)
            except RateLimitError as exc:
                # A 429 means the account's budget is spent: slow every read of the client.
                self._read_throttles += 1
                self._reads.pause(self.poll.read_retry_delay(self._read_throttles, exc.retry_after))
                raise
            self._read_throttles = 0
        record = self.dialect.parse_record(data, body)
        if record.task_id != task_id:
            # Never someone else's result: a proxy or cache mixed the answers up.
            raise ProtocolError(
                f"status read of task {task_id!r} answered task {record.task_id!r}", body=body
            )
        return record

    def _stop_submitting(self, error: APIError) -> None:
        """After a 401 or 402, fail every job that has not sent its submit; send nothing more."""
        if self.account_error is None:
            self.account_error = error
            logger.error("submits stopped for this client: %s", printable(error))
        for job in [*self._running, *self._queue]:
            if job.task_id is None and job not in self._sending and not job.done():
                stop = job._cancel_hook
                job._fail(error)
                if stop is not None:
                    stop()

    def hint(self, task_id: str) -> Job | None:
        """Wake the job polling ``task_id`` to read its status now (a callback said it ended).

        Returns that job, or None when no job here polls ``task_id``: then nothing is read.
        """
        event = self._hints.get(task_id)
        if event is None:
            return None
        # The running jobs are at most max_in_flight: a scan costs less than another index.
        job = next((j for j in self._running if j.task_id == task_id), None)
        if job is not None:
            event.set()
        return job

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
        fp: str | None = None
        try:
            if job.done():  # cancelled between dispatch and start
                return
            with anyio.CancelScope() as scope:
                job._cancel_hook = scope.cancel
                started = anyio.current_time()
                fresh = job.task_id is None
                if fresh:
                    data = await _local_bytes(job)
                    fp = await self._fingerprint(job, data)
                    started, fresh = await self._start(job, fp, data)
                result = await self._poll(job, started, learn=fresh)
                if fp is not None:
                    await self._journal_quietly(self._journal_success(fp, result))
                job._succeed(result)
        except RecraftError as exc:
            if fp is not None:
                await self._journal_quietly(self._journal_failure(fp, exc))
            if isinstance(exc, _AccountError) and job.task_id is None:
                self._stop_submitting(exc)
            job._fail(exc)
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", job.operation.value)
            job._fail(exc)
        finally:
            self._running.pop(job, None)
            self._in_flight.release()
            self._wakeup.set()

    async def _fingerprint(self, job: Job, data: bytes | None) -> str | None:
        request = job.request
        if self.journal is None or request is None:
            return None
        return await anyio.to_thread.run_sync(
            fingerprint, request.operation, data or request.source, request.params
        )

    async def _start(self, job: Job, fp: str | None, data: bytes | None) -> tuple[float, bool]:
        """Upload and submit a fresh job, or resume the task a journal holds for it.

        Returns the moment polling starts from, and whether this run submitted the task
        (only then does its duration teach the planner).
        """
        request = job.request
        assert request is not None  # noqa: S101 - fresh jobs carry their request
        if fp is not None and await self._resume_from_journal(job, fp):
            return anyio.current_time(), False
        if self.account_error is not None:
            raise self.account_error
        if request.local is not None and data is not None:
            url = await upload_image(
                self.transport, self.upload_base_url, data, request.local.name
            )
            job.request = attrs.evolve(request, image_url=url)
        return await self._submit(job, fp), True

    async def _resume_from_journal(self, job: Job, fp: str) -> bool:
        assert self.journal is not None  # noqa: S101
        entry = await self.journal.get(fp)
        if entry is None:
            return False
        if entry.task_id is not None and entry.state in _RESUMABLE:
            logger.info(
                "job %s: the journal holds task %s", job.operation.value, printable(entry.task_id)
            )
            job._mark_submitted(entry.task_id)
            return True
        if entry.state in (JournalState.SUBMITTING, JournalState.UNCERTAIN):
            raise SubmissionUncertainError(
                f"the journal says an earlier submit of {entry.source} may have created a "
                "task; not resubmitting (check the account, then clear the journal entry)",
                operation=job.operation,
                image=entry.source,
            )
        return False

    async def _journal_success(self, fp: str, result: Result) -> None:
        assert self.journal is not None  # noqa: S101
        entry = await self.journal.get(fp)
        if entry is not None and entry.state is JournalState.SUBMITTED:
            await self.journal.mark_succeeded(fp, result.urls)

    async def _journal_failure(self, fp: str, error: RecraftError) -> None:
        assert self.journal is not None  # noqa: S101
        with anyio.CancelScope(shield=True):
            entry = await self.journal.get(fp)
            state = entry.state if entry is not None else None
            if isinstance(error, SubmissionUncertainError):
                if state is JournalState.SUBMITTING:
                    await self.journal.mark_uncertain(fp, str(error))
            elif state is JournalState.SUBMITTING or isinstance(error, TaskFailedError):
                # Refused before a task existed, or the task itself failed: a rerun may
                # submit again. Other failures after a submit keep the task resumable.
                await self.journal.mark_failed(fp, str(error))

    async def _submit(self, job: Job, fp: str | None) -> float:
        """Submit ``job`` once (resending only what provably never landed)."""
        assert job.request is not None  # noqa: S101 - fresh jobs carry their request
        path, body = self.dialect.submit(job.request)
        attempt = 0
        while True:
            async with self._submits.slot():
                if self.account_error is not None:  # met by another job while we waited
                    raise self.account_error
                # Shielded: a cancel must not cut a submit off mid-air and lose its task id.
                with anyio.CancelScope(shield=True):
                    started, error = await self._send_submit(job, fp, path, body)
                    if error is not None and fp is not None and _never_landed(error):
                        # Not SUBMITTING across the wait that follows a refusal: a run
                        # killed in it has created nothing and must stay resumable.
                        assert self.journal is not None  # noqa: S101 - fp implies one
                        await self._journal_quietly(self.journal.mark_refused(fp))
                if isinstance(error, RateLimitError):
                    self._submits.pause(_retry_delay(attempt, error.retry_after))
            if error is None:
                return started
            if not _should_resubmit(error, attempt, self._max_retries):
                raise _submit_failure(error, job)
            if not isinstance(error, RateLimitError):  # a 429 already paused the pacer
                await anyio.sleep(_retry_delay(attempt))
            attempt += 1
            logger.info("job %s: resubmitting after %s", job.operation.value, printable(error))

    async def _send_submit(
        self, job: Job, fp: str | None, path: str, body: dict[str, Any]
    ) -> tuple[float, _SubmitFailure | None]:
        """One submit on the wire, journalled around it; the moment sent and any failure."""
        request = job.request
        assert request is not None  # noqa: S101 - fresh jobs carry their request
        if fp is not None and self.journal is not None:
            # Write-ahead, as late as possible: a run killed while it waited for its slot
            # has sent nothing and must not look uncertain.
            try:
                await self.journal.mark_submitting(
                    fp, request.operation, request.source, request.params
                )
            except (OSError, sqlite3.Error, JournalStateError) as exc:
                raise JournalStateError(
                    f"cannot journal the submit of {request.source} ({exc}); nothing was sent"
                ) from exc
        started = anyio.current_time()
        try:
            if self.account_error is not None:  # met while we journalled
                raise self.account_error
            self._sending.add(job)
            data, raw = await self.transport.send("POST", path, json=body)
            task_id = parse_task_id(data, raw)
        except (APIError, APIConnectionError, ProtocolError) as exc:
            return started, exc
        finally:
            self._sending.discard(job)
        job._mark_submitted(task_id)
        if fp is not None and self.journal is not None:
            await self._journal_quietly(self.journal.mark_submitted(fp, task_id))
        return started, None

    async def _journal_quietly(self, write: Awaitable[None]) -> None:
        """A journal write after the fact: if it fails, it is logged, never the job's end.

        The task exists and is paid for whatever the journal says; its id is in the log.
        """
        try:
            with anyio.CancelScope(shield=True):
                await write
        except Exception:
            logger.exception("a journal write failed; the job goes on without it")

    async def _poll(self, job: Job, started: float, *, learn: bool) -> Result:
        """Read the task's status on the planner's schedule until it ends."""
        assert job.task_id is not None  # noqa: S101 - submitted or resumed
        deadline = started + self.poll.timeout
        # Only a task this run submitted has a known start: its running time teaches.
        key = job if learn else None
        self._hints[job.task_id] = anyio.Event()
        try:
            return await self._poll_until_final(job, started, deadline, key)
        finally:
            self._hints.pop(job.task_id, None)
            if key is not None:
                self.planner.forget(job.operation, key)  # a no-op once it was learned

    async def _poll_until_final(
        self, job: Job, started: float, deadline: float, key: Job | None
    ) -> Result:
        task_id = job.task_id
        assert task_id is not None  # noqa: S101 - submitted or resumed
        reads = failures = 0
        error: RecraftError | None = None  # the last failed read's, while failures > 0
        while True:
            now = anyio.current_time()
            if failures:
                delay = self.poll.read_retry_delay(failures, getattr(error, "retry_after", None))
            elif key is None and reads == 0:
                delay = 0.0
            else:
                delay = self.planner.next_delay(job.operation, now - started, reads, key)
            due = now + max(min(delay, deadline - now), 0.0)
            await self._sleep_unless_hinted(task_id, due - now)
            try:
                record = await self._read(job.operation, task_id, min(due, anyio.current_time()))
            except RecraftError as exc:
                # The task was accepted, so it is paid for: a read that failed for a
                # passing reason is tried again, patiently, until the poll timeout.
                if not _read_may_recover(exc, anyio.current_time() - started):
                    raise
                record, error, failures = None, exc, failures + 1
            else:
                failures = 0
            reads += 1
            if record is not None and record.state is not TaskState.PROCESSING:
                if key is not None:
                    self._learn(job.operation, record, anyio.current_time() - started, key)
                return _outcome(job, record)
            if anyio.current_time() >= deadline:
                raise _gave_up(job, self.poll.timeout, error if failures else None)

    async def _sleep_unless_hinted(self, task_id: str, seconds: float) -> None:
        wake = self._hints.get(task_id)
        if wake is None:
            await anyio.sleep(seconds)
            return
        with anyio.move_on_after(seconds):
            await wake.wait()
        if wake.is_set():  # anyio events cannot be cleared: the next hint needs a new one
            self._hints[task_id] = anyio.Event()

    def _learn(self, operation: Operation, record: TaskRecord, observed: float, key: Job) -> None:
        if record.created_at is not None and record.completed_at is not None:
            observed = (record.completed_at - record.created_at).total_seconds()
        self.planner.observe(operation, observed, key)


async def _local_bytes(job: Job) -> bytes | None:
    local = job.request.local if job.request is not None else None
    if local is None:
        return None
    if local.data is not None:
        return local.data
    assert local.path is not None  # noqa: S101 - a LocalImage has one or the other
    try:
        return await anyio.Path(local.path).read_bytes()
    except OSError as exc:  # changed or removed since it was checked
        raise InvalidInputError(f"{local.path}: cannot be read ({exc.strerror or exc})") from exc


def _read_may_recover(error: RecraftError, since_submit: float) -> bool:
    """Whether a failed status read of an accepted task is worth trying again."""
    if isinstance(error, NotFoundError):
        return since_submit <= NOT_FOUND_GRACE  # a task just created can be "not found"
    return _is_transient(error)


def _gave_up(job: Job, timeout: float, error: RecraftError | None) -> JobTimeoutError:
    """The error of a job that stopped polling: it names the task, which may still finish."""
    task_id = job.task_id
    why = f"the last status read failed: {error}" if error is not None else "still running"
    gave_up = JobTimeoutError(
        f"task {task_id} did not finish within {timeout:g}s ({why}); it may still finish "
        f"and is paid for: resume it with client.resume({task_id!r}, {job.operation.value!r})",
        task_id=task_id,
    )
    gave_up.__cause__ = error
    return gave_up


def _outcome(job: Job, record: TaskRecord) -> Result:
    if record.state is not TaskState.SUCCESS:
        raise TaskFailedError(
            record.error_message,
            task_id=record.task_id,
            state=record.state.value,
            code=record.error_code,
        )
    return Result(
        task_id=record.task_id,
        operation=job.operation,
        urls=record.result_urls,
        created_at=record.created_at,
        completed_at=record.completed_at,
        record=record,
        source=job.source,
    )


def _submit_failure(error: _SubmitFailure, job: Job) -> RecraftError:
    """The error a failed submit ends in: uncertain unless provably not processed."""
    assert job.request is not None  # noqa: S101
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return error
    if isinstance(error, APIError) and _is_refusal(error):
        return error  # a definite refusal (4xx, 455/503, 501, 505): nothing was created
    uncertain = SubmissionUncertainError(
        f"the submit of {job.request.source} may have created a task ({error}); "
        "it was not resent, to avoid paying twice",
        operation=job.operation,
        image=job.request.source,
    )
    uncertain.__cause__ = error
    return uncertain

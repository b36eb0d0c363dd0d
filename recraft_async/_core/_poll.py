"""Status reads: one budget for the client, each task polled patiently until it ends."""

from __future__ import annotations

import functools

import anyio

from . import _jobs
from ._adaptive import PollPlanner
from ._coordination import Budget
from ._dialects import Dialect, UnusableResultError
from ._errors import (
    InvalidRequestError,
    JobTimeoutError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RecraftError,
    TaskFailedError,
    TaskNotReadyError,
)
from ._jobs import Job
from ._models import Operation, Result, TaskRecord, TaskState
from ._options import JobOptions
from ._policy import (
    NOT_FOUND_GRACE,
    PollPolicy,
    Rate,
    backoff_unless_throttled,
    is_transient,
    retry_after_of,
    should_retry,
)
from ._retry import Retry
from ._transport import Transport

# The share of the read budget that reads placed densely near likely finishes may take:
# the rest stays for the fixed schedule, retries and get_task.
DENSE_SHARE = 0.5
# KIE's documented answer (get-task-detail, code 422) for a task not readable yet.
_NOT_READY_MESSAGE = "recordinfo is null"

# While the client shuts down, no callback may come (the server stopped listening): each
# task is read at least this often, within the read budget, until the grace is over.
_SHUTDOWN_READ_INTERVAL = 1.0
# Callbacks remembered for tasks not polled (yet): at most this many, this long.
_EARLY_HINTS = 10_000
_EARLY_HINT_SECONDS = 60.0


class Poller:
    """Reads task statuses within the client's read budget; wakes a poll on a callback."""

    def __init__(
        self,
        transport: Transport,
        dialect: Dialect,
        *,
        reads: Budget,
        poll: PollPolicy,
        max_retries: int,
        read_rate: Rate | None = None,
    ) -> None:
        self._transport = transport
        # Status reads a second the budget allows (None: unpaced), for the dense gap.
        self._reads_per_second = None if read_rate is None else read_rate.n / read_rate.per
        self._dialect = dialect
        self._policy = poll
        self._max_retries = max_retries
        self.planner = PollPlanner(poll)
        # The planners of other policies (views made by with_options), each learning alone.
        self._planners: dict[PollPolicy, PollPlanner] = {poll: self.planner}
        # One budget for every status read of the client (or of the fleet, sharing the
        # key): KIE allows 10 a second per key.
        self._reads = reads
        self._read_throttles = 0  # 429s on reads in a row, for the shared pause
        # Task id -> each job polling it (two resumes of one task are two jobs), and the
        # event that wakes that job's poll early (a callback).
        self._hints: dict[str, dict[Job, anyio.Event]] = {}
        # Callbacks for tasks not polled yet, by arrival: a callback may overtake its own
        # submit's bookkeeping (the journal, a fleet's claim), or come from another worker.
        self._early: dict[str, float] = {}
        # Jobs waiting for their callback: (planner, submit moment). Nothing reads them,
        # so the planner learns they still run only when it is told (see _learn).
        self._awaiting: dict[Job, tuple[PollPlanner, float]] = {}
        self._shutting_down = False  # see read_all_now

    def read_all_now(self) -> None:
        """A shutdown: read every polled task at once, then at least once a second.

        Callbacks can no longer be counted on (the server stops listening before the
        client closes), so a task that has ended is found by a read within the grace.
        """
        self._shutting_down = True
        for polling in self._hints.values():
            for wake in polling.values():
                wake.set()

    async def read_record(
        self, operation: Operation, task_id: str, options: JobOptions | None = None
    ) -> TaskRecord:
        """One status read (transient failures retried up to ``max_retries``)."""
        max_retries = self._max_retries if options is None else options.max_retries
        retry = Retry(
            may_retry=functools.partial(_may_reread, max_retries=max_retries),
            # After a 429 the read budget itself holds every read back.
            delay=backoff_unless_throttled,
        )
        return await retry.call(lambda _attempt: self._read(operation, task_id, options=options))

    def polling(self, task_id: str) -> Job | None:
        """The first job polling ``task_id`` here, or None; nothing is woken."""
        return next(iter(self._hints.get(task_id) or ()), None)

    def hint(self, task_id: str) -> Job | None:
        """Wake every job polling ``task_id`` to read its status now; the first, or None."""
        polling = self._hints.get(task_id)
        if not polling:
            self._remember_early(task_id)
            return None
        for event in polling.values():
            event.set()
        return next(iter(polling))

    def _remember_early(self, task_id: str) -> None:
        """Keep a hint for a task nobody polls yet, for a while and within a bound."""
        now = anyio.current_time()
        self._early.pop(task_id, None)
        self._early[task_id] = now
        while self._early:
            oldest, at = next(iter(self._early.items()))
            if len(self._early) <= _EARLY_HINTS and at > now - _EARLY_HINT_SECONDS:
                break
            del self._early[oldest]

    async def wait_for(
        self, job: Job, submitted_at: float | None, options: JobOptions | None = None
    ) -> Result:
        """Poll ``job``'s task until it ends; its Result, or the error it ended in.

        ``submitted_at`` is the moment of this run's own submit, or None for a task
        submitted elsewhere (resumed): only a known start lets the duration teach the
        planner, and an unknown one is read at once.
        """
        task_id = job.task_id
        assert task_id is not None  # noqa: S101 - submitted or resumed
        wake = anyio.Event()
        self._hints.setdefault(task_id, {})[job] = wake
        early = self._early.pop(task_id, None)
        if early is not None and early > anyio.current_time() - _EARLY_HINT_SECONDS:
            wake.set()  # its callback came before its poll began
        policy = self._policy if options is None else options.poll
        request = job.request
        if (
            submitted_at is not None
            and policy.callback_first
            and request is not None
            and request.callback_url is not None
        ):
            self._awaiting[job] = (self._planner(options), submitted_at)
        try:
            return await self._poll_until_final(job, task_id, submitted_at, options)
        finally:
            polling = self._hints[task_id]
            del polling[job]
            if not polling:
                del self._hints[task_id]
            self._awaiting.pop(job, None)
            if submitted_at is not None:  # a no-op once it was learned
                self._planner(options).forget(job.operation, job)

    async def _poll_until_final(
        self, job: Job, task_id: str, submitted_at: float | None, options: JobOptions | None
    ) -> Result:
        started = anyio.current_time() if submitted_at is None else submitted_at
        policy = self._policy if options is None else options.poll
        planner = self._planner(options)
        deadline = started + policy.timeout
        key = None if submitted_at is None else job  # the planner's key of a learning task
        # With a callback on its way, the job waits for it: reads are only a safety net.
        callback_first = job in self._awaiting
        reads = 0
        while True:
            now = anyio.current_time()
            # When the read budget binds, reads near an expected finish go first; the
            # others wait up to max_interval longer (none waits while the budget has room).
            held_back = 0.0
            if key is None and reads == 0:
                delay = 0.0
            else:
                delay, expected = _planned_read(
                    planner, job, now - started, reads, key, callback_first, self._dense_gap()
                )
                delay = self._hurried(delay)
                held_back = 0.0 if expected else policy.max_interval
            due = now + max(min(delay, deadline - now), 0.0)
            await self._sleep_unless_hinted(job, task_id, due - now)
            record, made = await self._read_patiently(job, (due, held_back), started, options)
            reads += made
            if record.state is not TaskState.PROCESSING:
                if key is not None:
                    self._learn(planner, job.operation, record, anyio.current_time() - started, key)
                return _outcome(job, record)
            if anyio.current_time() >= deadline:
                raise _gave_up(job, policy.timeout, None)

    async def _read_patiently(
        self, job: Job, due: tuple[float, float], started: float, options: JobOptions | None
    ) -> tuple[TaskRecord, int]:
        """A paid task's status, read again after passing failures until the poll timeout.

        ``due`` is the planned read's moment and how much longer it may be held back when
        the budget binds; retries are due when their wait ends. Returns the record and the
        number of reads made.
        """
        task_id = job.task_id
        assert task_id is not None  # noqa: S101 - submitted or resumed
        policy = self._policy if options is None else options.poll
        reads = 0
        read_at, held_back = due

        def failed(error: RecraftError, _attempt: float) -> None:
            nonlocal reads
            _jobs.record(job, "status", type(error).__name__, str(error))
            reads += 1

        async def wait(seconds: float) -> None:
            nonlocal read_at, held_back
            read_at, held_back = anyio.current_time() + seconds, 0.0
            await self._sleep_unless_hinted(job, task_id, seconds)

        retry = Retry(
            # The task was accepted, so it is paid for: a read that failed for a passing
            # reason is tried again, patiently, until the poll timeout.
            may_retry=lambda error, _: _read_may_recover(error, anyio.current_time() - started),
            delay=lambda error, attempt: policy.read_retry_delay(
                attempt + 1, retry_after_of(error)
            ),
            deadline=started + policy.timeout,
            out_of_time=lambda error: _gave_up(job, policy.timeout, error),
            failed=failed,
            sleep=wait,
        )
        record = await retry.call(
            lambda _attempt: self._read(
                job.operation, task_id, min(read_at, anyio.current_time()) + held_back, options
            )
        )
        _jobs.record(job, "status", record.state.value)
        return record, reads + 1

    def _hurried(self, delay: float) -> float:
        """A planned delay, at most a second once the client shuts down (read_all_now)."""
        return min(delay, _SHUTDOWN_READ_INTERVAL) if self._shutting_down else delay

    async def _read(
        self,
        operation: Operation,
        task_id: str,
        due: float | None = None,
        options: JobOptions | None = None,
    ) -> TaskRecord:
        """One status read within the client's read budget; reads due first go first."""
        path, params = self._dialect.status(operation, task_id)
        transport = self._transport if options is None else options.transport
        async with self._reads.slot(due):
            try:
                data, body = await transport.send("GET", path, params=params)
            except RateLimitError as exc:
                # A 429 means the account's budget is spent: slow every read of the client.
                self._read_throttles += 1
                pause = self._policy.read_retry_delay(self._read_throttles, exc.retry_after)
                self._reads.pause(pause)
                raise
            except InvalidRequestError as exc:
                not_ready = _not_ready(exc, task_id)
                if not_ready is None:
                    raise
                raise not_ready from exc
            self._read_throttles = 0
        record = self._dialect.parse_record(data, body)
        if record.task_id != task_id:
            # Never someone else's result: a proxy or cache mixed the answers up.
            raise ProtocolError(
                f"status read of task {task_id!r} answered task {record.task_id!r}", body=body
            )
        return record

    async def _sleep_unless_hinted(self, job: Job, task_id: str, seconds: float) -> None:
        polling = self._hints.get(task_id)
        if polling is None or job not in polling:
            await anyio.sleep(seconds)
            return
        wake = polling[job]
        with anyio.move_on_after(seconds):
            await wake.wait()
        if wake.is_set():  # anyio events cannot be cleared: the next hint needs a new one
            polling[job] = anyio.Event()

    def _dense_gap(self) -> float:
        """The shortest gap the budget's room allows between a job's reads near its finish.

        The policy's ``initial`` (fixed 2 s polling finds nothing sooner) while few jobs
        poll; wider as more share the budget: together they take at most DENSE_SHARE of it.
        """
        gap = self._policy.initial
        if self._reads_per_second is None:
            return gap
        return max(gap, len(self._hints) / (DENSE_SHARE * self._reads_per_second))

    def _planner(self, options: JobOptions | None) -> PollPlanner:
        """The planner of a job's poll policy: the client's, or its view's own."""
        if options is None:
            return self.planner
        policy = options.poll
        planner = self._planners.get(policy)
        if planner is None:
            planner = self._planners[policy] = PollPlanner(policy)
        return planner

    def _learn(
        self,
        planner: PollPlanner,
        operation: Operation,
        record: TaskRecord,
        observed: float,
        key: Job,
    ) -> None:
        if record.created_at is not None and record.completed_at is not None:
            observed = (record.completed_at - record.created_at).total_seconds()
        planner.observe(operation, observed, key)
        if self._awaiting and planner.fit_due(operation):
            # Before the next fit, the jobs still waiting for their callbacks count as
            # "running this long": else the first, fast finishes would pass for them all.
            now = anyio.current_time()
            for job, (waiting_planner, started) in self._awaiting.items():
                if waiting_planner is planner and job.operation is operation:
                    planner.running(operation, job, now - started)


def _planned_read(
    planner: PollPlanner,
    job: Job,
    elapsed: float,
    reads: int,
    key: Job | None,
    callback_first: bool,
    dense_gap: float,
) -> tuple[float, bool]:
    """(seconds to the next planned read, whether a finish is expected near it).

    While a callback is awaited, the next read is a safety read.
    """
    if callback_first:
        return planner.safety_delay(job.operation, elapsed), True
    return planner.next_read(job.operation, elapsed, reads, key, dense_gap)


def _not_ready(error: InvalidRequestError, task_id: str) -> TaskNotReadyError | None:
    """KIE's "recordInfo is null" (code 422, at HTTP 200 or 422) as its own error, else None.

    Only on a status read: there it says nothing about the job's input. Any other 422
    stays the InvalidRequestError it is.
    """
    if error.code != 422 or error.message.strip().lower() != _NOT_READY_MESSAGE:
        return None
    return TaskNotReadyError(
        error.message,
        task_id=task_id,
        code=error.code,
        http_status=error.http_status,
        body=error.body,
        headers=error.headers,
    )


def _may_reread(error: RecraftError, attempt: int, max_retries: int) -> bool:
    """Whether one status read that failed on ``attempt`` (0-based) is tried again."""
    if isinstance(error, UnusableResultError):
        return False  # final: another read gives the same record
    return should_retry(error, attempt, max_retries)


def _read_may_recover(error: RecraftError, since_submit: float) -> bool:
    """Whether a failed status read of an accepted task is worth trying again."""
    if isinstance(error, UnusableResultError):
        return False  # a final record: read again, it names the same unusable URL
    if isinstance(error, TaskNotReadyError):
        # Patient until the poll timeout, longer than NOT_FOUND_GRACE: KIE documents this
        # answer for a task just created, so it says "not yet", never "no such task", and
        # the task was accepted (paid for). How long a record may take to appear is not
        # published; a public client that gives up after a bounded wait loses paid work.
        # The poll timeout bounds the wait, and its JobTimeoutError names the task.
        return True
    if isinstance(error, NotFoundError):
        return since_submit <= NOT_FOUND_GRACE  # a task just created can be "not found"
    return is_transient(error)


def _gave_up(job: Job, timeout: float, error: RecraftError | None) -> JobTimeoutError:
    """The error of a job that stopped polling: it names the task, which may still finish."""
    task_id = job.task_id
    why = f"the last status read failed: {error}" if error is not None else "still running"
    if isinstance(error, TaskNotReadyError):
        # Never readable: a task just created, or an id the service never gave out.
        why += "; if the task id is right, its record may still appear"
    gave_up = JobTimeoutError(
        f"task {task_id} did not finish within {timeout:g}s ({why}); it may still finish "
        f"and is paid for: resume it with client.resume({task_id!r}, {job.operation.value!r})",
        task_id=task_id,
    )
    gave_up.__cause__ = error
    return gave_up


def _outcome(job: Job, record: TaskRecord) -> Result:
    """The Result of a task that ended, or the TaskFailedError of one that failed."""
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
        credits=record.credits,
    )

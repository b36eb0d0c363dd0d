"""The scheduler: each job's life, from its journal record through submit and poll to its end.

The parts have one concern each: ``Dispatcher`` (queue, in-flight bound, stopping),
``Submitter`` (upload, paced submit, account stop), ``Poller`` (status reads, callback
hints) and the ledger (the journal, or nothing without one). The scheduler owns its jobs:
it hears their events (for ``on_event`` and tracing) and stops a cancelled one's work.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType
from typing import Protocol

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from . import _jobs
from ._coordination import NO_CLAIM, Claim, Coordinator, LocalCoordinator
from ._dialects import Dialect
from ._dispatch import Dispatcher
from ._errors import (
    InvalidInputError,
    JobCancelledError,
    QueueFullError,
    RecraftError,
    SubmissionUncertainError,
    TaskFailedError,
)
from ._escape import loggable_source
from ._events import FINAL_KINDS, JobEvent, Listener
from ._home import Home
from ._identity import InputIdentity, identify_request
from ._jobs import Job
from ._models import Operation, TaskRecord
from ._options import JobOptions
from ._policy import PollPolicy, Rate
from ._poll import Poller
from ._record import NO_RECORD, NullLedger, Record, RecordBook
from ._submit import AccountError, Submitter
from ._transport import Transport
from ._webhooks import Seen

logger = logging.getLogger("recraft_async")


class JobTracer(Protocol):
    """One span per job (``_tracing.Tracer``, when OpenTelemetry is there)."""

    def job_created(self, job: Job) -> None:
        """Called where the job was made: remember the caller's context as its parent."""

    def job_span(self, job: Job) -> AbstractContextManager[object]:
        """The job's span, current in its task while it lives, ended on exit."""

    def job_unstarted(self, job: Job) -> None:
        """The span of a job that ended before its task started."""


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
        ledger: RecordBook | None = None,
        listener: Listener[Job] | None = None,
        tracer: JobTracer | None = None,
        max_queued: int | None = None,
        home: Home | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.transport = transport
        self._home = home
        # Budgets, claims and callbacks: this client's own, or a fleet's (RedisCoordination).
        self._coordinator = coordinator or LocalCoordinator(submit_rate, read_rate)
        self._listener = listener
        self._tracer = tracer
        self._deliveries: TaskGroup | None = None  # awaits an async on_event
        # Each running job's cancel scope: cancel() stops its work through it.
        self._scopes: dict[Job, anyio.CancelScope] = {}
        # The options of the jobs made by with_options views, until each ends.
        self._options: dict[Job, JobOptions] = {}
        # The identity of the inputs whose caller knew it already (a bulk run hashed it).
        self._identities: dict[Job, InputIdentity] = {}
        # The journal's ledger when the client has a journal (the facade passes it in).
        self.ledger: RecordBook = NullLedger() if ledger is None else ledger
        self._submitter = Submitter(
            transport,
            dialect,
            submits=self._coordinator.submits,
            max_retries=max_retries,
            upload_base_url=upload_base_url,
        )
        self._poller = Poller(
            transport,
            dialect,
            reads=self._coordinator.reads,
            poll=poll,
            max_retries=max_retries,
            read_rate=read_rate,
        )
        self.planner = self._poller.planner  # what it learnt persists (a warm start)
        self._dispatcher = Dispatcher(
            self._live,
            max_in_flight=max_in_flight,
            max_queued=max_queued,
            on_the_wire=self._submitter.sending,
        )

    async def __aenter__(self) -> Scheduler:
        await self._coordinator.open(self._poller.hint)
        try:
            return await self._enter()
        except BaseException:
            await self._coordinator.close()
            raise

    async def _enter(self) -> Scheduler:
        if self._listener is not None and self._listener.is_async:
            self._deliveries = anyio.create_task_group()
            await self._deliveries.__aenter__()
            self._deliveries.start_soon(self._listener.run)
        try:
            await self._dispatcher.__aenter__()
        except BaseException:
            await self._close_deliveries()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close(stop=exc is not None)

    async def close(self, *, stop: bool) -> None:
        """Wait for every job (``stop``: stop them first, logging their task ids), then end."""
        try:
            await self._dispatcher.close(stop=stop)
        finally:
            try:
                await self._close_deliveries()
            finally:
                await self._coordinator.close()

    async def drain(self) -> None:
        """Take no more jobs and wait until every job has ended."""
        await self._dispatcher.drain()

    async def stop(self, *, cut_submits: bool = False) -> None:
        """Stop every job from any task, wait for their ends, then log their task ids.

        ``cut_submits``: cut the submits on the wire too (a shutdown's grace is over),
        rather than wait for their answers; those jobs end in ``SubmissionUncertainError``.
        """
        cut = self._submitter.cut() if cut_submits else []
        self._dispatcher.stop(spare=frozenset(cut))
        await self._dispatcher.ended()
        self._dispatcher.warn_stopped()

    def begin_shutdown(self, why: str) -> int:
        """Cancel the unsent jobs (nothing paid), read the submitted ones now; how many cancelled.

        From here on every submitted task is read at least once a second: a callback may
        not come any more (the server stops listening before the client closes).
        """
        self._poller.read_all_now()
        return self._dispatcher.cancel_unsent(
            lambda job: JobCancelledError(
                f"job {job.operation.value} of {loggable_source(job.source)} was cancelled"
                f" before its submit ({why}): nothing was paid"
            )
        )

    async def wait_for_room(self) -> None:
        """Wait until the queue has room for one more job (``max_queued``)."""
        await self._dispatcher.wait_for_room()

    async def _close_deliveries(self) -> None:
        """Let an async on_event take the events already queued, then end its task."""
        deliveries, self._deliveries = self._deliveries, None
        if deliveries is not None and self._listener is not None:
            self._listener.close()
            await deliveries.__aexit__(None, None, None)

    def job_event(self, job: Job, event: JobEvent) -> None:
        """Pass a job's event on to ``on_event`` and, for an unstarted job's end, tracing."""
        if self._listener is not None:
            self._listener.deliver(job, event)
        if event.kind in FINAL_KINDS:
            self._dispatcher.job_finished(job)
            self._options.pop(job, None)
            self._identities.pop(job, None)
        if self._tracer is not None and event.kind in FINAL_KINDS and job not in self._scopes:
            self._tracer.job_unstarted(job)

    def check_caller(self) -> None:
        """Refuse a job's wait or cancel from another thread or event loop than ours."""
        if self._home is not None:
            self._home.check("this job")

    def stop_job(self, job: Job) -> None:
        """Stop the running work of ``job``, which has just finished (cancelled or failed)."""
        scope = self._scopes.get(job)
        if scope is not None:
            scope.cancel()

    def schedule(
        self,
        job: Job,
        submit_within: float | None = None,
        options: JobOptions | None = None,
        identity: InputIdentity | None = None,
    ) -> None:
        """Queue ``job`` (called where it was made); it starts when the bound allows.

        Raises ``QueueFullError`` when ``max_queued`` jobs already wait. ``submit_within``:
        seconds from now by which its submit must have gone out, else it is cancelled.
        ``identity``: its input's, when the caller has it already (else computed once here).
        """
        if self._dispatcher.full():
            raise QueueFullError(
                "max_queued jobs already wait for their turn: try again later, or await"
                " client.enqueue_upscale(...) / enqueue_remove_background(...) to wait for room"
            )
        _jobs.attach(job, self)
        if options is not None:
            self._options[job] = options
        if identity is not None:
            self._identities[job] = identity
        if self._tracer is not None:
            self._tracer.job_created(job)
        if self._listener is not None:
            self._listener.deliver(job, job.events[0])
        account_error = self._submitter.account_error
        if account_error is not None and job.task_id is None:
            _jobs.fail(job, account_error)
            return
        self._dispatcher.schedule(job, submit_within)

    async def read_record(
        self, operation: Operation, task_id: str, options: JobOptions | None = None
    ) -> TaskRecord:
        """One status read (transient failures retried up to ``max_retries``)."""
        return await self._poller.read_record(operation, task_id, options)

    def next_submit_in(self) -> float | None:
        """Seconds until a submit that waits for the submit rate may go, or None: throttled."""
        return self._submitter.next_submit_in()

    def hint(self, task_id: str, seen: Seen | None = None) -> Job | None:
        """Wake the job polling ``task_id`` to read its status now (a callback said it ended).

        Returns that job, or None when no job here polls ``task_id``: then nothing is read
        here. In a fleet every other worker is told too: a job there polling it wakes.
        ``seen``: a verified callback, which a fleet accepts once among all its workers.
        """
        if seen is not None and self._coordinator.dedups:
            self._coordinator.accept_callback(task_id, seen)  # wakes the job once accepted
            return self._poller.polling(task_id)
        self._coordinator.forward(task_id)
        return self._poller.hint(task_id)

    async def _claim(self, job: Job, identity: InputIdentity) -> Claim:
        """The fleet's claim on ``job``'s input (always ours for a client alone)."""
        if not self._coordinator.dedups:
            return NO_CLAIM
        claim = await self._coordinator.claim(identity.key)
        if claim.uncertain_elsewhere:
            assert job.request is not None  # noqa: S101 - fresh jobs carry their request
            raise SubmissionUncertainError(
                f"another worker's submit of {job.request.source} may have created a task;"
                " not resubmitting it, to avoid paying twice",
                operation=job.operation,
                image=job.request.source,
            )
        return claim

    async def _submit(
        self,
        job: Job,
        claim: Claim,
        record: Record,
        data: bytes | None,
        identity: InputIdentity,
        options: JobOptions | None,
    ) -> float:
        """Upload and submit ``job`` under its claim, then tell the fleet how it went."""
        try:
            await self._submitter.upload(job, data, identity, options)
            submitted_at = await self._submitter.submit(job, record, options)
        except SubmissionUncertainError:
            await claim.uncertain()
            raise
        except BaseException:
            if job.task_id is None:  # provably never landed: another worker may try
                await claim.release()
            raise
        assert job.task_id is not None  # noqa: S101 - a submit that returned has its id
        await claim.submitted(job.task_id)
        return submitted_at

    async def _live(self, job: Job) -> None:
        """One job's life, in its span when traced; cancel() ends it through its scope."""
        span = nullcontext() if self._tracer is None else self._tracer.job_span(job)
        with span:
            self._scopes[job] = anyio.CancelScope()
            try:
                await self._life(job, self._scopes[job])
            finally:
                del self._scopes[job]

    async def _life(self, job: Job, scope: anyio.CancelScope) -> None:
        """One job's life: its record, then upload, submit (or resume), poll and its end."""
        record: Record = NO_RECORD
        claim: Claim = NO_CLAIM
        options = self._options.get(job)
        try:
            with scope:
                # The moment our own submit went out; None for a task submitted elsewhere.
                submitted_at: float | None = None
                if job.request is not None and job.task_id is None:
                    # The input's identity is computed once: the caller's, or from the
                    # bytes read here (a local image is read only if it may be sent).
                    identity = self._identities.pop(job, None)
                    data = None
                    if identity is None:
                        data = await _local_bytes(job)
                        identity = await identify_request(job.request, data)
                    record = await self.ledger.open(job.request, identity)
                    task_id = record.resumable_task(job.operation)
                    if task_id is not None:
                        _jobs.mark_submitted(job, task_id)
                    else:
                        if data is None:
                            data = await _local_bytes(job)
                        claim = await self._claim(job, identity)
                        if claim.task_id is not None:  # another worker's: attach, pay nothing
                            _jobs.mark_submitted(job, claim.task_id)
                            await record.submitted(claim.task_id)
                        else:
                            submitted_at = await self._submit(
                                job, claim, record, data, identity, options
                            )
                result = await self._poller.wait_for(job, submitted_at, options)
                await record.succeeded(result)
                _jobs.succeed(job, result)
        except RecraftError as exc:
            await record.failed(exc)
            if isinstance(exc, TaskFailedError):
                await claim.failed()  # a retry, here or in another worker, may submit again
            if isinstance(exc, AccountError) and job.task_id is None:
                self._submitter.stop(exc)
                self._dispatcher.fail_unsent(exc)
            _jobs.fail(job, exc)
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", job.operation.value)
            _jobs.fail(job, exc)


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

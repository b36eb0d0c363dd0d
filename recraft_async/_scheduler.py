"""The scheduler: each job's life, from its journal record through submit and poll to its end.

The parts have one concern each: ``Dispatcher`` (queue, in-flight bound, stopping),
``Submitter`` (upload, paced submit, account stop), ``Poller`` (status reads, callback
hints) and the ledger (the journal, or nothing without one).
"""

from __future__ import annotations

import logging
from types import TracebackType

import anyio

from ._dialects import Dialect
from ._dispatch import Dispatcher
from ._jobs import Job
from ._journal import Journal
from ._ledger import NO_RECORD, Ledger, NullLedger, Record
from ._models import Operation, TaskRecord
from ._policy import PollPolicy, Rate
from ._poll import Poller
from ._submit import AccountError, Submitter
from ._transport import Transport
from .errors import InvalidInputError, RecraftError

logger = logging.getLogger("recraft_async")


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
        self.ledger: Ledger | NullLedger = NullLedger() if journal is None else Ledger(journal)
        self._submitter = Submitter(
            transport,
            dialect,
            submit_rate=submit_rate,
            max_retries=max_retries,
            upload_base_url=upload_base_url,
        )
        self._poller = Poller(
            transport, dialect, read_rate=read_rate, poll=poll, max_retries=max_retries
        )
        self._dispatcher = Dispatcher(self._live, max_in_flight=max_in_flight)

    async def __aenter__(self) -> Scheduler:
        await self._dispatcher.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._dispatcher.__aexit__(exc_type, exc, tb)

    def schedule(self, job: Job) -> None:
        """Queue ``job``; it starts when the in-flight bound allows."""
        account_error = self._submitter.account_error
        if account_error is not None and job.task_id is None:
            job._fail(account_error)
            return
        self._dispatcher.schedule(job)

    async def read_record(self, operation: Operation, task_id: str) -> TaskRecord:
        """One status read (transient failures retried up to ``max_retries``)."""
        return await self._poller.read_record(operation, task_id)

    def next_submit_in(self) -> float | None:
        """Seconds until a submit that waits for the submit rate may go, or None: throttled."""
        return self._submitter.next_submit_in()

    def hint(self, task_id: str) -> Job | None:
        """Wake the job polling ``task_id`` to read its status now (a callback said it ended).

        Returns that job, or None when no job here polls ``task_id``: then nothing is read.
        """
        return self._poller.hint(task_id)

    async def _live(self, job: Job) -> None:
        """One job's life: its record, then upload, submit (or resume), poll and its end."""
        record: Record = NO_RECORD
        try:
            with anyio.CancelScope() as scope:
                job._cancel_hook = scope.cancel
                # The moment our own submit went out; None for a task submitted elsewhere.
                submitted_at: float | None = None
                if job.request is not None and job.task_id is None:
                    data = await _local_bytes(job)
                    record = await self.ledger.open(job.request, data)
                    task_id = record.resumable_task(job.operation)
                    if task_id is not None:
                        job._mark_submitted(task_id)
                    else:
                        await self._submitter.upload(job, data)
                        submitted_at = await self._submitter.submit(job, record)
                result = await self._poller.wait_for(job, submitted_at)
                await record.succeeded(result)
                job._succeed(result)
        except RecraftError as exc:
            await record.failed(exc)
            if isinstance(exc, AccountError) and job.task_id is None:
                self._submitter.stop(exc)
                self._dispatcher.fail_unsent(exc, self._submitter.sending)
            job._fail(exc)
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", job.operation.value)
            job._fail(exc)


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

"""Uploads and submits: paced, journalled around the send, resent only if never landed."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import attrs

from . import _jobs
from ._dialects import Dialect, parse_task_id
from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
    ProtocolError,
    RateLimitError,
    RecraftError,
    SubmissionUncertainError,
)
from ._escape import loggable_source, printable
from ._files import upload_image
from ._jobs import Job
from ._options import JobOptions
from ._policy import (
    backoff_unless_throttled,
    is_refusal,
    never_landed,
    server_or_backoff,
    should_resubmit,
)
from ._retry import Retry
from ._transport import Transport

if TYPE_CHECKING:
    from ._coordination import Budget
    from ._identity import InputIdentity
    from ._record import Record

logger = logging.getLogger("recraft_async")

_SubmitFailure = APIError | APIConnectionError | ProtocolError
# Errors about the account, not the image: every later submit would meet them too.
AccountError = AuthenticationError | InsufficientCreditsError


class Submitter:
    """Sends each job's upload and submit; after a 401 or 402, sends nothing more."""

    def __init__(
        self,
        transport: Transport,
        dialect: Dialect,
        *,
        submits: Budget,
        max_retries: int,
        upload_base_url: str,
    ) -> None:
        self._transport = transport
        self._dialect = dialect
        self._upload_base_url = upload_base_url
        self._max_retries = max_retries
        self._submits = submits  # the submit window: this client's, or the fleet's
        # The first 401 or 402 of a submit or upload: nothing more is sent.
        self.account_error: AccountError | None = None
        # Jobs whose submit is on the wire, each with the scope that shields it from a
        # cancel: only ``cut`` (a shutdown's grace is over) may end it.
        self.sending: dict[Job, anyio.CancelScope] = {}

    def next_submit_in(self) -> float | None:
        """Seconds until a waiting submit may go (rate window full, or a 429's pause), or None."""
        return self._submits.delay()

    def cut(self) -> list[Job]:
        """Cut every submit on the wire (a shutdown's grace is over); the jobs cut.

        Each of them ends in ``SubmissionUncertainError``, its journal row UNCERTAIN: the
        submit may have created a task, paid for, whose id will never be known here.
        """
        jobs = list(self.sending)
        for scope in self.sending.values():
            scope.cancel()
        if jobs:
            logger.warning(
                "cut %d submit(s) on the wire when the shutdown's grace ran out; each may"
                " have created a task (SubmissionUncertainError): check the account before"
                " submitting them again: %s",
                len(jobs),
                ", ".join(loggable_source(job.source) for job in jobs),
            )
        return jobs

    def stop(self, error: AccountError) -> None:
        """Send nothing more: the account itself was refused."""
        if self.account_error is None:
            self.account_error = error
            logger.error("submits stopped for this client: %s", printable(error))

    async def upload(
        self,
        job: Job,
        data: bytes | None,
        identity: InputIdentity,
        options: JobOptions | None,
    ) -> None:
        """Upload a local image (``identity``: its input's); its URL becomes ``image_url``."""
        request = job.request
        assert request is not None  # noqa: S101 - fresh jobs carry their request
        if self.account_error is not None:
            raise self.account_error
        if request.local is not None and data is not None:
            _jobs.record(job, "uploading")
            transport = self._transport if options is None else options.transport
            url = await upload_image(
                transport, self._upload_base_url, data, request.local.name, identity
            )
            job.request = attrs.evolve(request, image_url=url)

    async def submit(self, job: Job, record: Record, options: JobOptions | None) -> float:
        """Submit ``job`` once (resending only what provably never landed); the moment sent."""
        request = job.request
        assert request is not None  # noqa: S101 - fresh jobs carry their request
        path, body = self._dialect.submit(request)
        max_retries = self._max_retries if options is None else options.max_retries
        transport = self._transport if options is None else options.transport
        retry = Retry(
            # Resent only when the first provably never landed: see never_landed.
            may_retry=functools.partial(should_resubmit, max_retries=max_retries),
            # After a 429 the submit window is paused: it holds the resend back.
            delay=backoff_unless_throttled,
            retrying=lambda error, _delay: logger.info(
                "job %s: resubmitting after %s", job.operation.value, printable(error)
            ),
        )
        try:
            return await retry.call(
                lambda attempt: self._attempt(job, record, transport, (path, body), attempt)
            )
        except (APIError, APIConnectionError, ProtocolError) as exc:
            # Either the refusal itself, or an uncertain submit naming it as its cause.
            raise _submit_failure(exc, job)  # noqa: B904 - _submit_failure sets the cause

    async def _attempt(
        self,
        job: Job,
        record: Record,
        transport: Transport,
        request: tuple[str, dict[str, Any]],
        attempt: int,
    ) -> float:
        """One submit in a slot of the submit window: the moment it was sent, or its failure."""
        async with self._submits.slot():
            if self.account_error is not None:  # met by another job while we waited
                raise self.account_error
            # A job cancelled by now (a shutdown, its submit deadline) is never sent;
            # from here on it is on the wire (``sending``) and its submit goes out.
            await anyio.lowlevel.checkpoint_if_cancelled()
            # Shielded: a cancel must not cut a submit off mid-air and lose its task id.
            # Only a shutdown whose grace is over cuts it (``cut``), knowingly: then the
            # send below never returns, and these stand.
            started: float = anyio.current_time()
            error: _SubmitFailure | None = None
            with anyio.CancelScope(shield=True) as shield:
                started, error = await self._send(job, record, transport, request, shield)
                if error is not None and never_landed(error):
                    # Not SUBMITTING across the wait that follows a refusal: a run
                    # killed in it has created nothing and must stay resumable.
                    await record.refused()
            if shield.cancel_called:  # cut by a shutdown whose grace is over
                if job.task_id is None:  # never resent: the shutdown's grace is over
                    raise _cut_off(job) if error is None else _submit_failure(error, job)
                # Its answer came as it was cut: stopped like every job still running,
                # its task id logged for resume.
                job.cancel()
            if isinstance(error, RateLimitError):
                # The account's submit budget is spent: pause every submit of the client.
                self._submits.pause(server_or_backoff(error, attempt))
        if error is not None:
            raise error
        return started

    async def _send(
        self,
        job: Job,
        record: Record,
        transport: Transport,
        request: tuple[str, dict[str, Any]],
        shield: anyio.CancelScope,
    ) -> tuple[float, _SubmitFailure | None]:
        """One submit on the wire, journalled around it; the moment sent and any failure."""
        path, body = request
        # From the journal's write-ahead on: never cancelled as unsent, only cut.
        self.sending[job] = shield
        started = anyio.current_time()
        try:
            # Write-ahead, as late as possible: a run killed while it waited for its slot
            # has sent nothing and must not look uncertain.
            await record.before_submit()
            started = anyio.current_time()
            if self.account_error is not None:  # met while we journalled
                raise self.account_error
            data, raw = await transport.send("POST", path, json=body)
            task_id = parse_task_id(data, raw)
        except (APIError, APIConnectionError, ProtocolError) as exc:
            return started, exc
        finally:
            self.sending.pop(job, None)
        _jobs.mark_submitted(job, task_id)
        await record.submitted(task_id)
        return started, None


def _cut_off(job: Job) -> SubmissionUncertainError:
    """The error of a job whose submit a shutdown cut on the wire: it may have landed."""
    assert job.request is not None  # noqa: S101 - fresh jobs carry their request
    return SubmissionUncertainError(
        f"the submit of {loggable_source(job.request.source)} was cut on the wire when the"
        " client's shutdown grace ran out; it may have created a task, paid for, whose id"
        " is unknown: check the account before submitting it again",
        operation=job.operation,
        image=job.request.source,
    )


def _submit_failure(error: _SubmitFailure, job: Job) -> RecraftError:
    """The error a failed submit ends in: uncertain unless provably not processed."""
    assert job.request is not None  # noqa: S101
    if isinstance(error, APIConnectionError) and not error.request_sent:
        return error
    if isinstance(error, APIError) and is_refusal(error):
        return error  # a definite refusal (4xx, 455/503, 501, 505): nothing was created
    uncertain = SubmissionUncertainError(
        f"the submit of {loggable_source(job.request.source)} may have created a task ({error}); "
        "it was not resent, to avoid paying twice",
        operation=job.operation,
        image=job.request.source,
    )
    uncertain.__cause__ = error
    return uncertain

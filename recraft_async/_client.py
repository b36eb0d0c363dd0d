"""AsyncRecraft: configuration, lifecycle and the operations."""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import attrs
import httpx

from ._background import BackgroundHost
from ._bulk._journal import Journal
from ._core import _jobs
from ._core import _validate as check
from ._core._check import (
    DialectName,
    OutputFormat,
    Scale,
    SubmitRequest,
    UpscaleFormat,
    check_operation,
    check_remove_background,
    check_task_id,
    check_upscale,
)
from ._core._download import fresh_link, save_result
from ._core._events import JobEvent
from ._core._files import DEFAULT_DOWNLOAD_DEADLINE, DEFAULT_MAX_DOWNLOAD_BYTES, safe_output_name
from ._core._jobs import Job
from ._core._logging import setup_from_env
from ._core._models import Operation, OperationName, Result, TaskRecord
from ._core._options import JobOptions
from ._core._policy import PollPolicy, ProcessingTime, Rate
from ._core._scheduler import Scheduler
from ._core._transport import Transport, url_problem
from ._core._webhooks import ReplayGuard, verified_callback
from ._fleet._redis import RedisCoordination
from ._lifecycle import Lifecycle
from ._settings import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_POLL,
    DEFAULT_READ_RATE,
    DEFAULT_SUBMIT_RATE,
    DEFAULT_TIMEOUT,
    resolve_settings,
)
from .errors import ClientNotOpenError, InvalidInputError, ProtocolError

if TYPE_CHECKING:
    from ._core._identity import InputIdentity


class AsyncRecraft:
    """The async client of KIE.ai's Recraft services; use it as ``async with``.

    ``upscale`` and ``remove_background`` return a ``Job`` at once and ``await job`` gives
    its ``Result``. One client paces all its jobs to the service's limits: share one per
    application or batch. Leaving the block normally waits for every job; leaving it by an
    exception stops them and logs their task ids (WARNING), for ``resume``. ``aclose()``
    is the normal exit, and ``shutdown(grace=...)`` a server's graceful one. The client
    belongs to the thread and event loop that opened it: used from another it raises
    ``WrongEventLoopError`` at once (threads each take their own client).

    The API key goes over https, or over plain http only to a literal loopback address
    (127.0.0.1, ::1). Its own httpx client sends plain http direct, never through a proxy
    from the environment; with ``http_client=`` the proxies are that client's choice.

    Args:
        api_key: The KIE API key; None reads ``KIE_API_KEY``. Surrounding whitespace (a
            Windows ``.env``'s CR, a file's newline) is stripped; a key that still holds a
            control or non-ASCII character is refused (``InvalidInputError``, naming the
            position, never the key). Never shown in a repr, an exception, an event or a
            log line, and never sent to result hosts.
        base_url: The API's address; None reads ``KIE_BASE_URL``, else
            ``https://api.kie.ai``. Plain ``http://`` only to a literal loopback address.
        max_in_flight: How many tasks may be submitted and not yet finished at once.
            Throughput is ``min(submit_rate, max_in_flight / processing time)``: raise it
            when tasks take long.
        max_connections: The size of the client's own HTTP connection pool (kept alive
            too), whatever ``max_in_flight``: requests are paced, so a few dozen carry
            thousands of jobs; a request waits for a free connection without a time
            limit. Unused with ``http_client=`` (its pool is yours). At least 1.
        submit_rate: At most ``n`` submits in any ``per``-second window; by default
            ``Rate(20, per=10.0)``, KIE's limit. None does not pace them. A 429 pauses
            every submit of the client for its ``Retry-After`` either way.
        poll: When to read a task's status, and how long before a job gives up with
            ``JobTimeoutError``; by default ``PollPolicy()``: KIE's advice, a first
            read 2 s after the submit, then intervals growing by 1.5 up to 15 s, giving
            up after 900 s. That schedule is the latest a job is read; what is learnt (or
            loaded: see ``state_file``) adds reads near likely finishes and, once this
            process saw tasks finish, leaves out the reads before the fastest of them.
        max_retries: Further tries of a request that failed for a passing reason: a status
            read, an upload, or a submit that provably never reached the service (a submit
            whose answer was lost is never resent: ``SubmissionUncertainError``).
        timeout: Seconds for each API attempt as a whole: connecting, the answer's headers
            and its whole body (not the wait for a free connection, nor an image upload).
        http_client: Your own ``httpx.AsyncClient`` (its pool, proxies or transport), never
            closed by this client; None makes one for the block's lifetime.
        dialect: ``"market"``, KIE's documented jobs API, or ``"recraft"``, the per-product
            endpoints that carry ``scale`` and ``format``; None reads ``KIE_DIALECT``, else
            ``"market"``.
        read_rate: The one budget shared by every status read of the client, polls and
            ``get_task`` alike; by default ``Rate(10, per=1.0)``, KIE's limit per key.
            None does not pace them.
        upload_base_url: Where local images are uploaded before their submit; None reads
            ``KIE_UPLOAD_BASE_URL``, else uses ``base_url`` when that is a local address
            (an emulator), else KIE's upload host.
        journal: A ``Journal`` that records each submit before it is sent: an input it
            holds as submitted is polled by its task id instead of being submitted again,
            and one whose submit may have landed unseen raises
            ``SubmissionUncertainError``. Opened and closed with the client if not open.
        webhook_key: The key KIE signs callbacks with; None reads ``KIE_WEBHOOK_KEY``,
            stripped and checked like ``api_key``. With a key, ``handle_callback`` refuses
            unsigned, forged, stale and replayed callbacks.
        on_event: Called as ``on_event(job, event)`` with each ``JobEvent`` of every job
            of the client, the same as ``job.events`` records: ``"queued"`` (in the task
            that made the job), ``"uploading"``, ``"submitted"``, each ``"status"`` read,
            and ``"succeeded"``, ``"failed"`` or ``"cancelled"``. A plain function is
            called at once, where the event happens: keep it quick (a progress bar, a
            counter). An ``async`` one is awaited by one task of the client, event after
            event in their order, while the jobs go on; leaving the block lets it take the
            events already queued. An exception it raises is logged (ERROR, with its
            traceback) and never fails the job.
        tracing: OpenTelemetry spans: one per job (parented to the span current where
            the job was made) and a child per HTTP request. None (the default) traces when
            OpenTelemetry is installed (the ``otel`` extra), False never; True demands it.
            The spans go to the global tracer provider.
        max_queued: How many jobs may wait for their turn (made, not yet started: beyond
            ``max_in_flight``); past it ``upscale`` and ``remove_background`` raise
            ``QueueFullError`` and ``enqueue_upscale`` and ``enqueue_remove_background``
            wait for room; at least 1. None (the default) bounds nothing.
        submit_within: Seconds from a job's making by which its submit must have gone
            out, else it is cancelled (``JobCancelledError``) without ever being sent:
            nothing is paid for it. A submit already on its way is never cut off. None (the
            default) waits as long as it takes; each call can set its own.
        coordination: A ``RedisCoordination`` shared by every process and host using the
            same KIE key: their submit window, read budget, 429 pauses, claims on inputs
            and callbacks become one. None (the default) paces this client alone and
            imports nothing of Redis.
        state_file: A small JSON file where the client keeps the processing times it
            learnt, read when it opens and written when it closes, so that the next
            process starts warm (reads near the learnt finishes from its first job).
            With a ``journal`` the journal keeps them anyway; None (the default) keeps
            them nowhere else.

    Raises:
        InvalidInputError: No API key; a key with a control or non-ASCII character; a
            value out of range or of the wrong type; a URL that would send the key over
            plain http to a host not on loopback; ``tracing=True`` without OpenTelemetry
            installed.

    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_in_flight: int = 32,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        submit_rate: Rate | None = DEFAULT_SUBMIT_RATE,
        poll: PollPolicy = DEFAULT_POLL,
        max_retries: int = 3,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        dialect: DialectName | None = None,
        read_rate: Rate | None = DEFAULT_READ_RATE,
        upload_base_url: str | None = None,
        journal: Journal | None = None,
        webhook_key: str | None = None,
        on_event: Callable[[Job, JobEvent], object] | None = None,
        tracing: bool | None = None,
        max_queued: int | None = None,
        submit_within: float | None = None,
        coordination: RedisCoordination | None = None,
        state_file: str | os.PathLike[str] | None = None,
    ) -> None:
        setup_from_env()  # RECRAFT_LOG set after the import counts too
        settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            max_in_flight=max_in_flight,
            max_connections=max_connections,
            submit_rate=submit_rate,
            poll=poll,
            max_retries=max_retries,
            timeout=timeout,
            http_client=http_client,
            dialect=dialect,
            read_rate=read_rate,
            upload_base_url=upload_base_url,
            journal=journal,
            webhook_key=webhook_key,
            on_event=on_event,
            tracing=tracing,
            max_queued=max_queued,
            submit_within=submit_within,
            coordination=coordination,
            state_file=state_file,
        )
        self.base_url = settings.base_url
        self.upload_base_url = settings.upload_base_url
        self.dialect: DialectName = settings.dialect
        self.max_in_flight = settings.max_in_flight
        self.max_connections = settings.max_connections
        self.submit_rate = settings.submit_rate
        self.read_rate = settings.read_rate
        self.poll = settings.poll
        self.max_retries = settings.max_retries
        self.timeout = settings.timeout
        self.journal = settings.journal
        self.tracing: bool = settings.tracing
        self.max_queued = settings.max_queued
        self.submit_within = settings.submit_within
        self.coordination = settings.coordination
        self.state_file = settings.state_file
        self._settings = settings
        self._life = Lifecycle(settings)
        self._host: BackgroundHost | None = None  # the task holding it open, after open()
        self._replays = ReplayGuard()  # verified callbacks within the freshness window
        # The client a with_options view shares its life with (and its _life and
        # _replays); itself for a client.
        self._root = self
        self._job_options: JobOptions | None = None  # a view's, made when first used

    def __repr__(self) -> str:
        return f"<AsyncRecraft base_url={self.base_url!r} state={self._life.state}>"

    async def __aenter__(self) -> AsyncRecraft:
        await self._own_life("open").open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._own_life("close").close(stop=exc is not None)

    async def open(self) -> AsyncRecraft:
        """Open the client in a task of its own, for use across tasks and notebook cells.

        ``async with`` is the usual way: the client is closed when the block ends. Where a
        task ends between uses (a notebook runs each cell as a task of its own), ``await
        client.open()`` instead: any task of this event loop may then use the client, and
        ``await client.aclose()`` (or ``shutdown``), from any of them, closes it. If the
        event loop ends first, the client stops as on leaving ``async with`` by an
        exception: it logs the running jobs' task ids, for ``resume``. Returns the client.
        """
        life = self._own_life("open")
        if self._host is not None or life.state != "new":
            raise ClientNotOpenError(
                f"this client was opened before (it is {life.state}); make a new one"
            )
        self._host = BackgroundHost(life)
        await self._host.start()
        return self

    async def aclose(self) -> None:
        """Close the client as leaving ``async with`` normally does: wait for every job.

        Call it from the task that opened the client, or from any task after ``open()``.
        A second call does nothing.
        """
        life = self._own_life("close")
        if self._host is not None:
            life.check_loop()
            await self._host.close()
        else:
            await life.close(stop=False)

    async def shutdown(self, grace: float = 30.0) -> None:
        """Close gracefully, for a server's shutdown, within ``grace`` seconds.

        At once: new jobs are refused (``ClientNotOpenError``), and every job whose submit
        has not gone out is cancelled (``JobCancelledError``): nothing is paid for those.
        Submitted jobs get ``grace`` seconds (a finite number >= 0) to finish; those still
        running then are stopped and their task ids logged in one WARNING line, for
        ``client.resume``. A submit on the wire is let finish first, so its task id is
        never lost. Call it from any task of the client's event loop; from the task that
        opened it, or after ``open()``, it also closes the connection pool, else leaving
        ``async with`` does that.
        """
        await self._own_life("close").shutdown(grace)
        if self._host is not None:
            await self._host.close()

    def _own_life(self, what: str) -> Lifecycle:
        """The client's life, for opening or closing it: never through a view."""
        if self._root is not self:
            raise ClientNotOpenError(
                f"a view made by with_options() shares its client's life: {what} that client"
            )
        return self._life

    def _open_scheduler(self) -> Scheduler:
        return self._life.open_scheduler()

    def with_options(
        self,
        *,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> AsyncRecraft:
        """A view of this client whose jobs use these options (None keeps this client's).

        The view shares everything else with its client: the submit pacing and the read
        budget, the in-flight bound and queue, the connection pool, the journal and the
        lifecycle (open and close the client, never the view). A second client instead
        would double the submit rate the service sees. ``timeout`` is each API attempt's,
        as for the client, and checked as the client's is; ``poll`` governs the view's
        jobs alone.
        """
        arguments = self._settings.arguments()
        arguments["poll"] = self.poll if poll is None else poll
        arguments["timeout"] = self.timeout if timeout is None else timeout
        arguments["max_retries"] = self.max_retries if max_retries is None else max_retries
        view = AsyncRecraft(**arguments)  # checks the options as the constructor does
        # The view shares its client's life and seen callbacks, and knows its client.
        view._root, view._life, view._replays = self._root, self._life, self._replays
        return view

    def _transport(self) -> Transport:
        """The transport of a plain request: a view's own (its timeout and retries) if any."""
        options = self._options()
        return self._open_scheduler().transport if options is None else options.transport

    def _options(self) -> JobOptions | None:
        """The options the jobs of this view carry; None for the client itself."""
        if self._root is self:
            return None
        if self._job_options is None:
            transport = self._open_scheduler().transport
            self._job_options = JobOptions(
                poll=self.poll,
                max_retries=self.max_retries,
                transport=Transport(
                    transport.http,
                    base_url=transport.base_url,
                    api_key=self._settings.api_key,
                    max_retries=self.max_retries,
                    timeout=self.timeout,
                    tracer=transport.tracer,
                ),
            )
        return self._job_options

    def upscale(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        scale: Scale | None = None,
        format: UpscaleFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> Job:
        """Schedule a crisp upscale; returns its Job at once.

        ``image_url`` is an http(s) URL, a local file's path or the image's bytes; local
        images are checked at once and uploaded just before their submit. ``scale`` and
        ``format`` exist only in the seed's dialect (``dialect="recraft"``, which sends 2
        and PNG for None); KIE's documented jobs API takes an image alone, so there any
        value raises ``InvalidInputError`` rather than being dropped silently.
        ``submit_within`` overrides the client's (seconds to get the submit out, else the
        job is cancelled unsent), and ``poll`` the client's ``PollPolicy`` for this job
        alone. ``callback_url`` is where KIE posts when the task ends: feed what arrives
        there to ``handle_callback``. With ``max_queued`` jobs already waiting it raises
        ``QueueFullError``; ``enqueue_upscale`` waits for room instead.
        """
        request = check_upscale(image_url, scale, format, callback_url, dialect=self.dialect)
        return self._schedule(request, submit_within, poll)

    async def enqueue_upscale(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        scale: Scale | None = None,
        format: UpscaleFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> Job:
        """Like ``upscale``, but waits for room in the queue instead of ``QueueFullError``.

        Returns the Job once it is queued (at once without ``max_queued``).
        """
        request = check_upscale(image_url, scale, format, callback_url, dialect=self.dialect)
        return await self._enqueue(request, submit_within, poll)

    def remove_background(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        output_format: OutputFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> Job:
        """Schedule a background removal (URL, path or bytes); returns its Job at once.

        ``output_format`` exists only in the seed's dialect; ``callback_url``,
        ``submit_within``, ``poll`` and ``QueueFullError`` as for ``upscale``.
        """
        request = check_remove_background(
            image_url, output_format, callback_url, dialect=self.dialect
        )
        return self._schedule(request, submit_within, poll)

    async def enqueue_remove_background(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        output_format: OutputFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> Job:
        """Like ``remove_background``, but waits for room instead of ``QueueFullError``.

        Returns the Job once it is queued (at once without ``max_queued``).
        """
        request = check_remove_background(
            image_url, output_format, callback_url, dialect=self.dialect
        )
        return await self._enqueue(request, submit_within, poll)

    def resume(
        self,
        task_id: str,
        operation: Operation | OperationName,
        *,
        poll: PollPolicy | None = None,
    ) -> Job:
        """A Job that polls a task submitted earlier, without submitting anything.

        ``poll``: this job's own ``PollPolicy`` (None: the client's).
        """
        op = check_operation(operation)
        job = Job(op, None, task_id=check_task_id(task_id))
        self._open_scheduler().schedule(job, None, self._options_with(poll))
        return job

    async def get_task(self, task_id: str, operation: Operation | OperationName) -> TaskRecord:
        """One status read of a task."""
        op = check_operation(operation)
        checked = check_task_id(task_id)
        return await self._open_scheduler().read_record(op, checked, self._options())

    async def credits(self) -> float:
        """The account's credit balance, as the service states it (it may be fractional)."""
        data, body = await self._transport().request_json(
            "GET", "/api/v1/chat/credit", idempotent=True
        )
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise ProtocolError("credit answer is not a number", body=body)
        return data

    async def download(
        self,
        result: Result,
        dest: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
    ) -> Path:
        """Stream ``result``'s image into the folder ``dest``; the file appears only whole.

        The name comes from the input's name (else the task id) and the image's real type;
        nothing is ever written outside ``dest``. A body over ``max_bytes`` is a
        ``ProtocolError``; one not whole within ``deadline`` seconds an ``APITimeoutError``.

        When the result host refuses the URL (HTTP 401, 403, 404, 410: an expired link, a
        file moved), one fresh link from ``download_url`` is tried before it fails with
        ``ResultUnavailableError``. An unusable result URL is a ``DownloadError``, a full
        disk or a folder that cannot be written a ``DownloadWriteError``; all three keep
        the task id, the URL and ``dest``. No request to the result host, nor to a fresh
        link, carries the API key.
        """
        check.integer("max_bytes", max_bytes, minimum=1)
        check.positive("deadline", deadline)
        self._open_scheduler()
        http = self._life.http
        assert http is not None  # noqa: S101 - open clients have one
        name = safe_output_name(result.source, result.task_id, _extension(result))
        return await save_result(
            http,
            result.url,
            Path(dest),
            name,
            task_id=result.task_id,
            link_for=self.download_url,
            max_bytes=max_bytes,
            deadline=deadline,
        )

    async def download_url(self, result: Result | str) -> str:
        """A fresh temporary link (valid 20 minutes) to a result's file, from KIE.

        ``result``: a ``Result`` (its first URL) or one result URL, as a journal keeps
        them. KIE's common API makes links for the files it generated, whichever dialect
        made the task; any other URL answers 422 (``InvalidRequestError``). ``download``
        asks for one by itself when the result host refuses the plain URL.
        """
        url = result.url if isinstance(result, Result) else result
        if not isinstance(url, str) or url_problem(url) is not None:
            raise InvalidInputError(f"download_url needs a Result or an http(s) URL, got {url!r}")
        return await fresh_link(self._transport(), url)

    def handle_callback(
        self, body: bytes | str, headers: Mapping[str, str] | None = None
    ) -> Job | None:
        """Take a KIE callback as a hint: the job polling its task reads its status at once.

        Returns that job, or None when no job of this client polls the task: nothing is
        read then, but a job of this client that starts polling it within a minute reads
        at once. With ``coordination`` every worker of the fleet is told too, and a job
        polling the task there wakes. Nothing of the body is
        returned or used but its task id: KIE's signature covers the task id and the
        timestamp only, so the body is untrusted even when signed; the status read is the
        truth. (``parse_callback`` reads the body, for those who want it anyway.)

        With ``webhook_key`` (or ``KIE_WEBHOOK_KEY``) the signature is checked before the
        rest of the body is read, and ``WebhookVerificationError`` refuses a callback that
        is unsigned, wrongly signed, or whose timestamp is not whole seconds (optionally
        with a fraction) within five minutes of now; ``WebhookReplayError`` (a subclass)
        refuses a second delivery of the same task id, timestamp and signature. With
        ``coordination`` the fleet remembers them too (in Redis, until their timestamp
        leaves the window): a delivery another worker already took wakes nothing, here
        or anywhere, and is dropped silently (Redis is asked in the background, so the
        refusal cannot be raised here). Without
        a key nothing can be verified: a forged or repeated callback then costs one status
        read, never a wrong result. A body that is not JSON or names no task is a
        ``ProtocolError``. Both documented shapes are accepted.
        """
        scheduler = self._open_scheduler()
        secret = self._settings.webhook_key
        key = None if secret is None else secret.reveal()
        replays = self._replays  # a view's are its client's (see with_options)
        task_id, seen = verified_callback(body, headers, webhook_key=key, replays=replays)
        return scheduler.hint(task_id, seen)

    def processing_times(self) -> dict[Operation, ProcessingTime]:
        """The processing times learnt so far, per operation (a log-normal fit each).

        Empty until a few tasks of an operation have finished (or a warm start loaded
        them). One of them makes a good ``PollPolicy(prior=...)`` for another client.
        """
        planner = self._open_scheduler().planner
        learnt: dict[Operation, ProcessingTime] = {}
        for operation in Operation:
            fitted = planner.learnt_fit(operation)
            if fitted is not None:
                learnt[operation] = ProcessingTime(math.exp(fitted[0]), sigma=fitted[1])
        return learnt

    def as_completed(self, jobs: Iterable[Job]) -> AsyncIterator[Job]:
        """Yield ``jobs`` in the order they finish."""
        return _jobs.as_completed(jobs)

    def _schedule(
        self,
        request: SubmitRequest,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
        identity: InputIdentity | None = None,
    ) -> Job:
        check.optional_positive("submit_within", submit_within)
        options = self._options_with(poll)
        scheduler = self._open_scheduler()
        job = Job(request.operation, request)
        within = self.submit_within if submit_within is None else submit_within
        scheduler.schedule(job, within, options, identity)
        return job

    async def _enqueue(
        self, request: SubmitRequest, submit_within: float | None, poll: PollPolicy | None
    ) -> Job:
        check.optional_positive("submit_within", submit_within)
        check.optional_instance("poll", poll, PollPolicy, "a PollPolicy")
        await self._open_scheduler().wait_for_room()
        return self._schedule(request, submit_within, poll)

    def _options_with(self, poll: PollPolicy | None) -> JobOptions | None:
        """The options of one job: this view's (None for the client), with its own ``poll``."""
        check.optional_instance("poll", poll, PollPolicy, "a PollPolicy")
        options = self._options()
        if poll is None:
            return options
        if options is None:
            transport = self._open_scheduler().transport
            return JobOptions(poll=poll, max_retries=self.max_retries, transport=transport)
        return attrs.evolve(options, poll=poll)


def _extension(result: Result) -> str:
    # A first guess only: download_to renames by the bytes it actually received.
    try:
        path = urllib.parse.urlsplit(result.url).path
    except ValueError:  # a broken IPv6 literal: save_result raises the typed error
        return "png"
    suffix = path.rpartition(".")[2].lower()
    return suffix if suffix in ("png", "jpg", "jpeg", "webp") else "png"


def check_can_shut_down(client: AsyncRecraft) -> None:
    """Refuse at once what ``client.shutdown`` would refuse: a view, another event loop."""
    client._own_life("close").check_loop()  # noqa: SLF001 - the client's own module

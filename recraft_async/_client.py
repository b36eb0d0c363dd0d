"""AsyncRecraft: configuration, lifecycle and the operations."""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import attrs
import httpx

from . import _jobs
from ._check import (
    DialectName,
    OutputFormat,
    Scale,
    SubmitRequest,
    UpscaleFormat,
    check_dialect,
    check_grace,
    check_operation,
    check_remove_background,
    check_task_id,
    check_upscale,
    is_loopback_host,
)
from ._dialects import DIALECTS
from ._events import JobEvent, Listener
from ._files import (
    DEFAULT_DOWNLOAD_DEADLINE,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    download_to,
    safe_output_name,
)
from ._home import Home
from ._jobs import Job
from ._journal import Journal
from ._logging import setup_from_env
from ._models import Operation, OperationName, Result, TaskRecord
from ._options import JobOptions
from ._policy import DEFAULT_PRIOR, PollPolicy, ProcessingTime, Rate
from ._redis import RedisCoordination
from ._scheduler import Scheduler
from ._transport import Secret, Transport
from ._warmstart import persist, restore
from ._webhooks import ReplayGuard, verified_task_id
from .errors import ClientNotOpenError, InvalidInputError, ProtocolError

if TYPE_CHECKING:
    from ._tracing import Tracer

DEFAULT_BASE_URL = "https://api.kie.ai"
DEFAULT_UPLOAD_BASE_URL = "https://kieai.redpandaai.co"
DEFAULT_SUBMIT_RATE = Rate(20, per=10.0)
# KIE's documented limit on status reads: 10 a second per API key.
DEFAULT_READ_RATE = Rate(10, per=1.0)
DEFAULT_DIALECT: DialectName = "market"
# A cold client's first reads follow what KIE's Recraft tasks usually take.
DEFAULT_POLL = PollPolicy(prior=DEFAULT_PRIOR)
# Connections beyond max_in_flight: one status read and one submit may overlap per job
# only briefly, and downloads share the pool.
_EXTRA_CONNECTIONS = 8


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
        api_key: The KIE API key; None reads ``KIE_API_KEY``. Never shown in a repr, an
            exception or a log line, and never sent to result hosts.
        base_url: The API's address; None reads ``KIE_BASE_URL``, else
            ``https://api.kie.ai``. Plain ``http://`` only to a literal loopback address.
        max_in_flight: How many tasks may be submitted and not yet finished at once.
            Throughput is ``min(submit_rate, max_in_flight / processing time)``: raise it
            when tasks take long.
        submit_rate: At most ``n`` submits in any ``per``-second window; by default
            ``Rate(20, per=10.0)``, KIE's limit. None does not pace them. A 429 pauses
            every submit of the client for its ``Retry-After`` either way.
        poll: When to read a task's status, and how long before a job gives up with
            ``JobTimeoutError``; by default
            ``PollPolicy(prior=ProcessingTime(20.0, sigma=0.6))``: intervals from 2 s
            growing by 1.5 up to 15 s, giving up after 900 s, and until processing times
            are learnt (or loaded: see ``state_file``) reads placed for tasks of about
            20 s rather than at 2 s.
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
        webhook_key: The key KIE signs callbacks with; None reads ``KIE_WEBHOOK_KEY``. With
            a key, ``handle_callback`` refuses unsigned, forged, stale and replayed
            callbacks.
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
            process starts warm (its first reads near the learnt finishes, not on the
            prior). With a ``journal`` the journal keeps them anyway; None (the default)
            keeps them nowhere else.

    Raises:
        InvalidInputError: No API key; a value out of range or of the wrong type; a URL
            that would send the key over plain http to a host not on loopback;
            ``tracing=True`` without OpenTelemetry installed.

    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_in_flight: int = 32,
        submit_rate: Rate | None = DEFAULT_SUBMIT_RATE,
        poll: PollPolicy = DEFAULT_POLL,
        max_retries: int = 3,
        timeout: float = 30.0,
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
        key = api_key if api_key is not None else os.environ.get("KIE_API_KEY")
        if not key:
            raise InvalidInputError("no API key: pass api_key= or set KIE_API_KEY")
        url = base_url or os.environ.get("KIE_BASE_URL") or DEFAULT_BASE_URL
        _check_base_url(url)
        upload_url = upload_base_url or os.environ.get("KIE_UPLOAD_BASE_URL")
        if upload_url is None:
            # A local base URL is an emulator or a local proxy: local files must not
            # leave the machine for KIE's real upload host while someone tests offline.
            host = urllib.parse.urlsplit(url).hostname or ""
            upload_url = url if _is_local_host(host) else DEFAULT_UPLOAD_BASE_URL
        _check_base_url(upload_url)
        if journal is not None and not isinstance(journal, Journal):
            raise InvalidInputError("journal must be a recraft_async.Journal")
        _check_limits(max_in_flight, max_retries, submit_rate, read_rate, poll, timeout)
        _check_queueing(max_queued, submit_within, coordination)
        chosen = dialect or os.environ.get("KIE_DIALECT") or DEFAULT_DIALECT
        self.base_url = url.rstrip("/")
        self.max_in_flight = max_in_flight
        self.submit_rate = submit_rate
        self.read_rate = read_rate
        self.poll = poll
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.dialect: DialectName = check_dialect(chosen)
        self.upload_base_url = upload_url.rstrip("/")
        self.journal = journal
        self._owns_journal = False
        self._api_key = Secret(key)
        webhook = webhook_key if webhook_key is not None else os.environ.get("KIE_WEBHOOK_KEY")
        self._webhook_key = Secret(webhook) if webhook else None
        self._replays = ReplayGuard()  # verified callbacks within the freshness window
        self._user_http = http_client
        self._http: httpx.AsyncClient | None = None
        self._scheduler: Scheduler | None = None
        self._listener = _listener(on_event)
        self.tracing: bool = _check_tracing(tracing)
        self.max_queued = max_queued
        self.submit_within = submit_within
        self.coordination = coordination
        self.state_file = _state_path(state_file)
        self._state = "new"
        # The client a with_options view shares everything with; itself for a client.
        self._root = self
        self._job_options: JobOptions | None = None  # a view's, made when first used
        self._home: Home | None = None  # the thread, event loop and task that opened it
        self._shut_down_event: anyio.Event | None = None  # set once a shutdown's grace ended

    def __repr__(self) -> str:
        return f"<AsyncRecraft base_url={self.base_url!r} state={self._state}>"

    def _new_http_client(self) -> httpx.AsyncClient:
        """Our own httpx client: environment proxies for https only, plain http direct.

        A proxy from the environment (HTTP_PROXY, ALL_PROXY) would see a plain-http request
        whole, the key's header included; https goes through it as a CONNECT tunnel, which
        shows the proxy nothing. The "http://" mount outranks every environment proxy.
        """
        limits = httpx.Limits(
            max_connections=self.max_in_flight + _EXTRA_CONNECTIONS,
            max_keepalive_connections=self.max_in_flight + _EXTRA_CONNECTIONS,
        )
        verify = _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        return httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(self.timeout, pool=None),
            verify=verify,
            mounts={"http://": httpx.AsyncHTTPTransport(limits=limits, verify=verify)},
        )

    async def __aenter__(self) -> AsyncRecraft:
        if self._root is not self:
            raise ClientNotOpenError(
                "a view made by with_options() shares its client's life: open that client"
            )
        if self._state != "new":
            raise ClientNotOpenError(f"this client is {self._state}; make a new one")
        # The thread, event loop and task that opened the client: it works in those only.
        self._home = Home()
        self._http = self._user_http or self._new_http_client()
        tracer = _new_tracer(self.dialect) if self.tracing else None
        transport = Transport(
            self._http,
            base_url=self.base_url,
            api_key=self._api_key,
            max_retries=self.max_retries,
            timeout=self.timeout,
            tracer=tracer,
        )
        scheduler = Scheduler(
            transport,
            DIALECTS[self.dialect],
            max_in_flight=self.max_in_flight,
            submit_rate=self.submit_rate,
            read_rate=self.read_rate,
            poll=self.poll,
            max_retries=self.max_retries,
            upload_base_url=self.upload_base_url,
            journal=self.journal,
            listener=self._listener,
            tracer=tracer,
            max_queued=self.max_queued,
            home=self._home,
            coordinator=None
            if self.coordination is None
            else self.coordination._coordinator(self.submit_rate, self.read_rate),
        )
        try:
            if self.journal is not None and not self.journal.is_open:
                await self.journal.__aenter__()
                self._owns_journal = True
            await restore(scheduler.planner, self.journal, self.state_file)
            await scheduler.__aenter__()
        except BaseException:
            await self._close_owned()
            raise
        self._scheduler = scheduler
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(stop=exc is not None)

    async def aclose(self) -> None:
        """Close the client as leaving ``async with`` normally does: wait for every job.

        Call it from the task that opened the client. A second call does nothing.
        """
        await self._close(stop=False)

    async def shutdown(self, grace: float = 30.0) -> None:
        """Close gracefully, for a server's shutdown, within ``grace`` seconds.

        At once: new jobs are refused (``ClientNotOpenError``), every job whose submit has
        not gone out is cancelled (``JobCancelledError``): nothing is paid for those; and
        every submitted task is read at once, then at least once a second within the read
        budget (callbacks can no longer be counted on), so that a task that has ended is
        delivered. When ``grace`` is over, the jobs still running are stopped and their
        task ids logged in one WARNING line, for ``client.resume``; a submit still on the
        wire is cut, and its job ends in ``SubmissionUncertainError`` (the task may exist,
        paid for; the journal says UNCERTAIN). Call it from any task of the client's event
        loop; from the task that opened it, it also closes the connection pool, else
        leaving ``async with`` does that. A second call while one runs waits for that one.
        """
        grace = check_grace(grace)
        scheduler = self._root_scheduler()
        if scheduler is None:
            await self._close(stop=False)  # never opened, or closed already: nothing to drain
            return
        if self._state == "open":
            await self._shut_down(scheduler, grace)
        elif self._shut_down_event is not None:
            await self._shut_down_event.wait()  # another task's shutdown: its grace rules
        if self._home is not None and self._home.is_current_task():
            await self._close(stop=True)

    async def _shut_down(self, scheduler: Scheduler, grace: float) -> None:
        """Refuse new jobs, give the submitted ones ``grace`` seconds, then stop the rest."""
        self._state = "closing"  # from here on new jobs are refused
        done = self._shut_down_event = anyio.Event()
        try:
            scheduler.begin_shutdown("the client shut down")
            with anyio.move_on_after(grace):
                await scheduler.drain()
            # Only the opening task can end the task group (leaving ``async with`` does):
            # from here every job is stopped and logged, and nothing is left running.
            await scheduler.stop(cut_submits=True)
        finally:
            done.set()

    def _root_scheduler(self) -> Scheduler | None:
        if self._root is not self:
            raise ClientNotOpenError(
                "a view made by with_options() shares its client's life: close that client"
            )
        self._check_loop()
        return self._scheduler

    async def _close(self, *, stop: bool) -> None:
        """End the scheduler (``stop``: its jobs first), then what the client opened."""
        self._root_scheduler()
        if self._state == "new":
            self._state = "closed"
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return  # closed already
        self._state = "closing"
        try:
            await scheduler.close(stop=stop)
        finally:
            self._state = "closed"
            await persist(scheduler.planner, self.journal, self.state_file)
            await self._close_owned()

    def _check_loop(self) -> None:
        """Refuse, at once, a call from another thread or event loop than the opener's."""
        home = self._root._home
        if home is not None:
            home.check()

    async def _close_owned(self) -> None:
        """Close what this client opened, and nothing the caller brought."""
        with anyio.CancelScope(shield=True):
            if self._http is not None and self._http is not self._user_http:
                await self._http.aclose()
            self._http = None
            if self._owns_journal and self.journal is not None:
                await self.journal.__aexit__(None, None, None)
                self._owns_journal = False

    def _open_scheduler(self) -> Scheduler:
        root = self._root
        root._check_loop()
        if root._scheduler is None or root._state != "open":
            raise ClientNotOpenError(
                f"the client is {root._state}: use it inside 'async with AsyncRecraft(...)'"
            )
        return root._scheduler

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
        as for the client; ``poll`` governs the view's jobs alone.
        """
        if poll is not None and not isinstance(poll, PollPolicy):
            raise InvalidInputError("poll must be a PollPolicy")
        if max_retries is not None:
            _check_int("max_retries", max_retries, minimum=0)
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0
        ):
            raise InvalidInputError(f"timeout must be a number > 0, got {timeout!r}")
        view = object.__new__(AsyncRecraft)
        view.__dict__.update(self.__dict__)
        view.poll = self.poll if poll is None else poll
        view.timeout = self.timeout if timeout is None else float(timeout)
        view.max_retries = self.max_retries if max_retries is None else max_retries
        view._job_options = None
        return view

    def _options(self) -> JobOptions | None:
        """The options the jobs of this view carry; None for the client itself."""
        root = self._root
        if root is self:
            return None
        if self._job_options is None:
            transport = self._open_scheduler().transport
            self._job_options = JobOptions(
                poll=self.poll,
                max_retries=self.max_retries,
                transport=Transport(
                    transport.http,
                    base_url=transport.base_url,
                    api_key=root._api_key,
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
        options = self._options()  # a view's timeout and retries
        transport = self._open_scheduler().transport if options is None else options.transport
        data, body = await transport.request_json("GET", "/api/v1/chat/credit", idempotent=True)
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
        """
        self._open_scheduler()
        http = self._root._http
        assert http is not None  # noqa: S101 - open clients have one
        name = safe_output_name(result.source, result.task_id, _extension(result))
        return await download_to(
            http, result.url, Path(dest), name, max_bytes=max_bytes, deadline=deadline
        )

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
        refuses a second delivery of the same task id, timestamp and signature. Without
        a key nothing can be verified: a forged or repeated callback then costs one status
        read, never a wrong result. A body that is not JSON or names no task is a
        ``ProtocolError``. Both documented shapes are accepted.
        """
        scheduler = self._open_scheduler()
        key = self._webhook_key.reveal() if self._webhook_key is not None else None
        task_id = verified_task_id(body, headers, webhook_key=key, replays=self._replays)
        return scheduler.hint(task_id)

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
    ) -> Job:
        _check_seconds("submit_within", submit_within)
        options = self._options_with(poll)
        scheduler = self._open_scheduler()
        job = Job(request.operation, request)
        within = self.submit_within if submit_within is None else submit_within
        scheduler.schedule(job, within, options)
        return job

    async def _enqueue(
        self, request: SubmitRequest, submit_within: float | None, poll: PollPolicy | None
    ) -> Job:
        _check_seconds("submit_within", submit_within)
        _check_poll(poll)
        await self._open_scheduler().wait_for_room()
        return self._schedule(request, submit_within, poll)

    def _options_with(self, poll: PollPolicy | None) -> JobOptions | None:
        """The options of one job: this view's (None for the client), with its own ``poll``."""
        _check_poll(poll)
        options = self._options()
        if poll is None:
            return options
        if options is None:
            transport = self._open_scheduler().transport
            return JobOptions(poll=poll, max_retries=self.max_retries, transport=transport)
        return attrs.evolve(options, poll=poll)


@functools.cache
def _tls_context(_cert_file: str | None, _cert_dir: str | None) -> ssl.SSLContext:
    """The default TLS context of httpx, made once per process and CA setting.

    Loading the CA bundle costs about 30 ms of CPU, and httpx would do it for every
    transport (the client's and the plain-http mount's) of every client.
    """
    return httpx.create_ssl_context()


def _listener(on_event: Callable[[Job, JobEvent], object] | None) -> Listener[Job] | None:
    if on_event is None:
        return None
    if not callable(on_event):
        raise InvalidInputError(f"on_event must be a function of (job, event), got {on_event!r}")
    return Listener(on_event)


def _check_tracing(tracing: bool | None) -> bool:
    """Whether to trace: as asked, or (None) whenever OpenTelemetry is installed."""
    if tracing is not None and not isinstance(tracing, bool):
        raise InvalidInputError(f"tracing must be True, False or None, got {tracing!r}")
    if tracing is False:
        return False
    if not _otel_installed():
        if tracing:
            raise InvalidInputError(
                "tracing=True needs OpenTelemetry: pip install 'recraft-async[otel]'"
            )
        return False
    return True


def _otel_installed() -> bool:
    """Whether OpenTelemetry's API can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # not even the "opentelemetry" namespace
        return False


def _new_tracer(dialect: str) -> Tracer:
    """The spans' maker; the one place that imports OpenTelemetry, and only when tracing."""
    from ._tracing import Tracer  # noqa: PLC0415 - OpenTelemetry only when tracing

    return Tracer(dialect)


def _extension(result: Result) -> str:
    # A first guess only: download_to renames by the bytes it actually received.
    suffix = urllib.parse.urlsplit(result.url).path.rpartition(".")[2].lower()
    return suffix if suffix in ("png", "jpg", "jpeg", "webp") else "png"


def _check_base_url(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(f"base_url must be an http(s) URL, got {url!r}")
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
        # A name, even "localhost", is resolved by DNS or a hosts file: only an address
        # literal is sure to stay on this machine.
        raise InvalidInputError(
            f"refusing to send the API key over plain http to {parsed.hostname!r}, which is"
            " not a literal loopback address; use https, or http://127.0.0.1:<port>"
            " (http://[::1]:<port>) for a local server"
        )


def _is_local_host(host: str) -> bool:
    """Whether ``host`` means this machine or this process (an in-process emulator)."""
    # ".invalid" never resolves (RFC 6761): such a base URL only works through an
    # in-process transport, which the uploads should then use too.
    name = host.lower().rstrip(".")
    return is_loopback_host(host, by_name=True) or name.endswith(".invalid")


def _check_limits(
    max_in_flight: object,
    max_retries: object,
    submit_rate: object,
    read_rate: object,
    poll: object,
    timeout: object,
) -> None:
    _check_int("max_in_flight", max_in_flight, minimum=1)
    _check_int("max_retries", max_retries, minimum=0)
    for name, rate in (("submit_rate", submit_rate), ("read_rate", read_rate)):
        if rate is not None and not isinstance(rate, Rate):
            raise InvalidInputError(f"{name} must be a Rate or None")
    if not isinstance(poll, PollPolicy):
        raise InvalidInputError("poll must be a PollPolicy")
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidInputError(f"timeout must be a number > 0, got {timeout!r}")


def _check_poll(poll: object) -> None:
    if poll is not None and not isinstance(poll, PollPolicy):
        raise InvalidInputError(f"poll must be a PollPolicy or None, got {poll!r}")


def _state_path(state_file: object) -> Path | None:
    if state_file is None:
        return None
    if not isinstance(state_file, (str, os.PathLike)):
        raise InvalidInputError(f"state_file must be a path or None, got {state_file!r}")
    return Path(state_file)


def _check_queueing(max_queued: object, submit_within: object, coordination: object) -> None:
    _check_coordination(coordination)
    if max_queued is not None:
        _check_int("max_queued", max_queued, minimum=1)
    _check_seconds("submit_within", submit_within)


def _check_coordination(coordination: object) -> None:
    if coordination is not None and not isinstance(coordination, RedisCoordination):
        raise InvalidInputError("coordination must be a RedisCoordination or None")


def _check_seconds(name: str, value: object) -> None:
    if value is not None and (
        not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
    ):
        raise InvalidInputError(f"{name} must be a number of seconds > 0 or None, got {value!r}")


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")

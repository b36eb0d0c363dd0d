"""Recraft, the blocking client: AsyncRecraft run in a thread of its own, behind a portal.

No logic of its own: every call is handed to an ``AsyncRecraft`` that lives in an event
loop in the client's thread (anyio's ``BlockingPortal``), so the caller's thread may be a
script's, a web framework's worker or a notebook's, where an event loop already runs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import inspect
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import anyio
from anyio.from_thread import BlockingPortal

from ._client import AsyncRecraft
from ._core import _jobs
from ._core._check import DialectName, OutputFormat, Scale, UpscaleFormat
from ._core._events import JobEvent
from ._core._files import DEFAULT_DOWNLOAD_DEADLINE, DEFAULT_MAX_DOWNLOAD_BYTES
from ._core._jobs import Job, JobStatus
from ._core._models import Operation, OperationName, Result, TaskRecord
from ._core._policy import PollPolicy, ProcessingTime
from .errors import ClientNotOpenError, InvalidInputError, InvalidStateError

P = ParamSpec("P")
T = TypeVar("T")

_THREAD_NAME = "recraft-sync"


def _same_arguments_as(
    init: Callable[Concatenate[Any, P], None],
) -> Callable[[Callable[..., None]], Callable[Concatenate[Any, P], None]]:
    """Give the decorated ``__init__`` the parameters of ``init``: for mypy and for help()."""

    def adopt(function: Callable[..., None]) -> Callable[Concatenate[Any, P], None]:
        vars(function)["__signature__"] = inspect.signature(init)
        return function

    return adopt


class SyncJob(concurrent.futures.Future[Result]):
    """The handle of one image's work in the blocking client: a ``concurrent.futures.Future``.

    ``result(timeout)`` blocks until the job ends and returns its ``Result`` or raises its
    error, as ``await job`` does; on timeout it raises ``TimeoutError`` and the job goes on.
    A cancelled job raises ``JobCancelledError`` (with its task id, for ``resume``), not
    ``concurrent.futures.CancelledError``. Being a real ``Future``, a ``SyncJob`` works with
    ``concurrent.futures.wait`` and ``concurrent.futures.as_completed`` too.

    Functions given to ``add_done_callback`` run in the client's own thread, the moment
    the job ends (or at once, in the caller's thread, if it has ended): keep them quick.
    They may start more jobs, but not wait for any.
    """

    def __init__(self, job: Job, client: ClientThread) -> None:
        super().__init__()
        self._job = job
        self._client = client

    def __repr__(self) -> str:
        job = self._job
        return f"<SyncJob {job.operation.value} {job.status.value} task_id={job.task_id!r}>"

    @property
    def operation(self) -> Operation:
        """What the job does to its image."""
        return self._job.operation

    @property
    def source(self) -> str | None:
        """What the job was made from (URL, file or a note for bytes); None if resumed."""
        return self._job.source

    @property
    def task_id(self) -> str | None:
        """The service's task id, once the submit is answered (None before)."""
        return self._job.task_id

    @property
    def status(self) -> JobStatus:
        """Where the job stands."""
        return self._job.status

    @property
    def events(self) -> tuple[JobEvent, ...]:
        """What happened to the job so far, oldest first: "queued" ... its end."""
        return self._job.events

    def to_dict(self) -> dict[str, Any]:
        """Where the job stands, as JSON-safe values; see ``Job.to_dict``."""
        return self._job.to_dict()

    def running(self) -> bool:
        """Whether the service holds the job's task and it has not finished yet."""
        return self._job.status is JobStatus.SUBMITTED and not self.done()

    def cancel(self) -> bool:
        """Stop the job's work; False if it had already finished.

        A submit already on the wire is let finish, so its task id is kept for resume.
        """
        if self.done():
            return False
        return self._client.run(self._job.cancel)

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the Result, or its error raised; ``TimeoutError`` leaves the job running."""
        self._wait(timeout)
        return self._job.result()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the job's end: its error, or None if it succeeded (``TimeoutError`` too)."""
        self._wait(timeout)
        return self._job.exception()

    def _wait(self, timeout: float | None) -> None:
        if self.done():
            return
        if self._client.in_own_thread():
            raise InvalidStateError(
                f"{self!r} has not finished, and the client's own thread (a callback) cannot"
                " wait for it"
            )
        done, _ = concurrent.futures.wait([self], timeout=timeout)
        if not done:
            raise TimeoutError(f"{self!r} did not finish within {timeout} s; it goes on")


class ClientThread:
    """The blocking client's thread, the portal into its event loop and the jobs it serves.

    One per ``Recraft``, shared by its ``with_options`` views.
    """

    def __init__(self) -> None:
        self.portal, self.thread = _start_portal()
        self.lock = threading.Lock()
        self.state = "opening"
        self.live: dict[Job, SyncJob] = {}  # unfinished jobs; touched in the loop only

    def in_own_thread(self) -> bool:
        """Whether the caller is the client's own thread (a callback, on_event)."""
        return threading.current_thread() is self.thread

    def run(self, function: Callable[[], T]) -> T:
        """Call ``function`` (a plain function of the AsyncRecraft) in the client's loop."""
        if self.in_own_thread():  # from a callback: already in the loop
            return function()
        self.check_open()
        return self.portal.call(function)

    def check_open(self) -> None:
        """Raise ``ClientNotOpenError`` unless the client is open (or closing)."""
        if self.state not in ("open", "closing"):
            raise ClientNotOpenError(
                f"the client is {self.state}: use it before close(), or inside 'with Recraft(...)'"
            )

    def blocking(self, name: str) -> None:
        """Refuse a call that waits (``name``) from the client's own thread, or once closed."""
        if self.in_own_thread():
            raise InvalidStateError(
                f"{name} cannot wait in the client's own thread (a callback or on_event)"
            )
        self.check_open()

    def stop(self, *, cancel: bool) -> None:
        """Stop the event loop (``cancel``: its tasks too) and wait for the thread's end."""
        with contextlib.suppress(RuntimeError):  # already stopped
            self.portal.call(self.portal.stop, cancel)
        self.thread.join()

    def sync_of(self, job: Job) -> SyncJob:
        """The SyncJob of ``job``, made at its first sight (in the loop)."""
        sync = self.live.get(job)
        if sync is None:
            sync = SyncJob(job, self)
            if not job.done():
                self.live[job] = sync
            _jobs.add_done_callback(job, functools.partial(self._settle, sync))
        return sync

    def _settle(self, sync: SyncJob, job: Job) -> None:
        """``job`` has ended (in the client's thread): finish its SyncJob the same way."""
        self.live.pop(job, None)
        if job.status is JobStatus.CANCELLED:
            # PENDING -> CANCELLED -> CANCELLED_AND_NOTIFIED, as an executor does: the
            # second step wakes concurrent.futures.wait and as_completed.
            concurrent.futures.Future.cancel(sync)
            sync.set_running_or_notify_cancel()
        elif job.status is JobStatus.SUCCEEDED:
            sync.set_result(job.result())
        else:
            sync.set_exception(job.exception())


class Recraft:
    """The blocking client, for scripts and notebooks; the same as ``AsyncRecraft``, without await.

    It runs an ``AsyncRecraft`` in an event loop in a thread of its own, so it works where
    an event loop already runs in the caller's thread (Jupyter). It is open once made;
    ``with Recraft(...) as client:`` closes it at the end, else call ``close()``. Closing
    waits for every job; leaving the ``with`` block by an exception stops them and logs
    their task ids (WARNING), for ``resume``. The methods may be called from any thread.

    ``upscale``, ``remove_background`` and ``resume`` return a ``SyncJob`` at once (a
    ``concurrent.futures.Future``): ``job.result()`` blocks for its ``Result``.

    It takes ``AsyncRecraft``'s arguments, all of them, with their meaning and defaults;
    two run in the client's own thread rather than the caller's:

    - ``http_client``: an ``httpx.AsyncClient`` that no other event loop has used or will
      use (it is never closed by this client); None, the default, makes one.
    - ``on_event``: called as ``on_event(job, event)`` in the client's thread with each
      event of each job, the ``Job`` behind the ``SyncJob`` (the same ``task_id`` and
      ``events``): keep it quick; an ``async`` one is awaited by the client's loop.

    Raises:
        InvalidInputError: As ``AsyncRecraft``: before any thread starts.

    """

    @_same_arguments_as(AsyncRecraft.__init__)
    def __init__(self, **options: Any) -> None:
        # Made here, in the caller's thread: a wrong argument raises before any thread starts.
        client = AsyncRecraft(**options)
        thread = ClientThread()
        self._setup(client, thread, self)
        self._opened: AbstractContextManager[AsyncRecraft] = (
            thread.portal.wrap_async_context_manager(client)
        )
        try:
            self._opened.__enter__()
        except BaseException:
            thread.stop(cancel=True)
            thread.state = "closed"
            raise
        thread.state = "open"

    @classmethod
    def _view(cls, client: AsyncRecraft, thread: ClientThread, root: Recraft) -> Recraft:
        """A view of ``root`` around ``client`` (an AsyncRecraft view), served by ``thread``."""
        view = cls.__new__(cls)
        cls._setup(view, client, thread, root)
        return view

    def _setup(self, client: AsyncRecraft, thread: ClientThread, root: Recraft) -> None:
        """What a client and a view hold: their AsyncRecraft, the thread, the client."""
        self._client = client
        self._thread = thread
        # The client a with_options view shares its thread, jobs and life with; itself here.
        self._root = root

    def __repr__(self) -> str:
        return f"<Recraft base_url={self.base_url!r} state={self._thread.state}>"

    @property
    def base_url(self) -> str:
        """The API's address."""
        return self._client.base_url

    @property
    def upload_base_url(self) -> str:
        """Where local images are uploaded."""
        return self._client.upload_base_url

    @property
    def dialect(self) -> DialectName:
        """``"market"`` or ``"recraft"``."""
        return self._client.dialect

    def __enter__(self) -> Recraft:
        self._own_life("with")
        if self._thread.state != "open":
            raise ClientNotOpenError(f"this client is {self._thread.state}; make a new one")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(exc_type, exc, tb)

    def close(self) -> None:
        """Wait for every job, then close the client and end its thread; again does nothing.

        Interrupted (Ctrl-C), it stops the jobs instead and raises.
        """
        self._close(None, None, None)

    def _close(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._own_life("close")
        thread = self._thread
        if thread.in_own_thread():
            raise InvalidStateError("the client cannot be closed from its own thread (a callback)")
        with thread.lock:
            if thread.state != "open":
                return
            thread.state = "closing"
        try:
            self._opened.__exit__(exc_type, exc, tb)
        except BaseException:
            thread.stop(cancel=True)
            raise
        finally:
            thread.state = "closed"
        thread.stop(cancel=False)

    def shutdown(self, grace: float = 30.0) -> None:
        """Close gracefully: unsent jobs are cancelled (never paid), the rest get ``grace`` s.

        As ``AsyncRecraft.shutdown``: new jobs are refused at once and submitted tasks read
        at once; jobs still running after ``grace`` seconds are stopped and their task ids
        logged (WARNING) for ``resume``, and a submit still on the wire then is cut
        (``SubmissionUncertainError``). Then the client closes and its thread ends.
        """
        self._own_life("shutdown")
        self._thread.blocking("shutdown")
        self._thread.portal.call(self._client.shutdown, grace)
        self.close()

    def with_options(
        self,
        *,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Recraft:
        """A view whose jobs use these options; see ``AsyncRecraft.with_options``.

        It shares the client's thread, pacing, pool, journal and life: close the client,
        never the view.
        """
        client = self._client.with_options(poll=poll, timeout=timeout, max_retries=max_retries)
        return self._view(client, self._thread, self._root)

    def _own_life(self, what: str) -> None:
        if self._root is not self:
            raise ClientNotOpenError(
                f"a view made by with_options() shares its client's life: {what} that client"
            )

    def upscale(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        scale: Scale | None = None,
        format: UpscaleFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> SyncJob:
        """Schedule a crisp upscale; returns its SyncJob at once. See ``AsyncRecraft.upscale``."""
        upscale = functools.partial(
            self._client.upscale,
            image_url,
            scale=scale,
            format=format,
            callback_url=callback_url,
            submit_within=submit_within,
            poll=poll,
        )
        return self._thread.run(lambda: self._thread.sync_of(upscale()))

    def enqueue_upscale(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        scale: Scale | None = None,
        format: UpscaleFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> SyncJob:
        """Like ``upscale``, but blocks until the queue has room instead of ``QueueFullError``."""
        enqueue = functools.partial(
            self._client.enqueue_upscale,
            image_url,
            scale=scale,
            format=format,
            callback_url=callback_url,
            submit_within=submit_within,
            poll=poll,
        )
        return self._enqueued(enqueue)

    def remove_background(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        output_format: OutputFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> SyncJob:
        """Schedule a background removal; returns its SyncJob at once (as ``upscale``)."""
        remove = functools.partial(
            self._client.remove_background,
            image_url,
            output_format=output_format,
            callback_url=callback_url,
            submit_within=submit_within,
            poll=poll,
        )
        return self._thread.run(lambda: self._thread.sync_of(remove()))

    def enqueue_remove_background(
        self,
        image_url: str | os.PathLike[str] | bytes,
        *,
        output_format: OutputFormat | None = None,
        callback_url: str | None = None,
        submit_within: float | None = None,
        poll: PollPolicy | None = None,
    ) -> SyncJob:
        """Like ``remove_background``, but blocks until the queue has room."""
        enqueue = functools.partial(
            self._client.enqueue_remove_background,
            image_url,
            output_format=output_format,
            callback_url=callback_url,
            submit_within=submit_within,
            poll=poll,
        )
        return self._enqueued(enqueue)

    def _enqueued(self, enqueue: Callable[[], Awaitable[Job]]) -> SyncJob:
        self._thread.blocking("enqueue")

        async def queued() -> SyncJob:
            return self._thread.sync_of(await enqueue())

        return self._thread.portal.call(queued)

    def resume(
        self,
        task_id: str,
        operation: Operation | OperationName,
        *,
        poll: PollPolicy | None = None,
    ) -> SyncJob:
        """A SyncJob that polls a task submitted earlier, without submitting anything."""
        return self._thread.run(
            lambda: self._thread.sync_of(self._client.resume(task_id, operation, poll=poll))
        )

    def get_task(self, task_id: str, operation: Operation | OperationName) -> TaskRecord:
        """One status read of a task."""
        self._thread.blocking("get_task")
        return self._thread.portal.call(self._client.get_task, task_id, operation)

    def processing_times(self) -> dict[Operation, ProcessingTime]:
        """The processing times learnt so far, per operation (see AsyncRecraft's)."""
        return self._thread.run(self._client.processing_times)

    def credits(self) -> float:
        """The account's credit balance, as the service states it (it may be fractional)."""
        self._thread.blocking("credits")
        return self._thread.portal.call(self._client.credits)

    def download(
        self,
        result: Result,
        dest: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
    ) -> Path:
        """Stream ``result``'s image into the folder ``dest``; see ``AsyncRecraft.download``."""
        self._thread.blocking("download")
        download = functools.partial(
            self._client.download, result, dest, max_bytes=max_bytes, deadline=deadline
        )
        return self._thread.portal.call(download)

    def download_url(self, result: Result | str) -> str:
        """A fresh temporary link (valid 20 minutes) to a result's file; see ``AsyncRecraft``."""
        self._thread.blocking("download_url")
        return self._thread.portal.call(self._client.download_url, result)

    def handle_callback(
        self, body: bytes | str, headers: Mapping[str, str] | None = None
    ) -> SyncJob | None:
        """Take a KIE callback as a hint; see ``AsyncRecraft.handle_callback``.

        Returns the SyncJob polling its task, or None when no job of this client polls it.
        """

        def hint() -> SyncJob | None:
            job = self._client.handle_callback(body, headers)
            return None if job is None else self._thread.sync_of(job)

        return self._thread.run(hint)

    def as_completed(
        self, jobs: Iterable[SyncJob], timeout: float | None = None
    ) -> Iterator[SyncJob]:
        """Yield ``jobs`` in the order they finish (``concurrent.futures.as_completed``).

        ``TimeoutError`` if some have not finished ``timeout`` seconds after the call; they
        go on.
        """
        pending = list(dict.fromkeys(jobs))
        for job in pending:
            if not isinstance(job, SyncJob):
                raise InvalidInputError(f"as_completed takes SyncJobs, got {job!r}")
        return _as_completed(pending, timeout)


def _as_completed(pending: list[SyncJob], timeout: float | None) -> Iterator[SyncJob]:
    try:
        yield from cast("Iterator[SyncJob]", concurrent.futures.as_completed(pending, timeout))
    except concurrent.futures.TimeoutError as exc:  # not the builtin TimeoutError before 3.11
        raise TimeoutError(f"{exc}; they go on") from None


def _start_portal() -> tuple[BlockingPortal, threading.Thread]:
    """An event loop in a daemon thread of its own, and the portal into it.

    A daemon thread, not ``start_blocking_portal``'s executor on older anyio versions: a
    client never closed must not hold the interpreter at its exit.
    """
    ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

    async def serve_portal() -> None:
        async with BlockingPortal() as portal:
            ready.set_result(portal)
            await portal.sleep_until_stopped()

    def run() -> None:
        try:
            anyio.run(serve_portal)
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            if not ready.done():
                ready.set_exception(exc)

    thread = threading.Thread(target=run, name=_THREAD_NAME, daemon=True)
    thread.start()
    return ready.result(), thread

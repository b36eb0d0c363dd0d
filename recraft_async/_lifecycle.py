"""A client's life: opening its pool, journal and scheduler, and closing what it opened.

``AsyncRecraft`` owns one ``Lifecycle``; its ``with_options`` views use their client's.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import TYPE_CHECKING, TypedDict

import anyio
import httpx

from ._bulk._ledger import Ledger
from ._core import _validate as check
from ._core._dialects import DIALECTS
from ._core._events import Listener
from ._core._home import Home
from ._core._scheduler import Scheduler
from ._core._transport import Transport
from ._core._warmstart import persist, restore
from ._fleet._redis import coordinator_of
from .errors import ClientNotOpenError, WrongEventLoopError

if TYPE_CHECKING:
    from ._core._tracing import Tracer
    from ._settings import Settings


class Lifecycle:
    """new -> open -> closing -> closed: the pool, the scheduler and an unopened journal."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "new"
        self.http: httpx.AsyncClient | None = None
        self.scheduler: Scheduler | None = None
        self.home: Home | None = None  # the thread, event loop and task that opened it
        self._owns_journal = False
        self._shut_down_event: anyio.Event | None = None  # set once a shutdown's grace ended

    async def open(self) -> None:
        """Open the pool (unless the caller brought one), the journal and the scheduler."""
        if self.state != "new":
            raise ClientNotOpenError(f"this client is {self.state}; make a new one")
        settings = self.settings
        # The thread, event loop and task that opened the client: it works in those only.
        self.home = Home()
        self.http = settings.http_client or _new_http_client(settings)
        scheduler = self._new_scheduler(self.http, self.home)
        try:
            journal = settings.journal
            if journal is not None and not journal.is_open:
                await journal.__aenter__()
                self._owns_journal = True
            await restore(scheduler.planner, journal, settings.state_file)
            await scheduler.__aenter__()
        except BaseException:
            await self._close_owned()
            raise
        self.scheduler = scheduler
        self.state = "open"

    def _new_scheduler(self, http: httpx.AsyncClient, home: Home) -> Scheduler:
        settings = self.settings
        tracer = _new_tracer(settings.dialect) if settings.tracing else None
        transport = Transport(
            http,
            base_url=settings.base_url,
            api_key=settings.api_key,
            max_retries=settings.max_retries,
            timeout=settings.timeout,
            tracer=tracer,
        )
        coordination = settings.coordination
        return Scheduler(
            transport,
            DIALECTS[settings.dialect],
            max_in_flight=settings.max_in_flight,
            submit_rate=settings.submit_rate,
            read_rate=settings.read_rate,
            poll=settings.poll,
            max_retries=settings.max_retries,
            upload_base_url=settings.upload_base_url,
            ledger=None if settings.journal is None else Ledger(settings.journal),
            listener=None if settings.on_event is None else Listener(settings.on_event),
            tracer=tracer,
            max_queued=settings.max_queued,
            home=home,
            coordinator=None
            if coordination is None
            else coordinator_of(coordination, settings.submit_rate, settings.read_rate),
        )

    def open_scheduler(self) -> Scheduler:
        """The scheduler of the open client; ClientNotOpenError before or after."""
        self.check_loop()
        if self.scheduler is None or self.state != "open":
            raise ClientNotOpenError(
                f"the client is {self.state}: use it inside 'async with AsyncRecraft(...)',"
                " or, to use it across tasks or notebook cells, open it with 'await"
                " client.open()' and close it with 'await client.aclose()'"
            )
        return self.scheduler

    def check_loop(self) -> None:
        """Refuse, at once, a call from another thread or event loop than the opener's."""
        if self.home is not None:
            self.home.check()

    async def shutdown(self, grace: object) -> None:
        """See ``AsyncRecraft.shutdown``."""
        seconds = check.non_negative("grace", grace)
        self.check_loop()
        scheduler = self.scheduler
        if scheduler is None:
            await self.close(stop=False)  # never opened, or closed already: nothing to drain
            return
        if self.state == "open":
            await self._shut_down(scheduler, seconds)
        elif self._shut_down_event is not None:
            await self._shut_down_event.wait()  # another task's shutdown: its grace rules
        if self.home is not None and self.home.is_current_task():
            await self.close(stop=True)

    async def _shut_down(self, scheduler: Scheduler, grace: float) -> None:
        """Refuse new jobs, give the submitted ones ``grace`` seconds, then stop the rest."""
        self.state = "closing"  # from here on new jobs are refused
        done = self._shut_down_event = anyio.Event()
        try:
            scheduler.begin_shutdown("the client shut down")
            with anyio.move_on_after(grace):
                await scheduler.drain()
            # Only the opening task can end the task group (leaving ``async with`` does):
            # from here every job is stopped and logged, and nothing is left running; a
            # submit still on the wire is cut (its job ends uncertain).
            await scheduler.stop(cut_submits=True)
        finally:
            done.set()

    async def close(self, *, stop: bool) -> None:
        """End the scheduler (``stop``: its jobs first), then what the client opened."""
        self.check_loop()
        if self.state == "new":
            self.state = "closed"
        if self.scheduler is None:
            return  # closed already
        if self.home is not None and not self.home.is_current_task():
            # anyio would say "Attempted to exit cancel scope in a different task".
            raise WrongEventLoopError(
                "this client was opened by another task (in a notebook: another cell), and"
                " only that task can close it: close it there, or open the client with"
                " 'await client.open()', which any task of its event loop may close"
            )
        scheduler, self.scheduler = self.scheduler, None
        self.state = "closing"
        try:
            await scheduler.close(stop=stop)
        finally:
            self.state = "closed"
            await persist(scheduler.planner, self.settings.journal, self.settings.state_file)
            await self._close_owned()

    async def _close_owned(self) -> None:
        """Close what this client opened, and nothing the caller brought."""
        with anyio.CancelScope(shield=True):
            if self.http is not None and self.http is not self.settings.http_client:
                await self.http.aclose()
            self.http = None
            journal = self.settings.journal
            if self._owns_journal and journal is not None:
                await journal.__aexit__(None, None, None)
                self._owns_journal = False


def _new_http_client(settings: Settings) -> httpx.AsyncClient:
    """Our own httpx client: environment proxies for https only, plain http direct."""
    pool = pool_options(settings.max_connections, settings.timeout)
    direct = httpx.AsyncHTTPTransport(limits=pool["limits"], verify=pool["verify"])
    return httpx.AsyncClient(**pool, mounts={"http://": direct})


class PoolOptions(TypedDict):
    """The settings every pool of the library gets (``httpx.AsyncClient``'s keywords)."""

    limits: httpx.Limits
    timeout: httpx.Timeout
    verify: ssl.SSLContext


def pool_options(max_connections: int, timeout: float) -> PoolOptions:
    """The safe settings of a pool the library makes: its own, or ``AioHttpClient``.

    ``max_connections`` kept alive too; no pool timeout (a request waiting for a free
    connection is queued work, not a failure); one TLS context per process. The caller
    mounts a direct transport on "http://": a proxy from the environment (HTTP_PROXY,
    ALL_PROXY) would see a plain-http request whole, the key's header included; https goes
    through it as a CONNECT tunnel, which shows the proxy nothing. The "http://" mount
    outranks every environment proxy.
    """
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    verify = _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    return PoolOptions(limits=limits, timeout=httpx.Timeout(timeout, pool=None), verify=verify)


@functools.cache
def _tls_context(_cert_file: str | None, _cert_dir: str | None) -> ssl.SSLContext:
    """The default TLS context of httpx, made once per process and CA setting.

    Loading the CA bundle costs about 30 ms of CPU, and httpx would do it for every
    transport (the client's and the plain-http mount's) of every client.
    """
    return httpx.create_ssl_context()


def _new_tracer(dialect: str) -> Tracer:
    """The spans' maker; the one place that imports OpenTelemetry, and only when tracing."""
    from ._core._tracing import Tracer  # noqa: PLC0415 - OpenTelemetry only when tracing

    return Tracer(dialect)

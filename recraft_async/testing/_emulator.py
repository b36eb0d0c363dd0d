"""KieEmulator: the facade over the account (``_service``) and its routes (``_app``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import anyio
import httpx

from recraft_async._core._models import Operation
from recraft_async._core._policy import Rate

from ._callbacks import CallbackShape
from ._clock import ClockChoice
from ._duration import Duration
from ._faults import FaultPlan
from ._replay import Replay
from ._service import (
    DEFAULT_DURATION,
    DEFAULT_LINK_LIFETIME,
    DEFAULT_NOT_READY_FOR,
    DEFAULT_RATE,
    DEFAULT_READ_RATE,
    KieService,
    file_url,
)
from ._stats import EmulatorStats
from ._tasks import TaskInfo

if TYPE_CHECKING:
    from starlette.types import ASGIApp

# For the in-process (ASGI) emulator, which ignores host and scheme: https passes the
# client's key check, and ".invalid" never resolves (RFC 6761), so a request that missed
# the in-process transport fails at DNS instead of carrying the key anywhere.
DEFAULT_BASE_URL = "https://kie-emulator.invalid"

_T = TypeVar("_T")


class _Setting(Generic[_T]):
    """A setting of the facade that lives on its service: read and assigned there."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Setting[_T]: ...

    @overload
    def __get__(self, obj: KieEmulator, owner: type | None = None) -> _T: ...

    def __get__(self, obj: KieEmulator | None, owner: type | None = None) -> _T | _Setting[_T]:
        if obj is None:
            return self
        value: _T = getattr(obj.service, self._name)
        return value

    def __set__(self, obj: KieEmulator, value: _T) -> None:
        setattr(obj.service, self._name, value)


class KieEmulator:
    """A faithful stand-in for one KIE account: both dialects, uploads, callbacks, faults.

    ``.app`` is its ASGI application; drive it in-process with ``httpx.ASGITransport`` or
    on a real loopback port with ``serve``. Callbacks are sent only while the emulator
    runs: inside ``async with emulator:`` (the fixtures and ``serve`` do it for you).
    Processing times are ``duration`` samples multiplied by ``time_scale``; ``latency``
    (real seconds, not scaled) delays every answer of the service's endpoints, like a
    network round trip.

    ``replay`` takes a ``recraft-async doctor --trace`` file (its path, its parsed JSON, or
    a ``Replay``): tasks then take the processing times the trace saw (times
    ``time_scale``), and market status reads answer in the trace's shapes (its fields and
    their types, its states, its "not readable yet" answers), with the emulator's values.

    Limits, both sliding windows counted at arrival for the account's key: ``rate`` for
    submits (20 per 10 s) and ``read_rate`` for status reads of both dialects (10 per
    second); None turns one off. ``prices`` maps each operation to the credits a task
    costs (default 0.5 for upscale, 1 for background removal, whatever the scale).
    ``callback_shape`` picks the callback body: ``"market"`` (the market model pages'),
    ``"verification"`` (the webhook-verification page's) or ``"both"`` merged (default).
    For ``not_ready_for`` real seconds after its creation (default 0.05; 0 turns it off)
    a task's ``recordInfo`` answers KIE's documented ``{"code": 422, "msg": "recordInfo is
    null", "data": null}``, as the service does for a task just created. Market records
    state what a finished task cost (``creditsConsumed``; callbacks: ``consumeCredits``);
    ``json_objects=True`` sends their ``param`` and ``resultJson`` as JSON objects instead
    of the documented JSON strings, as some answers seen by public clients carry them.

    Results: ``POST /api/v1/common/download-url`` makes links valid for
    ``download_link_lifetime`` real seconds (KIE's 20 minutes by default) to the files the
    account made, and answers 422 for any other URL. A result URL older than
    ``result_url_lifetime`` seconds (None: never) and an expired link answer 403, as
    storage refuses an expired signed link; ``Fault.http(403)`` at ``Target.RESULT``
    makes the result host refuse at once.

    ``clock`` is the time the account runs on: ``"real"`` (default: ``time.time()`` and
    ``time.monotonic()``), ``"loop"`` (the event loop's clock, ``anyio.current_time()``,
    offset once to the epoch) or a callable answering seconds. On ``"loop"`` an in-process
    emulator (``http_client()``, no socket) runs on a test's fake clock (trio's
    ``MockClock``, or a virtual asyncio loop): rate windows, processing times, link
    lifetimes, ``not_ready_for`` and callback retry delays pass in virtual time, so a test
    waits none of them for real. The "real seconds" above are then that clock's seconds.
    On any clock but ``"real"`` the image work (Pillow's checks and results) runs inline
    rather than in a worker thread, which a virtual clock would jump past; ``"loop"``
    suits one event loop, not ``serve`` (its server has a loop of its own).

    ``service`` is the account itself, without HTTP (its tasks, stored files and rules).
    The settings above, ``credits``, ``faults`` and ``stats`` are its attributes, seen
    through the emulator: read on every request, so a test may change them between two.
    """

    api_key = _Setting[str]()
    """The account's API key: a request without it answers 401."""
    rate = _Setting[Rate | None]()
    """The submit limit (a sliding window answering 429), or None for none."""
    read_rate = _Setting[Rate | None]()
    """The status-read limit of both dialects (a sliding window answering 429), or None."""
    prices = _Setting[dict[Operation, float]]()
    """Credits each operation's task costs."""
    callback_shape = _Setting[CallbackShape]()
    """Which documented callback body is sent: ``"market"``, ``"verification"`` or ``"both"``."""
    duration = _Setting[Duration]()
    """Processing times, in seconds before ``time_scale``."""
    time_scale = _Setting[float]()
    """The factor applied to every ``duration`` sample (0.001: tasks take milliseconds)."""
    latency = _Setting[Duration | None]()
    """A delay of every answer of the service's endpoints, in real seconds, or None."""
    result_url_lifetime = _Setting[float | None]()
    """Real seconds after its task ends that a result URL answers; None: for ever."""
    download_link_lifetime = _Setting[float]()
    """Real seconds a link of ``POST /api/v1/common/download-url`` answers (1200)."""
    not_ready_for = _Setting[float]()
    """Real seconds after its creation during which a task's market record is unreadable."""
    json_objects = _Setting[bool]()
    """Whether market records carry ``param`` and ``resultJson`` as objects, not JSON strings."""
    credits = _Setting[float]()
    """The account's balance; assign to it to test 402s."""
    faults = _Setting[FaultPlan]()
    """The fault plan: script faults with ``next``, add noise with ``chance``."""
    stats = _Setting[EmulatorStats]()
    """What the emulator saw, since it was made."""

    def __init__(
        self,
        *,
        api_key: str = "emulator-key",
        credits: float = 100_000.0,
        rate: Rate | None = DEFAULT_RATE,
        read_rate: Rate | None = DEFAULT_READ_RATE,
        prices: Mapping[Operation, float] | None = None,
        callback_shape: CallbackShape = "both",
        webhook_key: str | None = None,
        duration: Duration = DEFAULT_DURATION,
        time_scale: float = 0.01,
        faults: FaultPlan | None = None,
        seed: int | None = None,
        base_url: str = DEFAULT_BASE_URL,
        callback_retry_delays: Sequence[float] = (0.2, 0.5, 1.0),
        callback_transport: httpx.AsyncBaseTransport | None = None,
        latency: Duration | None = None,
        result_url_lifetime: float | None = None,
        download_link_lifetime: float = DEFAULT_LINK_LIFETIME,
        replay: Replay | str | os.PathLike[str] | Mapping[str, Any] | None = None,
        not_ready_for: float = DEFAULT_NOT_READY_FOR,
        json_objects: bool = False,
        clock: ClockChoice = "real",
    ) -> None:
        self.service = KieService(
            api_key=api_key,
            credits=credits,
            rate=rate,
            read_rate=read_rate,
            prices=prices,
            callback_shape=callback_shape,
            webhook_key=webhook_key,
            duration=duration,
            time_scale=time_scale,
            faults=faults,
            seed=seed,
            callback_retry_delays=callback_retry_delays,
            callback_transport=callback_transport,
            latency=latency,
            result_url_lifetime=result_url_lifetime,
            download_link_lifetime=download_link_lifetime,
            replay=replay if replay is None or isinstance(replay, Replay) else Replay.load(replay),
            not_ready_for=not_ready_for,
            json_objects=json_objects,
            clock=clock,
        )
        """The emulated account itself, without HTTP: its tasks, stored files and rules."""
        self.base_url = base_url.rstrip("/")
        """Where ``add_image`` and ``url_for`` point; ``serve`` sets the real one while it runs."""
        self._group: anyio.abc.TaskGroup | None = None
        self._app: ASGIApp | None = None

    @property
    def app(self) -> ASGIApp:
        """The ASGI application serving every endpoint."""
        if self._app is None:
            from ._app import build_app  # noqa: PLC0415 - starlette loads only when asked for

            self._app = build_app(self.service)
        return self._app

    @property
    def callbacks_pending(self) -> int:
        """Callback deliveries scheduled and not yet attempted."""
        return self.service.callbacks_pending

    def add_image(self, name: str, data: bytes) -> str:
        """Store ``data`` under ``name``; answer the URL to pass as ``image_url``."""
        return self.url_for(self.service.store(f"images/{name.lstrip('/')}", data))

    def url_for(self, key: str, base_url: str | None = None) -> str:
        """The URL under which the stored file ``key`` is served."""
        return file_url(self.base_url if base_url is None else base_url, key)

    def task_info(self) -> list[TaskInfo]:
        """Creation and exact finish moments of every task, for latency measurements."""
        return self.service.task_info()

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client that reaches this emulator in-process (no socket)."""
        kwargs.setdefault("base_url", self.base_url)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), **kwargs)

    async def __aenter__(self) -> KieEmulator:
        if self._group is not None:
            raise RuntimeError("this emulator is already running")
        group = anyio.create_task_group()
        await group.__aenter__()
        group.start_soon(self.service.run_callbacks)
        self._group = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._group = self._group, None
        if group is None:
            return None
        group.cancel_scope.cancel()
        return await group.__aexit__(exc_type, exc, tb)

"""KieService: the emulated KIE account, with no HTTP: tasks, stored files, credits, limits.

The core the routes stand on. It holds the account's state (tasks, the file store, the
balance, the fault plan, the callback queue; the rate windows in ``_traffic``) and the rules KIE
follows, behind a public method interface: the routes (``_app``, ``_uploads``,
``_control``, ``_http``) call only these methods, and :class:`~._emulator.KieEmulator`
puts the routes and this core together. Nothing here knows about requests or responses.
"""

from __future__ import annotations

import hmac
import itertools
import random
import threading
import types
import urllib.parse
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import attrs
import httpx

from recraft_async._core._limits import LIMITS, PUBLISHED_PRICES
from recraft_async._core._models import Operation
from recraft_async._core._policy import Rate

from . import _images
from ._callbacks import CALLBACK_SHAPES, CallbackDispatcher, CallbackShape, callback_body
from ._clock import Clock, ClockChoice
from ._duration import Duration
from ._faults import Fault, FaultKind, FaultPlan, Target
from ._replay import Replay
from ._stats import EmulatorStats
from ._tasks import CREATE_FAILED, FAILED, RESULTS_PREFIX, SUCCESS, Task, TaskInfo
from ._traffic import Traffic

FILES_PREFIX = "/_emulator/files/"
# Where download links are served: LINKS_PREFIX + a token of POST /api/v1/common/download-url.
LINKS_PREFIX = "/_emulator/links/"
# KIE's download links are valid for 20 minutes.
DEFAULT_LINK_LIFETIME = 1200.0

_ID_PREFIX = {Operation.UPSCALE: "recraft_upscale_", Operation.REMOVE_BACKGROUND: "recraft_bg_"}
DEFAULT_PRICES: Mapping[Operation, float] = PUBLISHED_PRICES
DEFAULT_RATE = Rate(20, per=10.0)
DEFAULT_READ_RATE = Rate(10, per=1.0)
DEFAULT_DURATION = Duration.lognormal(median=20.0, sigma=0.5)
# Real seconds (not scaled) after its creation during which a task's market record is not
# readable: KIE documents 422 "recordInfo is null" for that moment. On by default, so that
# every user of the emulator meets it; short, so that it costs a fast poll a read or two.
DEFAULT_NOT_READY_FOR = 0.05


@attrs.frozen
class NotReady:
    """A status read of a task whose record is not readable yet, answered with HTTP ``status``."""

    status: int = 200


# (code, Retry-After seconds or None): why a submit was refused.
Refusal = tuple[int, float | None]
_R = TypeVar("_R")


def file_url(base_url: str, key: str) -> str:
    """The URL under which the stored file ``key`` is served, below ``base_url``."""
    return f"{base_url.rstrip('/')}{FILES_PREFIX}{urllib.parse.quote(key)}"


class KieService:
    """One emulated KIE account and the rules it follows; see :class:`KieEmulator` for the knobs.

    Its settings (``api_key``, ``rate``, ``read_rate``, ``prices``, ``callback_shape``,
    ``duration``, ``time_scale``, ``latency``, ``not_ready_for``, ``json_objects``) are
    plain attributes read on every use, so a test may change them between requests.
    Callbacks are sent only while :meth:`run_callbacks` runs.
    """

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
        callback_retry_delays: Sequence[float] = (0.2, 0.5, 1.0),
        callback_transport: httpx.AsyncBaseTransport | None = None,
        latency: Duration | None = None,
        result_url_lifetime: float | None = None,
        download_link_lifetime: float = DEFAULT_LINK_LIFETIME,
        replay: Replay | None = None,
        not_ready_for: float = DEFAULT_NOT_READY_FOR,
        json_objects: bool = False,
        clock: ClockChoice = "real",
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        if callback_shape not in CALLBACK_SHAPES:
            raise ValueError(f"callback_shape must be one of {CALLBACK_SHAPES}")
        merged = {**DEFAULT_PRICES, **(prices or {})}
        self.prices = {Operation(op): float(cost) for op, cost in merged.items()}
        if any(not cost >= 0 for cost in self.prices.values()):
            raise ValueError("prices must be >= 0")
        self.clock = Clock(clock)
        self.api_key = api_key
        self.rate = rate
        self.read_rate = read_rate
        self.callback_shape: CallbackShape = callback_shape
        self.duration = duration
        self.time_scale = time_scale
        self.latency = latency
        self.result_url_lifetime = result_url_lifetime
        self.download_link_lifetime = download_link_lifetime
        self.replay = replay
        self.not_ready_for = not_ready_for
        self.json_objects = json_objects
        self.faults = faults if faults is not None else FaultPlan(seed)
        self.stats = EmulatorStats(faults=self.faults.injected)
        self._credits = float(credits)
        self._rng = random.Random(seed)  # noqa: S311 - reproducible timing, not cryptography
        self._lock = threading.Lock()  # the test's thread may add images while a server runs
        self._files: dict[str, bytes] = {}
        self._checks: dict[tuple[str, Operation], str | None] = {}
        self._renders: dict[tuple[str, Operation, int, str], bytes] = {}
        self._tasks: dict[str, Task] = {}
        self._links: dict[str, tuple[str, float]] = {}  # token: (file's path, expiry moment)
        self._market_ids = itertools.count()
        self._traffic = Traffic(self.stats)
        self._callbacks = CallbackDispatcher(
            self.stats,
            self._callback_for,
            webhook_key=webhook_key,
            retry_delays=callback_retry_delays,
            transport=callback_transport,
            clock=self.clock,
        )

    # -- the account's state -----------------------------------------------------------------

    @property
    def credits(self) -> float:
        """The account's balance; assign to it to test 402s."""
        return self._credits

    @credits.setter  # noqa: A003 - "credits" is the documented name of the balance
    def credits(self, value: float) -> None:
        self._credits = float(value)

    @property
    def callbacks_pending(self) -> int:
        """Callback deliveries scheduled and not yet attempted."""
        return self._callbacks.pending

    @property
    def tasks(self) -> Mapping[str, Task]:
        """Every task by id (a read-only view; the tasks themselves are the live records)."""
        return types.MappingProxyType(self._tasks)

    @property
    def files(self) -> Mapping[str, bytes]:
        """The file store by key: added images, uploads, results used as input (read-only)."""
        return types.MappingProxyType(self._files)

    def task_info(self) -> list[TaskInfo]:
        """Creation and exact finish moments of every task, for latency measurements."""
        return [task.info() for task in list(self._tasks.values())]

    async def run_callbacks(self) -> None:
        """Deliver callbacks as they fall due, until cancelled."""
        await self._callbacks.run()

    # -- the file store ------------------------------------------------------------------------

    def store(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (replacing it) and answer the key."""
        with self._lock:
            self._files[key] = bytes(data)
            for op in Operation:
                self._checks.pop((key, op), None)
            for render in [r for r in self._renders if r[0] == key]:
                del self._renders[render]
        return key

    def file(self, key: str) -> bytes | None:
        """The stored file ``key``, or None."""
        return self._files.get(key)

    def resolve(self, url: str) -> str | None:
        """The store key behind ``url``, if it is one of the emulator's own files."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        if path.startswith(FILES_PREFIX):
            key = path[len(FILES_PREFIX) :]
            return key if key in self._files else None
        if path.startswith(RESULTS_PREFIX):
            # A result used as input (remove the background, then upscale): made on demand.
            task = self._tasks.get(path[len(RESULTS_PREFIX) :].rpartition(".")[0])
            if task is not None and task.status(self.clock.wall()) == SUCCESS:
                return f"results/{task.result_name}"
        return None

    # -- results and their links ---------------------------------------------------------------

    def result_expired(self, task: Task) -> bool:
        """Whether ``task``'s plain result URL has outlived ``result_url_lifetime``."""
        lifetime = self.result_url_lifetime
        return lifetime is not None and self.clock.wall() > task.finished + lifetime

    def issue_link(self, url: str) -> str | None:
        """A token for a fresh link to a file this account made, or None for any other URL.

        The files it made: a successful task's result, or a stored file (an upload). Valid
        for ``download_link_lifetime`` seconds, whatever happened to the plain URL.
        """
        try:
            if self.resolve(url) is None:
                return None
        except ValueError:  # a broken IPv6 literal is no URL of ours
            return None
        path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
        token = uuid.uuid4().hex
        with self._lock:
            self._links[token] = (path, self.clock.wall() + self.download_link_lifetime)
        self.stats.download_links += 1
        return token

    def link_target(self, token: str) -> tuple[str, bool] | None:
        """The path a link's token stands for and whether the link has expired; None: unknown."""
        found = self._links.get(token)
        if found is None:
            return None
        path, expires = found
        return path, self.clock.wall() > expires

    # -- the rules -------------------------------------------------------------------------------

    def check_key(self, authorization: str | None) -> bool:
        """Whether the ``Authorization`` header carries this account's key."""
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )

    def admit(self, operation: Operation) -> Refusal | None:
        """Rate limit and balance for one submit: None to go ahead, else (code, retry).

        Synchronous on purpose: checking and taking the window slot happen with no await
        between them, so concurrent submits cannot slip past the limit together.
        """
        now = self.clock.monotonic()
        retry = self._traffic.submit_refused(self.rate, now)
        if retry is not None:
            return 429, retry
        if self._credits < self.prices[operation]:
            return 402, None
        self._traffic.take_submit(self.rate, now)
        return None

    def admit_read(self) -> float | None:
        """The read limit for one status read: None to go ahead, else seconds to wait.

        Synchronous like :meth:`admit`, and called as the read arrives, before any latency.
        """
        return self._traffic.admit_read(self.read_rate, self.clock.monotonic())

    def answer_delay(self) -> float:
        """Seconds to hold one answer back, drawn from ``latency``."""
        return 0.0 if self.latency is None else self.latency.sample(self._rng)

    def create_task(
        self,
        operation: Operation,
        *,
        dialect: str,
        image_url: str,
        scale: int,
        format: str,
        callback_url: str | None,
        base_url: str,
        params: dict[str, Any],
    ) -> Task:
        """Create (and charge) a task after :meth:`admit` let it through."""
        now = self.clock.wall()
        fault = self.faults.draw(Target.TASK)
        key = self.resolve(image_url)
        task = Task(
            task_id=self._new_task_id(operation, dialect),
            operation=operation,
            dialect=dialect,
            image_url=image_url,
            image_key=key,
            scale=scale,
            format=format,
            created=now,
            finished=now,
            outcome=CREATE_FAILED,
            callback_url=callback_url,
            base_url=base_url,
            params=params,
        )
        self._tasks[task.task_id] = task
        self.stats.tasks_created += 1
        self.stats.submits[(operation.value, image_url)] += 1
        if key is None:
            task.error_code, task.error_message = 404, f"unreachable image: {image_url}"
        elif fault is not None and fault.kind is FaultKind.CREATE_FAILED:
            task.error_code, task.error_message = fault.code, fault.message
        else:
            self._charge(task, self.prices[operation])
            task.finished = now + self._processing_time(operation) * self.time_scale
            if fault is not None and fault.kind is FaultKind.TASK_FAILED:
                task.outcome, task.error_code, task.error_message = (
                    FAILED,
                    fault.code,
                    fault.message,
                )
            else:
                # The input is checked when the task ends (see settle), not here: the
                # service answers a submit at once and finds bad images while processing.
                task.outcome, task.unchecked = SUCCESS, True
        task.unready_until = now + self.not_ready_for
        if fault is not None and fault.kind is FaultKind.NOT_FOUND:
            task.not_found_reads = fault.count
            task.hidden_until = now + fault.seconds
        if fault is not None and fault.kind is FaultKind.NOT_READY:
            task.not_ready_reads = fault.count
            task.unready_until = max(task.unready_until, now + fault.seconds)
            task.not_ready_status = fault.code
        self._traffic.note_pending(now, task.finished)
        if callback_url:
            self._schedule_callbacks(task)
        return task

    def read_task(self, task_id: str, operation: Operation | None) -> Task | NotReady | None:
        """The task for a status read (counted), NotReady, or None for "not found".

        ``operation`` None is a market read (``recordInfo``): only those answer NotReady,
        the one endpoint KIE documents it for.
        """
        self.stats.status_reads += 1
        # The busiest second of the service's (scaled) clock, for a read budget's proof.
        self._traffic.note_read(self.clock.monotonic(), self.time_scale or 1.0)
        task = self._tasks.get(task_id)
        if task is None or (operation is not None and task.operation is not operation):
            return None
        task.reads += 1
        now = self.clock.wall()
        if task.not_found_reads > 0 or now < task.hidden_until:
            task.not_found_reads = max(task.not_found_reads - 1, 0)
            return None
        if operation is None and (task.not_ready_reads > 0 or now < task.unready_until):
            task.not_ready_reads = max(task.not_ready_reads - 1, 0)
            self.stats.not_ready_reads += 1
            return NotReady(task.not_ready_status)
        if task.first_final_read is None and task.status(now) != 0:
            task.first_final_read = now
        return task

    def task(self, task_id: str) -> Task | None:
        """A task without counting a read."""
        return self._tasks.get(task_id)

    async def settle(self, task: Task) -> None:
        """Fix the outcome of a task that has ended: check its input (off the event loop)."""
        if not task.unchecked or self.clock.wall() < task.finished or task.image_key is None:
            return
        problem = await self._check(task.image_key, task.operation)
        if task.unchecked and problem is not None:
            task.outcome, task.error_code, task.error_message = FAILED, 422, problem
        task.unchecked = False

    async def render(self, task: Task) -> bytes | None:
        """The result of a successful task, computed (off the event loop) on first demand."""
        await self.settle(task)
        if task.status(self.clock.wall()) != SUCCESS or task.image_key is None:
            return None
        cache_key = (task.image_key, task.operation, task.scale, task.format)
        cached = self._renders.get(cache_key)
        if cached is not None:
            return cached
        data = self._files[task.image_key]
        if task.operation is Operation.UPSCALE:
            out = await self._offload(_images.upscale, data, task.scale, task.format)
        else:
            out = await self._offload(_images.remove_background, data)
        self._renders[cache_key] = out
        return out

    # -- inside ------------------------------------------------------------------------------

    def _new_task_id(self, operation: Operation, dialect: str) -> str:
        if dialect == "recraft":
            return _ID_PREFIX[operation] + uuid.uuid4().hex[:20]
        # The documented shape (task_recraft_1765177373893): epoch ms, then a counter so
        # that tasks created within one millisecond differ.
        return f"task_recraft_{round(self.clock.wall() * 1000)}{next(self._market_ids):03d}"

    async def _check(self, key: str, operation: Operation) -> str | None:
        if key.startswith("results/") and key not in self._files:
            task = self._tasks[key.removeprefix("results/").rpartition(".")[0]]
            rendered = await self.render(task)
            if rendered is None:
                return "unreachable image"
            self.store(key, rendered)
        cached = self._checks.get((key, operation), ...)
        if cached is not ...:
            return cached
        problem = await self._offload(_images.check_input, self._files[key], LIMITS[operation])
        self._checks[(key, operation)] = problem
        return problem

    async def _offload(self, work: Callable[..., _R], *args: Any) -> _R:
        """Pillow's work: in a worker thread on the real clock, else inline (see Clock.real)."""
        if self.clock.real:
            return await anyio.to_thread.run_sync(work, *args)
        return work(*args)

    def _processing_time(self, operation: Operation) -> float:
        """Seconds (before ``time_scale``) a new task takes: the replayed trace's, else a sample."""
        replayed = self.replay.duration(operation) if self.replay is not None else None
        return self.duration.sample(self._rng) if replayed is None else replayed

    def replayed(self, task: Task, record: dict[str, Any]) -> tuple[int, Any] | None:
        """A market status answer in the replayed trace's shape, or None to answer as usual."""
        if self.replay is None:
            return None
        elapsed = (self.clock.wall() - task.created) / (self.time_scale or 1.0)
        return self.replay.answer(task.operation, elapsed, record)

    def _charge(self, task: Task, cost: float) -> None:
        task.cost = cost  # what the callback reports as consumeCredits
        self._credits -= cost
        self.stats.credits_spent += cost

    def _schedule_callbacks(self, task: Task) -> None:
        fault: Fault | None = self.faults.draw(Target.CALLBACK)
        # Never before the record is readable: a callback's read must find the task.
        due, copies = max(task.finished, task.unready_until), 1
        if fault is not None and fault.kind is FaultKind.LATE_CALLBACK:
            due += fault.seconds
        elif fault is not None and fault.kind is FaultKind.DUPLICATE_CALLBACK:
            copies = fault.count
        elif fault is not None and fault.kind is FaultKind.LOST_CALLBACK:
            self.stats.callbacks_lost += 1
            return
        for _ in range(copies):
            self._callbacks.schedule(due, task.task_id)

    async def _callback_for(self, task_id: str) -> tuple[str, dict[str, Any]] | None:
        task = self._tasks.get(task_id)
        if task is None or not task.callback_url:
            return None
        await self.settle(task)
        body = callback_body(task, self.clock.wall(), self.callback_shape, self._credits)
        return task.callback_url, body

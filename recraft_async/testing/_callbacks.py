"""Callbacks: their documented bodies, and one background loop that delivers them all.

KIE documents two callback bodies (kie-api.md section 5): the market model pages' one
(``code`` 200 or 501, the full record in ``data``) and the webhook-verification page's
(``taskId`` on top, ``data.task_id`` and ``data.callbackType``, no record). The emulator
sends either alone, or by default both merged, so that a reader of either page works.
Deliveries are signed, retried, and go to loopback addresses only.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import anyio
import httpx

from recraft_async._core._check import is_loopback_host
from recraft_async._core._webhooks import webhook_signature

from ._clock import Clock
from ._stats import EmulatorStats
from ._tasks import SUCCESS, Task, credit_number

_CONCURRENT_DELIVERIES = 32
_DELIVERY_TIMEOUT = 5.0
# The longest the delivery loop sleeps between looks at its heap: a delivery scheduled from
# another thread (a served emulator also driven in-process) cannot wake it at once.
_FOREIGN_WAKE = 0.05

CallbackShape = Literal["both", "market", "verification"]
CALLBACK_SHAPES: tuple[CallbackShape, ...] = ("both", "market", "verification")
# The market pages' messages, verbatim.
_MARKET_MSG = {True: "Playground task completed successfully.", False: "Playground task failed."}


def callback_body(task: Task, now: float, shape: CallbackShape, balance: float) -> dict[str, Any]:
    """The body POSTed for ``task`` in the given shape; ``balance`` is the account's now."""
    ok = task.outcome == SUCCESS
    # The verification page shows only a success; a failure's fields are our guess.
    check: dict[str, Any] = {
        "taskId": task.task_id,
        "code": 200 if ok else 501,
        "msg": "Success" if ok else "Failed",
        "data": {
            "task_id": task.task_id,
            "callbackType": "task_completed" if ok else "task_failed",
        },
    }
    if shape == "verification":
        return check
    body = (
        _market_body(task, now, ok, balance)
        if task.dialect == "market"
        else _seed_body(task, now, ok)
    )
    if shape == "market":
        return body
    return {"taskId": task.task_id, **body, "data": {**body["data"], **check["data"]}}


def _market_body(task: Task, now: float, ok: bool, balance: float) -> dict[str, Any]:
    record = task.market_record(now, task.base_url)
    if ok:
        # The pages' success example has no failCode/failMsg; one variant has them null.
        record["failCode"] = record["failMsg"] = None
    # The pages' callbacks name the cost consumeCredits (records: creditsConsumed).
    record.pop("creditsConsumed", None)
    record["consumeCredits"] = credit_number(task.cost)
    record["remainedCredits"] = credit_number(balance)
    return {"code": 200 if ok else 501, "msg": _MARKET_MSG[ok], "data": record}


def _seed_body(task: Task, now: float, ok: bool) -> dict[str, Any]:
    # The seed documents no callback body: its own record, in the usual envelope.
    msg = "success" if ok else (task.error_message or "failed")
    return {"code": 200 if ok else 501, "msg": msg, "data": task.recraft_record(now, task.base_url)}


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine; the emulator never calls anywhere else."""
    return is_loopback_host(urllib.parse.urlsplit(url).hostname or "")


class CallbackDispatcher:
    """A due-time heap of deliveries and the one loop that sends them.

    Scheduling never awaits, so request handlers can call it; the loop runs only inside
    ``async with emulator`` (or the served emulator's thread) and sleeps until the next due
    delivery or until woken by a new one. A delivery scheduled from another thread (the
    requests of a served emulator also driven in-process) does not touch the loop's event,
    which belongs to its own thread: the loop finds it within ``_FOREIGN_WAKE`` seconds.
    """

    def __init__(
        self,
        stats: EmulatorStats,
        build: Callable[[str], Awaitable[tuple[str, dict[str, Any]] | None]],
        *,
        webhook_key: str | None,
        retry_delays: Sequence[float],
        transport: httpx.AsyncBaseTransport | None,
        clock: Clock,
    ) -> None:
        self._stats = stats
        self._clock = clock
        self._build = build  # task id -> (url, envelope), or None if the task is gone
        self._webhook_key = webhook_key
        self._retry_delays = tuple(retry_delays)
        self._transport = transport
        self._heap: list[tuple[float, int, str, int]] = []
        self._order = itertools.count()
        self._wake: anyio.Event | None = None
        self._thread: int | None = None  # the thread the delivery loop runs in
        self._lock = threading.Lock()  # the heap, for schedules from another thread

    @property
    def pending(self) -> int:
        """Deliveries scheduled and not yet attempted."""
        return len(self._heap)

    def schedule(self, due: float, task_id: str, attempt: int = 0) -> None:
        """Deliver the callback of ``task_id`` at moment ``due`` of the clock's ``wall``."""
        with self._lock:
            heapq.heappush(self._heap, (due, next(self._order), task_id, attempt))
        wake = self._wake
        if wake is not None and threading.get_ident() == self._thread:
            wake.set()

    async def run(self) -> None:
        """Deliver callbacks as they fall due, until cancelled."""
        self._thread = threading.get_ident()
        try:
            await self._run()
        finally:
            # The event belongs to this loop; a later schedule() must not touch it.
            self._wake = None
            self._thread = None

    async def _run(self) -> None:
        limiter = anyio.CapacityLimiter(_CONCURRENT_DELIVERIES)
        # trust_env=False: a proxy from the environment must never carry a callback out.
        async with (
            httpx.AsyncClient(
                transport=self._transport, timeout=_DELIVERY_TIMEOUT, trust_env=False
            ) as http,
            anyio.create_task_group() as group,
        ):
            while True:
                self._wake = anyio.Event()
                now = self._clock.wall()
                with self._lock:
                    due = []
                    while self._heap and self._heap[0][0] <= now:
                        due.append(heapq.heappop(self._heap))
                    wait = self._heap[0][0] - now if self._heap else math.inf
                for _, _, task_id, attempt in due:
                    group.start_soon(self._deliver, http, limiter, task_id, attempt)
                if self._clock.real:
                    # Only a real clock is shared with other threads; on the loop's clock
                    # these looks would be thousands of needless wakes of a virtual wait.
                    wait = min(wait, _FOREIGN_WAKE)
                with anyio.move_on_after(wait):
                    await self._wake.wait()

    async def _deliver(
        self, http: httpx.AsyncClient, limiter: anyio.CapacityLimiter, task_id: str, attempt: int
    ) -> None:
        built = await self._build(task_id)
        if built is None:
            return
        url, envelope = built
        if self._transport is None and not is_loopback(url):
            self._stats.callbacks_refused += 1
            return
        headers = {"Content-Type": "application/json"}
        if self._webhook_key is not None:
            timestamp = str(int(self._clock.wall()))
            headers["X-Webhook-Timestamp"] = timestamp
            signature = webhook_signature(self._webhook_key, task_id, timestamp)
            headers["X-Webhook-Signature"] = signature
        async with limiter:
            self._stats.callbacks_sent += 1
            try:
                response = await http.post(url, content=json.dumps(envelope), headers=headers)
                ok = response.is_success
            except httpx.HTTPError:
                ok = False
        if ok:
            self._stats.callbacks_delivered += 1
        elif attempt < len(self._retry_delays):
            self.schedule(self._clock.wall() + self._retry_delays[attempt], task_id, attempt + 1)
        else:
            self._stats.callbacks_failed += 1

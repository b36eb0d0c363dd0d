"""Callback delivery: one background loop for all tasks, signed, retried, loopback only."""

from __future__ import annotations

import heapq
import itertools
import json
import math
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import httpx

from recraft_async._check import is_loopback_host
from recraft_async._webhooks import webhook_signature

from ._stats import EmulatorStats

_CONCURRENT_DELIVERIES = 32
_DELIVERY_TIMEOUT = 5.0


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine; the emulator never calls anywhere else."""
    return is_loopback_host(urllib.parse.urlsplit(url).hostname or "")


class CallbackDispatcher:
    """A due-time heap of deliveries and the one loop that sends them.

    Scheduling never awaits, so request handlers can call it; the loop runs only inside
    ``async with emulator`` (or the served emulator's thread) and sleeps until the next due
    delivery or until woken by a new one.
    """

    def __init__(
        self,
        stats: EmulatorStats,
        build: Callable[[str], Awaitable[tuple[str, dict[str, Any]] | None]],
        *,
        webhook_key: str | None,
        retry_delays: Sequence[float],
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self._stats = stats
        self._build = build  # task id -> (url, envelope), or None if the task is gone
        self._webhook_key = webhook_key
        self._retry_delays = tuple(retry_delays)
        self._transport = transport
        self._heap: list[tuple[float, int, str, int]] = []
        self._order = itertools.count()
        self._wake: anyio.Event | None = None

    @property
    def pending(self) -> int:
        """Deliveries scheduled and not yet attempted."""
        return len(self._heap)

    def schedule(self, due: float, task_id: str, attempt: int = 0) -> None:
        """Deliver the callback of ``task_id`` at wall-clock moment ``due``."""
        heapq.heappush(self._heap, (due, next(self._order), task_id, attempt))
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Deliver callbacks as they fall due, until cancelled."""
        try:
            await self._run()
        finally:
            # The event belongs to this loop; a later schedule() must not touch it.
            self._wake = None

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
                now = time.time()
                while self._heap and self._heap[0][0] <= now:
                    _, _, task_id, attempt = heapq.heappop(self._heap)
                    group.start_soon(self._deliver, http, limiter, task_id, attempt)
                wait = self._heap[0][0] - now if self._heap else math.inf
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
            timestamp = str(int(time.time()))
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
            self.schedule(time.time() + self._retry_delays[attempt], task_id, attempt + 1)
        else:
            self._stats.callbacks_failed += 1

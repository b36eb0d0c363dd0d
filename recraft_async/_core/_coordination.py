"""Coordination: what the scheduler asks before it submits, reads or hears a callback.

One client alone answers every question itself (``LocalCoordinator``: today's pacers,
no claims, no forwarding). A fleet of processes on one KIE key answers them together
(``_redis_coordinator.RedisCoordinator``): the same questions, so the flow stays one
way, scheduler -> coordinator, whichever answers.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs

from ._pacer import Pacer
from ._policy import Rate
from ._webhooks import Seen

# Called with a task id whose callback another process received: wake its poll here.
HintSink = Callable[[str], object]


class Budget(Protocol):
    """A sliding-window rate limit that requests wait for (``Pacer`` is the local one)."""

    def slot(self, priority: float | None = None) -> AbstractAsyncContextManager[None]:
        """Wait for room in the window, hold it for one request, then give it back."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a 429's Retry-After)."""

    def delay(self) -> float | None:
        """Seconds until the first waiting request may go; None when none waits on the clock."""


class Claim(Protocol):
    """The right to submit one input, or the task another process already made for it.

    ``task_id`` set: attach to that task and poll it, submit nothing. Else the holder
    submits and then says how it went: ``submitted``, ``release`` (provably nothing was
    created: another may try) or ``uncertain`` (it may have landed: nobody resubmits).
    """

    @property
    def task_id(self) -> str | None:
        """Another process's task for this input, or None: ours to submit."""
        ...

    @property
    def uncertain_elsewhere(self) -> bool:
        """Another process's submit of this input may have landed: nobody resubmits it."""
        ...

    async def submitted(self, task_id: str) -> None:
        """Our submit created ``task_id``: every process given this input attaches to it."""

    async def release(self) -> None:
        """Our submit provably created nothing: the next process may submit."""

    async def uncertain(self) -> None:
        """Our submit may have landed: every process refuses to resubmit it."""

    async def failed(self) -> None:
        """The task failed at the service: forget it, so that a retry may submit again."""


class Coordinator(Protocol):
    """The budgets, claims and callback forwarding the scheduler asks for."""

    submits: Budget
    reads: Budget
    dedups: bool  # whether claims mean anything (else ``claim`` is never asked)

    async def open(self, hint: HintSink) -> None:
        """Start (connections, listeners); ``hint`` wakes a local poll for a remote callback."""

    async def close(self) -> None:
        """Stop what ``open`` started; nothing is lost that was confirmed."""

    async def claim(self, key: str) -> Claim:
        """Claim the input fingerprinted ``key``; waits while another process submits it."""
        ...

    def forward(self, task_id: str) -> None:
        """A callback for a task no local job polls: let the process polling it know."""

    def accept_callback(self, task_id: str, seen: Seen) -> None:
        """A verified callback: wake its task here and in the fleet, if no worker took it."""


@attrs.frozen
class OwnClaim:
    """The claim of a client alone: always ours, nothing to tell anyone."""

    task_id: str | None = None
    uncertain_elsewhere: bool = False

    async def submitted(self, task_id: str) -> None:
        """Nothing to share."""

    async def release(self) -> None:
        """Nothing to share."""

    async def uncertain(self) -> None:
        """Nothing to share."""

    async def failed(self) -> None:
        """Nothing to share."""


NO_CLAIM = OwnClaim()


class LocalCoordinator:
    """One client's own pacers: submits first come first served, reads due first."""

    dedups = False

    def __init__(self, submit_rate: Rate | None, read_rate: Rate | None) -> None:
        self.submits: Budget = Pacer(submit_rate)
        self.reads: Budget = Pacer(read_rate)

    async def open(self, hint: HintSink) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to stop."""

    async def claim(self, key: str) -> Claim:  # noqa: ARG002 - the protocol's signature
        """Always ours: one client's own duplicates are its journal's business."""
        return NO_CLAIM

    def forward(self, task_id: str) -> None:
        """No other process to tell."""

    def accept_callback(self, task_id: str, seen: Seen) -> None:
        """Never asked: this client's own ReplayGuard already refused a second delivery."""

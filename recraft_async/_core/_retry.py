"""The one retry loop: a call tried again while its rule allows, after the rule's delay.

Every retry of the library goes through ``Retry.call``: the transport's idempotent
requests, the status reads (one read, and a poll's patient re-reads of a paid task) and
the submits. What differs is the rule, given by the caller from ``_policy``'s pure
functions: which failures are tried again (``should_retry``, ``should_resubmit``, ...),
after how long (``retry_delay`` and its variants), until when. The loop itself holds no
arithmetic and no money rule.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import attrs

from ._errors import RecraftError

T = TypeVar("T")


def _nothing(_error: RecraftError, _number: float) -> None:
    """The default hooks: nothing to tell."""


def _unchanged(error: RecraftError) -> RecraftError:
    return error


@attrs.frozen(kw_only=True)
class Retry:
    """Which failures of one call are tried again, after how long, and until when.

    ``attempt`` numbers the tries from 0. A failure is a RecraftError; anything else
    (a cancellation, a bug) ends the call at once.
    """

    may_retry: Callable[[RecraftError, int], bool]
    """Whether the call that failed with this error on this attempt is tried again."""
    delay: Callable[[RecraftError, int], float]
    """Seconds to wait after this failure on this attempt before the next try."""
    deadline: float = math.inf
    """The moment (``anyio.current_time()``) after which no retry starts; waits end there."""
    out_of_time: Callable[[RecraftError], RecraftError] = _unchanged
    """The error a call ends in when a failure it could retry meets the deadline."""
    failed: Callable[[RecraftError, int], None] = _nothing
    """Told of every failure first, retried or not (a job's event, a count of reads)."""
    retrying: Callable[[RecraftError, float], None] = _nothing
    """Told of each retry and its wait, before the wait (a log line)."""
    sleep: Callable[[float], Awaitable[None]] | None = None
    """How to wait (a poll's wait also ends on a callback); None: ``anyio.sleep``."""

    async def call(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """``attempt(n)``'s result, trying again as the rule allows; else its last error."""
        sleep = anyio.sleep if self.sleep is None else self.sleep
        tries = 0
        while True:
            try:
                return await attempt(tries)
            except RecraftError as exc:
                self.failed(exc, tries)
                if not self.may_retry(exc, tries):
                    raise
                now = anyio.current_time()
                if now >= self.deadline:
                    raise self.out_of_time(exc)  # noqa: B904 - a wrapper sets its own cause
                delay = max(min(self.delay(exc, tries), self.deadline - now), 0.0)
                self.retrying(exc, delay)
            # Outside the except block: the next failure is no "during handling" of this one.
            await sleep(delay)
            tries += 1

"""Rate, PollPolicy and the retry arithmetic: pure functions and values, no I/O."""

from __future__ import annotations

import email.utils
import json
import math
import random
import statistics
import time

import attrs

from ._errors import (
    APIConnectionError,
    APIError,
    InvalidInputError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)
from ._validate import boolean_field, integer_field, optional_instance, positive_field

# Retries of one request (a status read, an upload, a provably unsent submit).
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_JITTER = 0.25
# The longest pause a 429's Retry-After may impose on the whole client; a misbehaving
# proxy must not be able to park a batch for an hour.
MAX_RETRY_AFTER = 60.0
# A task can answer "not found" for a short moment after its creation.
NOT_FOUND_GRACE = 10.0
# Status reads of a task that was accepted (and so is paid for) back off up to this many
# seconds between failed tries, and never give up before the poll timeout: KIE answers
# a 500 on a status read with "retry after a few minutes". A policy that polls faster
# backs off less: at most this many of its longest poll intervals.
MAX_READ_RETRY_DELAY = 60.0
READ_RETRY_INTERVALS = 4.0
# KIE's advice for polling: a first read 2-3 s after the submit, then growing intervals.
# Nobody publishes how long Recraft tasks take (1 s or minutes), so this schedule is the
# one a job is never read later than, learnt or not: see PollPlanner.next_read.
ADVISED_FIRST_READ = 2.0
ADVISED_GROWTH = 1.5
# Callback-first waiting: one safety read where this share of tasks has finished, then
# reads at moments growing by this factor, in case the callback was lost.
DEFAULT_CALLBACK_QUANTILE = 0.99
DEFAULT_CALLBACK_GROWTH = 2.0


@attrs.frozen
class Rate:
    """At most ``n`` submissions in any window of ``per`` seconds (a sliding window).

    A bad value raises InvalidInputError (a ValueError) naming the parameter.
    """

    n: int = attrs.field(validator=integer_field(1))
    per: float = attrs.field(kw_only=True, default=1.0, validator=positive_field)


def _share(inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    positive_field(inst, attribute, value)
    if not value < 1:
        where = f"{type(inst).__name__}.{attribute.name}"
        raise InvalidInputError(f"{where} must be between 0 and 1, got {value!r}")


@attrs.frozen
class ProcessingTime:
    """A log-normal distribution of task processing times, by its median and spread.

    ``median`` in seconds; ``sigma`` is the spread of the logarithm (0.5: the middle half
    of tasks take 0.71 to 1.4 times the median). Used as ``PollPolicy.prior``, and
    returned by ``AsyncRecraft.processing_times()``. A bad value raises
    InvalidInputError (a ValueError) naming the parameter.
    """

    median: float = attrs.field(validator=positive_field)
    sigma: float = attrs.field(default=0.5, kw_only=True, validator=positive_field)

    def quantile(self, share: float) -> float:
        """Seconds within which ``share`` (between 0 and 1) of the tasks finish."""
        return lognormal_quantile(math.log(self.median), self.sigma, share)


def lognormal_quantile(mu: float, sigma: float, share: float) -> float:
    """The ``share`` quantile of the log-normal with log-mean ``mu`` and spread ``sigma``."""
    return math.exp(mu + sigma * statistics.NormalDist().inv_cdf(share))


def advised_read_after(policy: PollPolicy, elapsed: float) -> float:
    """The first moment (seconds after the submit) of ``policy``'s fixed schedule after ``elapsed``.

    The fixed schedule reads at ``initial``, then at intervals growing by ``factor`` up
    to ``max_interval``, counted from the submit (not from the reads made): a read held
    back by the read budget does not push the later ones back.
    """
    return growing_read_after(0.0, policy.initial, policy.factor, policy.max_interval, elapsed)


def growing_read_after(
    origin: float, first: float, factor: float, cap: float, elapsed: float
) -> float:
    """The first moment after ``elapsed`` of a growing schedule that starts at ``origin``.

    Its moments are ``origin + first``, then gaps growing by ``factor`` up to ``cap``.
    """
    at, step = origin + first, first
    while at <= elapsed and step < cap and factor > 1:
        step = min(step * factor, cap)
        at += step
    if at > elapsed:
        return at
    # Constant intervals from here on: jump there at once (a task of hours, a tiny initial).
    return at + (math.floor((elapsed - at) / step) + 1) * step


def next_safety_read(first: float, growth: float, elapsed: float, min_gap: float) -> float:
    """Seconds from ``elapsed`` to the next safety read of a job waiting for its callback.

    The safety reads come ``first``, ``first * growth``, ``first * growth**2``, ...
    seconds after the submit; the next one at least ``min_gap`` from now.
    """
    at = first
    while at < elapsed + min_gap:
        at *= growth
    return at - elapsed


@attrs.frozen
class PollPolicy:
    """When to read a task's status: a growing interval within bounds, and a deadline.

    A bad value raises InvalidInputError (a ValueError) naming the parameter.
    """

    initial: float = attrs.field(default=ADVISED_FIRST_READ, validator=positive_field)
    factor: float = attrs.field(default=ADVISED_GROWTH, validator=positive_field)
    max_interval: float = attrs.field(default=15.0, validator=positive_field)
    timeout: float = attrs.field(default=900.0, validator=positive_field)
    # Adaptive: the fixed schedule above is the latest a job is read (counted from its
    # submit); once processing times are learnt, about this many further reads per job go
    # where tasks are likely to finish, and the fixed reads before the fastest finish seen
    # are left out. False: the fixed schedule alone, counted in reads made.
    adaptive: bool = attrs.field(default=True, kw_only=True, validator=boolean_field)
    reads_per_job: float = attrs.field(default=3.0, kw_only=True, validator=positive_field)
    # An assumed distribution for the time before anything is learnt: it adds reads where
    # it expects finishes and ranks reads when the read budget binds, but never delays or
    # removes a read of the fixed schedule (an assumption is not evidence). None (the
    # default): the fixed schedule alone until tasks finish.
    prior: ProcessingTime | None = attrs.field(default=None, kw_only=True)
    # A job with a callback_url waits for its callback, then reads once to confirm; in
    # case the callback is lost, safety reads come where ``callback_quantile`` of the
    # tasks have finished, then at moments growing by ``callback_growth``. False: such
    # jobs poll on the normal schedule, a callback only wakes them early.
    callback_first: bool = attrs.field(default=True, kw_only=True, validator=boolean_field)
    callback_quantile: float = attrs.field(
        default=DEFAULT_CALLBACK_QUANTILE, kw_only=True, validator=_share
    )
    callback_growth: float = attrs.field(
        default=DEFAULT_CALLBACK_GROWTH, kw_only=True, validator=positive_field
    )

    @prior.validator
    def _check_prior(
        self, _attribute: attrs.Attribute[ProcessingTime | None], value: object
    ) -> None:
        optional_instance("PollPolicy.prior", value, ProcessingTime, "a ProcessingTime")

    def __attrs_post_init__(self) -> None:
        if self.factor < 1:
            raise InvalidInputError(f"PollPolicy.factor must be >= 1, got {self.factor!r}")
        if self.max_interval < self.initial:
            raise InvalidInputError(
                f"PollPolicy.max_interval must be >= initial ({self.initial!r}),"
                f" got {self.max_interval!r}"
            )
        if self.reads_per_job <= 1:
            raise InvalidInputError(
                f"PollPolicy.reads_per_job must be > 1, got {self.reads_per_job!r}"
            )
        if self.callback_growth <= 1:
            raise InvalidInputError(
                f"PollPolicy.callback_growth must be > 1, got {self.callback_growth!r}"
            )

    def read_retry_delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds before the next status read after ``failures`` failed ones in a row."""
        return retry_delay(
            failures - 1,
            retry_after,
            initial=min(INITIAL_RETRY_DELAY, self.initial),
            cap=min(MAX_READ_RETRY_DELAY, READ_RETRY_INTERVALS * self.max_interval),
        )

    def interval(self, reads_done: int) -> float:
        """Seconds between read ``reads_done`` and the next one, the fixed schedule."""
        if reads_done <= 0:
            return self.initial
        try:
            grown = self.initial * self.factor**reads_done
        except OverflowError:  # 1.5**1751 is past the largest float: long since capped
            return self.max_interval
        return min(grown, self.max_interval)


def is_transient(error: BaseException) -> bool:
    """Whether the same idempotent request may well succeed if sent again."""
    return isinstance(
        error,
        (APIConnectionError, RateLimitError, ServiceUnavailableError, ServerError, ProtocolError),
    )


def should_retry(error: BaseException, attempt: int, max_retries: int) -> bool:
    """Whether an idempotent request that failed on ``attempt`` (0-based) gets another try."""
    return attempt < max_retries and is_transient(error)


def should_resubmit(error: BaseException, attempt: int, max_retries: int) -> bool:
    """Whether a submit may be sent again: only when the first provably never landed."""
    return attempt < max_retries and never_landed(error)


def never_landed(error: BaseException) -> bool:
    """Whether a failed submit provably created nothing and may simply be sent again."""
    if isinstance(error, APIConnectionError):
        return not error.request_sent
    return isinstance(error, (RateLimitError, ServiceUnavailableError)) and is_refusal(error)


def is_refusal(error: APIError) -> bool:
    """Whether an error answer to a submit proves that no task was created.

    A 429 refuses wherever it comes from. Other 4xx and KIE's own 455/501/503/505 answers
    are the service's word. A 5xx, or a 503 without KIE's envelope (a gateway's page: the
    request may have reached the service behind it), proves nothing.
    """
    if isinstance(error, RateLimitError):
        return True
    if isinstance(error, ServiceUnavailableError):
        return _envelope_code(error.body) == error.code
    return not isinstance(error, ServerError)


def _envelope_code(body: str | None) -> object:
    """The ``code`` of a KIE envelope, or None for anything else (HTML, empty, garbage)."""
    try:
        parsed = json.loads(body or "")
    except (ValueError, RecursionError):
        return None
    return parsed.get("code") if isinstance(parsed, dict) else None


def retry_delay(
    attempt: int,
    retry_after: float | None = None,
    *,
    initial: float = INITIAL_RETRY_DELAY,
    cap: float = MAX_RETRY_DELAY,
) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's word, else jittered backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    # The exponent is bounded first: 2.0**2000 would be an OverflowError.
    backoff = min(initial * 2.0 ** min(attempt, 64), cap)
    # Jitter downwards only, so the cap holds; spreads clients that failed together.
    return backoff * (1.0 - RETRY_JITTER * random.random())  # noqa: S311 - not cryptographic


def retry_after_of(error: BaseException) -> float | None:
    """The seconds a 429 asked to wait (``RateLimitError.retry_after``), else None."""
    return error.retry_after if isinstance(error, RateLimitError) else None


def server_or_backoff(error: BaseException, attempt: int) -> float:
    """Seconds before retry ``attempt + 1`` of one request: a 429's word, else backoff."""
    return retry_delay(attempt, retry_after_of(error))


def backoff_unless_throttled(error: BaseException, attempt: int) -> float:
    """Seconds before retry ``attempt + 1`` of a budgeted call: none after a 429.

    After a 429 the shared budget (of status reads, of submits) is paused and holds the
    retry back itself, with every other call of the client.
    """
    return 0.0 if isinstance(error, RateLimitError) else retry_delay(attempt)


def parse_retry_after(headers: dict[str, str], now: float | None = None) -> float | None:
    """Seconds from ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``, else None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return _finite_or_none(float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return _finite_or_none(float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    wall = time.time() if now is None else now
    return max(moment.timestamp() - wall, 0.0)


def _finite_or_none(value: float) -> float | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return max(value, 0.0)

"""Rate, PollPolicy and the pure retry arithmetic."""

import email.utils
import json

import pytest

from recraft_async import PollPolicy, Rate
from recraft_async._core._policy import (
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    parse_retry_after,
    retry_delay,
    should_resubmit,
    should_retry,
)
from recraft_async.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    GenerationFailedError,
    InvalidInputError,
    InvalidRequestError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)


def _api(cls, code):
    return cls("x", code=code, http_status=200)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None, 2**0.5])
def test_rate_rejects_bad_counts(bad):
    """Rate(n) needs a positive integer; the error names the parameter."""
    with pytest.raises(InvalidInputError, match=r"Rate\.n must be an integer >= 1"):
        Rate(bad)


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (0, "finite number > 0"),
        (-2.0, "finite number > 0"),
        (float("inf"), "finite number > 0"),
        (float("nan"), "finite number > 0"),
        ("1", "must be a number, got str"),
        (None, "must be a number, got NoneType"),
        (True, "must be a number, got bool"),
    ],
)
def test_rate_rejects_bad_windows(bad, words):
    """Rate(per=) needs a finite positive window; the error names the parameter."""
    with pytest.raises(InvalidInputError, match=rf"^Rate\.per .*{words}"):
        Rate(3, per=bad)


def test_bad_values_are_invalid_input_errors_and_value_errors():
    """InvalidInputError is the library's one error for a refused argument, a ValueError."""
    with pytest.raises(ValueError, match=r"Rate\.n"):
        Rate(0)
    with pytest.raises(ValueError, match=r"PollPolicy\.timeout"):
        PollPolicy(timeout=-1)


def test_poll_policy_fixed_schedule_grows_and_caps():
    """Intervals start at initial, grow by factor, stop at max_interval."""
    policy = PollPolicy(initial=2.0, factor=1.5, max_interval=4.0, timeout=60.0)
    assert [policy.interval(k) for k in range(4)] == [2.0, 3.0, 4.0, 4.0]


def test_poll_policy_interval_stays_capped_for_very_long_polls():
    """factor**reads would overflow a float after ~1750 reads of a day-long poll: it caps."""
    policy = PollPolicy(timeout=86_400.0)
    assert policy.interval(1_800) == policy.max_interval
    assert PollPolicy(factor=1e200, max_interval=1e300).interval(2) == 1e300


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"factor": 0.5}, r"PollPolicy\.factor must be >= 1, got 0\.5"),
        ({"initial": 5.0, "max_interval": 1.0}, r"PollPolicy\.max_interval must be >= initial"),
        ({"timeout": 0}, r"PollPolicy\.timeout must be a finite number > 0, got 0"),
        ({"timeout": float("inf")}, r"PollPolicy\.timeout must be a finite number > 0"),
        ({"initial": -1.0}, r"PollPolicy\.initial must be a finite number > 0"),
        ({"initial": float("nan")}, r"PollPolicy\.initial must be a finite number > 0"),
        ({"max_interval": "15"}, r"PollPolicy\.max_interval must be a number, got str"),
        ({"factor": None}, r"PollPolicy\.factor must be a number, got NoneType"),
        ({"reads_per_job": 1}, r"PollPolicy\.reads_per_job must be > 1, got 1"),
        ({"reads_per_job": 0}, r"PollPolicy\.reads_per_job must be a finite number > 0"),
        ({"adaptive": "no"}, r"PollPolicy\.adaptive must be True or False, got 'no'"),
        ({"adaptive": 1}, r"PollPolicy\.adaptive must be True or False"),
    ],
)
def test_poll_policy_rejects_bad_values_naming_the_parameter(kwargs, message):
    """Each bad value is an InvalidInputError whose message names the parameter."""
    with pytest.raises(InvalidInputError, match=message):
        PollPolicy(**kwargs)


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (APIConnectionError("x"), True),
        (APITimeoutError("x"), True),
        (_api(ServerError, 500), True),
        (_api(ServiceUnavailableError, 455), True),
        (RateLimitError("x", code=429, http_status=429), True),
        (ProtocolError("x", body="<html>"), True),
        (_api(AuthenticationError, 401), False),
        (_api(InvalidRequestError, 422), False),
        (_api(GenerationFailedError, 501), False),
    ],
)
def test_should_retry_reads(error, retry):
    """Idempotent reads retry transient failures only, and only within the budget."""
    assert should_retry(error, 0, 3) is retry
    assert should_retry(error, 3, 3) is False


def _kie(cls, code):
    """An error answer in KIE's own envelope."""
    return cls("x", code=code, http_status=code, body=json.dumps({"code": code, "msg": "x"}))


@pytest.mark.parametrize(
    ("error", "resubmit"),
    [
        (APIConnectionError("connect refused", request_sent=False), True),
        (APITimeoutError("connect timeout", request_sent=False), True),
        (RateLimitError("x", code=429, http_status=200), True),
        (_kie(ServiceUnavailableError, 503), True),
        (_kie(ServiceUnavailableError, 455), True),
        (_api(ServiceUnavailableError, 503), False),  # a gateway's page: may have landed
        (APITimeoutError("read timeout", request_sent=True), False),
        (APIConnectionError("server disconnected", request_sent=True), False),
        (_api(ServerError, 500), False),
        (ProtocolError("x", body="garbage"), False),
    ],
)
def test_should_resubmit_only_what_never_landed(error, resubmit):
    """A submit is resent only when the first provably did not reach the service."""
    assert should_resubmit(error, 0, 3) is resubmit
    assert should_resubmit(error, 3, 3) is False


def test_retry_delay_grows_with_jitter_and_cap():
    """Backoff doubles per attempt, jitters downwards, and never passes the cap."""
    for attempt in range(10):
        delay = retry_delay(attempt)
        assert 0 < delay <= MAX_RETRY_DELAY
    assert retry_delay(0) <= 0.5
    assert retry_delay(3) > 0.5


def test_retry_delay_honours_and_caps_retry_after():
    """The server's Retry-After wins, within the cap."""
    assert retry_delay(0, 2.5) == 2.5
    assert retry_delay(0, 10_000) == MAX_RETRY_AFTER


def test_parse_retry_after_forms():
    """Seconds, an HTTP date and retry-after-ms are all understood."""
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(7, abs=1)
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "nan"}) is None


def test_read_retry_delay_grows_to_a_minute_at_the_defaults():
    """Failed reads back off from 0.5 s up to a minute, never beyond, even after thousands."""
    policy = PollPolicy()
    assert 0.375 <= policy.read_retry_delay(1) <= 0.5
    assert policy.read_retry_delay(4) > policy.read_retry_delay(1)
    assert 45.0 <= policy.read_retry_delay(2000) <= 60.0


def test_read_retry_delay_follows_a_fast_policy():
    """A policy polling every 50 ms backs off from its first interval to four of its longest."""
    policy = PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=5.0)
    assert policy.read_retry_delay(1) <= 0.01
    assert policy.read_retry_delay(50) <= 0.2


def test_read_retry_delay_honours_retry_after():
    """A Retry-After on a failed read is waited out as sent (within MAX_RETRY_AFTER)."""
    assert PollPolicy().read_retry_delay(1, retry_after=7.0) == pytest.approx(7.0)
    assert PollPolicy().read_retry_delay(1, retry_after=1e9) == pytest.approx(MAX_RETRY_AFTER)

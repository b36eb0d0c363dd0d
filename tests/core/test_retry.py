"""The one retry loop (Retry.call) on the fake clock: delays, attempts, errors, deadlines."""

import functools

import anyio
import httpx
import pytest
import respx
from conftest import API, envelope

from recraft_async._core._policy import (
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    backoff_unless_throttled,
    server_or_backoff,
    should_resubmit,
    should_retry,
)
from recraft_async._core._redact import Secret
from recraft_async._core._retry import Retry
from recraft_async._core._transport import Transport
from recraft_async.errors import (
    APIConnectionError,
    InvalidRequestError,
    JobTimeoutError,
    RateLimitError,
    ServerError,
)

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


def _server_error():
    return ServerError("down", code=500, http_status=500)


def _throttled(retry_after):
    return RateLimitError("slow", code=429, http_status=429, retry_after=retry_after)


class Flaky:
    """Fails with the given errors in turn, then answers "ok"; notes each attempt's moment."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.attempts = []  # (attempt number, anyio.current_time())

    async def __call__(self, attempt):
        """One attempt: the next error, or "ok" once none is left."""
        self.attempts.append((attempt, anyio.current_time()))
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    def moments(self):
        """Each attempt's moment, in seconds after the first."""
        start = self.attempts[0][1]
        return [at - start for _, at in self.attempts]


def _doubling(_error, attempt):
    return 2.0**attempt


async def test_a_success_is_returned_at_once():
    """A call that succeeds is made once, with attempt number 0, and nothing waits."""
    call = Flaky()
    retry = Retry(may_retry=lambda *_: True, delay=_doubling)
    assert await retry.call(call) == "ok"
    assert [n for n, _ in call.attempts] == [0]
    assert call.moments() == [0.0]


async def test_each_retry_waits_the_rules_delay_for_its_attempt():
    """Attempts are numbered from 0 and each waits delay(error, previous attempt)."""
    call = Flaky(_server_error(), _server_error(), _server_error())
    retry = Retry(may_retry=lambda *_: True, delay=_doubling)
    assert await retry.call(call) == "ok"
    assert [n for n, _ in call.attempts] == [0, 1, 2, 3]
    assert call.moments() == pytest.approx([0.0, 1.0, 3.0, 7.0])


async def test_attempts_end_at_max_retries_with_the_last_error():
    """With should_retry and max_retries=2: three attempts, then the third error is raised."""
    errors = [_server_error() for _ in range(4)]
    call = Flaky(*errors)
    retry = Retry(may_retry=functools.partial(should_retry, max_retries=2), delay=_doubling)
    with pytest.raises(ServerError) as caught:
        await retry.call(call)
    assert caught.value is errors[2]
    assert len(call.attempts) == 3


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (InvalidRequestError("bad", code=400, http_status=400), 1),
        (_server_error(), 2),
        (APIConnectionError("reset", request_sent=True), 2),
        (_throttled(None), 2),
    ],
)
async def test_only_what_the_rule_allows_is_retried(error, attempts):
    """A 400 is final for should_retry; a 5xx, a dropped connection and a 429 are retried."""
    call = Flaky(error)
    retry = Retry(may_retry=functools.partial(should_retry, max_retries=3), delay=_doubling)
    if attempts == 1:
        with pytest.raises(InvalidRequestError):
            await retry.call(call)
    else:
        assert await retry.call(call) == "ok"
    assert len(call.attempts) == attempts


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (APIConnectionError("refused", request_sent=False), 2),
        (APIConnectionError("reset", request_sent=True), 1),
        (_server_error(), 1),
        (_throttled(None), 2),
    ],
)
async def test_a_submit_rule_resends_only_what_never_landed(error, attempts):
    """Under should_resubmit only a provably unsent or refused submit gets another try."""
    call = Flaky(error)
    retry = Retry(
        may_retry=functools.partial(should_resubmit, max_retries=3),
        delay=backoff_unless_throttled,
    )
    if attempts == 1:
        with pytest.raises(type(error)):
            await retry.call(call)
    else:
        assert await retry.call(call) == "ok"
    assert len(call.attempts) == attempts


async def test_other_exceptions_are_never_retried():
    """A failure that is no RecraftError (a bug) ends the call at once, whatever the rule."""
    attempts = []

    async def broken(attempt):
        attempts.append(attempt)
        raise KeyError("bug")

    retry = Retry(may_retry=lambda *_: True, delay=_doubling)
    with pytest.raises(KeyError):
        await retry.call(broken)
    assert attempts == [0]


@pytest.mark.parametrize(("asked", "waited"), [(7.0, 7.0), (10_000.0, MAX_RETRY_AFTER)])
async def test_retry_after_is_honoured_within_its_cap(asked, waited):
    """server_or_backoff: a 429's Retry-After is the wait, capped at MAX_RETRY_AFTER."""
    call = Flaky(_throttled(asked))
    retry = Retry(may_retry=lambda *_: True, delay=server_or_backoff)
    await retry.call(call)
    assert call.moments() == pytest.approx([0.0, waited])


async def test_without_retry_after_the_backoff_is_jittered_below_its_base():
    """server_or_backoff without Retry-After: the first wait is at most INITIAL_RETRY_DELAY."""
    call = Flaky(_server_error())
    retry = Retry(may_retry=lambda *_: True, delay=server_or_backoff)
    await retry.call(call)
    assert 0.0 < call.moments()[1] <= INITIAL_RETRY_DELAY


async def test_a_429_does_not_wait_where_the_shared_budget_is_paused():
    """backoff_unless_throttled: no wait after a 429 (the budget pauses), a backoff otherwise."""
    call = Flaky(_throttled(30.0), _server_error())
    retry = Retry(may_retry=lambda *_: True, delay=backoff_unless_throttled)
    await retry.call(call)
    moments = call.moments()
    assert moments[1] == pytest.approx(0.0)
    # The second retry's backoff (attempt 1): twice the base, jittered down by at most 25 %.
    assert INITIAL_RETRY_DELAY < moments[2] - moments[1] <= 2 * INITIAL_RETRY_DELAY


async def test_waits_end_at_the_deadline_and_then_the_call_is_out_of_time():
    """A wait is cut at the deadline; a retryable failure there ends in out_of_time's error."""
    errors = [_server_error() for _ in range(5)]
    call = Flaky(*errors)
    start = anyio.current_time()
    retry = Retry(
        may_retry=lambda *_: True,
        delay=lambda *_: 4.0,
        deadline=start + 10.0,
        out_of_time=lambda error: JobTimeoutError(f"gave up after {error}", task_id="t1"),
    )
    with pytest.raises(JobTimeoutError) as caught:
        await retry.call(call)
    assert call.moments() == pytest.approx([0.0, 4.0, 8.0, 10.0])
    assert caught.value.__context__ is errors[3]


async def test_a_final_failure_at_the_deadline_is_raised_as_it_is():
    """Past the deadline, an error the rule does not retry is raised itself, not out_of_time's."""
    final = InvalidRequestError("bad", code=400, http_status=400)
    call = Flaky(_server_error(), final)
    start = anyio.current_time()
    retry = Retry(
        may_retry=lambda error, _: isinstance(error, ServerError),
        delay=lambda *_: 4.0,
        deadline=start + 1.0,
        out_of_time=lambda error: JobTimeoutError(str(error), task_id="t1"),
    )
    with pytest.raises(InvalidRequestError):
        await retry.call(call)
    assert call.moments() == pytest.approx([0.0, 1.0])


async def test_hooks_hear_every_failure_and_each_retrys_wait():
    """failed() hears every failure, the last too; retrying() each retry and its wait, first."""
    heard: list[tuple[str, object, float]] = []
    errors = [_server_error(), _server_error()]
    call = Flaky(*errors)
    retry = Retry(
        may_retry=lambda _error, attempt: attempt < 1,
        delay=_doubling,
        failed=lambda error, attempt: heard.append(("failed", error, attempt)),
        retrying=lambda error, delay: heard.append(("retrying", error, delay)),
    )
    with pytest.raises(ServerError):
        await retry.call(call)
    assert heard == [
        ("failed", errors[0], 0),
        ("retrying", errors[0], 1.0),
        ("failed", errors[1], 1),
    ]


async def test_a_given_sleep_does_the_waiting():
    """The loop waits through the sleep it is given (a poll's ends early on a callback)."""
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    call = Flaky(_server_error(), _server_error())
    retry = Retry(may_retry=lambda *_: True, delay=_doubling, sleep=sleep)
    await retry.call(call)
    assert slept == [1.0, 2.0]
    assert call.moments() == [0.0, 0.0, 0.0]


async def test_the_transport_retries_a_429_after_its_retry_after():
    """request_json (idempotent) resends a 429'd request when its Retry-After has passed."""
    moments = []
    answers = iter(
        [
            httpx.Response(429, json=envelope(None, 429, "slow"), headers={"Retry-After": "3"}),
            httpx.Response(200, json=envelope({"ok": True})),
        ]
    )

    def answer(_request):
        moments.append(anyio.current_time())
        return next(answers)

    with respx.mock(assert_all_called=True) as mock:
        mock.get(f"{API}/x").mock(side_effect=answer)
        async with httpx.AsyncClient() as http:
            transport = Transport(
                http, base_url=API, api_key=Secret("k" * 32), max_retries=2, timeout=30.0
            )
            data, _ = await transport.request_json("GET", "/x", idempotent=True)
    assert data == {"ok": True}
    assert [at - moments[0] for at in moments] == pytest.approx([0.0, 3.0])


async def test_the_transport_never_retries_what_is_not_idempotent():
    """request_json(idempotent=False) sends once and raises the first failure."""
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"{API}/x").respond(500, json=envelope(None, 500, "down"))
        async with httpx.AsyncClient() as http:
            transport = Transport(
                http, base_url=API, api_key=Secret("k" * 32), max_retries=3, timeout=30.0
            )
            with pytest.raises(ServerError):
                await transport.request_json("POST", "/x", idempotent=False)
    assert route.call_count == 1

"""One answer for one value: every public entry checks its numbers and flags the same way."""

import math
import re

import pytest

import recraft_async as ra
from recraft_async._core import _validate

KEY = "sk-test-secret-123"
IMAGE = "https://img.example/a.png"  # never fetched: every call here fails its checks first


def _client(**options):
    return ra.AsyncRecraft(api_key=KEY, **options)


def _callback(max_age):
    body = '{"code": 200, "data": {"taskId": "t1"}}'
    return ra.parse_callback(body, max_age=max_age)


# Each public entry that takes a number of seconds > 0: (parameter name, call with value).
SECONDS = {
    "AsyncRecraft(timeout)": ("timeout", lambda v: _client(timeout=v)),
    "AsyncRecraft(submit_within)": ("submit_within", lambda v: _client(submit_within=v)),
    "with_options(timeout)": ("timeout", lambda v: _client().with_options(timeout=v)),
    "Recraft(timeout)": ("timeout", lambda v: ra.Recraft(api_key=KEY, timeout=v)),
    "upscale(submit_within)": (
        "submit_within",
        lambda v: _client(dialect="recraft").upscale(IMAGE, submit_within=v),
    ),
    "remove_background(submit_within)": (
        "submit_within",
        lambda v: _client().remove_background(IMAGE, submit_within=v),
    ),
    "Rate(per)": ("Rate.per", lambda v: ra.Rate(1, per=v)),
    "ProcessingTime(median)": ("ProcessingTime.median", ra.ProcessingTime),
    "PollPolicy(initial)": (
        "PollPolicy.initial",
        lambda v: ra.PollPolicy(initial=v, max_interval=v),
    ),
    "PollPolicy(timeout)": ("PollPolicy.timeout", lambda v: ra.PollPolicy(timeout=v)),
    "RedisCoordination(lease)": (
        "RedisCoordination.lease",
        lambda v: ra.RedisCoordination("redis://127.0.0.1", namespace="acct", lease=v),
    ),
    "RedisCoordination(command_timeout)": (
        "RedisCoordination.command_timeout",
        lambda v: ra.RedisCoordination("redis://127.0.0.1", namespace="acct", command_timeout=v),
    ),
    "parse_callback(max_age)": ("max_age", _callback),
}
# Where a good value goes on to the scheduler (covered by the client's own tests).
NEED_AN_OPEN_CLIENT = {"upscale(submit_within)", "remove_background(submit_within)"}
BAD_SECONDS = [True, False, 0, -1, math.nan, math.inf, -math.inf, "1", b"1", [1]]
GOOD_SECONDS = [1, 0.5, 30, 1e-3]


def _answer(name, call, value):
    """The message of the InvalidInputError ``call(value)`` raises, without the name."""
    with pytest.raises(ra.InvalidInputError) as caught:
        call(value)
    message = str(caught.value)
    assert message.startswith(f"{name} must be "), message
    # An optional parameter says so ("... or None"); the rule is the same.
    return message[len(name) :].replace(" or None", "")


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_every_entry_refuses_a_bad_number_of_seconds_alike(value):
    """True, 0, -1, NaN, infinity and "1" get the same InvalidInputError from every entry."""
    answers = {entry: _answer(name, call, value) for entry, (name, call) in SECONDS.items()}
    assert len(set(answers.values())) == 1, answers


@pytest.mark.parametrize("value", GOOD_SECONDS, ids=repr)
@pytest.mark.parametrize("entry", [e for e in SECONDS if e not in NEED_AN_OPEN_CLIENT])
def test_every_entry_accepts_a_good_number_of_seconds(entry, value):
    """A finite number > 0, int or float, is accepted wherever seconds are asked for."""
    _, call = SECONDS[entry]
    made = call(value)
    if isinstance(made, ra.Recraft):
        made.close()


def test_a_client_keeps_its_timeout_as_a_float_wherever_it_is_given():
    """AsyncRecraft(timeout=2) and with_options(timeout=2) keep the same 2.0."""
    assert _client(timeout=2).timeout == _client().with_options(timeout=2).timeout == 2.0
    assert isinstance(_client(timeout=2).timeout, float)


def test_true_is_no_longer_one_second():
    """AsyncRecraft(timeout=True) was accepted as 1 s; it is refused now, as with_options did."""
    with pytest.raises(ra.InvalidInputError, match=r"^timeout must be a number, got bool$"):
        _client(timeout=True)
    with pytest.raises(ra.InvalidInputError, match=r"^timeout must be a number, got bool$"):
        _client().with_options(timeout=True)


INTEGERS = {
    "AsyncRecraft(max_in_flight)": ("max_in_flight", 1, lambda v: _client(max_in_flight=v)),
    "AsyncRecraft(max_retries)": ("max_retries", 0, lambda v: _client(max_retries=v)),
    "AsyncRecraft(max_queued)": ("max_queued", 1, lambda v: _client(max_queued=v)),
    "with_options(max_retries)": (
        "max_retries",
        0,
        lambda v: _client().with_options(max_retries=v),
    ),
    "Rate(n)": ("Rate.n", 1, ra.Rate),
}


@pytest.mark.parametrize("value", [True, False, 1.0, 1.5, "1", -1, math.nan])
@pytest.mark.parametrize("entry", list(INTEGERS))
def test_every_count_refuses_what_is_not_an_int_in_range(entry, value):
    """A count is an int (never a bool or a float) at least its minimum, named in the error."""
    name, minimum, call = INTEGERS[entry]
    message = re.escape(f"{name} must be an integer >= {minimum}")
    with pytest.raises(ra.InvalidInputError, match=f"^{message}"):
        call(value)


@pytest.mark.parametrize("entry", list(INTEGERS))
def test_every_count_accepts_its_minimum(entry):
    """The smallest allowed count is accepted."""
    _, minimum, call = INTEGERS[entry]
    call(minimum)


FLAGS = {
    "AsyncRecraft(tracing)": ("tracing", lambda v: _client(tracing=v)),
    "PollPolicy(adaptive)": ("PollPolicy.adaptive", lambda v: ra.PollPolicy(adaptive=v)),
    "PollPolicy(callback_first)": (
        "PollPolicy.callback_first",
        lambda v: ra.PollPolicy(callback_first=v),
    ),
    "RedisCoordination(allow_volatile)": (
        "RedisCoordination.allow_volatile",
        lambda v: ra.RedisCoordination("redis://127.0.0.1", namespace="a", allow_volatile=v),
    ),
}


@pytest.mark.parametrize("value", [1, 0, "yes", "False", 1.0])
@pytest.mark.parametrize("entry", list(FLAGS))
def test_every_flag_is_true_or_false_never_a_number(entry, value):
    """A flag refuses 1, 0 and strings alike, naming the parameter."""
    name, call = FLAGS[entry]
    with pytest.raises(ra.InvalidInputError, match=f"^{re.escape(name)} must be True"):
        call(value)


@pytest.mark.parametrize("value", [True, -1, math.nan, math.inf, "1"], ids=repr)
@pytest.mark.anyio
async def test_shutdown_grace_follows_the_same_rule_with_zero_allowed(value):
    """shutdown(grace) takes a finite number >= 0, checked as every other number."""
    with pytest.raises(ra.InvalidInputError, match=r"^grace must be a (finite )?number"):
        await _client().shutdown(value)
    await _client().shutdown(0)


@pytest.mark.parametrize("value", [True, 0, -1, math.nan, math.inf, "1"], ids=repr)
@pytest.mark.anyio
async def test_download_checks_its_deadline_and_size_before_anything(value, tmp_path):
    """download(deadline, max_bytes) are checked first, even on a client not open."""
    record = ra.TaskRecord("t1", ra.TaskState.SUCCESS, (IMAGE,))
    result = ra.Result("t1", ra.Operation.UPSCALE, (IMAGE,), None, None, record)
    with pytest.raises(ra.InvalidInputError, match=r"^deadline must be"):
        await _client().download(result, tmp_path, deadline=value)
    with pytest.raises(ra.InvalidInputError, match=r"^max_bytes must be an integer >= 1"):
        await _client().download(result, tmp_path, max_bytes=value)


def test_the_rules_refuse_what_they_name():
    """Each rule returns the value it accepts (numbers as floats) and refuses the rest."""
    assert _validate.positive("x", 2) == 2.0
    assert _validate.non_negative("x", 0) == 0.0
    assert _validate.optional_positive("x", None) is None
    assert _validate.optional_integer("x", None, minimum=1) is None
    assert _validate.optional_boolean("x", None) is None
    with pytest.raises(ra.InvalidInputError, match=r"^x must be a number or None, got bool$"):
        _validate.optional_positive("x", value=True)
    with pytest.raises(ra.InvalidInputError, match=r"^x must be a finite number >= 0, got -1$"):
        _validate.non_negative("x", -1)

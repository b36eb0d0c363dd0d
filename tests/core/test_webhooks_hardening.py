"""Callbacks under attack: replays, hostile timestamps, unsigned bodies, untrusted contents."""

import functools
import json
import time

import anyio
import httpx
import pytest
from conftest import (
    MARKET_READ,
    MARKET_SUBMIT,
    SLOW_POLL,
    envelope,
    market_record,
    signature_headers,
    submitted,
    wait_until,
)

import recraft_async as ra
from recraft_async._core._webhooks import DEFAULT_MAX_AGE, ReplayGuard, verified_task_id

KEY = "whk-test"
NOW = 1_760_000_000.0
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
BODY = json.dumps(market_record("t1"))


_signed = functools.partial(signature_headers, key=KEY)  # timestamped now unless told


def _verify(headers, guard, now=NOW, body=BODY):
    return verified_task_id(body, headers, webhook_key=KEY, replays=guard, now=now)


# --- replays --------------------------------------------------------------------------


def test_second_delivery_of_the_same_callback_is_a_replay():
    """The same task id, timestamp and signature twice: the second is WebhookReplayError."""
    guard = ReplayGuard()
    headers = _signed(at=NOW)
    assert _verify(headers, guard) == "t1"
    with pytest.raises(ra.WebhookReplayError, match="already received"):
        _verify(headers, guard, now=NOW + 1)
    # A new delivery of the same task (its own timestamp and signature) is accepted.
    assert _verify(_signed(at=NOW + 2), guard, now=NOW + 2) == "t1"


def test_replay_is_a_verification_error():
    """WebhookReplayError is a WebhookVerificationError: one except clause refuses both."""
    assert issubclass(ra.WebhookReplayError, ra.WebhookVerificationError)
    assert issubclass(ra.WebhookReplayError, ra.RecraftError)


def test_forged_callback_is_not_remembered():
    """A callback that fails its signature leaves the replay memory untouched."""
    guard = ReplayGuard()
    with pytest.raises(ra.WebhookVerificationError, match="does not match"):
        _verify(_signed(at=NOW, key="forged"), guard)
    assert len(guard) == 0


def test_replay_memory_forgets_callbacks_past_the_window():
    """Entries leave the memory once their timestamp leaves the freshness window."""
    guard = ReplayGuard()
    for i in range(5):
        _verify(_signed(task_id=f"t{i}", at=NOW), guard, body=_body(f"t{i}"))
    assert len(guard) == 5
    later = NOW + DEFAULT_MAX_AGE + 1
    _verify(_signed(at=later), guard, now=later)
    assert len(guard) == 1


def test_replay_memory_is_bounded():
    """Past max_entries the entry nearest its expiry is dropped first: memory stays bounded."""
    guard = ReplayGuard(max_entries=3)
    for i in range(10):
        stamp = str(int(NOW) - 100 + i)
        _verify(_signed(task_id=f"t{i}", at=stamp), guard, body=_body(f"t{i}"))
    assert len(guard) == 3
    # The newest is still remembered; the oldest was dropped (a repeat costs one read).
    newest = _signed(task_id="t9", at=NOW - 91)
    with pytest.raises(ra.WebhookReplayError):
        _verify(newest, guard, body=_body("t9"))
    assert _verify(_signed(task_id="t0", at=NOW - 100), guard, body=_body("t0"))


def test_replay_memory_needs_room_for_one():
    """A replay memory of no entries is refused as InvalidInputError."""
    with pytest.raises(ra.InvalidInputError):
        ReplayGuard(max_entries=0)


def _body(task_id):
    return json.dumps(market_record(task_id))


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_replayed_callback_is_refused_and_reads_nothing(kie, make_client):
    """A client with a key refuses a callback's second delivery; a fresh one wakes the job."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).mock(
        side_effect=[
            httpx.Response(200, json=market_record("t1", state="generating", urls=())),
            httpx.Response(200, json=market_record("t1")),
        ]
    )
    async with make_client(webhook_key=KEY, poll=SLOW_POLL) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        first = _signed(at=time.time() - 1)
        assert client.handle_callback(BODY, first) is job
        await wait_until(lambda: reads.call_count >= 1)
        with pytest.raises(ra.WebhookReplayError):
            client.handle_callback(BODY, first)
        await anyio.sleep(0.05)
        assert reads.call_count == 1  # the replay woke nothing
        assert not job.done()
        assert client.handle_callback(BODY, _signed()) is job
        with anyio.fail_after(5):
            await job
    assert reads.call_count == 2


# --- timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "inf",
        "-inf",
        "nan",
        "NaN",
        "1e400",
        "1.76e9",
        "-1760000000",
        "+1760000000",
        "0x68e7ef80",
        " 1760000000",
        "1760000000 ",
        "1760000000\n",
        "1_760_000_000",
        "١٧٦٠٠٠٠٠٠٠",  # Arabic-Indic digits: float() reads them
        "1760000000.",
        ".5",
        "9" * 400,
    ],
)
def test_malformed_timestamps_are_refused(timestamp):
    """Only plain digits (optionally a fraction) are a timestamp, correctly signed or not."""
    with pytest.raises(ra.WebhookVerificationError, match="not a number of seconds"):
        ra.parse_callback(BODY, _signed(at=timestamp), webhook_key=KEY, now=NOW)


@pytest.mark.parametrize(
    "timestamp",
    [
        str(int(NOW + DEFAULT_MAX_AGE + 1)),  # from the future
        str(int(NOW - DEFAULT_MAX_AGE - 1)),  # stale
        "0",
        str(int(NOW * 1000)),  # milliseconds: KIE documents seconds
    ],
)
def test_timestamps_outside_the_window_are_refused(timestamp):
    """A timestamp further than max_age from now, either way, is refused."""
    with pytest.raises(ra.WebhookVerificationError, match="outside the allowed window"):
        ra.parse_callback(BODY, _signed(at=timestamp), webhook_key=KEY, now=NOW)


@pytest.mark.parametrize("timestamp", ["1760000000", "1760000299", "1759999701.25"])
def test_documented_and_fractional_timestamps_are_accepted(timestamp):
    """Whole seconds as KIE documents them, and a fraction, within the window verify."""
    callback = ra.parse_callback(BODY, _signed(at=timestamp), webhook_key=KEY, now=NOW)
    assert callback.task_id == "t1"


@pytest.mark.parametrize("max_age", [float("inf"), float("nan"), 0, -1.0, True, "300"])
def test_absurd_max_age_is_refused(max_age):
    """A freshness window that is not a finite positive number is InvalidInputError."""
    with pytest.raises(ra.InvalidInputError, match="max_age"):
        ra.parse_callback(BODY, _signed(), webhook_key=KEY, max_age=max_age)


# --- unsigned and untrusted bodies ------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.fake_clock
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Webhook-Timestamp": str(int(time.time()))},
        {"X-Webhook-Signature": _signed()["X-Webhook-Signature"]},
    ],
)
async def test_unsigned_callback_is_refused_with_a_key(kie, make_client, headers):
    """With a key, an unsigned callback raises, wakes nothing and is not remembered."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with make_client(webhook_key=KEY, poll=SLOW_POLL) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        with pytest.raises(ra.WebhookVerificationError, match="not signed"):
            client.handle_callback(BODY, headers)
        await anyio.sleep(0.05)
        assert reads.call_count == 0
        assert len(client._replays) == 0
        assert client.handle_callback(BODY, _signed()) is job
        with anyio.fail_after(5):
            await job
    assert reads.call_count == 1


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_signature_is_checked_before_the_record_is_read(kie, make_client):
    """handle_callback never reads the record: forged fails its signature, signed wakes the job."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).respond(json=market_record("t1"))
    broken = json.dumps({"code": 200, "data": {"taskId": "t1", "successFlag": "no-such-flag"}})
    async with make_client(webhook_key=KEY, poll=SLOW_POLL) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        with pytest.raises(ra.WebhookVerificationError):
            client.handle_callback(broken, _signed(key="forged"))
        assert client.handle_callback(broken, _signed()) is job
        with anyio.fail_after(5):
            await job


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_handle_callback_returns_the_job_never_the_body(kie, make_client):
    """The return is the woken Job; the body's success and URL are not believed."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).mock(
        side_effect=[
            httpx.Response(200, json=market_record("t1", state="generating", urls=())),
            httpx.Response(200, json=market_record("t1")),
        ]
    )
    lie = json.dumps(market_record("t1", urls=("https://evil.test/x.png",)))
    async with make_client(webhook_key=KEY, poll=SLOW_POLL) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        woken = client.handle_callback(lie, _signed())
        assert woken is job
        assert not isinstance(woken, ra.Callback)
        await wait_until(lambda: reads.call_count >= 1)
        assert not job.done()  # the status read said processing, whatever the body said
        assert client.handle_callback(lie, _signed(at=time.time() - 1)) is job
        with anyio.fail_after(5):
            result = await job
    assert result.url == "https://cdn.test/o.png"
    assert "evil" not in repr(result)


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_callback_for_a_task_not_held_is_acknowledged_without_a_read(kie, make_client):
    """A verified callback for a task this client does not poll returns None and reads nothing."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with make_client(webhook_key=KEY, poll=SLOW_POLL) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        other = json.dumps(market_record("elsewhere"))
        assert client.handle_callback(other, _signed(task_id="elsewhere")) is None
        await anyio.sleep(0.05)
        assert reads.call_count == 0
        job.cancel()
    assert reads.call_count == 0


@pytest.mark.anyio
async def test_callback_for_an_unknown_task_reads_nothing_from_the_emulator():
    """Against the emulator: an unknown task's callback returns None and costs no status read."""
    from conftest import emulator_client  # noqa: PLC0415

    from recraft_async.testing import KieEmulator, sample_images  # noqa: PLC0415 - an extra

    emulator = KieEmulator(time_scale=0.001, webhook_key=KEY)
    url = emulator.add_image(*sample_images()[0])
    async with emulator, emulator_client(emulator, webhook_key=KEY, poll=SLOW_POLL) as client:
        job = await submitted(client.upscale(url))
        body = json.dumps({"taskId": "nobody", "code": 200, "data": {"task_id": "nobody"}})
        assert client.handle_callback(body, _signed(task_id="nobody")) is None
        await anyio.sleep(0.05)
        assert emulator.stats.status_reads == 0
        job.cancel()
    assert emulator.stats.status_reads == 0

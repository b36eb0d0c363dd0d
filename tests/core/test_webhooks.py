"""Callbacks: parsing, and signatures checked in constant time with a freshness window."""

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
    emulator_client,
    envelope,
    market_record,
    signature_headers,
    submitted,
    wait_until,
)

import recraft_async as ra

KEY = "whk-test"
NOW = 1_760_000_000.0


_signed = functools.partial(signature_headers, key=KEY, at=NOW)


def test_unsigned_callback_parses_without_a_key():
    """Without a webhook key the body is parsed into a Callback with its TaskRecord."""
    callback = ra.parse_callback(json.dumps(market_record("t1")).encode())
    assert callback.task_id == "t1"
    assert callback.record is not None
    assert callback.record.state is ra.TaskState.SUCCESS
    assert callback.record.result_urls == ("https://cdn.test/o.png",)


def test_signed_callback_verifies():
    """A correctly signed, fresh callback is accepted."""
    task = ra.parse_callback(
        json.dumps(market_record("t1")), _signed(), webhook_key=KEY, now=NOW + 10
    )
    assert task.task_id == "t1"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "not signed"),
        (_signed(key="other"), "does not match"),
        (_signed(task_id="t2"), "does not match"),
        (_signed(at=NOW - 3600), "window"),
        ({"X-Webhook-Timestamp": "soon", "X-Webhook-Signature": "x"}, "not a number of seconds"),
    ],
)
def test_bad_signatures_are_refused(headers, why):
    """Missing, forged, replayed or stale signatures raise WebhookVerificationError."""
    with pytest.raises(ra.WebhookVerificationError, match=why):
        ra.parse_callback(json.dumps(market_record("t1")), headers, webhook_key=KEY, now=NOW)


def test_known_signature_vector():
    """The signature is base64 of HMAC-SHA256 over 'taskId.timestamp'."""
    assert ra.webhook_signature("k", "t", "1") == "/v5j7dZAyj30RlWjar58XuXH3rwsWZDAbakz0ozhgM8="


def test_callback_with_a_bad_body_is_a_protocol_error():
    """A callback body that is not JSON raises ProtocolError with the body."""
    with pytest.raises(ra.ProtocolError) as caught:
        ra.parse_callback(b"<html>")
    assert caught.value.body == "<html>"


UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


def _slow_client(make_client, **kwargs):
    return make_client(poll=SLOW_POLL, **kwargs)


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_callback_wakes_its_job_for_one_read(kie, make_client):
    """A callback makes the waiting job read its status at once, long before its schedule."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with _slow_client(make_client) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        woken = client.handle_callback(json.dumps(market_record("t1")).encode(), {})
        with anyio.fail_after(5):
            result = await job
    assert woken is job
    assert result.url == "https://cdn.test/o.png"
    assert reads.call_count == 1


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_callback_wakes_every_job_polling_its_task(kie, make_client):
    """Two jobs resuming one task: a callback wakes both, long before their schedule."""
    finished = False

    def read(_request):
        return httpx.Response(
            200,
            json=market_record("t1")
            if finished
            else market_record("t1", state="generating", urls=()),
        )

    kie.get(READ).mock(side_effect=read)
    async with _slow_client(make_client) as client:
        first, second = client.resume("t1", "upscale"), client.resume("t1", "upscale")
        await anyio.sleep(1)  # both poll now, their next reads 30 s away
        finished = True
        assert client.handle_callback(json.dumps(market_record("t1"))) in (first, second)
        with anyio.fail_after(5):
            await first
            await second


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_badly_signed_callback_is_refused_and_reads_nothing(kie, make_client):
    """With a webhook key, a forged callback raises and wakes no job."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with _slow_client(make_client, webhook_key=KEY) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        with pytest.raises(ra.WebhookVerificationError):
            client.handle_callback(
                json.dumps(market_record("t1")), _signed(key="forged", at=time.time())
            )
        client.handle_callback(json.dumps(market_record("t1")), _signed(at=time.time()))
        with anyio.fail_after(5):
            await job
    assert reads.call_count == 1


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_callback_for_an_unknown_task_is_harmless(kie, make_client):
    """A callback for a task this client does not poll is acknowledged: None, and no read."""
    async with make_client() as client:
        woken = client.handle_callback(json.dumps(market_record("elsewhere")))
    assert woken is None
    assert not kie.calls


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_early_callback_keeps_polling(kie, make_client):
    """If the read after a callback still says processing, the job goes on polling."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).mock(
        side_effect=[
            httpx.Response(200, json=market_record("t1", state="generating", urls=())),
            httpx.Response(200, json=market_record("t1")),
        ]
    )
    async with _slow_client(make_client) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        client.handle_callback(json.dumps(market_record("t1")))
        await wait_until(lambda: reads.call_count >= 1)
        assert not job.done()
        client.handle_callback(json.dumps(market_record("t1")))
        with anyio.fail_after(5):
            await job
    assert reads.call_count == 2


@pytest.mark.anyio
@pytest.mark.parametrize("shape", ["both", "market", "verification"])
async def test_each_documented_callback_shape_wakes_its_job(shape):
    """The emulator's signed callbacks, in each documented shape, wake a market job for one read."""
    from recraft_async.testing import KieEmulator, sample_images  # noqa: PLC0415 - an extra

    opened: list[ra.AsyncRecraft] = []

    def deliver(request):
        opened[0].handle_callback(request.content, request.headers)
        return httpx.Response(200)

    emulator = KieEmulator(
        time_scale=0.001,
        webhook_key=KEY,
        callback_shape=shape,
        callback_transport=httpx.MockTransport(deliver),
    )
    url = emulator.add_image(*sample_images()[0])
    async with (
        emulator,
        emulator_client(emulator, webhook_key=KEY, poll=SLOW_POLL) as client,
    ):
        opened.append(client)
        # A hang guard far below the 30 s schedule: only the callback can wake the read.
        with anyio.fail_after(20):
            result = await client.upscale(url, callback_url="http://127.0.0.1:9/kie")
    [task] = emulator.task_info()
    assert result.task_id == task.task_id
    assert task.reads == 1
    assert emulator.stats.callbacks_delivered >= 1


@pytest.mark.anyio
async def test_emulator_callbacks_drive_jobs_and_a_lost_one_is_read_for_safety():
    """With the emulator's callbacks, a lost one is found by the job's one safety read."""
    from recraft_async.testing import (  # noqa: PLC0415 - an extra
        Duration,
        Fault,
        KieEmulator,
        sample_images,
    )

    opened: list[ra.AsyncRecraft] = []

    def deliver(request):
        opened[0].handle_callback(request.content, request.headers)
        return httpx.Response(200)

    emulator = KieEmulator(
        time_scale=1.0,
        duration=Duration.fixed(0.05),
        callback_transport=httpx.MockTransport(deliver),
    )
    emulator.faults.next("callback", Fault.lost_callback(), None)
    url = emulator.add_image(*sample_images()[0])
    poll = ra.PollPolicy(timeout=30.0, prior=ra.ProcessingTime(0.1, sigma=0.3))
    async with emulator, emulator_client(emulator, poll=poll) as client:
        opened.append(client)
        lost = client.upscale(url, callback_url="http://127.0.0.1:9/kie")
        kept = client.upscale(url, callback_url="http://127.0.0.1:9/kie")
        with anyio.fail_after(20):  # a hang guard only
            await lost
            await kept
    reads = {task.task_id: task.reads for task in emulator.task_info()}
    assert reads == {lost.task_id: 1, kept.task_id: 1}
    assert emulator.stats.callbacks_lost == 1
    assert emulator.stats.callbacks_delivered == 1

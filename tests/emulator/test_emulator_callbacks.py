"""Callbacks: the final record POSTed to a small receiver, signed and retried.

The receiver listens on a loopback port where the default transport (loopback only) is
the point; elsewhere it is an ASGI app reached in-process (``callback_transport``), and
the test runs on the fake clock with the emulator on the loop's: retry delays and late
callbacks pass in virtual time.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import threading
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")
import uvicorn
from conftest import EMULATOR_AUTH, Receiver, emulator_with_image, wait_until

from recraft_async import webhook_signature
from recraft_async.testing import Duration, Fault, KieEmulator
from recraft_async.testing._server import loopback_socket, url_of

pytestmark = pytest.mark.anyio
# Tasks of 20 ms, callbacks retried after 10 ms.
make = functools.partial(
    emulator_with_image, duration=Duration.fixed(0.02), callback_retry_delays=(0.01, 0.01)
)


def in_process(statuses: tuple[int, ...] = (), **options: Any) -> tuple[KieEmulator, str, Receiver]:
    """``make(**options)`` on the loop's clock, delivering to an in-process receiver.

    The receiver answers ``statuses`` first and stamps arrivals with the emulator's clock;
    its hook is ``HOOK``.
    """
    emu: KieEmulator
    # A lambda, not the bound method: the emulator is made below, once its receiver is.
    receiver = Receiver(statuses, clock=lambda: emu.service.clock.wall())  # noqa: PLW0108
    transport = httpx.ASGITransport(app=receiver.app)
    emu, url = make(clock="loop", callback_transport=transport, **options)
    return emu, url, receiver


HOOK = "http://receiver.invalid/hook"  # reached through callback_transport only


@contextlib.asynccontextmanager
async def listening(receiver: Receiver):
    """Serve the receiver on a loopback port in a thread; yields its hook URL."""
    sock = loopback_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(receiver.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    await wait_until(lambda: server.started)
    try:
        yield f"{url_of(sock)}/hook"
    finally:
        server.should_exit = True
        await anyio.to_thread.run_sync(thread.join)
        sock.close()


async def submit(
    emu: KieEmulator, body: dict[str, Any], path: str = "/api/v1/recraft/upscale"
) -> str:
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(path, json=body)
    return str(answer.json()["data"]["taskId"])


@pytest.mark.slow
async def test_callback_carries_the_final_record_and_a_valid_signature():
    """The envelope with the success record, signed as HMAC-SHA256(taskId.timestamp)."""
    receiver = Receiver()
    emu, url = make(webhook_key="whsec")
    async with listening(receiver) as hook, emu:
        task_id = await submit(emu, {"image_url": url, "callBackUrl": hook})
        await receiver.wait_for(1)
        # The receiver records before it answers; the count follows the answer.
        await wait_until(lambda: emu.stats.callbacks_delivered == 1)
    headers, body, arrived = receiver.calls[0]
    assert body["code"] == 200
    assert body["data"]["taskId"] == task_id
    assert body["data"]["successFlag"] == 1
    # The default shape adds the webhook-verification page's fields to the seed record.
    assert body["taskId"] == body["data"]["task_id"] == task_id
    assert body["data"]["callbackType"] == "task_completed"
    assert body["data"]["response"]["resultUrls"][0].endswith(f"{task_id}.png")
    timestamp = headers["x-webhook-timestamp"]
    assert abs(int(timestamp) - arrived) < 5
    expected = base64.b64encode(
        hmac.new(b"whsec", f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    ).decode()
    assert hmac.compare_digest(headers["x-webhook-signature"], expected)
    assert webhook_signature("whsec", task_id, timestamp) == expected
    assert arrived >= emu.task_info()[0].finished
    assert emu.stats.callbacks_sent == emu.stats.callbacks_delivered == 1


@pytest.mark.fake_clock
async def test_unsigned_without_a_webhook_key_and_failures_say_501():
    """No key, no signature headers; a failed task's callback has code 501 and status 2."""
    emu, url, receiver = in_process()
    emu.faults.next("task", Fault.task_failed("nope"))
    async with emu:
        await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        await receiver.wait_for(1)
    headers, body, _ = receiver.calls[0]
    assert "x-webhook-signature" not in headers
    assert (body["code"], body["msg"]) == (501, "nope")
    assert body["data"]["successFlag"] == 2


@pytest.mark.fake_clock
async def test_market_task_callback_uses_the_market_record():
    """A createTask callback carries the market page's message, state and resultJson."""
    emu, url, receiver = in_process()
    async with emu:
        task_id = await submit(
            emu,
            {"model": "recraft/remove-background", "input": {"image": url}, "callBackUrl": HOOK},
            "/api/v1/jobs/createTask",
        )
        await receiver.wait_for(1)
    body = receiver.calls[0][1]
    assert (body["code"], body["msg"]) == (200, "Playground task completed successfully.")
    data = body["data"]
    assert data["taskId"] == data["task_id"] == task_id
    assert data["state"] == "success"
    assert "resultUrls" in data["resultJson"]
    assert data["consumeCredits"] == 1
    assert data["remainedCredits"] == 100_000 - 1


@pytest.mark.fake_clock
async def test_failed_deliveries_are_retried():
    """Two 500s then a 200: three attempts, each retry its delay (10 ms) after the last."""
    emu, url, receiver = in_process((500, 500))
    async with emu:
        await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        await receiver.wait_for(3)
        await wait_until(lambda: emu.stats.callbacks_delivered == 1)
    arrivals = [at for _, _, at in receiver.calls]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert gaps == [pytest.approx(0.01, abs=1e-3)] * 2
    assert emu.stats.callbacks_sent == 3
    assert emu.stats.callbacks_delivered == 1
    assert emu.stats.callbacks_failed == 0


@pytest.mark.fake_clock
async def test_delivery_gives_up_after_the_retries():
    """A receiver that always fails gets 1 + len(retry delays) attempts."""
    emu, url, receiver = in_process((500,) * 10)
    async with emu:
        await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        await receiver.wait_for(3)
        await wait_until(lambda: emu.stats.callbacks_failed > 0)
    assert len(receiver.calls) == 3
    assert emu.callbacks_pending == 0


async def test_unreachable_receiver_counts_as_a_failed_delivery():
    """A closed loopback port: the attempts fail and the emulator gives up."""
    sock = loopback_socket("127.0.0.1", 0)
    dead = f"{url_of(sock)}/hook"
    sock.close()
    emu, url = make()
    async with emu:
        await submit(emu, {"image_url": url, "callBackUrl": dead})
        await wait_until(lambda: emu.stats.callbacks_failed > 0)
    assert emu.stats.callbacks_sent == 3


@pytest.mark.fake_clock
async def test_duplicate_and_late_callbacks():
    """A duplicate fault sends the record twice; a late one waits its seconds."""
    emu, url, receiver = in_process(not_ready_for=0.0)  # due as the task ends
    emu.faults.next("callback", Fault.duplicate_callback(2), Fault.late_callback(0.3))
    async with emu:
        twice = await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        late = await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        await receiver.wait_for(3)
    ids = [body["data"]["taskId"] for _, body, _ in receiver.calls]
    assert ids.count(twice) == 2
    assert ids.count(late) == 1
    finished = {info.task_id: info.finished for info in emu.task_info()}
    late_arrival = next(at for _, body, at in receiver.calls if body["data"]["taskId"] == late)
    assert late_arrival == pytest.approx(finished[late] + 0.3, abs=1e-3)


@pytest.mark.fake_clock
async def test_lost_callback_is_never_delivered():
    """A lost fault drops that task's callback for good; the next task's arrives."""
    emu, url, receiver = in_process()
    emu.faults.next("callback", Fault.lost_callback())
    async with emu:
        lost = await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        kept = await submit(emu, {"image_url": url, "callBackUrl": HOOK})
        await receiver.wait_for(1)
        await wait_until(lambda: emu.callbacks_pending == 0)
    ids = [body["data"]["taskId"] for _, body, _ in receiver.calls]
    assert ids == [kept]
    assert lost not in ids
    assert emu.stats.callbacks_lost == 1


async def test_peak_reads_per_second_counts_the_busiest_second():
    """Three reads within one scaled second count as a peak of three."""
    emu, url = make(time_scale=1.0)
    async with emu:
        task_id = await submit(emu, {"image_url": url})
        async with emu.http_client(headers=EMULATOR_AUTH) as client:
            for _ in range(3):
                await client.get("/api/v1/recraft/upscale/record-info", params={"taskId": task_id})
    assert emu.stats.peak_reads_per_second == 3


async def test_callbacks_only_go_to_loopback_addresses():
    """A callback URL outside this machine is never contacted."""
    emu, url = make(duration=Duration.fixed(0))
    async with emu:
        await submit(emu, {"image_url": url, "callBackUrl": "http://example.invalid/hook"})
        await wait_until(lambda: emu.stats.callbacks_refused > 0)
    assert emu.stats.callbacks_sent == 0


async def test_callbacks_in_process_through_a_custom_transport():
    """With callback_transport the receiver can be an ASGI app in the same loop: no socket."""
    receiver = Receiver()
    emu, url = make(callback_transport=httpx.ASGITransport(app=receiver.app), webhook_key="k")
    async with emu:
        task_id = await submit(emu, {"image_url": url, "callBackUrl": "http://receiver/hook"})
        await receiver.wait_for(1)
    headers, body, _ = receiver.calls[0]
    assert body["data"]["taskId"] == task_id
    assert headers["x-webhook-signature"] == webhook_signature(
        "k", task_id, headers["x-webhook-timestamp"]
    )


@pytest.mark.fake_clock
async def test_callbacks_wait_until_the_emulator_runs():
    """Outside ``async with`` nothing is sent; entering it delivers what fell due."""
    emu, url, receiver = in_process(duration=Duration.fixed(0))
    await submit(emu, {"image_url": url, "callBackUrl": HOOK})
    await anyio.sleep(60)
    assert receiver.calls == []
    assert emu.callbacks_pending == 1
    async with emu:
        await receiver.wait_for(1)


@pytest.mark.fake_clock
async def test_callbacks_scheduled_after_the_run_wait_for_the_next():
    """A task submitted after ``async with`` ended keeps its callback for the next run."""
    emu, url, receiver = in_process(duration=Duration.fixed(0))
    async with emu:
        pass
    await submit(emu, {"image_url": url, "callBackUrl": HOOK})
    assert emu.callbacks_pending == 1
    async with emu:
        await receiver.wait_for(1)


async def test_an_emulator_runs_once_at_a_time():
    """Entering a running emulator again is an error."""
    emu, _ = make()
    async with emu:
        with pytest.raises(RuntimeError, match="already running"):
            await emu.__aenter__()

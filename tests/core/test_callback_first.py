"""Callback-first waiting: a job with a callback_url waits for it, with sparse safety reads."""

import json

import anyio
import httpx
import pytest
from conftest import (
    FAST_POLL,
    MARKET_READ,
    MARKET_STATE,
    MARKET_SUBMIT,
    envelope,
    market_record,
    submitted,
    wait_until,
)

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
HOOK = "https://app.test/kie"
# Tasks of about 1 s: the safety read comes where 99 % of them have finished.
PRIOR = ra.ProcessingTime(1.0, sigma=0.5)


def _poll(**changes):
    return ra.PollPolicy(
        initial=FAST_POLL.initial,
        factor=FAST_POLL.factor,
        max_interval=FAST_POLL.max_interval,
        timeout=60.0,
        prior=changes.pop("prior", PRIOR),
        **changes,
    )


async def test_callback_first_job_reads_once_when_its_callback_arrives(kie, make_client):
    """No status read while the callback is awaited; one confirming read when it comes."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with make_client(poll=_poll()) as client:
        job = await submitted(client.upscale("https://i.test/a.png", callback_url=HOOK))
        await anyio.sleep(1.0)  # the fast schedule would have read about 20 times by now
        assert reads.call_count == 0
        assert client.handle_callback(json.dumps(market_record("t1"))) is job
        with anyio.fail_after(5):
            await job
    assert reads.call_count == 1


async def test_safety_read_finds_a_job_whose_callback_was_lost(kie, make_client):
    """Without its callback, the job is read at the 99th percentile of the prior, and ends."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with make_client(poll=_poll()) as client:
        started = anyio.current_time()
        result = await client.upscale("https://i.test/a.png", callback_url=HOOK)
        waited = anyio.current_time() - started
    assert result.task_id == "t1"
    assert reads.call_count == 1
    assert waited >= PRIOR.quantile(0.99) - 0.01  # not earlier: the callback had its chance


async def test_safety_reads_grow_after_the_first(kie, make_client):
    """A task still running at the safety read is read again at growing moments."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    moments: list[float] = []

    def answer(_request):
        moments.append(anyio.current_time())
        flag = 1 if len(moments) == 3 else 0
        return httpx.Response(200, json=market_record("t1", state=MARKET_STATE[flag]))

    kie.get(READ).mock(side_effect=answer)
    async with make_client(poll=_poll(callback_growth=3.0)) as client:
        started = anyio.current_time()
        await client.upscale("https://i.test/a.png", callback_url=HOOK)
    first = PRIOR.quantile(0.99)
    offsets = [at - started for at in moments]
    assert len(offsets) == 3
    assert offsets[0] == pytest.approx(first, rel=0.05)
    assert offsets[1] == pytest.approx(3 * first, rel=0.05)
    assert offsets[2] == pytest.approx(9 * first, rel=0.05)


async def test_callback_quantile_moves_the_safety_read(kie, make_client):
    """callback_quantile=0.5 reads at the prior's median instead of its 99th percentile."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).respond(json=market_record("t1"))
    async with make_client(poll=_poll(callback_quantile=0.5)) as client:
        started = anyio.current_time()
        await client.upscale("https://i.test/a.png", callback_url=HOOK)
        waited = anyio.current_time() - started
    assert waited == pytest.approx(PRIOR.median, rel=0.05)


async def test_callback_first_false_polls_on_the_normal_schedule(kie, make_client):
    """With callback_first=False a job with a callback_url polls as any other."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1", state=MARKET_STATE[0]))
    async with make_client(poll=_poll(callback_first=False, prior=None)) as client:
        job = await submitted(client.upscale("https://i.test/a.png", callback_url=HOOK))
        await anyio.sleep(1.0)
        assert reads.call_count >= 2
        job.cancel()


async def test_job_without_a_callback_url_polls_as_before(kie, make_client):
    """Only jobs with a callback_url wait for one."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json=market_record("t1", state=MARKET_STATE[0]))
    async with make_client(poll=_poll(prior=None)) as client:
        job = await submitted(client.upscale("https://i.test/a.png"))
        await anyio.sleep(1.0)
        assert reads.call_count >= 2
        job.cancel()


async def test_callback_before_the_submit_answer_still_wakes_the_job(kie, make_client):
    """A callback that overtakes its submit's answer is kept: the job reads at once."""
    opened: list[ra.AsyncRecraft] = []

    def submit(_request):
        # A very fast task: its callback is handled before the submit's answer arrives.
        assert opened[0].handle_callback(json.dumps(market_record("t1"))) is None
        return httpx.Response(200, json=envelope({"taskId": "t1"}))

    kie.post(UPSCALE).mock(side_effect=submit)
    reads = kie.get(READ).respond(json=market_record("t1"))
    async with make_client(poll=_poll()) as client:
        opened.append(client)
        started = anyio.current_time()
        await client.upscale("https://i.test/a.png", callback_url=HOOK)
        waited = anyio.current_time() - started
    assert reads.call_count == 1
    assert waited < PRIOR.quantile(0.99) / 2  # woken, not found by the safety read


async def test_unknown_callbacks_are_remembered_only_up_to_a_bound(make_client):
    """Callbacks for tasks nobody polls cannot grow the client's memory without end."""
    from recraft_async._core._poll import _EARLY_HINTS  # noqa: PLC0415 - the bound under test

    async with make_client() as client:
        for index in range(_EARLY_HINTS + 10):
            assert client.handle_callback(json.dumps(market_record(f"x{index}"))) is None
        poller = client._life.scheduler._poller
        assert len(poller._early) == _EARLY_HINTS
        await wait_until(lambda: True)


async def test_jobs_waiting_for_callbacks_count_as_still_running(kie, make_client):
    """The first callbacks' fast tasks do not pass for all: waiting jobs are censored."""
    made: list[str] = []

    def submit(_request):
        made.append(f"t{len(made)}")
        return httpx.Response(200, json=envelope({"taskId": made[-1]}))

    kie.post(UPSCALE).mock(side_effect=submit)
    # Each task's record says it took 1 s (conftest's market_record()).
    kie.get(READ).mock(
        side_effect=lambda r: httpx.Response(200, json=market_record(r.url.params["taskId"]))
    )
    async with make_client(poll=_poll(prior=ra.ProcessingTime(60.0))) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png", callback_url=HOOK) for i in range(10)]
        await wait_until(lambda: all(job.task_id is not None for job in jobs))
        await anyio.sleep(10.0)  # five are still running after 10 s
        for job in jobs[:5]:
            client.handle_callback(json.dumps(market_record(job.task_id)))
            await job
        learnt = client.processing_times()[ra.Operation.UPSCALE]
        for job in jobs[5:]:
            job.cancel()
    assert learnt.median > 2.0  # the five 1 s finishes alone would say 1 s

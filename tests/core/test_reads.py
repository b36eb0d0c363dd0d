"""Status reads: one budget for the client, patient with accepted tasks, in due order."""

from __future__ import annotations

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra
from recraft_async._core._pacer import Pacer
from recraft_async.testing._window import SlidingWindow

# Every test here mocks its I/O, so it runs on the fake clock: sleeps cost no wall time.
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


@pytest.mark.slow
async def test_a_thousand_jobs_in_flight_stay_within_the_read_limit(make_client):
    """1,000 jobs polled at once against KIE's read limit (the emulator's window) meet no 429."""
    # KIE's own window and task length: on the fake clock the 100+ s this takes cost nothing.
    limit = ra.Rate(10, per=1.0)
    window = SlidingWindow()  # the emulator's limiter, here on the virtual clock
    finish_at: dict[str, float] = {}
    refused = reads = 0

    def kie(request):  # a bare MockTransport: 2,000+ requests, respx's matching is not needed
        nonlocal refused, reads
        now = anyio.current_time()
        if request.method == "POST":
            task_id = f"t{len(finish_at)}"
            finish_at[task_id] = now + 30.0
            return httpx.Response(200, json=envelope({"taskId": task_id}))
        if window.retry_after(limit, now) is not None:
            refused += 1
            return httpx.Response(429, json={"code": 429, "msg": "Rate limit exceeded"})
        window.take(now)
        reads += 1
        task_id = request.url.params["taskId"]
        if now < finish_at[task_id]:
            return httpx.Response(200, json=market_record(task_id, state="generating", urls=()))
        return httpx.Response(200, json=market_record(task_id))

    poll = ra.PollPolicy(initial=0.5, factor=1.5, max_interval=3.0, timeout=3000.0)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(kie)) as http,
        make_client(max_in_flight=1000, read_rate=limit, poll=poll, http_client=http) as client,
    ):
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(1000)]
        results = [await job for job in jobs]
    assert len({r.task_id for r in results}) == 1000
    assert reads >= 1000
    assert refused == 0


async def test_failing_reads_far_past_max_retries_do_not_fail_a_paid_task(kie, make_client):
    """Reads failing for most of the poll timeout (every transient kind) end in success."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    failures = [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(500, json=envelope(None, 500, "server error")),
        httpx.Response(200, json=envelope(None, 500, "server error")),
        httpx.Response(429, json={"code": 429, "msg": "Rate limit exceeded"}),
        httpx.Response(200, json=envelope(None, 455, "maintenance")),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(200, json=envelope(None)),  # data: null
    ]
    failed_until = None
    calls = 0

    def read(_request):
        nonlocal failed_until, calls
        calls += 1
        now = anyio.current_time()
        failed_until = failed_until or now + 3.0
        if now < failed_until:
            failure = failures[calls % len(failures)]
            if isinstance(failure, Exception):
                raise failure
            return failure
        return httpx.Response(200, json=market_record("t1"))

    kie.get(READ).mock(side_effect=read)
    poll = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=5.0)
    async with make_client(poll=poll, max_retries=2) as client:
        result = await client.upscale("https://i.test/a.png")
    assert result.task_id == "t1"
    assert calls > 3 * 2  # many times max_retries


async def test_a_job_that_gives_up_names_its_task_for_resume(kie, make_client):
    """Reads failing past the timeout raise JobTimeoutError with the task id and the way back."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t9"}))
    kie.get(READ).mock(side_effect=httpx.ConnectError("refused"))
    poll = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=0.5)
    async with make_client(poll=poll) as client:
        with pytest.raises(ra.JobTimeoutError) as caught:
            await client.upscale("https://i.test/a.png")
    assert caught.value.task_id == "t9"
    assert "may still finish" in str(caught.value)
    assert "client.resume('t9', 'upscale')" in str(caught.value)
    assert isinstance(caught.value.__cause__, ra.APIConnectionError)


async def test_a_definite_refusal_of_a_read_still_ends_the_job(kie, make_client):
    """A 401 on a status read is not transient: the job fails with it at once."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(READ).respond(json={"code": 401, "msg": "Unauthorized"})
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.AuthenticationError):
            await job
    assert reads.call_count == 1
    assert job.task_id == "t1"  # kept, for resume with a good key


async def test_a_429_on_one_read_slows_every_read_of_the_client(kie, make_client):
    """After a read's 429 with Retry-After, no read of any job goes before it passes."""
    kie.post(UPSCALE).mock(
        side_effect=[httpx.Response(200, json=envelope({"taskId": t})) for t in ("a", "b")]
    )
    moments = []

    def read(request):
        moments.append(anyio.current_time())
        if len(moments) == 1:
            return httpx.Response(
                429, json={"code": 429, "msg": "Rate limit exceeded"}, headers={"Retry-After": "1"}
            )
        return httpx.Response(200, json=market_record(request.url.params["taskId"]))

    kie.get(READ).mock(side_effect=read)
    async with make_client(read_rate=ra.Rate(10, per=1.0)) as client:
        jobs = [client.upscale(f"https://i.test/{n}.png") for n in ("a", "b")]
        for job in jobs:
            await job
    assert len(moments) >= 3
    assert all(later - moments[0] >= 0.9 for later in moments[1:])


async def test_get_task_uses_the_read_budget(kie, make_client):
    """One-off reads share the budget: three reads at 2 per 0.3 s take a second window."""
    kie.get(READ).respond(json=market_record("t1"))
    moments = []
    async with make_client(read_rate=ra.Rate(2, per=0.3)) as client:
        for _ in range(3):
            await client.get_task("t1", ra.Operation.UPSCALE)
            moments.append(anyio.current_time())
    assert moments[2] - moments[0] >= 0.29


async def test_due_reads_go_in_order_of_their_due_time():
    """Waiters on a full window are served lowest priority (earliest due) first."""
    pacer = Pacer(ra.Rate(1, per=0.05))
    order = []

    async def read(due):
        async with pacer.slot(due):
            order.append(due)

    async with anyio.create_task_group() as group, pacer.slot(0.0):
        for due in (5.0, 3.0, 4.0, 1.0, 2.0):
            group.start_soon(read, due)
            await anyio.sleep(0.01)  # each waiter queued before the slot frees
    assert order == [1.0, 2.0, 3.0, 4.0, 5.0]


async def test_a_cancelled_waiter_leaves_the_queue_moving():
    """A waiter cancelled while queued neither holds a slot nor blocks the next one."""
    pacer = Pacer(ra.Rate(1, per=0.05))
    served = []

    async def read(due):
        async with pacer.slot(due):
            served.append(due)

    async with anyio.create_task_group() as group, pacer.slot(0.0):
        doomed = anyio.CancelScope()
        group.start_soon(_cancelled_waiter, pacer, doomed)
        await anyio.sleep(0.01)
        group.start_soon(read, 2.0)
        await anyio.sleep(0.01)
        doomed.cancel()
    assert served == [2.0]


async def _cancelled_waiter(pacer, scope):
    with scope:
        async with pacer.slot(1.0):
            pytest.fail("a cancelled waiter must not get the slot")

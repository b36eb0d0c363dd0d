"""Backpressure and abandoned work: max_queued, enqueue_*, submit_within, wait(timeout)."""

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, wait_until

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
SLOW = ra.PollPolicy(initial=1.0, factor=1.0, max_interval=1.0, timeout=600.0)


def _route(kie, reads_to_finish: int = 3):
    """Submits answer t1, t2, ...; each task finishes at its reads_to_finish-th read."""
    ids = iter(range(1, 1000))
    reads: dict[str, int] = {}

    def read(request):
        task_id = request.url.params["taskId"]
        reads[task_id] = reads.get(task_id, 0) + 1
        if reads[task_id] >= reads_to_finish:
            return httpx.Response(200, json=market_record(task_id))
        return httpx.Response(200, json=market_record(task_id, state="generating", urls=()))

    submit = kie.post(UPSCALE).mock(
        side_effect=lambda _r: httpx.Response(200, json=envelope({"taskId": f"t{next(ids)}"}))
    )
    kie.get(READ).mock(side_effect=read)
    return submit


async def test_past_max_queued_upscale_raises_queue_full(kie, make_client):
    """With max_queued jobs waiting, upscale() raises QueueFullError; a cancel frees room."""
    _route(kie)
    async with make_client(max_queued=2, poll=SLOW) as client:
        first = client.upscale("https://i.test/1.png")
        client.upscale("https://i.test/2.png")
        with pytest.raises(ra.QueueFullError, match="enqueue_upscale"):
            client.upscale("https://i.test/3.png")
        with pytest.raises(ra.QueueFullError):
            client.remove_background("https://i.test/3.png")
        first.cancel()
        client.upscale("https://i.test/3.png")


async def test_enqueue_waits_for_room(kie, make_client):
    """enqueue_upscale() returns only once a queued job has started, then queues its job."""
    _route(kie)
    async with make_client(max_in_flight=1, max_queued=1, poll=SLOW) as client:
        first = client.upscale("https://i.test/1.png")
        await wait_until(lambda: first.task_id is not None)
        client.upscale("https://i.test/2.png")
        third = await client.enqueue_upscale("https://i.test/3.png")
        assert first.done()  # the second could start only when the first ended
    assert third.status is ra.JobStatus.SUCCEEDED


async def test_concurrent_enqueues_each_take_the_room_they_waited_for(kie, make_client):
    """Several enqueue_upscale() waiting at once: each one queues its job, none is refused."""
    _route(kie, reads_to_finish=1)
    outcomes: list[ra.Job | ra.RecraftError] = []

    async def enqueue(i: int) -> None:
        try:
            outcomes.append(await client.enqueue_upscale(f"https://i.test/e{i}.png"))
        except ra.RecraftError as exc:
            outcomes.append(exc)

    async with make_client(max_in_flight=1, max_queued=1, poll=SLOW) as client:
        first = client.upscale("https://i.test/1.png")
        await wait_until(lambda: first.task_id is not None)
        client.upscale("https://i.test/2.png")  # the queue is full from here
        async with anyio.create_task_group() as group:
            for i in range(4):
                group.start_soon(enqueue, i)
    assert len(outcomes) == 4
    jobs = [job for job in outcomes if isinstance(job, ra.Job)]
    assert len(jobs) == 4, outcomes
    assert all(job.status is ra.JobStatus.SUCCEEDED for job in jobs)


async def test_a_job_unsent_by_its_deadline_is_cancelled_unpaid(kie, make_client):
    """submit_within: a job whose submit did not go out in time is cancelled, never sent."""
    submit = _route(kie, reads_to_finish=1)
    async with make_client(submit_rate=ra.Rate(1, per=60.0)) as client:
        first = client.upscale("https://i.test/1.png", submit_within=5)
        late = client.upscale("https://i.test/2.png", submit_within=5)
        patient = client.upscale("https://i.test/3.png")
    assert first.status is ra.JobStatus.SUCCEEDED
    with pytest.raises(ra.JobCancelledError, match=r"not submitted within 5 s.*nothing was paid"):
        late.result()
    assert late.task_id is None
    assert patient.status is ra.JobStatus.SUCCEEDED
    assert submit.call_count == 2


async def test_the_client_default_submit_within(kie, make_client):
    """The client's submit_within applies to every job that sets none."""
    submit = _route(kie, reads_to_finish=1)
    async with make_client(submit_rate=ra.Rate(1, per=60.0), submit_within=10) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(3)]
    assert [job.status for job in jobs].count(ra.JobStatus.CANCELLED) == 2
    assert submit.call_count == 1


async def test_wait_timeout_says_the_job_goes_on(kie, make_client):
    """job.wait(timeout) raises TimeoutError with a message; the job itself is not cancelled."""
    _route(kie, reads_to_finish=5)
    async with make_client(poll=SLOW) as client:
        job = client.upscale("https://i.test/1.png")
        with pytest.raises(TimeoutError, match=r"within 0\.5 s.*job\.cancel\(\)"):
            await job.wait(timeout=0.5)
        assert not job.done()
        result = await job.wait()
    assert result.task_id == "t1"


async def test_bad_queueing_values_are_refused(make_client):
    """max_queued and submit_within are checked where they are given."""
    with pytest.raises(ra.InvalidInputError, match="max_queued"):
        make_client(max_queued=-1)
    with pytest.raises(ra.InvalidInputError, match="max_queued must be an integer >= 1"):
        make_client(max_queued=0)  # no job could ever be queued
    with pytest.raises(ra.InvalidInputError, match="submit_within"):
        make_client(submit_within=0)
    async with make_client() as client:
        with pytest.raises(ra.InvalidInputError, match="submit_within"):
            client.upscale("https://i.test/1.png", submit_within=-3)

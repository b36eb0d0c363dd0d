"""RedisCoordination: clients sharing one key through a real Redis behave as one client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from contextlib import AsyncExitStack

import anyio
import pytest
from conftest import EMULATOR_POLL, SLOW_POLL, emulator_client, emulator_with_image, submitted

import recraft_async as ra
from recraft_async._core._check import check_upscale
from recraft_async._core._identity import fingerprint
from recraft_async._fleet._redis import coordinator_of
from recraft_async.testing import Duration

pytestmark = pytest.mark.anyio


def fleet(server, **options) -> ra.RedisCoordination:
    """The coordination of one test's fleet: its own namespace on the test's server."""
    options.setdefault("namespace", "test-" + uuid.uuid4().hex[:8])
    # The redis_server fixture keeps nothing across a restart: these tests accept that.
    options.setdefault("allow_volatile", True)
    return ra.RedisCoordination(server.url, **options)


async def open_clients(stack, emulator, coordination, count, **options):
    """``count`` clients of one emulator, each with its own coordinator on ``coordination``."""
    return [
        await stack.enter_async_context(
            emulator_client(emulator, coordination=coordination, **options)
        )
        for _ in range(count)
    ]


@pytest.mark.slow
async def test_two_clients_share_the_submit_window(redis_server):
    """Two clients, each pacing at the account's rate alone, together meet no 429."""
    rate = ra.Rate(5, per=0.5)
    emulator, image = emulator_with_image(rate=rate, read_rate=None)
    async with AsyncExitStack() as stack:
        clients = await open_clients(
            stack, emulator, fleet(redis_server), 2, submit_rate=rate, poll=EMULATOR_POLL
        )
        jobs = [clients[i % 2].upscale(f"{image}?n={i}") for i in range(16)]
        results = [await job for job in jobs]
    assert len({result.task_id for result in results}) == 16
    assert emulator.stats.rate_limited == 0
    assert emulator.stats.tasks_created == 16


@pytest.mark.slow
async def test_two_clients_share_the_read_budget(redis_server):
    """Reads of two clients stay within one read budget: no read is refused."""
    read_rate = ra.Rate(4, per=0.2)
    emulator, image = emulator_with_image(
        rate=None, read_rate=read_rate, duration=Duration.fixed(0.3)
    )
    fast = ra.PollPolicy(initial=0.01, factor=1.0, max_interval=0.01, timeout=30.0, adaptive=False)
    async with AsyncExitStack() as stack:
        clients = await open_clients(
            stack, emulator, fleet(redis_server), 2, read_rate=read_rate, poll=fast
        )
        jobs = [clients[i % 2].upscale(f"{image}?n={i}") for i in range(8)]
        for job in jobs:
            await job
    assert emulator.stats.status_reads >= 8
    assert emulator.stats.read_rate_limited == 0


@pytest.mark.slow
async def test_the_same_image_given_to_every_client_is_paid_once(redis_server):
    """Three clients given the same five images submit each once and share its result."""
    emulator, image = emulator_with_image(duration=Duration.fixed(0.2))
    async with AsyncExitStack() as stack:
        clients = await open_clients(stack, emulator, fleet(redis_server), 3, poll=EMULATOR_POLL)
        jobs = [client.upscale(f"{image}?n={i}") for client in clients for i in range(5)]
        results = [await job for job in jobs]
    assert sorted(emulator.stats.submits.values()) == [1] * 5
    by_image: dict[str, set[str]] = {}
    for job, result in zip(jobs, results, strict=True):
        by_image.setdefault(job.source or "", set()).add(result.task_id)
    assert [len(ids) for ids in by_image.values()] == [1] * 5


@pytest.mark.slow
async def test_a_429_seen_by_one_worker_pauses_every_worker(redis_server):
    """A pause told by one coordinator holds the other's submits (Redis holds it for all)."""
    coordination = fleet(redis_server)
    rate = ra.Rate(100, per=1.0)
    first = coordinator_of(coordination, rate, rate)
    second = coordinator_of(coordination, rate, rate)
    await first.open(lambda _task_id: None)
    await second.open(lambda _task_id: None)
    try:
        first.submits.pause(1.0)
        waited = 0.0
        with anyio.fail_after(5):
            # The pause reaches Redis in the background: the second worker's slots come
            # at once until it is there, then one waits for the rest of the pause.
            while waited < 0.3:
                started = anyio.current_time()
                async with second.submits.slot():
                    waited = anyio.current_time() - started
    finally:
        await second.close()  # task groups inside: closed in the reverse order of opening
        await first.close()


@pytest.mark.slow
async def test_a_crashed_workers_claim_expires_and_another_submits(redis_server):
    """A claim whose holder died (no heartbeat) is taken over once its lease runs out."""
    coordination = fleet(redis_server, lease=0.3)
    dead, alive = coordinator_of(coordination, None, None), coordinator_of(coordination, None, None)
    await dead.open(lambda _task_id: None)
    held = await dead.claim("input-1")
    assert held.task_id is None
    await dead.close()  # it dies with the claim pending: no heartbeat, no settle
    await alive.open(lambda _task_id: None)
    try:
        with anyio.fail_after(10):
            taken = await alive.claim("input-1")
        assert taken.task_id is None
        assert not taken.uncertain_elsewhere
        await taken.submitted("task-9")
        later = await alive.claim("input-1")
        assert later.task_id == "task-9"
    finally:
        await alive.close()


@pytest.mark.slow
async def test_an_uncertain_submit_stays_uncertain_for_every_worker(redis_server):
    """A claim left uncertain by one worker makes another's job fail unsent, never resent."""
    emulator, image = emulator_with_image()
    coordination = fleet(redis_server)
    other = coordinator_of(coordination, None, None)
    await other.open(lambda _task_id: None)
    try:
        request = check_upscale(image, None, None, None, dialect="market")
        claim = await other.claim(fingerprint(request.operation, image, request.params))
        await claim.uncertain()
    finally:
        await other.close()
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        job = client.upscale(image)
        with pytest.raises(ra.SubmissionUncertainError, match="another worker"):
            await job
    assert emulator.stats.submit_requests == 0


@pytest.mark.slow
async def test_a_refused_submit_releases_its_claim_for_the_next_worker(redis_server):
    """A submit provably refused (a 4xx) leaves the input free: a later worker submits it."""
    emulator, image = emulator_with_image()
    coordination = fleet(redis_server)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        emulator.credits = 0.0
        with pytest.raises(ra.InsufficientCreditsError):
            await client.upscale(image)
    emulator.credits = 100.0
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        result = await client.upscale(image)
    assert result.task_id
    assert emulator.stats.tasks_created == 1


@pytest.mark.slow
async def test_a_callback_received_by_one_worker_wakes_the_job_of_another(redis_server):
    """Worker B's handle_callback ends worker A's job long before A's first poll."""
    emulator, image = emulator_with_image(duration=Duration.fixed(0.0))
    async with AsyncExitStack() as stack:
        owner, receiver = await open_clients(
            stack, emulator, fleet(redis_server), 2, poll=SLOW_POLL
        )
        job = await submitted(owner.upscale(image))
        assert job.task_id is not None
        body = json.dumps({"taskId": job.task_id, "code": 200, "msg": "ok", "data": {}})
        assert receiver.handle_callback(body) is None  # no job of its own: told the fleet
        with anyio.fail_after(10):  # SLOW_POLL's first read would come after 30 s
            result = await job
    assert result.task_id == job.task_id


@pytest.mark.slow
async def test_submits_fail_closed_while_redis_is_down_and_submitted_jobs_finish(redis_server):
    """Without Redis a new submit fails typed and unsent; a submitted job still finishes."""
    emulator, image = emulator_with_image(duration=Duration.fixed(0.5))
    coordination = fleet(redis_server, unavailable_timeout=0.5, command_timeout=0.5)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        running = await submitted(client.upscale(image))
        redis_server.stop()
        unsent = client.upscale(f"{image}?after=stop")
        with pytest.raises(ra.CoordinationUnavailableError, match="nothing was submitted"):
            await unsent
        result = await running
    assert result.task_id == running.task_id
    assert emulator.stats.submit_requests == 1
    assert unsent.task_id is None


@pytest.mark.slow
async def test_a_client_cannot_open_without_its_redis(redis_server):
    """Opening a client whose Redis is down fails typed after the bounded wait."""
    redis_server.stop()
    emulator, _ = emulator_with_image()
    coordination = fleet(redis_server, unavailable_timeout=0.3, command_timeout=0.2)
    with pytest.raises(ra.CoordinationUnavailableError):
        async with emulator_client(emulator, coordination=coordination):
            pass


def test_settings_are_checked_and_never_show_a_password():
    """Bad settings raise InvalidInputError; the repr hides the URL's password."""
    coordination = ra.RedisCoordination("redis://user:s3cret@127.0.0.1:6379/0", namespace="acct")
    assert "s3cret" not in repr(coordination)
    with pytest.raises(ra.InvalidInputError, match="namespace"):
        ra.RedisCoordination("redis://127.0.0.1", namespace="has space")
    with pytest.raises(ra.InvalidInputError, match="url"):
        ra.RedisCoordination("http://127.0.0.1", namespace="acct")
    with pytest.raises(ra.InvalidInputError, match="lease"):
        ra.RedisCoordination("redis://127.0.0.1", namespace="acct", lease=0)
    with pytest.raises(ra.InvalidInputError, match="coordination"):
        ra.AsyncRecraft(api_key="k", coordination="redis://127.0.0.1")  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_client_without_coordination_imports_nothing_of_redis():
    """The default (coordination=None) never imports coredis."""
    code = (
        "import sys, recraft_async as ra\n"
        "ra.AsyncRecraft(api_key='k')\n"
        "ra.RedisCoordination('redis://127.0.0.1', namespace='a')\n"
        "print('coredis' in sys.modules)\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


@pytest.mark.slow
async def test_a_failed_task_is_forgotten_so_a_retry_submits_again(redis_server):
    """A task that failed at the service is not handed to the next worker given the image."""
    from recraft_async.testing import Fault  # noqa: PLC0415 - an extra

    emulator, image = emulator_with_image()
    emulator.faults.next("task", Fault.task_failed("model exploded"))
    coordination = fleet(redis_server)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        with pytest.raises(ra.TaskFailedError):
            await client.upscale(image)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        result = await client.upscale(image)
    assert result.task_id
    assert emulator.stats.tasks_created == 2


@pytest.mark.slow
async def test_submits_go_again_once_redis_is_back(redis_server):
    """After a fault, a restarted Redis lets submits through again, within the shared window."""
    emulator, image = emulator_with_image()
    coordination = fleet(redis_server, unavailable_timeout=0.5, command_timeout=0.5)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        redis_server.stop()
        with pytest.raises(ra.CoordinationUnavailableError):
            await client.upscale(f"{image}?n=1")
        redis_server.start()
        result = await client.upscale(f"{image}?n=2")
    assert result.task_id
    assert emulator.stats.submit_requests == 1


@pytest.mark.slow
async def test_a_slow_redis_fails_submits_closed_after_the_bounded_wait(redis_server):
    """A Redis that answers nothing (DEBUG SLEEP) counts as away: the submit is not sent."""
    emulator, image = emulator_with_image()
    coordination = fleet(redis_server, unavailable_timeout=0.5, command_timeout=0.2)
    async with (
        emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client,
        await anyio.connect_tcp("127.0.0.1", redis_server.port) as stream,
    ):
        await stream.send(b"DEBUG SLEEP 2\r\n")  # the server answers nothing for 2 s
        with pytest.raises(ra.CoordinationUnavailableError):
            await client.upscale(image)
        assert await stream.receive() == b"+OK\r\n"
    assert emulator.stats.submit_requests == 0


@pytest.mark.slow
async def test_a_live_workers_claim_outlives_its_lease(redis_server):
    """The holder's heartbeat keeps its claim past the lease: nobody else may submit."""
    coordination = fleet(redis_server, lease=0.3)
    holder, waiter = (
        coordinator_of(coordination, None, None),
        coordinator_of(coordination, None, None),
    )
    await holder.open(lambda _task_id: None)
    await waiter.open(lambda _task_id: None)
    try:
        held = await holder.claim("input-2")
        await anyio.sleep(1.0)  # three leases: only the heartbeat keeps it
        with anyio.move_on_after(0.5) as waiting:
            await waiter.claim("input-2")
        assert waiting.cancelled_caught  # still held: the waiter waits
        await held.submitted("task-7")
        attached = await waiter.claim("input-2")
        assert attached.task_id == "task-7"
    finally:
        await waiter.close()  # task groups inside: closed in the reverse order of opening
        await holder.close()


@pytest.mark.slow
async def test_a_worker_started_later_gets_the_result_another_paid_for(redis_server):
    """A client opened after another finished an image attaches to its task: one submit."""
    emulator, image = emulator_with_image()
    coordination = fleet(redis_server)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        first = await client.upscale(image)
    async with emulator_client(emulator, coordination=coordination, poll=EMULATOR_POLL) as client:
        again = await client.upscale(image)
    assert again.task_id == first.task_id
    assert again.url == first.url
    assert emulator.stats.submit_requests == 1


def subscribers(server, channel: str) -> int:
    """How many connections listen on ``channel`` (PUBSUB NUMSUB, over a plain socket)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        name = channel.encode()
        sock.sendall(b"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$%d\r\n%s\r\n" % (len(name), name))
        answer = sock.recv(4096).split(b"\r\n")
    return int(answer[3][1:])  # *2, $len, channel, :count


@pytest.mark.slow
async def test_callbacks_reach_other_workers_again_after_redis_restarts(redis_server):
    """The listener survives a Redis restart: a later callback still wakes another's job."""
    emulator, image = emulator_with_image(duration=Duration.fixed(0.0))
    coordination = fleet(redis_server, unavailable_timeout=0.5, command_timeout=0.5)
    channel = f"recraft:{coordination.namespace}:callbacks"
    async with AsyncExitStack() as stack:
        owner, receiver = await open_clients(stack, emulator, coordination, 2, poll=SLOW_POLL)
        redis_server.stop()
        await anyio.sleep(0.3)
        redis_server.start()
        with anyio.fail_after(30):  # both listeners subscribe again (backing off meanwhile)
            while subscribers(redis_server, channel) < 2:
                await anyio.sleep(0.05)
        job = await submitted(owner.upscale(image))
        body = json.dumps({"taskId": job.task_id, "code": 200, "msg": "ok", "data": {}})
        receiver.handle_callback(body)
        with anyio.fail_after(25):  # SLOW_POLL's first read would come after 30 s
            result = await job
    assert result.task_id == job.task_id


@pytest.mark.slow
async def test_two_namespaces_share_nothing(redis_server):
    """Clients of two namespaces (two accounts) each submit the same image: no claim shared."""
    emulator, image = emulator_with_image()
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(
            emulator_client(emulator, coordination=fleet(redis_server), poll=EMULATOR_POLL)
        )
        second = await stack.enter_async_context(
            emulator_client(emulator, coordination=fleet(redis_server), poll=EMULATOR_POLL)
        )
        results = [await first.upscale(image), await second.upscale(image)]
    assert results[0].task_id != results[1].task_id
    assert emulator.stats.tasks_created == 2

"""A fleet's Redis restarting: refused when volatile, and no input paid twice by one worker."""

from __future__ import annotations

import uuid

import anyio
import pytest
from conftest import EMULATOR_POLL, emulator_client, emulator_with_image
from redis_server import RedisServer, require_binary

import recraft_async as ra
from recraft_async._fleet._redis import coordinator_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # a real redis-server: the full run's


def coordination(server, **options) -> ra.RedisCoordination:
    """One test's fleet on ``server``, with its own namespace (and bounded waits)."""
    options.setdefault("namespace", "restart-" + uuid.uuid4().hex[:8])
    options.setdefault("unavailable_timeout", 5.0)
    options.setdefault("command_timeout", 0.5)
    return ra.RedisCoordination(server.url, **options)


def started(tmp_path, **options) -> RedisServer:
    """A redis-server started in its own folder under ``tmp_path``; stop it when done."""
    workdir = tmp_path / uuid.uuid4().hex[:8]
    workdir.mkdir()
    server = RedisServer(require_binary(), workdir, **options)
    server.start()
    return server


async def opens(server, **options) -> bool:
    """Whether a client opens on ``server`` (True), or refuses it as volatile (False)."""
    emulator, _ = emulator_with_image()
    try:
        async with emulator_client(emulator, coordination=coordination(server, **options)):
            return True
    except ra.CoordinationNotDurableError:
        return False


async def test_a_volatile_redis_is_refused_with_what_is_at_stake(redis_server):
    """Without persistence and without allow_volatile, opening fails before anything is sent."""
    emulator, _ = emulator_with_image()
    with pytest.raises(ra.CoordinationNotDurableError, match="paid twice") as caught:
        async with emulator_client(emulator, coordination=coordination(redis_server)):
            pass
    assert "allow_volatile=True" in str(caught.value)
    assert "appendonly" in str(caught.value)
    assert emulator.stats.submit_requests == 0


async def test_a_volatile_redis_opens_when_allowed(redis_server):
    """allow_volatile=True accepts the risk: the client opens and works."""
    emulator, image = emulator_with_image()
    fleet = coordination(redis_server, allow_volatile=True)
    async with emulator_client(emulator, coordination=fleet, poll=EMULATOR_POLL) as client:
        result = await client.upscale(image)
    assert result.task_id


async def test_redis_with_aof_or_snapshots_is_accepted(tmp_path, durable_redis_server):
    """AOF, or RDB snapshots (``save``), count as persistent: no opt-in needed."""
    snapshots = started(tmp_path)
    try:
        with anyio.fail_after(5):
            async with await anyio.connect_tcp("127.0.0.1", snapshots.port) as stream:
                await stream.send(b'CONFIG SET save "3600 1"\r\n')
                assert await stream.receive() == b"+OK\r\n"
        assert await opens(snapshots)
    finally:
        snapshots.stop()
    assert await opens(durable_redis_server)


async def test_without_config_only_aof_proves_persistence(tmp_path):
    """Where CONFIG is renamed away, INFO's aof_enabled decides; else volatile unless allowed."""
    with_aof = started(tmp_path, persistent=True, config=False)
    without = started(tmp_path, config=False)
    try:
        assert await opens(with_aof)
        assert not await opens(without)
        assert await opens(without, allow_volatile=True)
    finally:
        with_aof.stop()
        without.stop()


async def test_a_worker_does_not_pay_again_for_its_own_input_after_a_volatile_restart(
    redis_server,
):
    """Redis restarts empty: the worker attaches to its own task and tells the fleet again."""
    emulator, image = emulator_with_image()
    fleet = coordination(redis_server, allow_volatile=True)
    async with emulator_client(emulator, coordination=fleet, poll=EMULATOR_POLL) as client:
        first = await client.upscale(image)
        redis_server.restart()
        again = await client.upscale(image)
    async with emulator_client(emulator, coordination=fleet, poll=EMULATOR_POLL) as client:
        other = await client.upscale(image)  # another worker: the claim is back in Redis
    assert again.task_id == first.task_id
    assert other.task_id == first.task_id
    assert emulator.stats.submit_requests == 1


async def test_a_persistent_redis_keeps_every_claim_across_a_restart(durable_redis_server):
    """With AOF a worker opened after the restart attaches to the task paid before it."""
    emulator, image = emulator_with_image()
    fleet = coordination(durable_redis_server)
    async with emulator_client(emulator, coordination=fleet, poll=EMULATOR_POLL) as client:
        first = await client.upscale(image)
    durable_redis_server.restart()
    async with emulator_client(emulator, coordination=fleet, poll=EMULATOR_POLL) as client:
        again = await client.upscale(image)
    assert again.task_id == first.task_id
    assert emulator.stats.submit_requests == 1


async def test_a_submit_settled_after_a_restart_is_told_to_the_fleet(redis_server):
    """A claim pending while Redis restarted empty still gets its task id: others attach."""
    fleet = coordination(redis_server, allow_volatile=True)
    holder, other = coordinator_of(fleet, None, None), coordinator_of(fleet, None, None)
    await holder.open(lambda _task_id: None)
    await other.open(lambda _task_id: None)
    try:
        held = await holder.claim("input-1")
        assert held.task_id is None
        redis_server.restart()
        await held.submitted("task-1")
        with anyio.fail_after(10):
            attached = await other.claim("input-1")
        assert attached.task_id == "task-1"
    finally:
        await other.close()  # task groups inside: closed in the reverse order of opening
        await holder.close()


async def test_before_a_restart_an_absent_claim_is_free_even_for_its_submitter(redis_server):
    """No restart seen: a claim forgotten on purpose (a failed task) may be submitted again."""
    fleet = coordination(redis_server, allow_volatile=True)
    worker, other = coordinator_of(fleet, None, None), coordinator_of(fleet, None, None)
    await worker.open(lambda _task_id: None)
    await other.open(lambda _task_id: None)
    try:
        await (await worker.claim("input-2")).submitted("task-2")
        attached = await other.claim("input-2")
        await attached.failed()  # another worker saw the task fail: the fleet forgets it
        again = await worker.claim("input-2")
        assert again.task_id is None  # ours to submit anew, not the failed task
    finally:
        await other.close()
        await worker.close()

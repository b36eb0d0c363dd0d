"""A fleet shares its webhook replay memory: a signed callback is taken once by all workers."""

from __future__ import annotations

import json
import socket
import time
import uuid

import anyio
import pytest

import recraft_async as ra
from recraft_async._core._webhooks import DEFAULT_MAX_AGE, Seen, webhook_signature
from recraft_async._fleet._redis import coordinator_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # a real redis-server: the full run's

KEY = "fleet-webhook-key"


def fleet(server) -> ra.RedisCoordination:
    """One test's fleet on the (volatile) test server, which it accepts."""
    namespace = "hooks-" + uuid.uuid4().hex[:8]
    return ra.RedisCoordination(server.url, namespace=namespace, allow_volatile=True)


def signed(task_id: str) -> tuple[str, dict[str, str]]:
    """A callback body for ``task_id`` and its headers, signed with ``KEY`` now."""
    stamp = str(int(time.time()))
    body = json.dumps({"taskId": task_id, "code": 200, "msg": "ok", "data": {}})
    return body, {
        "X-Webhook-Timestamp": stamp,
        "X-Webhook-Signature": webhook_signature(KEY, task_id, stamp),
    }


def seen_lifetimes(server, namespace: str) -> list[int]:
    """The PTTL (ms) of every remembered callback of ``namespace`` (raw RESP over a socket)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        pattern = f"recraft:{namespace}:seen:*".encode()
        sock.sendall(b"*2\r\n$4\r\nKEYS\r\n$%d\r\n%s\r\n" % (len(pattern), pattern))
        lines = sock.recv(65536).split(b"\r\n")
        keys = [lines[i] for i in range(2, len(lines) - 1, 2)]
        lifetimes = []
        for key in keys:
            sock.sendall(b"*2\r\n$4\r\nPTTL\r\n$%d\r\n%s\r\n" % (len(key), key))
            lifetimes.append(int(sock.recv(64).split(b"\r\n")[0][1:]))
    return lifetimes


async def test_a_callback_replayed_to_another_worker_wakes_nothing(redis_server):
    """One delivery of a callback wakes both workers; the same one again wakes nobody."""
    coordination = fleet(redis_server)
    first_heard: list[str] = []
    second_heard: list[str] = []
    first = coordinator_of(coordination, None, None)
    second = coordinator_of(coordination, None, None)
    await first.open(first_heard.append)
    await second.open(second_heard.append)
    try:
        first.accept_callback("task-1", Seen("digest-1", 60.0))
        second.accept_callback("task-1", Seen("digest-1", 60.0))  # the replay
        # Markers, each after its worker's delivery in that worker's order: once both are
        # heard everywhere, every delivery of task-1 has been taken or dropped.
        first.accept_callback("task-2", Seen("digest-2", 60.0))
        second.accept_callback("task-3", Seen("digest-3", 60.0))
        with anyio.fail_after(10):
            while not {"task-2", "task-3"} <= set(first_heard) & set(second_heard):
                await anyio.sleep(0.01)
        assert sorted(first_heard) == ["task-1", "task-2", "task-3"]
        assert sorted(second_heard) == ["task-1", "task-2", "task-3"]
    finally:
        await second.close()  # task groups inside: closed in the reverse order of opening
        await first.close()


async def test_a_fleet_remembers_a_callback_only_while_it_is_fresh(redis_server):
    """handle_callback with a key stores its digest in Redis for at most the freshness window."""
    from conftest import emulator_client, emulator_with_image  # noqa: PLC0415 - its helpers

    emulator, _ = emulator_with_image()
    coordination = fleet(redis_server)
    async with emulator_client(emulator, coordination=coordination, webhook_key=KEY) as client:
        body, headers = signed("task-9")
        assert client.handle_callback(body, headers) is None
        with pytest.raises(ra.WebhookReplayError):  # this worker refuses it at once itself
            client.handle_callback(body, headers)
        with anyio.fail_after(10):
            while not (lifetimes := seen_lifetimes(redis_server, coordination.namespace)):
                await anyio.sleep(0.02)
    assert len(lifetimes) == 1
    assert 0 < lifetimes[0] <= DEFAULT_MAX_AGE * 1000 + 1000

"""The client's own connection pool: sized by ``max_connections``, not by jobs in flight."""

from __future__ import annotations

import inspect

import pytest

import recraft_async as ra

pytestmark = [pytest.mark.anyio]


def _pools(client: ra.AsyncRecraft) -> list[object]:
    """The httpcore pools of the client's own httpx client: https and the plain-http mount."""
    http = client._life.http
    assert http is not None
    mounted = [t for t in http._mounts.values() if t is not None]
    return [transport._pool for transport in (http._transport, *mounted)]  # type: ignore[attr-defined]


async def test_the_pool_has_its_own_default_whatever_the_jobs_in_flight(make_client):
    """1,000 jobs in flight leave the pool at its default size, every transport alike."""
    client = make_client(max_in_flight=1000)
    default = inspect.signature(ra.AsyncRecraft).parameters["max_connections"].default
    assert client.max_connections == default
    async with client:
        pools = _pools(client)
        assert len(pools) == 2
        for pool in pools:
            assert pool._max_connections == client.max_connections  # type: ignore[attr-defined]
            assert pool._max_connections < 100  # type: ignore[attr-defined]


async def test_max_connections_sizes_the_pool_and_its_keep_alive(make_client):
    """``max_connections=5`` is the limit on connections and on idle ones kept."""
    client = make_client(max_connections=5)
    async with client:
        for pool in _pools(client):
            assert pool._max_connections == 5  # type: ignore[attr-defined]
            assert pool._max_keepalive_connections == 5  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [0, -1, 2.5, "8", True, None])
def test_max_connections_is_checked(value):
    """Anything but an int >= 1 is refused before anything is sent."""
    with pytest.raises(ra.InvalidInputError, match="max_connections"):
        ra.AsyncRecraft(api_key="k", max_connections=value)


async def test_many_jobs_in_flight_complete_through_a_small_pool():
    """60 jobs in flight at once all finish over loopback through 3 connections at most."""
    pytest.importorskip("uvicorn")
    from conftest import EMULATOR_POLL, make_emulator, red_circle  # noqa: PLC0415 - the emulator extra

    from recraft_async.testing import Duration, serve  # noqa: PLC0415

    emu = make_emulator(duration=Duration.fixed(0.05), rate=None, read_rate=None)
    image = emu.add_image("a.png", red_circle())
    peak = 0
    client: ra.AsyncRecraft | None = None

    def count(_job: object, _event: object) -> None:
        nonlocal peak
        assert client is not None
        peak = max(peak, *(len(pool.connections) for pool in _pools(client)))  # type: ignore[attr-defined]

    async with serve(emu) as base_url:
        client = ra.AsyncRecraft(
            api_key=emu.api_key,
            base_url=base_url,
            max_in_flight=60,
            max_connections=3,
            poll=EMULATOR_POLL,
            submit_rate=None,
            read_rate=None,
            on_event=count,
        )
        async with client:
            jobs = [client.upscale(image) for _ in range(60)]
            results = [await job for job in jobs]
    assert len({r.task_id for r in results}) == 60
    assert 1 <= peak <= 3
    assert sum(emu.stats.submits.values()) == 60

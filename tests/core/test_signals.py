"""shutdown_on_signals: a client's shutdown begun at the server's stop signal itself."""

import signal

import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, wait_until

import recraft_async as ra

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
NEVER_READ = ra.PollPolicy(initial=60.0, max_interval=60.0, timeout=600.0)  # within a test


@pytest.fixture
def server_handler():
    """A stand-in for the server's SIGUSR1 handler (uvicorn's stops the server): its calls."""
    heard: list[int] = []

    def handler(signum, _frame):
        heard.append(signum)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        yield handler, heard
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _route(kie) -> None:
    """Submits answer t1, t2, ...; every task stays in progress."""
    ids = iter(range(1, 100))
    kie.post(UPSCALE).mock(
        side_effect=lambda _r: httpx.Response(200, json=envelope({"taskId": f"t{next(ids)}"}))
    )
    kie.get(READ).mock(
        side_effect=lambda r: httpx.Response(
            200, json=market_record(r.url.params["taskId"], state="generating", urls=())
        )
    )


@pytest.mark.slow  # a real signal, and the grace waited out on the real clock
@pytest.mark.anyio
async def test_the_signal_begins_the_shutdown_and_reaches_the_server(
    kie, make_client, server_handler
):
    """At the signal: new and unsent jobs refused, the rest stopped at grace, the server told."""
    handler, heard = server_handler
    _route(kie)
    async with make_client(max_in_flight=1, poll=NEVER_READ) as client:
        # Named twice: still one handler, which runs the server's once.
        signals = [signal.SIGUSR1, signal.SIGUSR1]
        async with ra.shutdown_on_signals(client, grace=0, signals=signals):
            running = client.upscale("https://i.test/running.png")
            queued = client.upscale("https://i.test/queued.png")
            await wait_until(lambda: running.task_id is not None)
            signal.raise_signal(signal.SIGUSR1)
            await wait_until(lambda: running.done() and queued.done())
            with pytest.raises(ra.ClientNotOpenError):
                client.upscale("https://i.test/late.png")
        assert signal.getsignal(signal.SIGUSR1) is handler
        await client.shutdown(grace=30)  # the lifespan's own: the signal's has ended
    assert heard == [signal.SIGUSR1]
    with pytest.raises(ra.JobCancelledError, match="nothing was paid"):
        queued.result()
    with pytest.raises(ra.JobCancelledError) as stopped:
        running.result()
    assert stopped.value.task_id == "t1"
    assert kie.routes[0].call_count == 1  # the queued job was never submitted


@pytest.mark.anyio
async def test_without_a_signal_nothing_changes_and_the_handlers_come_back(
    kie, make_client, server_handler
):
    """Leaving the block without a signal restores the server's handler; jobs go on."""
    handler, heard = server_handler
    _route(kie)
    async with make_client(poll=NEVER_READ) as client:
        async with ra.shutdown_on_signals(client, signals=[signal.SIGUSR1]):
            assert signal.getsignal(signal.SIGUSR1) is not handler
            job = client.upscale("https://i.test/a.png")
            await wait_until(lambda: job.task_id is not None)
        assert signal.getsignal(signal.SIGUSR1) is handler
        assert not job.done()
        assert repr(client).endswith("state=open>")
        job.cancel()
    assert heard == []


@pytest.mark.anyio
async def test_shutdown_on_signals_checks_its_arguments(make_client):
    """A negative grace, or a view instead of its client, is refused on entering the block."""
    async with make_client() as client:
        with pytest.raises(ra.InvalidInputError, match="grace"):
            async with ra.shutdown_on_signals(client, grace=-1):
                pass
        with pytest.raises(ra.ClientNotOpenError, match="with_options"):
            async with ra.shutdown_on_signals(client.with_options(timeout=5)):
                pass

"""The client's status reads against the emulator served on loopback, as the service answers."""

from __future__ import annotations

import functools

import pytest

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")
from conftest import EMULATOR_POLL, make_emulator, red_circle, submitted

import recraft_async as ra
from recraft_async.testing import Duration, Fault, KieEmulator, serve

pytestmark = pytest.mark.anyio

# Tasks of 20 ms, and no submit or read limit.
make = functools.partial(make_emulator, duration=Duration.fixed(0.02), rate=None, read_rate=None)


def client_for(emu: KieEmulator, base_url: str, **options) -> ra.AsyncRecraft:
    """A client of the default (market) dialect on the served emulator, polling fast."""
    options.setdefault("poll", EMULATOR_POLL)
    return ra.AsyncRecraft(
        api_key=emu.api_key,
        base_url=base_url,
        upload_base_url=base_url,
        submit_rate=None,
        read_rate=None,
        **options,
    )


def test_the_emulator_is_not_ready_for_a_moment_by_default():
    """Every emulator user meets "recordInfo is null": on by default, well under a second."""
    assert 0 < make_emulator().not_ready_for < 1


@pytest.mark.slow
async def test_a_job_waits_out_the_moment_a_new_task_is_not_readable():
    """The default "not readable yet" moment (here lengthened) delays a job, never fails it."""
    emu = make(not_ready_for=0.3)
    url = emu.add_image("c.png", red_circle())
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        result = await client.upscale(url)
    assert result.url.startswith(base_url)
    assert emu.stats.not_ready_reads > 0


@pytest.mark.slow
async def test_a_job_waits_out_the_not_ready_fault_at_http_422():
    """Fault.not_ready at HTTP 422 on the first reads: the job still ends in its Result."""
    emu = make(not_ready_for=0.0)
    emu.faults.next("task", Fault.not_ready(3, status=422))
    url = emu.add_image("c.png", red_circle())
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        result = await client.remove_background(url)
    assert result.operation is ra.Operation.REMOVE_BACKGROUND
    assert emu.stats.not_ready_reads == 3


@pytest.mark.slow
async def test_get_task_of_a_task_not_readable_yet_names_it():
    """One read within the moment: TaskNotReadyError with the task id, not a bad input."""
    emu = make(not_ready_for=60.0)
    url = emu.add_image("c.png", red_circle())
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        job = await submitted(client.upscale(url))
        assert job.task_id is not None
        with pytest.raises(ra.TaskNotReadyError) as caught:
            await client.get_task(job.task_id, "upscale")
        job.cancel()
    assert caught.value.task_id == job.task_id
    assert not isinstance(caught.value, ra.InvalidRequestError)


@pytest.mark.slow
async def test_results_carry_the_credits_the_emulator_states():
    """Each Result's credits: the emulator's prices (0.5 crisp upscale, 1 remove background)."""
    emu = make()
    url = emu.add_image("c.png", red_circle())
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        up = await client.upscale(url)
        cut = await client.remove_background(url)
    assert up.credits == pytest.approx(0.5)
    assert cut.credits == pytest.approx(1)
    assert up.to_dict()["credits"] == pytest.approx(0.5)


@pytest.mark.slow
async def test_records_with_json_objects_deliver_their_result():
    """Records with param and resultJson as JSON objects (json_objects=True) give the Result."""
    emu = make(json_objects=True)
    url = emu.add_image("c.png", red_circle())
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        result = await client.upscale(url)
    assert isinstance(result.record.raw["resultJson"], dict)
    assert result.url.startswith(base_url)
    assert result.record.param["input"]["image"] == url

"""The core client end to end against the emulator, in-process and on a loopback port."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")
from conftest import EMULATOR_POLL, make_emulator, samples
from PIL import Image

import recraft_async as ra
from recraft_async.testing import Duration, Fault, KieEmulator, serve

SAMPLES = samples()
pytestmark = [pytest.mark.anyio]


def make(mode: str, **options: Any) -> KieEmulator:
    """Tasks of 20 ms, no submit or read limit; on the loop's clock when ``mode`` is in-process.

    In-process the tests run on the fake clock (see ``mode``), and so does the emulator.
    """
    clock = "loop" if mode == "in-process" else "real"
    options = {"duration": Duration.fixed(0.02), "rate": None, "read_rate": None, **options}
    return make_emulator(**{"clock": clock, **options})


# In-process on the fake clock: the windows, task times and retry waits pass in virtual
# time. Through a real port (uvicorn) is the end-to-end variant, on the real clock: the
# full run's, not the quick loop's.
@pytest.fixture(
    params=[
        pytest.param("in-process", marks=pytest.mark.fake_clock),
        pytest.param("loopback", marks=pytest.mark.slow),
    ]
)
def mode(request) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def connected(emu: KieEmulator, mode: str, **options):
    """An open AsyncRecraft reaching ``emu`` in-process or through serve().

    The seed's dialect unless asked otherwise: these tests use its scale and format.
    """
    options.setdefault("api_key", emu.api_key)
    options.setdefault("poll", EMULATOR_POLL)
    options.setdefault("submit_rate", None)
    options.setdefault("read_rate", None)
    options.setdefault("dialect", "recraft")
    if mode == "in-process":
        async with (
            emu.http_client() as http,
            ra.AsyncRecraft(base_url=emu.base_url, http_client=http, **options) as client,
        ):
            yield client, http
    else:
        async with (
            serve(emu) as base_url,
            httpx.AsyncClient() as http,
            ra.AsyncRecraft(base_url=base_url, **options) as client,
        ):
            yield client, http


async def test_jobs_round_trip_with_real_images(mode):
    """Upscale and background removal end to end; results read back with Pillow."""
    emu = make(mode)
    urls = [emu.add_image(name, data) for name, data in SAMPLES]
    async with connected(emu, mode) as (client, http):
        ups = [client.upscale(url, scale=2, format="png") for url in urls]
        cuts = [client.remove_background(url) for url in urls]
        results = [await job for job in ups + cuts]
        images = [Image.open(io.BytesIO((await http.get(r.url)).content)) for r in results]
        assert await client.credits() == pytest.approx(100_000 - 3 * 0.5 - 3 * 1)
    assert all(image.size == (512, 512) for image in images[:3])
    for image in images[3:]:
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0  # type: ignore[index]
        assert image.getpixel((128, 140))[3] == 255  # type: ignore[index]
    assert all(n == 1 for n in emu.stats.submits.values())
    info = {i.task_id: i for i in emu.task_info()}
    for result in results:
        assert result.completed_at is not None
        assert result.completed_at.timestamp() == pytest.approx(info[result.task_id].finished)


async def test_market_dialect_end_to_end(mode):
    """The client's market dialect against the emulator's jobs API."""
    emu = make(mode)
    url = emu.add_image(*SAMPLES[0])
    async with connected(emu, mode, dialect="market") as (client, _):
        up = await client.upscale(url)
        cut = await client.remove_background(url)
    assert up.url.endswith(".png")
    assert cut.url.endswith(".png")
    assert up.task_id.startswith("task_recraft_")
    assert emu.stats.tasks_created == 2
    assert emu.credits == pytest.approx(100_000 - 0.5 - 1)


@pytest.mark.slow
async def test_a_client_pacing_its_reads_meets_no_read_limit(mode):
    """With read_rate matching the emulator's read limit, status reads never see a 429."""
    # Half the emulator's limit on the client: a margin for reads bunched up in transit.
    emu = make(mode, read_rate=ra.Rate(6, per=0.5))
    urls = [emu.add_image(f"{i}.png", SAMPLES[0][1]) for i in range(4)]
    async with connected(emu, mode, dialect="market", read_rate=ra.Rate(3, per=0.5)) as (
        client,
        _,
    ):
        results = [await job for job in [client.remove_background(url) for url in urls]]
    assert len(results) == 4
    assert emu.stats.read_rate_limited == 0


@pytest.mark.slow
async def test_hundreds_of_jobs_each_paid_once(mode):
    """Many concurrent jobs finish and no image is submitted twice."""
    emu = make(mode, duration=Duration.lognormal(median=20, sigma=0.5), time_scale=0.002)
    urls = [emu.add_image(f"{i}.png", SAMPLES[i % 3][1]) for i in range(200)]
    async with connected(emu, mode, max_in_flight=100) as (client, _):
        jobs = [client.upscale(url) for url in urls]
        done = [job async for job in client.as_completed(jobs)]
    assert len(done) == 200
    assert all(job.status is ra.JobStatus.SUCCEEDED for job in done)
    assert sorted(emu.stats.submits.values()) == [1] * 200
    assert emu.stats.max_pending > 1


@pytest.mark.slow
async def test_a_thousand_jobs_in_process():
    """A thousand real jobs on one emulator, each paid once, in seconds."""
    # On the real clock: a load test's work takes real time, which a virtual clock leaves
    # out, so each task there needs more polls and the run takes longer.
    emu = make(
        "in-process",
        clock="real",
        duration=Duration.lognormal(median=20, sigma=0.5),
        time_scale=0.005,
    )
    urls = [emu.add_image(name, data) for name, data in SAMPLES]
    async with connected(emu, "in-process", max_in_flight=200) as (client, _):
        jobs = [
            client.upscale(urls[i % 3], scale=2) if i % 2 else client.remove_background(urls[i % 3])
            for i in range(1000)
        ]
        results = [await job for job in jobs]
    assert len({r.task_id for r in results}) == 1000
    assert sum(emu.stats.submits.values()) == 1000
    assert emu.stats.credits_spent == pytest.approx(500 * 0.5 + 500 * 1)


async def test_rate_limited_submits_are_retried_without_paying_twice(mode):
    """The emulator's 429s (client pacing off) delay jobs but never duplicate them."""
    emu = make(mode, rate=ra.Rate(5, per=0.2))
    urls = [emu.add_image(f"{i}.png", SAMPLES[0][1]) for i in range(15)]
    async with connected(emu, mode, max_retries=10) as (client, _):
        results = [await job for job in [client.upscale(url) for url in urls]]
    assert len(results) == 15
    assert emu.stats.rate_limited > 0
    assert sorted(emu.stats.submits.values()) == [1] * 15


async def test_an_injected_429_pauses_the_client_for_its_retry_after(mode):
    """A scripted 429 with Retry-After: the job waits that long, then lands once."""
    emu = make(mode)
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("submit", Fault.http(429, retry_after=0.3))
    async with connected(emu, mode) as (client, _):
        started = emu.service.clock.wall()
        await client.upscale(url)
    (info,) = emu.task_info()
    assert emu.stats.submit_requests == 2
    assert emu.stats.submits[("upscale", url)] == 1
    assert info.created - started >= 0.29


async def test_client_pacing_avoids_429s(mode):
    """With submit_rate matching the emulator's limit the service never says 429."""
    emu = make(mode, rate=ra.Rate(5, per=0.2))
    urls = [emu.add_image(f"{i}.png", SAMPLES[0][1]) for i in range(12)]
    async with connected(emu, mode, submit_rate=ra.Rate(5, per=0.25)) as (client, _):
        for job in [client.upscale(url) for url in urls]:
            await job
    assert emu.stats.rate_limited == 0


@pytest.mark.slow
async def test_503s_before_processing_are_resubmitted_once_they_pass(mode):
    """The next 2 submits answer 503: the job still succeeds, with one task."""
    emu = make(mode)
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("submit", Fault.http(503), Fault.http(503))
    async with connected(emu, mode) as (client, _):
        await client.upscale(url)
    assert emu.stats.submits[("upscale", url)] == 1
    assert emu.stats.submit_requests == 3


@pytest.mark.parametrize(
    "fault", [Fault.drop(processed=True), Fault.http(500, processed=True)], ids=["drop", "500"]
)
async def test_a_submit_that_landed_without_an_answer_is_not_resent(mode, fault):
    """Processed, then dropped or answered 500: SubmissionUncertainError, one paid task."""
    emu = make(mode)
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("submit", fault)
    async with connected(emu, mode) as (client, _):
        with pytest.raises(ra.SubmissionUncertainError):
            await client.upscale(url)
    assert emu.stats.submits[("upscale", url)] == 1
    assert emu.stats.submit_requests == 1


@pytest.mark.slow
async def test_an_answer_delayed_past_the_timeout_is_not_resent():
    """A processed submit whose answer outlives the client's timeout is not paid again."""
    emu = make("loopback")
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("submit", Fault.delay(1.0, processed=True))
    async with connected(emu, "loopback", timeout=0.2) as (client, _):
        with pytest.raises(ra.SubmissionUncertainError):
            await client.upscale(url)
    assert emu.stats.submits[("upscale", url)] == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault.http(500),
        Fault.http(502),
        Fault.http(455),
        Fault.body(500),
        Fault.non_json(502),
        Fault.drop(),
    ],
    ids=lambda fault: f"{fault.kind.value}-{fault.code}",
)
@pytest.mark.fake_clock
async def test_a_status_read_fault_is_survived(fault):
    """Each transient status-read failure is retried and the job succeeds."""
    emu = make("in-process")
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("status", fault)
    async with connected(emu, "in-process") as (client, _):
        result = await client.upscale(url)
    assert result.url
    assert emu.faults.pending("status") == 0
    assert emu.stats.tasks_created == 1


async def test_read_faults_on_a_real_connection_and_not_found_at_first():
    """A dropped read, a 500 and "not found" for the first reads, over loopback."""
    emu = make("loopback")
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("status", Fault.drop(), Fault.http(500))
    emu.faults.next("task", Fault.not_found(2))
    async with connected(emu, "loopback") as (client, _):
        result = await client.upscale(url)
    assert result.url
    assert emu.stats.faults == {"status:drop": 1, "status:http": 1, "task:notfound": 1}
    assert emu.task_info()[0].reads == 3  # two "not found", then the record


async def test_failed_tasks_raise_task_failed(mode):
    """Status 2 and 3 become TaskFailedError with the emulator's code and message."""
    emu = make(mode)
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("task", Fault.task_failed("no luck"), Fault.creation_failed())
    async with connected(emu, mode) as (client, _):
        # One after the other: the task faults strike submits in the order they land.
        with pytest.raises(ra.TaskFailedError) as failed:
            await client.upscale(url)
        with pytest.raises(ra.TaskFailedError) as uncreated:
            await client.upscale(url)
        with pytest.raises(ra.TaskFailedError, match="unreachable image"):
            await client.upscale("https://example.invalid/x.png")
    assert (failed.value.state, failed.value.message) == ("failed", "no luck")
    assert uncreated.value.state == "create-failed"


async def test_wrong_key_and_empty_balance(mode):
    """401 and 402 in the body become AuthenticationError and InsufficientCreditsError."""
    emu = make(mode, credits=1.4)
    url = emu.add_image(*SAMPLES[0])
    async with connected(emu, mode, api_key="wrong") as (client, _):
        with pytest.raises(ra.AuthenticationError):
            await client.upscale(url)
    async with connected(emu, mode) as (client, _):
        await client.remove_background(url)
        with pytest.raises(ra.InsufficientCreditsError):
            await client.upscale(url)  # 0.4 left, the upscale costs 0.5
    assert emu.credits == pytest.approx(0.4)


async def test_resume_and_get_task(mode):
    """A task made earlier is read and awaited by id."""
    emu = make(mode)
    url = emu.add_image(*SAMPLES[0])
    async with connected(emu, mode) as (client, _):
        first = await client.upscale(url)
        record = await client.get_task(first.task_id, ra.Operation.UPSCALE)
        again = await client.resume(first.task_id, ra.Operation.UPSCALE)
    assert record.state is ra.TaskState.SUCCESS
    assert again.url == first.url
    assert emu.stats.tasks_created == 1

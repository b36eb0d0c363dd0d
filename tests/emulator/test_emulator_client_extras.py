"""The client's uploads, downloads, journal and callbacks against the emulator."""

from __future__ import annotations

import functools
import io

import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")
from conftest import EMULATOR_AUTH, EMULATOR_POLL, make_emulator, samples, wait_until
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import recraft_async as ra
from recraft_async.testing import Duration, Fault, KieEmulator, serve

SAMPLES = samples()
pytestmark = pytest.mark.anyio


# Tasks of 20 ms, and no submit or read limit.
make = functools.partial(make_emulator, duration=Duration.fixed(0.02), rate=None, read_rate=None)


def client_for(emu: KieEmulator, base_url: str, **options) -> ra.AsyncRecraft:
    options.setdefault("poll", EMULATOR_POLL)
    options.setdefault("submit_rate", None)
    options.setdefault("read_rate", None)
    options.setdefault("dialect", "recraft")  # these tests use the seed's scale=4
    return ra.AsyncRecraft(
        api_key=emu.api_key, base_url=base_url, upload_base_url=base_url, **options
    )


@pytest.mark.slow
async def test_local_files_are_uploaded_then_processed_and_downloaded(tmp_path):
    """A Path and raw bytes go through the upload endpoint; results download whole."""
    emu = make()
    source = tmp_path / "circle.png"
    source.write_bytes(SAMPLES[0][1])
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        up = await client.upscale(source, scale=4)
        cut = await client.remove_background(SAMPLES[1][1])
        up_path = await client.download(up, tmp_path / "out")
        cut_path = await client.download(cut, tmp_path / "out")
    assert emu.stats.uploads == 2
    assert all("/_emulator/files/uploads/" in url for _, url in emu.stats.submits)
    assert Image.open(up_path).size == (1024, 1024)
    cut_image = Image.open(cut_path)
    assert cut_image.mode == "RGBA"
    assert cut_image.getpixel((0, 0))[3] == 0  # type: ignore[index]


@pytest.mark.slow
async def test_the_journal_stops_a_second_run_from_paying_again(tmp_path):
    """A rerun of the same work resumes the journalled task instead of submitting."""
    emu = make()
    url = emu.add_image(*SAMPLES[0])
    async with serve(emu) as base_url:
        for _ in range(2):
            async with (
                ra.Journal(tmp_path / "journal.db") as journal,
                client_for(emu, base_url, journal=journal) as client,
            ):
                await client.upscale(url)
    assert emu.stats.submits[("upscale", url)] == 1


@pytest.mark.slow
async def test_an_uncertain_submit_is_remembered_by_the_journal(tmp_path):
    """Processed then dropped: the job is uncertain, and a rerun still does not resubmit."""
    emu = make()
    url = emu.add_image(*SAMPLES[0])
    emu.faults.next("submit", Fault.drop(processed=True))
    async with serve(emu) as base_url:
        for _ in range(2):
            async with (
                ra.Journal(tmp_path / "journal.db") as journal,
                client_for(emu, base_url, journal=journal) as client,
            ):
                with pytest.raises(ra.SubmissionUncertainError):
                    await client.upscale(url)
    assert emu.stats.submits[("upscale", url)] == 1


@pytest.mark.parametrize("dialect", ["recraft", "market"])
async def test_signed_callbacks_parse_with_the_clients_verifier(dialect):
    """The emulator's callbacks pass ra.parse_callback with the same webhook key."""
    callbacks: list[ra.Callback] = []

    async def hook(request: Request) -> Response:
        callbacks.append(
            ra.parse_callback(
                await request.body(), request.headers, webhook_key="whsec", dialect=dialect
            )
        )
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    emu = make(webhook_key="whsec", callback_transport=httpx.ASGITransport(app=receiver))
    url = emu.add_image(*SAMPLES[0])
    async with emu, emu.http_client() as http:
        async with ra.AsyncRecraft(
            api_key=emu.api_key,
            base_url=emu.base_url,
            http_client=http,
            poll=EMULATOR_POLL,
            submit_rate=None,
            read_rate=None,
            dialect=dialect,
        ) as client:
            result = await client.upscale(url, callback_url="http://127.0.0.1:9/hook")
        await wait_until(lambda: callbacks)
    (callback,) = callbacks
    assert callback.task_id == result.task_id
    record = callback.record
    assert record is not None
    assert record.task_id == result.task_id
    assert record.state is ra.TaskState.SUCCESS
    assert record.result_urls == result.urls


async def test_a_forged_callback_is_refused():
    """A callback signed with another key fails the client's verification."""
    bodies: list[tuple[bytes, dict[str, str]]] = []

    async def hook(request: Request) -> Response:
        bodies.append((await request.body(), dict(request.headers)))
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    emu = make(webhook_key="other", callback_transport=httpx.ASGITransport(app=receiver))
    url = emu.add_image(*SAMPLES[0])
    async with emu, emu.http_client(headers=EMULATOR_AUTH) as http:
        await http.post(
            "/api/v1/recraft/upscale", json={"image_url": url, "callBackUrl": "http://x/hook"}
        )
        await wait_until(lambda: bodies)
    body, headers = bodies[0]
    with pytest.raises(ra.WebhookVerificationError):
        ra.parse_callback(body, headers, webhook_key="whsec")
    record = ra.parse_callback(body, headers, webhook_key="other").record
    assert record is not None
    assert record.state is ra.TaskState.SUCCESS


@pytest.mark.slow
async def test_credits_and_results_through_the_client(tmp_path):
    """client.credits() reads the emulator's balance as it is spent."""
    emu = make(credits=10)
    url = emu.add_image(*SAMPLES[0])
    async with serve(emu) as base_url, client_for(emu, base_url) as client:
        before = await client.credits()
        result = await client.upscale(url, scale=4)
        after = await client.credits()
        path = await client.download(result, tmp_path)
    assert before == 10
    assert after == pytest.approx(9.5)
    assert Image.open(io.BytesIO(path.read_bytes())).size == (1024, 1024)

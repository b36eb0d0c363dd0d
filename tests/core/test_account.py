"""A 401 or 402 is about the account, not the image: the client stops submitting at once."""

from __future__ import annotations

import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, submitted

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]

UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
UPLOAD = "https://kieai.redpandaai.co/api/file-stream-upload"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x02\x00\x00\x00"


@pytest.mark.parametrize(
    ("code", "error"),
    [(401, ra.AuthenticationError), (402, ra.InsufficientCreditsError)],
)
async def test_account_error_fails_every_waiting_job_with_one_send(kie, make_client, code, error):
    """The first 401/402 fails that job and every job still to submit; one submit was sent."""
    submits = kie.post(UPSCALE).respond(json=envelope(None, code, "account problem"))
    async with make_client(max_in_flight=1) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(5)]
        errors = []
        for job in jobs:
            with pytest.raises(error) as caught:
                await job
            errors.append(caught.value)
        later = client.upscale("https://i.test/late.png")
        with pytest.raises(error):
            await later
    assert submits.call_count == 1
    assert all(e is errors[0] for e in errors)


async def test_account_error_spares_tasks_already_submitted(kie, make_client):
    """A 402 on the second submit does not stop polling the first, paid task."""
    kie.post(UPSCALE).mock(
        side_effect=[
            httpx.Response(200, json=envelope({"taskId": "t1"})),
            httpx.Response(200, json=envelope(None, 402, "insufficient credits")),
        ]
    )
    reads = kie.get(READ).mock(
        side_effect=[httpx.Response(200, json=market_record("t1", state="generating", urls=()))] * 3
        + [httpx.Response(200, json=market_record("t1"))]
    )
    async with make_client(max_in_flight=2) as client:
        first = await submitted(client.upscale("https://i.test/a.png"))
        second = client.upscale("https://i.test/b.png")
        with pytest.raises(ra.InsufficientCreditsError):
            await second
        assert (await first).task_id == "t1"
    assert reads.call_count == 4


async def test_account_error_on_upload_stops_the_client(kie, make_client):
    """A 401 from the upload API stops every local image of the client: nothing is submitted."""
    uploads = kie.post(UPLOAD).respond(
        json={"success": False, "code": 401, "msg": "Authentication failed: Invalid API Key"}
    )
    submits = kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    async with make_client(max_in_flight=1) as client:
        jobs = [client.upscale(PNG[:-1] + bytes([i])) for i in range(3)]
        for job in jobs:
            with pytest.raises(ra.AuthenticationError):
                await job
    assert uploads.call_count == 1
    assert submits.call_count == 0

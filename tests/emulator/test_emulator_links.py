"""The emulator's result host and download links, and the client's fallback against them.

In process (``emulator_client``) and on a real loopback port (``serve``): the result host
refuses (a ``Target.RESULT`` fault, an expired result URL), the client asks KIE's
``POST /api/v1/common/download-url`` for one fresh link, and that link expires too.
"""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")
from conftest import EMULATOR_AUTH, EMULATOR_KEY, EMULATOR_POLL, emulator_client, red_circle
from conftest import emulator_with_image as with_image

import recraft_async as ra
from recraft_async.testing import Fault, serve

pytestmark = pytest.mark.anyio

LINK_PATH = "/api/v1/common/download-url"


async def finished(client: ra.AsyncRecraft, image_url: str) -> ra.Result:
    """An upscale of ``image_url``, awaited."""
    return await client.upscale(image_url)


@pytest.mark.parametrize("dialect", ["market", "recraft"])
async def test_a_refusing_result_host_is_passed_by_a_fresh_link(tmp_path, dialect):
    """Target.RESULT refuses the plain URL once: one link is made, and the image saved."""
    emu, image = with_image()
    async with emu, emulator_client(emu, dialect=dialect, poll=EMULATOR_POLL) as client:
        result = await finished(client, image)
        emu.faults.next("result", Fault.http(403))
        path = await client.download(result, tmp_path)
    assert path.read_bytes().startswith(b"\x89PNG")
    assert emu.stats.download_links == 1
    assert emu.stats.faults["result:http"] == 1
    assert emu.stats.downloads == 1


async def test_an_expired_result_url_is_fetched_by_its_link(tmp_path):
    """result_url_lifetime 0: the plain URL answers 403, the link the image."""
    emu, image = with_image(result_url_lifetime=0.0)
    async with emu, emulator_client(emu, poll=EMULATOR_POLL) as client:
        result = await finished(client, image)
        path = await client.download(result, tmp_path)
    assert path.is_file()
    assert (emu.stats.downloads_refused, emu.stats.download_links) == (1, 1)


async def test_an_expired_link_ends_in_result_unavailable(tmp_path):
    """Plain URL and link both expired: ResultUnavailableError keeps the task id, once asked."""
    emu, image = with_image(result_url_lifetime=0.0, download_link_lifetime=0.0)
    async with emu, emulator_client(emu, poll=EMULATOR_POLL) as client:
        result = await finished(client, image)
        with pytest.raises(ra.ResultUnavailableError) as caught:
            await client.download(result, tmp_path)
    assert (caught.value.task_id, caught.value.url) == (result.task_id, result.url)
    assert (emu.stats.downloads_refused, emu.stats.download_links) == (2, 1)
    assert list(tmp_path.iterdir()) == []


async def test_download_url_answers_422_for_a_url_it_did_not_make():
    """A foreign URL, or a result that does not exist, is the documented code 422."""
    emu, image = with_image()
    async with emu, emulator_client(emu, poll=EMULATOR_POLL) as client:
        for url in ("https://example.test/a.png", f"{emu.base_url}/_emulator/results/x.png"):
            with pytest.raises(ra.InvalidRequestError) as caught:
                await client.download_url(url)
            assert caught.value.code == 422
        # Its own files have links: a result, and a stored (uploaded) image.
        result = await finished(client, image)
        assert (await client.download_url(result)).startswith(emu.base_url)
        assert (await client.download_url(image)).startswith(emu.base_url)
    assert emu.stats.download_links == 2


async def test_download_url_wants_the_key_and_a_url():
    """No key: 401; no url: 422; unknown link token: 404; the answers are KIE's envelope."""
    emu, image = with_image()
    async with emu, emu.http_client() as http:
        no_key = await http.post(LINK_PATH, json={"url": image})
        no_url = await http.post(LINK_PATH, json={}, headers=EMULATOR_AUTH)
        ok = await http.post(LINK_PATH, json={"url": image}, headers=EMULATOR_AUTH)
        unknown = await http.get("/_emulator/links/nothing")
        link = await http.get(ok.json()["data"])
    assert no_key.json()["code"] == 401
    assert no_url.json()["code"] == 422
    assert ok.json()["code"] == 200
    assert set(ok.json()) == {"code", "msg", "data"}
    assert unknown.status_code == 404
    assert link.status_code == 200
    assert link.content.startswith(b"\x89PNG")


@pytest.mark.slow
async def test_on_a_real_port_the_key_reaches_the_api_only(tmp_path):
    """Served on 127.0.0.1: refused, linked, saved; no result-host request carries the key."""
    emu, _ = with_image()
    seen: list[httpx.Request] = []

    async def note(request: httpx.Request) -> None:
        seen.append(request)

    async with (
        serve(emu) as base_url,
        httpx.AsyncClient(event_hooks={"request": [note]}) as http,
        ra.AsyncRecraft(
            api_key=EMULATOR_KEY,
            base_url=base_url,
            upload_base_url=base_url,
            http_client=http,
            poll=EMULATOR_POLL,
        ) as client,
    ):
        image = emu.add_image("c.png", red_circle())
        result = await finished(client, image)
        emu.faults.next("result", Fault.http(410))
        path = await client.download(result, tmp_path)
    assert path.read_bytes().startswith(b"\x89PNG")
    host = ("/_emulator/results/", "/_emulator/links/")
    downloads = [r for r in seen if r.url.path.startswith(host)]
    assert [r.url.path.split("/")[2] for r in downloads] == ["results", "links"]
    assert all("authorization" not in r.headers for r in downloads)
    [asked] = [r for r in seen if r.url.path == LINK_PATH]
    assert asked.headers["authorization"] == f"Bearer {EMULATOR_KEY}"


async def test_link_faults_fail_the_download_typed(tmp_path):
    """The download-url endpoint itself fails (a Target.LINK fault): still a typed error."""
    emu, image = with_image()
    async with emu, emulator_client(emu, poll=EMULATOR_POLL, max_retries=0) as client:
        result = await finished(client, image)
        emu.faults.next("result", Fault.http(403))
        emu.faults.next("link", Fault.http(500))
        with pytest.raises(ra.ResultUnavailableError, match="no fresh link") as caught:
            await client.download(result, tmp_path)
    assert isinstance(caught.value.__cause__, ra.ServerError)


@pytest.mark.slow
def test_the_sync_client_has_download_url(kie_sync_client, kie_sync_server, tmp_path):
    """Recraft.download_url answers a link on the served emulator that downloads the image."""
    image = kie_sync_server.add_image("c.png", red_circle())
    result = kie_sync_client.upscale(image).result()
    link = kie_sync_client.download_url(result)
    assert link.startswith(kie_sync_server.base_url + "/_emulator/links/")
    kie_sync_server.faults.next("result", Fault.http(403))
    assert kie_sync_client.download(result, tmp_path).is_file()

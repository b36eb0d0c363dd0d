"""Downloads against a result host that refuses: KIE's fresh links, and every failure typed.

respx stands in for KIE and the result host here; tests/emulator/test_emulator_links.py runs the
same paths against the emulator, in process and on a loopback port.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
from pathlib import Path

import httpx
import pytest
from conftest import API, envelope, image_bytes

import recraft_async as ra
import recraft_async._core._files as files
from recraft_async._core._models import Operation, TaskRecord, TaskState

pytestmark = pytest.mark.anyio

DOCS = json.loads(
    (Path(__file__).parents[1] / "data" / "kie_docs.json").read_text(encoding="utf-8")
)
LINK_PATH = "/api/v1/common/download-url"
PLAIN = "https://tempfile.test/r/task_1.png"
FRESH = "https://tempfile.test/fresh/task_1.png?sig=abc"
KEY = "sk-test-secret-123"
IMAGE = image_bytes((64, 48))


def result(url: str = PLAIN, task_id: str = "task_1") -> ra.Result:
    """A finished upscale whose image lies at ``url``."""
    now = dt.datetime.now(dt.timezone.utc)
    record = TaskRecord(task_id, TaskState.SUCCESS, (url,))
    return ra.Result(task_id, Operation.UPSCALE, (url,), now, now, record, "https://i.test/in.png")


def png(_request=None) -> httpx.Response:
    """The result host's answer: the image."""
    return httpx.Response(200, content=IMAGE, headers={"Content-Type": "image/png"})


@pytest.mark.parametrize("dialect", ["market", "recraft"])
@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_a_refused_result_is_fetched_by_one_fresh_link(
    kie, make_client, tmp_path, dialect, status
):
    """The host refuses the plain URL: KIE's common API gives a link, which is downloaded."""
    plain = kie.get(PLAIN).respond(status)
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    fresh = kie.get(FRESH).mock(side_effect=png)
    async with make_client(dialect=dialect) as client:
        path = await client.download(result(), tmp_path)
    assert path.read_bytes() == IMAGE
    assert (plain.call_count, asked.call_count, fresh.call_count) == (1, 1, 1)
    assert json.loads(asked.calls.last.request.content) == {"url": PLAIN}


async def test_the_key_goes_to_the_api_only_never_to_a_result_host_or_link(
    kie, make_client, tmp_path
):
    """On the fallback path, only the download-url request carries the API key."""
    kie.get(PLAIN).respond(403)
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    fresh = kie.get(FRESH).mock(side_effect=png)
    async with make_client() as client:
        await client.download(result(), tmp_path)
    hosts = [call.request for call in kie.calls if call.request.url.host == "tempfile.test"]
    assert len(hosts) == 2
    assert all("authorization" not in request.headers for request in hosts)
    assert KEY not in str([dict(request.headers) for request in hosts])
    assert asked.calls.last.request.headers["authorization"] == f"Bearer {KEY}"
    assert fresh.called


async def test_a_fresh_link_refused_too_is_result_unavailable_with_the_task(
    kie, make_client, tmp_path
):
    """Both refused: one link asked for, then ResultUnavailableError keeps task, URL, folder."""
    kie.get(PLAIN).respond(403)
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    kie.get(FRESH).respond(403)
    async with make_client() as client:
        with pytest.raises(ra.ResultUnavailableError, match="fresh link too") as caught:
            await client.download(result(), tmp_path / "out")
    error = caught.value
    assert (error.task_id, error.url, error.path) == ("task_1", PLAIN, tmp_path / "out")
    assert isinstance(error, ra.DownloadError)
    assert asked.call_count == 1
    assert "sig=abc" not in str(error)  # a link's signature is as good as a password
    assert list((tmp_path / "out").iterdir()) == []


async def test_a_url_kie_did_not_generate_is_result_unavailable(kie, make_client, tmp_path):
    """download-url answers 422 (an external URL): the download fails typed, not bare."""
    kie.get(PLAIN).respond(404)
    kie.post(LINK_PATH).respond(json={"code": 422, "msg": "external url"})
    async with make_client() as client:
        with pytest.raises(ra.ResultUnavailableError, match="no fresh link") as caught:
            await client.download(result(), tmp_path)
    assert isinstance(caught.value.__cause__, ra.InvalidRequestError)
    assert caught.value.task_id == "task_1"


async def test_other_download_failures_ask_for_no_link(kie, make_client, tmp_path):
    """A 500 from the host is no refusal: a ProtocolError, and KIE is not asked."""
    kie.get(PLAIN).respond(500)
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    async with make_client() as client:
        with pytest.raises(ra.ProtocolError, match="HTTP 500"):
            await client.download(result(), tmp_path)
    assert not asked.called


async def test_download_url_gives_kies_link_for_a_result_or_a_url(kie, make_client):
    """The documented request and answer, verbatim: a Result or its URL gives data."""
    request = DOCS["download_url_request"]["body"]
    asked = kie.post(LINK_PATH).respond(json=DOCS["download_url_ok"]["body"])
    async with make_client(dialect="market") as client:
        by_result = await client.download_url(result(request["url"]))
        by_url = await client.download_url(request["url"])
    assert by_result == by_url == DOCS["download_url_ok"]["body"]["data"]
    assert [json.loads(call.request.content) for call in asked.calls] == [request, request]


@pytest.mark.parametrize("data", [None, 7, "", "ftp://x.test/a.png", {"url": FRESH}])
async def test_download_url_without_a_usable_link_is_protocol_error(kie, make_client, data):
    """An answer whose data is no http(s) link: ProtocolError with the raw body."""
    kie.post(LINK_PATH).respond(json=envelope(data))
    async with make_client() as client:
        with pytest.raises(ra.ProtocolError) as caught:
            await client.download_url(result())
    assert caught.value.body is not None
    assert json.loads(caught.value.body)["data"] == data


@pytest.mark.parametrize("bad", ["", "not a url", "http://[::1/x.png", 7])
async def test_download_url_of_a_bad_url_sends_nothing(kie, make_client, bad):
    """Bad input is an InvalidInputError before anything is sent."""
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    async with make_client() as client:
        with pytest.raises(ra.InvalidInputError):
            await client.download_url(bad)
    assert not asked.called


async def test_download_url_outside_async_with_sends_nothing(kie, make_client):
    """A closed client raises ClientNotOpenError."""
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    with pytest.raises(ra.ClientNotOpenError):
        await make_client().download_url(result())
    assert not asked.called


@pytest.mark.parametrize("url", ["http://[::1/x.png", "http://[zz]/x.png", "ftp://cdn.test/a"])
async def test_an_unusable_result_url_is_a_download_error(kie, make_client, tmp_path, url):
    """A broken IPv6 literal (a bare ValueError before) is a DownloadError with task and folder."""
    async with make_client() as client:
        with pytest.raises(ra.DownloadError, match="not usable") as caught:
            await client.download(result(url, "task_9"), tmp_path / "out")
    assert type(caught.value) is ra.DownloadError
    assert (caught.value.task_id, caught.value.path) == ("task_9", tmp_path / "out")
    assert not kie.calls


async def test_a_full_disk_is_a_download_write_error(kie, make_client, tmp_path, monkeypatch):
    """ENOSPC at the final step: DownloadWriteError (an OSError too) with task, URL and folder."""

    def full(*_args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_place", full)
    kie.get(PLAIN).mock(side_effect=png)
    async with make_client() as client:
        with pytest.raises(ra.DownloadWriteError, match=os.strerror(errno.ENOSPC)) as caught:
            await client.download(result(), tmp_path)
    error = caught.value
    assert isinstance(error, OSError)
    assert error.errno == errno.ENOSPC
    assert (error.task_id, error.url, error.path) == ("task_1", PLAIN, tmp_path)
    assert (
        str(error)
        == f"cannot save the result of task task_1 in {tmp_path}: {os.strerror(errno.ENOSPC)}"
    )
    assert list(tmp_path.iterdir()) == []


async def test_a_folder_that_is_a_file_is_a_download_write_error(kie, make_client, tmp_path):
    """A dest naming a regular file: the folder cannot be made; a DownloadWriteError, no request."""
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    plain = kie.get(PLAIN).mock(side_effect=png)
    async with make_client() as client:
        with pytest.raises(ra.DownloadWriteError) as caught:
            await client.download(result(), blocker / "out")
    assert caught.value.task_id == "task_1"
    assert caught.value.path == blocker / "out"
    assert not plain.called


def test_sync_download_url_is_the_async_ones(kie, tmp_path):
    """Recraft.download_url asks the same endpoint and answers the link."""
    asked = kie.post(LINK_PATH).respond(json=envelope(FRESH))
    with ra.Recraft(api_key=KEY, base_url=API, submit_rate=None, read_rate=None) as client:
        assert client.download_url(result()) == FRESH
    assert json.loads(asked.calls.last.request.content) == {"url": PLAIN}

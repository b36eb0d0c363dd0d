"""The emulator's upload endpoints: stream, base64 and URL, answering downloadUrls it serves."""

from __future__ import annotations

import base64

import pytest

pytest.importorskip("PIL")
pytest.importorskip("starlette")

from conftest import EMULATOR_AUTH, make_emulator, red_circle

NO_PATH = {"success": False, "code": 400, "msg": "Missing required parameter: uploadPath"}
CIRCLE = red_circle()
pytestmark = pytest.mark.anyio


async def test_stream_upload_stores_the_file_under_a_sanitised_name():
    """Multipart upload answers the documented fields; hostile path parts are defused."""
    emu = make_emulator()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(
            "/api/file-stream-upload",
            files={"file": ("ignored.png", CIRCLE, "image/png")},
            data={"uploadPath": "a/../../b", "fileName": "../../evil name.png"},
        )
        body = answer.json()
        download = await client.get(body["data"]["downloadUrl"])
    assert body["success"] is True
    assert body["code"] == 200
    data = body["data"]
    assert data["fileName"] == "evil_name.png"
    assert data["filePath"] == "a/b/evil_name.png"
    assert data["fileSize"] == len(CIRCLE)
    assert data["mimeType"] == "image/png"
    assert data["uploadedAt"]
    assert download.content == CIRCLE
    assert emu.stats.uploads == 1


async def test_stream_upload_takes_the_part_name_when_no_file_name_is_given():
    """Without fileName the multipart part's own name is used."""
    emu = make_emulator()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answer = await client.post(
            "/api/file-stream-upload",
            files={"file": ("part.png", CIRCLE, "image/png")},
            data={"uploadPath": "p"},
        )
        missing = await client.post("/api/file-stream-upload", data={"uploadPath": "x"})
    assert answer.json()["data"]["filePath"] == "p/part.png"
    assert missing.json() == {
        "success": False,
        "code": 400,
        "msg": "Missing required parameter: file",
    }


async def test_base64_upload_accepts_plain_and_data_url_payloads():
    """base64Data may be bare or a data: URL; a missing name gets a fresh one."""
    emu = make_emulator()
    encoded = base64.b64encode(CIRCLE).decode()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        plain = await client.post(
            "/api/file-base64-upload",
            json={"base64Data": encoded, "uploadPath": "p", "fileName": "c.png"},
        )
        data_url = await client.post(
            "/api/file-base64-upload",
            json={"base64Data": f"data:image/png;base64,{encoded}", "uploadPath": "p"},
        )
        bad = await client.post(
            "/api/file-base64-upload", json={"base64Data": "!!!", "uploadPath": "p"}
        )
        missing = await client.post("/api/file-base64-upload", json={"uploadPath": "p"})
        fetched = await client.get(data_url.json()["data"]["downloadUrl"])
    assert plain.json()["data"]["filePath"] == "p/c.png"
    assert data_url.json()["data"]["fileName"].endswith(".png")
    assert fetched.content == CIRCLE
    assert bad.json() == {
        "success": False,
        "code": 400,
        "msg": "Base64 decoding failed: Invalid Base64 format",
    }
    assert missing.json()["code"] == 400


async def test_url_upload_copies_only_the_emulators_own_files():
    """A URL upload of a stored image works; any other URL is refused (no outside fetch)."""
    emu = make_emulator()
    url = emu.add_image("c.png", CIRCLE)
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        copied = await client.post(
            "/api/file-url-upload", json={"fileUrl": url, "uploadPath": "copies"}
        )
        foreign = await client.post(
            "/api/file-url-upload",
            json={"fileUrl": "https://example.invalid/x.png", "uploadPath": "p"},
        )
        missing = await client.post("/api/file-url-upload", json={"uploadPath": "p"})
        fetched = await client.get(copied.json()["data"]["downloadUrl"])
    assert copied.json()["data"]["filePath"] == "copies/c.png"
    assert fetched.content == CIRCLE
    assert foreign.json()["success"] is False
    assert foreign.json()["code"] == 400
    assert missing.json()["code"] == 400


async def test_an_uploaded_file_is_a_valid_image_url():
    """The downloadUrl of an upload feeds a task like any stored image."""
    emu = make_emulator()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        upload = await client.post(
            "/api/file-stream-upload",
            files={"file": ("c.png", CIRCLE, "image/png")},
            data={"uploadPath": "in"},
        )
        url = upload.json()["data"]["downloadUrl"]
        submit = await client.post("/api/v1/recraft/upscale", json={"image_url": url})
        task_id = submit.json()["data"]["taskId"]
        record = await client.get("/api/v1/recraft/upscale/record-info", params={"taskId": task_id})
    assert record.json()["data"]["successFlag"] == 1


@pytest.mark.parametrize("path", ["", "   "], ids=["empty", "blank"])
async def test_upload_path_is_required_on_all_three_endpoints(path):
    """Missing, empty or blank uploadPath: the documented 400, and nothing stored."""
    emu = make_emulator()
    url = emu.add_image("c.png", CIRCLE)
    encoded = base64.b64encode(CIRCLE).decode()
    async with emu.http_client(headers=EMULATOR_AUTH) as client:
        answers = [
            await client.post(
                "/api/file-stream-upload", files={"file": ("c.png", CIRCLE, "image/png")}
            ),
            await client.post(
                "/api/file-stream-upload",
                files={"file": ("c.png", CIRCLE, "image/png")},
                data={"uploadPath": path},
            ),
            await client.post("/api/file-base64-upload", json={"base64Data": encoded}),
            await client.post(
                "/api/file-base64-upload", json={"base64Data": encoded, "uploadPath": path}
            ),
            await client.post("/api/file-url-upload", json={"fileUrl": url}),
            await client.post("/api/file-url-upload", json={"fileUrl": url, "uploadPath": path}),
        ]
    assert [a.status_code for a in answers] == [200] * 6
    assert [a.json() for a in answers] == [NO_PATH] * 6
    assert emu.stats.uploads == 0


async def test_a_wrong_key_gets_the_upload_pages_401():
    """All three endpoints answer {"success": false, "code": 401, ...} to a wrong key."""
    emu = make_emulator()
    async with emu.http_client(headers={"Authorization": "Bearer nope"}) as client:
        answers = [
            await client.post(
                "/api/file-stream-upload",
                files={"file": ("c.png", CIRCLE, "image/png")},
                data={"uploadPath": "p"},
            ),
            await client.post("/api/file-base64-upload", json={"base64Data": "AA=="}),
            await client.post("/api/file-url-upload", json={}),
        ]
    expected = {"success": False, "code": 401, "msg": "Authentication failed: Invalid API Key"}
    assert [a.json() for a in answers] == [expected] * 3
    assert emu.stats.uploads == 0

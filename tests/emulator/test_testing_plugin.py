"""The pytest plugin, run in a child pytest as a user would (and without Pillow)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recraft_async.testing import pytest_plugin

ROOT = Path(__file__).resolve().parents[2]

USER_TESTS = """
import anyio
import httpx
import pytest

from recraft_async import Rate
from recraft_async.testing import sample_images

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.fixture
def kie_emulator_options():
    return {"rate": None, "webhook_key": "k"}


@pytest.mark.slow
async def test_in_process(kie_emulator):
    url = kie_emulator.add_image(*sample_images(64)[0])
    async with kie_emulator.http_client(headers={"Authorization": "Bearer emulator-key"}) as c:
        answer = await c.post("/api/v1/recraft/upscale", json={"image_url": url})
    assert answer.json()["code"] == 200
    assert kie_emulator.rate is None


@pytest.mark.slow
async def test_loopback(kie_server):
    assert kie_server.base_url.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(base_url=kie_server.base_url) as c:
        assert (await c.get("/_emulator/stats")).status_code == 200


@pytest.mark.slow
async def test_client(kie_client, kie_emulator):
    url = kie_emulator.add_image(*sample_images(64)[0])
    results = [await kie_client.upscale(url) for _ in range(3)]
    assert all(result.url.endswith(".png") for result in results)
    assert kie_emulator.stats.tasks_created == 3
    # The fixture paces the client to the emulator's limits: no read is refused.
    assert kie_client.read_rate == kie_emulator.read_rate is not None
    assert kie_emulator.stats.read_rate_limited == 0


class TestTunedLimits:
    @pytest.fixture
    def kie_emulator_options(self):
        return {"read_rate": Rate(3, per=0.5)}

    async def test_client_follows_the_emulators_read_rate(self, kie_client, kie_emulator):
        url = kie_emulator.add_image(*sample_images(64)[0])
        await kie_client.upscale(url)
        assert kie_client.read_rate == Rate(3, per=0.5)
        assert kie_emulator.stats.read_rate_limited == 0
"""

SHARED_TESTS = """
import urllib.parse

import anyio
import httpx
import pytest

from recraft_async.testing import sample_images

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.mark.slow
async def test_one_emulator(kie_server, kie_emulator):
    assert kie_server is kie_emulator
    name, data = sample_images(64)[0]
    url = kie_emulator.add_image(name, data)
    assert url.startswith(kie_server.base_url)
    async with httpx.AsyncClient() as c:
        assert (await c.get(url)).content == data  # added in-process, served on loopback
    async with kie_emulator.http_client() as c:
        assert (await c.get(url)).content == data


@pytest.mark.slow
async def test_the_in_process_client_works_on_the_served_emulator(
    kie_client, kie_server, kie_emulator
):
    url = kie_server.add_image(*sample_images(64)[0])
    hook = f"{kie_server.base_url}/hook"
    result = await kie_client.upscale(url, callback_url=hook)
    path = urllib.parse.urlsplit(result.url).path
    async with httpx.AsyncClient(base_url=kie_server.base_url) as c:
        assert (await c.get(path)).status_code == 200  # made in-process, served on loopback
    assert kie_emulator.stats.tasks_created == kie_server.stats.tasks_created == 1
    # The task made in-process has its callback sent by the server's thread all the same.
    with anyio.fail_after(30):
        while kie_server.stats.callbacks_sent == 0:
            await anyio.sleep(0.01)


@pytest.mark.slow
async def test_kie_emulator_alone_runs_in_process(kie_emulator):
    assert kie_emulator.base_url.startswith("https://")
    assert kie_emulator.callbacks_pending == 0
"""

NO_PILLOW = """
import sys


class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PIL", "starlette", "uvicorn"}:
            raise ImportError(f"{name} is not installed")
        return None


sys.meta_path.insert(0, _Refuse())
"""


def _pytest(
    tmp_path: Path, *args: str, extra_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "pytest", "-q", "-p", "recraft_async.testing.pytest_plugin", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_fixtures_work_for_a_user_on_both_backends(tmp_path):
    """kie_emulator, kie_server and kie_client in a user's test file, asyncio and trio."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    done = _pytest(tmp_path, "test_user.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout


@pytest.mark.slow
def test_kie_server_and_kie_emulator_share_one_emulator(tmp_path):
    """A test asking for both gets one emulator: what one adds, the other serves."""
    (tmp_path / "test_shared.py").write_text(textwrap.dedent(SHARED_TESTS))
    done = _pytest(tmp_path, "test_shared.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 passed" in done.stdout


@pytest.mark.slow
def test_the_plugin_does_not_break_pytest_without_pillow(tmp_path):
    """Loading the plugin imports nothing optional; only asking for a fixture would."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_PILLOW)
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    done = _pytest(tmp_path, "test_plain.py", extra_path=shim)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


@pytest.mark.parametrize(
    "name", ["kie_emulator", "kie_server", "kie_client", "kie_sync_server", "kie_sync_client"]
)
def test_fixtures_are_registered(name):
    """The plugin module defines the documented fixtures."""
    assert callable(getattr(pytest_plugin, name))

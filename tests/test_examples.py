"""The example web app, served for real: upscales on request and learns from callbacks."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

import recraft_async as ra
from recraft_async.testing import KieEmulator, sample_images, serve

EXAMPLES = Path(__file__).parent.parent / "examples"
WEBHOOK_KEY = "whk-example"
# The client's default first read comes 2 s after the submit.
DEFAULT_FIRST_READ = 2.0


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _is_up(http, url):
    try:
        await http.get(url)
    except httpx.TransportError:
        return False
    return True


async def _wait_until_up(url):
    async with httpx.AsyncClient() as http:
        with anyio.fail_after(20):
            while not await _is_up(http, url):
                await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_webapp_answers_results_woken_by_callbacks():
    """POST /upscale answers the result; the signed callback, not the schedule, wakes the read."""
    emulator = KieEmulator(time_scale=0.001, webhook_key=WEBHOOK_KEY)
    image = emulator.add_image(*sample_images()[0])
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    async with serve(emulator) as base_url:
        env = {
            **os.environ,
            "KIE_API_KEY": emulator.api_key,
            "KIE_BASE_URL": base_url,
            "KIE_WEBHOOK_KEY": WEBHOOK_KEY,
            "PUBLIC_URL": app_url,
        }
        command = [sys.executable, "-m", "uvicorn", "webapp:app", "--app-dir", str(EXAMPLES)]
        process = await anyio.open_process(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with process:
            try:
                await _wait_until_up(app_url)
                async with httpx.AsyncClient(timeout=30) as http:
                    answer = await http.post(f"{app_url}/upscale", json={"image_url": image})
                    refused = await http.post(f"{app_url}/kie-callback", content=b"{}")
                    # Signed, for a task the app does not hold: acknowledged, once only.
                    stamp = str(int(time.time()))
                    signed = {
                        "X-Webhook-Timestamp": stamp,
                        "X-Webhook-Signature": ra.webhook_signature(WEBHOOK_KEY, "nobody", stamp),
                    }
                    stranger = [
                        await http.post(
                            f"{app_url}/kie-callback",
                            content=b'{"taskId": "nobody"}',
                            headers=signed,
                        )
                        for _ in range(2)
                    ]
                    bad = await http.post(f"{app_url}/upscale", json={"image_url": "ftp://x"})
            finally:
                process.terminate()
    assert answer.status_code == 200, answer.text
    [task] = emulator.task_info()
    assert answer.json()["task_id"] == task.task_id
    assert answer.json()["url"].startswith(base_url)
    assert emulator.stats.callbacks_delivered >= 1
    assert task.first_final_read is not None
    assert task.first_final_read - task.created < DEFAULT_FIRST_READ
    assert refused.status_code == 400
    assert [r.status_code for r in stranger] == [204, 400]  # the second is a replay
    assert bad.status_code == 422


def test_script_sync_upscales_and_saves_against_the_emulator(kie_sync_server, tmp_path):
    """examples/script_sync.py upscales URLs and a local file and saves every result."""
    urls = [kie_sync_server.add_image(name, data) for name, data in sample_images(256)[:2]]
    local = tmp_path / "local.png"
    local.write_bytes(sample_images(256)[0][1])
    env = {
        **os.environ,
        "KIE_API_KEY": kie_sync_server.api_key,
        "KIE_BASE_URL": kie_sync_server.base_url,
    }
    done = subprocess.run(  # noqa: S603 - our own interpreter and example
        [sys.executable, str(EXAMPLES / "script_sync.py"), str(tmp_path / "out"), *urls, local],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list((tmp_path / "out").iterdir())) == 3
    assert done.stdout.count(" -> ") == 3
    assert "credits left:" in done.stdout
    assert kie_sync_server.stats.tasks_created == 3

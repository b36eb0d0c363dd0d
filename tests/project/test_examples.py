"""The example web app, served for real: upscales on request and learns from callbacks."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

import recraft_async as ra
from recraft_async.testing import Fault, KieEmulator, sample_images, serve

EXAMPLES = Path(__file__).parents[2] / "examples"
WEBHOOK_KEY = "whk-example"
# The client's default first read comes 2 s after the submit.
DEFAULT_FIRST_READ = 2.0


# The examples as servers and processes, end to end: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _app_env(emulator, base_url, app_url, **extra):
    """The environment an example web app reads: the emulator's key and URL, its own URL."""
    return {
        **os.environ,
        "KIE_API_KEY": emulator.api_key,
        "KIE_BASE_URL": base_url,
        "KIE_WEBHOOK_KEY": WEBHOOK_KEY,
        "PUBLIC_URL": app_url,
        **extra,
    }


async def _open_fastapi_app(emulator, base_url, port, log, *options, **env):
    """examples/fastapi_app.py under uvicorn on 127.0.0.1:``port``; its output into ``log``.

    ``options`` are uvicorn's, ``env`` adds to what ``_app_env`` sets.
    """
    app_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir", str(EXAMPLES)]
    command += ["--host", "127.0.0.1", "--port", str(port), *options]
    with log.open("wb") as out:
        return await anyio.open_process(
            command, env=_app_env(emulator, base_url, app_url, **env), stdout=out, stderr=out
        )


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
        env = _app_env(emulator, base_url, app_url)
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


async def _job_when(http, url, ready):
    """GET ``url`` (a job's ``to_dict()``) until ``ready(job)``; the test's timeout bounds it."""
    with anyio.fail_after(60):
        while True:
            answer = await http.get(url)
            assert answer.status_code == 200, answer.text
            if ready(answer.json()):
                return answer.json()
            await anyio.sleep(0.02)


@pytest.mark.anyio
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
async def test_fastapi_app_serves_to_dict_wakes_on_callbacks_and_shuts_down_gracefully(
    stop, tmp_path
):
    """examples/fastapi_app.py under uvicorn: to_dict answers, callback wake-ups, clean exit."""
    emulator = KieEmulator(time_scale=0.001, webhook_key=WEBHOOK_KEY)
    image = emulator.add_image(*sample_images()[0])
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    async with serve(emulator) as base_url:
        process = await _open_fastapi_app(
            emulator,
            base_url,
            port,
            log,
            # Status reads only far beyond the test's time: a job ends by its callback.
            CALLBACK_POLL_SECONDS="600",
            SHUTDOWN_GRACE="10",  # ends early: every task has ended by then
        )
        async with process:
            try:
                await _wait_until_up(app_url)
                async with httpx.AsyncClient(base_url=app_url, timeout=60) as http:
                    upscaled = await http.post("/upscale", json={"image_url": image})
                    bad = await http.post("/upscale", json={"image_url": "ftp://x"})
                    refused = await http.post("/kie-callback", content=b"{}")
                    started = await http.post("/jobs", json={"image_url": image})
                    finished = await _job_when(
                        http, f"/jobs/{started.json()['id']}", lambda job: job["finished_at"]
                    )
                    missing = await http.get("/jobs/nobody")
                    # This task's callback comes in an hour: at exit its job has not learnt
                    # that the task ended.
                    emulator.faults.next("callback", Fault.late_callback(3600))
                    running = await http.post("/jobs", json={"image_url": image})
                    pending = await _job_when(
                        http, f"/jobs/{running.json()['id']}", lambda job: job["task_id"]
                    )
            finally:
                process.send_signal(stop)
                with anyio.fail_after(60):
                    code = await process.wait()
    output = log.read_text()
    assert upscaled.status_code == 200, upscaled.text
    result = upscaled.json()
    assert result["operation"] == "upscale"
    assert result["urls"][0].startswith(base_url)
    assert result["completed_at"].endswith("+00:00")
    assert bad.status_code == 422
    assert refused.status_code == 400
    assert started.status_code == 202
    assert started.json()["job"]["status"] == "queued"
    assert finished["status"] == "succeeded"
    assert finished["result"]["task_id"] == finished["task_id"]
    assert missing.status_code == 404
    assert pending["status"] == "submitted"
    # Reads on the schedule would come after 600 s: both jobs ended by their callbacks.
    assert emulator.stats.callbacks_sent >= 2
    # uvicorn exits 0 on SIGINT; since 0.29 it re-raises SIGTERM once its graceful exit is done.
    assert code in ({0} if stop == signal.SIGINT else {0, -signal.SIGTERM}), output
    assert "graceful shutdown: the client is closed" in output
    assert "Application shutdown complete" in output
    # The shutdown read that task at once (no callback can come any more): its job was
    # delivered, not stopped and logged as still running.
    [task] = [task for task in emulator.task_info() if task.task_id == pending["task_id"]]
    assert task.first_final_read is not None
    assert f"upscale:{pending['task_id']}" not in output


def _run_example(name, server, *args):
    env = {**os.environ, "KIE_API_KEY": server.api_key, "KIE_BASE_URL": server.base_url}
    return subprocess.run(  # noqa: S603 - our own interpreter and example
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _most_at_once(tasks):
    """The most tasks in progress at one moment: created, and not yet read as finished."""
    moments = sorted(
        [(task.created, 1) for task in tasks] + [(task.first_final_read, -1) for task in tasks]
    )
    busy = most = 0
    for _, step in moments:
        busy += step
        most = max(most, busy)
    return most


def test_pipeline_asyncio_saves_every_image_with_bounded_concurrency(kie_sync_server, tmp_path):
    """examples/pipeline_asyncio.py: each image saved, never more in progress than workers."""
    # Twice as many images as workers: two rounds, each waiting the client's first read.
    urls = [kie_sync_server.add_image(name, data) for name, data in sample_images(256)]
    local = tmp_path / "local.png"
    local.write_bytes(sample_images(256)[0][1])
    images = [*urls, local]
    done = _run_example(
        "pipeline_asyncio.py", kie_sync_server, tmp_path / "out", "--workers", 2, *images
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(images)} saved, 0 failed" in done.stdout
    assert done.stdout.count(" -> ") == len(images)
    assert len(list((tmp_path / "out").iterdir())) == len(images)
    tasks = kie_sync_server.task_info()
    assert len(tasks) == kie_sync_server.stats.tasks_created == len(images)
    assert all(task.first_final_read is not None for task in tasks)
    assert _most_at_once(tasks) <= 2


def test_trio_batch_saves_every_result_as_it_finishes(kie_sync_server, tmp_path):
    """examples/trio_batch.py: every job upscaled on trio and its result downloaded."""
    urls = [kie_sync_server.add_image(name, data) for name, data in sample_images(256)]
    local = tmp_path / "local.png"
    local.write_bytes(sample_images(256)[1][1])
    done = _run_example(
        "trio_batch.py", kie_sync_server, tmp_path / "out", "--downloads", 2, *urls, local
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(urls) + 1} saved, 0 failed" in done.stdout
    assert len(list((tmp_path / "out").iterdir())) == len(urls) + 1
    assert kie_sync_server.stats.tasks_created == len(urls) + 1

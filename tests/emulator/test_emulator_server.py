"""serve() and the process runner: the emulator on a real loopback port."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")
from conftest import EMULATOR_AUTH, make_emulator, red_circle
from PIL import Image

from recraft_async import Rate
from recraft_async.testing import Fault, serve
from recraft_async.testing.__main__ import parser
from recraft_async.testing._server import loopback_socket

UPSCALE = "/api/v1/recraft/upscale"
CIRCLE = red_circle()
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.anyio
async def test_serve_answers_on_a_loopback_port_and_restores_the_base_url():
    """A real server: submit, read, download; base_url is the real URL only while serving."""
    emu = make_emulator()
    async with serve(emu) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert emu.base_url == base_url
        url = emu.add_image("c.png", CIRCLE)
        assert url.startswith(base_url)
        async with httpx.AsyncClient(base_url=base_url, headers=EMULATOR_AUTH) as client:
            task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
            record = await client.get(f"{UPSCALE}/record-info", params={"taskId": task_id})
            result_url = record.json()["data"]["response"]["resultUrls"][0]
            assert result_url.startswith(base_url)
            result = await client.get(result_url)
            stats = (await client.get("/_emulator/stats")).json()
    assert Image.open(io.BytesIO(result.content)).size == (512, 512)
    assert stats["tasks_created"] == 1
    assert emu.base_url == "https://kie-emulator.invalid"


@pytest.mark.slow
@pytest.mark.anyio
async def test_images_added_before_serving_still_resolve():
    """Stored images are recognised by path, whatever host their URL was made with."""
    emu = make_emulator()
    early = emu.add_image("c.png", CIRCLE)
    async with (
        serve(emu) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=EMULATOR_AUTH) as client,
    ):
        task_id = (await client.post(UPSCALE, json={"image_url": early})).json()["data"]["taskId"]
        record = await client.get(f"{UPSCALE}/record-info", params={"taskId": task_id})
    assert record.json()["data"]["successFlag"] == 1


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_dropped_connection_gets_no_answer_at_all():
    """The real server closes the socket: httpx sees a hang-up, not a 500."""
    emu = make_emulator()
    url = emu.add_image("c.png", CIRCLE)
    emu.faults.next("submit", Fault.drop(processed=True), Fault.drop())
    async with (
        serve(emu) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=EMULATOR_AUTH) as client,
    ):
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
                await client.post(UPSCALE, json={"image_url": url})
        after = await client.post(UPSCALE, json={"image_url": url})
    assert after.json()["code"] == 200
    assert emu.stats.submits[("upscale", url)] == 2  # the processed drop, and the last one


def _tasks_once_listed(base_url: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The emulator process's task list once it lists one, polled (failing after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(base_url + "/_emulator/tasks") as answer:  # noqa: S310
            tasks: list[dict[str, Any]] = json.load(answer)["tasks"]
        if tasks or time.monotonic() > deadline:
            return tasks
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(("processed", "created"), [(True, 1), (False, 0)])
async def test_an_answer_delayed_beyond_the_client_timeout(processed, created):
    """The client times out; a processed submit exists anyway, an unprocessed one never."""
    emu = make_emulator()
    url = emu.add_image("c.png", CIRCLE)
    emu.faults.next("submit", Fault.delay(0.5, processed=processed))
    async with serve(emu) as base_url:
        async with httpx.AsyncClient(
            base_url=base_url, headers=EMULATOR_AUTH, timeout=0.1
        ) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post(UPSCALE, json={"image_url": url})
        await anyio.sleep(0.6)
    assert emu.stats.tasks_created == created


@pytest.mark.anyio
async def test_serve_refuses_addresses_other_than_loopback():
    """The emulator never listens beyond this machine."""
    with pytest.raises(ValueError, match="loopback"):
        async with serve(make_emulator(), host="0.0.0.0"):  # noqa: S104 - the point of the test
            pass


@pytest.mark.slow
def test_the_process_runner_prints_its_url_and_serves(tmp_path):
    """Python -m recraft_async.testing: base URL on stdout when ready, samples on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "recraft_async.testing",
        "--rate",
        "5/1",
        "--read-rate",
        "1/60",
        "--time-scale",
        "0.001",
        "--duration",
        "lognormal:median=20,sigma=0.5",
        "--fault",
        "submit=http:503*1",
        "--fault",
        "status=http:500@0",
        "--latency",
        "fixed:0.001",
        "--samples",
        "--seed",
        "3",
    ]
    stderr = (tmp_path / "stderr").open("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)  # noqa: S603
    try:
        base_url = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert base_url.startswith("http://127.0.0.1:")
        stderr.seek(0)
        sample = stderr.readline().strip()
        assert sample.startswith(base_url)
        submit = urllib.request.Request(  # noqa: S310 - loopback only
            base_url + UPSCALE,
            data=json.dumps({"image_url": sample}).encode(),
            headers={**EMULATOR_AUTH, "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(submit)  # noqa: S310
        assert refused.value.code == 503
        with urllib.request.urlopen(submit) as answer:  # noqa: S310
            assert json.load(answer)["code"] == 200
        (task,) = _tasks_once_listed(base_url)
        assert task["finishTime"] - task["createTime"] < 1
        read = urllib.request.Request(  # noqa: S310 - loopback only
            f"{base_url}{UPSCALE}/record-info?taskId={task['taskId']}", headers=EMULATOR_AUTH
        )
        with urllib.request.urlopen(read) as answer:  # noqa: S310
            assert json.load(answer)["code"] == 200
        with pytest.raises(urllib.error.HTTPError) as limited:
            urllib.request.urlopen(read)  # noqa: S310
        assert limited.value.code == 429
        with urllib.request.urlopen(base_url + "/_emulator/stats") as answer:  # noqa: S310
            assert json.load(answer)["read_rate_limited"] == 1
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then lets the SIGTERM it caught take its course.
        assert process.wait(10) in {0, -15}
        stderr.close()


@pytest.mark.slow
def test_the_process_runner_refuses_bad_options():
    """Bad durations exit with a usage error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "recraft_async.testing", "--duration", "gamma:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "duration" in done.stderr


def test_the_process_runner_options_for_the_limits_and_callbacks():
    """--rate and --read-rate take N/SECONDS or none; --callback-shape picks a shape."""
    defaults = parser().parse_args([])
    assert (defaults.rate, defaults.read_rate) == (Rate(20, per=10.0), Rate(10, per=1.0))
    assert defaults.callback_shape == "both"
    args = parser().parse_args(["--read-rate", "5/2", "--rate", "none"])
    assert (args.rate, args.read_rate) == (None, Rate(5, per=2.0))
    assert parser().parse_args(["--read-rate", "off"]).read_rate is None
    assert parser().parse_args(["--callback-shape", "market"]).callback_shape == "market"


def test_listening_socket_says_it_is_tcp():
    """The socket is made with IPPROTO_TCP, so asyncio sets TCP_NODELAY on each connection.

    Without it every keep-alive answer waited 40 ms for a delayed ACK; checking the cause
    keeps the test free of wall-clock bounds.
    """
    with loopback_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


@pytest.mark.slow
@pytest.mark.anyio
async def test_one_emulator_can_be_served_again_and_keeps_its_tasks():
    """Serving twice in a row works; tasks and balance survive between the two."""
    emu = make_emulator()
    url = emu.add_image("c.png", CIRCLE)
    async with (
        serve(emu) as first,
        httpx.AsyncClient(base_url=first, headers=EMULATOR_AUTH) as client,
    ):
        task_id = (await client.post(UPSCALE, json={"image_url": url})).json()["data"]["taskId"]
    async with (
        serve(emu) as second,
        httpx.AsyncClient(base_url=second, headers=EMULATOR_AUTH) as client,
    ):
        record = await client.get(f"{UPSCALE}/record-info", params={"taskId": task_id})
    assert record.json()["data"]["successFlag"] == 1
    assert emu.credits == pytest.approx(100_000 - 0.5)

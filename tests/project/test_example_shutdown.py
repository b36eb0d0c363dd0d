"""examples/fastapi_app.py stopped by SIGTERM with requests awaiting jobs, under uvicorn.

uvicorn runs the lifespan's exit only after the open requests have ended: the client's
shutdown must begin at the signal itself (``shutdown_on_signals``), or queued jobs are
submitted and paid while the requests drain.
"""

import signal
import time
from typing import Any

import anyio
import httpx
import pytest
from test_examples import WEBHOOK_KEY, _free_port, _open_fastapi_app, _wait_until_up

from recraft_async.testing import Duration, Fault, KieEmulator, sample_images, serve

QUICK = SLOW = QUEUED = 5  # requests whose tasks end at once, never, or are never sent
# The app's SHUTDOWN_GRACE, waited out whole (the slow tasks never end): its 10 reads fit
# in it twice at 10 a second.
GRACE = 2.0


async def _post_all(http, image, count, answers, sent):
    """Make ``count`` POST /upscale requests; each answer lands in ``answers``.

    ``sent`` gets one entry per request whose body has gone out whole.
    """

    async def trace(event, _info):
        if event.endswith("send_request_body.complete"):
            sent.append(event)

    async def one():
        answer = await http.post("/upscale", json={"image_url": image}, extensions={"trace": trace})
        answers.append(answer)

    async with anyio.create_task_group() as group:
        for _ in range(count):
            group.start_soon(one)


async def _until(condition):
    """Wait for ``condition()``; a guard bounds it, so that a regression fails, not hangs."""
    with anyio.fail_after(60):
        while not condition():
            await anyio.sleep(0.02)


@pytest.mark.slow  # uvicorn and the emulator as processes, and SIGTERM
@pytest.mark.anyio
@pytest.mark.parametrize("graceful_timeout", [None, "10"], ids=["no-timeout", "timeout-10"])
async def test_sigterm_stops_new_work_at_once_and_delivers_what_finished(
    graceful_timeout, tmp_path
):
    """SIGTERM with 15 requests awaiting jobs: nothing sent after it, finished ones answered."""
    # Callbacks never arrive and reads are 600 s apart: only the shutdown's reads find an end.
    emulator = KieEmulator(time_scale=1.0, webhook_key=WEBHOOK_KEY, duration=Duration.fixed(0))
    emulator.faults.chance("callback", Fault.lost_callback(), 1.0)
    log = tmp_path / "server.log"
    answers, signalled, code = await _serve_and_stop(emulator, graceful_timeout, log)
    output = log.read_text()
    tasks = emulator.task_info()
    # Nothing was submitted after the signal: the queued jobs were cancelled unpaid.
    assert len(tasks) == QUICK + SLOW, output
    assert all(task.created < signalled for task in tasks)
    assert {answer.status_code for answer in answers} == {200, 503}, output
    by_status: dict[int, list[Any]] = {}
    for answer in answers:
        by_status.setdefault(answer.status_code, []).append(answer.json())
    quick = {task.task_id for task in tasks if task.finished < signalled}
    assert {result["task_id"] for result in by_status[200]} == quick
    # The jobs not sent: cancelled unpaid, or refused at the door if their request was
    # read after the signal.
    unsent = [body for body in by_status[503] if _unsent(body["detail"])]
    assert len(unsent) == QUEUED, by_status[503]
    slow = {body["detail"]["task_id"] for body in by_status[503] if body not in unsent}
    assert slow == {task.task_id for task in tasks} - quick
    # Those still running at the grace's end are logged for resume.
    assert all(f"upscale:{task_id}" in output for task_id in slow), output
    assert "Traceback" not in output
    assert "CancelledError" not in output
    assert "graceful shutdown: the client is closed" in output
    assert code in {0, -signal.SIGTERM}, output


async def _serve_and_stop(emulator, graceful_timeout, log):
    """The app under uvicorn, 15 requests, then SIGTERM: (answers, signal moment, exit code).

    The first QUICK tasks end at once, the next SLOW never; the last QUEUED jobs wait in
    the app's queue (MAX_IN_FLIGHT=QUICK + SLOW), unsent.
    """
    image = emulator.add_image(*sample_images()[0])
    port = _free_port()
    app_url = f"http://127.0.0.1:{port}"
    answers: list[httpx.Response] = []
    sent: list[str] = []
    signalled = None
    options = [] if graceful_timeout is None else ["--timeout-graceful-shutdown", graceful_timeout]
    async with serve(emulator) as base_url:
        process = await _open_fastapi_app(
            emulator,
            base_url,
            port,
            log,
            *options,
            CALLBACK_POLL_SECONDS="600",
            SHUTDOWN_GRACE=str(GRACE),
            MAX_IN_FLIGHT=str(QUICK + SLOW),
        )
        async with process:
            try:
                await _wait_until_up(app_url)
                async with (
                    httpx.AsyncClient(base_url=app_url, timeout=60) as http,
                    anyio.create_task_group() as group,
                ):
                    group.cancel_scope.deadline = anyio.current_time() + 90  # a hang guard
                    group.start_soon(_post_all, http, image, QUICK, answers, sent)
                    await _until(lambda: emulator.stats.tasks_created == QUICK)
                    emulator.duration = Duration.fixed(3600)  # the next tasks never end
                    group.start_soon(_post_all, http, image, SLOW + QUEUED, answers, sent)
                    await _until(lambda: emulator.stats.tasks_created == QUICK + SLOW)
                    await _until(lambda: len(sent) == QUICK + SLOW + QUEUED)
                    signalled = time.time()
                    process.send_signal(signal.SIGTERM)
            finally:
                if signalled is None:
                    process.send_signal(signal.SIGTERM)
                code = await _exit_code(process)
    return answers, signalled, code


async def _exit_code(process):
    """The process's exit code; None if it still ran after a while (killed then)."""
    with anyio.move_on_after(120):  # a hang guard, not a speed check
        return await process.wait()
    process.kill()
    await process.wait()
    return None


def _unsent(detail: object) -> bool:
    """Whether a 503's detail is a job never sent: cancelled unpaid, or refused."""
    if detail == "shutting down":
        return True
    return isinstance(detail, dict) and "nothing was paid" in detail["error"]

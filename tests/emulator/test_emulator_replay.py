"""The emulator replays a doctor's trace: its task times and its answers' shapes."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from conftest import EMULATOR_POLL, emulator_client, emulator_process, red_circle

from recraft_async._core._models import Operation
from recraft_async._doctor import DoctorOptions, doctor
from recraft_async.testing import KieEmulator, serve
from recraft_async.testing._replay import Replay

NOT_READABLE = {"code": 422, "msg": "recordInfo is null", "data": None}


def _read(since: float, data: object, status: int = 200) -> dict[str, object]:
    body = (
        data
        if isinstance(data, dict) and "code" in data
        else {"code": 200, "msg": "success", "data": data}
    )
    return {
        "step": "read upscale",
        "operation": "upscale",
        "since_submit": since,
        "status": status,
        "response": body,
    }


RUNNING = {
    "taskId": "task_real",
    "state": "processing",
    "createTime": "2025-01-01T12:00:00Z",
    "resultJson": "",
}
ENDED = {
    "taskId": "task_real",
    "state": "success",
    "createTime": "2025-01-01T12:00:00Z",
    "resultJson": '{"resultUrls":["https://tempfile.test/r.png"]}',
    "costTime": 60000,
}
# What a real account might have shown: not readable at first, an undocumented state,
# times as ISO strings, no completeTime, and a task of 60 s.
TRACE = {
    "recraftAsyncDoctor": 1,
    "exchanges": [
        {"step": "credits", "status": 200, "response": {"code": 200, "msg": "success", "data": 5}},
        _read(0.0, NOT_READABLE),
        _read(30.0, RUNNING),
        _read(60.5, ENDED),
    ],
}


def test_a_trace_gives_each_operation_its_time():
    """The final record's costTime is the operation's time; an operation not traced has none."""
    replay = Replay.load(TRACE)
    assert replay.duration(Operation.UPSCALE) == pytest.approx(60.0)
    assert replay.duration(Operation.REMOVE_BACKGROUND) is None


def test_a_trace_answers_in_its_own_shapes_with_the_emulators_values():
    """Before, during and after: the trace's answer for the moment, filled where types agree."""
    replay = Replay.load(TRACE)
    mine = {
        "taskId": "task_emu",
        "state": "generating",
        "createTime": 1,
        "resultJson": "",
        "model": "m",
    }
    assert replay.answer(Operation.UPSCALE, 1.0, mine) == (200, NOT_READABLE)
    _, body = replay.answer(Operation.UPSCALE, 40.0, mine) or (0, {})
    assert body["data"] == {**RUNNING, "taskId": "task_emu"}  # the trace's state and time type
    done = {
        **mine,
        "state": "success",
        "resultJson": '{"resultUrls":["http://e/r.png"]}',
        "costTime": 5,
    }
    status, body = replay.answer(Operation.UPSCALE, 70.0, done) or (0, {})
    assert status == 200
    assert body["data"] == {
        **ENDED,
        "taskId": "task_emu",
        "resultJson": done["resultJson"],
        "costTime": 5,
    }
    assert replay.answer(Operation.REMOVE_BACKGROUND, 1.0, mine) is None


def test_a_file_that_is_no_doctor_trace_is_refused(tmp_path):
    """Any other JSON document is a ValueError, not a silent replay of nothing."""
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"exchanges": []}))
    with pytest.raises(ValueError, match="not a trace"):
        Replay.load(path)


@pytest.mark.anyio
async def test_the_emulator_acts_out_a_trace():
    """A replaying emulator's task takes the trace's time and first answers 'not readable yet'."""
    emulator = KieEmulator(replay=TRACE, time_scale=0.01, rate=None, read_rate=None)
    url = emulator.add_image("c.png", red_circle())
    async with emulator.http_client(
        headers={"Authorization": f"Bearer {emulator.api_key}"}
    ) as http:
        created = await http.post(
            "/api/v1/jobs/createTask",
            json={"model": "recraft/crisp-upscale", "input": {"image": url}},
        )
        task_id = created.json()["data"]["taskId"]
        first = await http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
    assert first.json() == NOT_READABLE
    (info,) = emulator.task_info()
    assert info.finished - info.created == pytest.approx(0.6)


@pytest.mark.slow
def test_the_emulator_command_replays_a_trace_file(tmp_path):
    """`recraft-async emulator --replay TRACE` answers in the trace's shapes."""
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(TRACE))
    with emulator_process("--replay", trace, "--time-scale", "1", "--samples") as base:
        auth = {"Authorization": "Bearer emulator-key"}
        with httpx.Client(base_url=base, headers=auth, timeout=10) as http:
            upload = http.post(
                "/api/file-stream-upload",
                files={"file": ("c.png", red_circle(), "image/png")},
                data={"uploadPath": "t"},
            )
            image = upload.json()["data"]["downloadUrl"]
            body = {"model": "recraft/crisp-upscale", "input": {"image": image}}
            task_id = http.post("/api/v1/jobs/createTask", json=body).json()["data"]["taskId"]
            first = http.get("/api/v1/jobs/recordInfo", params={"taskId": task_id})
    assert first.json() == NOT_READABLE


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_doctors_own_trace_replays_for_the_client(tmp_path):
    """The doctor's trace of one emulator drives another, on which the client gets its result."""
    trace = tmp_path / "trace.json"
    async with serve(KieEmulator(time_scale=0.01)) as base:
        options = DoctorOptions("emulator-key", base, base, yes=True, trace=trace, timeout=60.0)
        assert await doctor(options, out=io.StringIO(), ask=None) == 0  # type: ignore[arg-type]
    replay = Replay.load(trace)
    assert set(replay.durations) == set(Operation)
    emulator = KieEmulator(replay=replay, time_scale=0.01)
    url = emulator.add_image("c.png", red_circle())
    async with emulator_client(emulator, poll=EMULATOR_POLL) as client:
        result = await client.upscale(url)
    assert result.url.endswith(".png")

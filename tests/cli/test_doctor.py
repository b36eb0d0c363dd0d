"""``recraft-async doctor``: its table against stubs that each differ in one way from KIE's docs."""

from __future__ import annotations

import io
import json

import pytest
import respx
from conftest import cli_in_process
from doctor_stub import API, FILES, KEY, NOT_READABLE, SIGNATURE, UPLOADS, Stub

from recraft_async._doctor import DoctorOptions, doctor

pytestmark = pytest.mark.anyio


@pytest.fixture
def stub():
    """The documented service, on respx; unmatched requests fail the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield Stub(router)


async def run(*, yes=True, answer=True, key=KEY, **options):
    """Run the doctor against the stub: (exit status, its output)."""
    out = io.StringIO()
    asked: list[str] = []

    async def ask(question: str) -> bool:
        asked.append(question)
        return bool(answer)

    settings = DoctorOptions(key, API, UPLOADS, yes=yes, **options)
    status = await doctor(settings, out=out, ask=ask)
    return status, out.getvalue()


def row(output: str, assumption: str) -> str:
    """The table's row that starts with ``assumption``."""
    rows = [line for line in output.splitlines() if line.startswith(assumption)]
    assert len(rows) == 1, output
    return rows[0]


@pytest.mark.fake_clock
async def test_the_documented_service_confirms_everything(stub):
    """Every answer as documented: every row confirmed, exit 0, each task's cost read."""
    status, output = await run()
    assert status == 0, output
    assert " different " not in output
    assert "confirmed" in row(output, "upscale: costs 0.5 credits")
    assert "confirmed" in row(output, "remove-background: download-url gives a link")
    assert "seen: waiting, generating, success" in row(output, "states:")
    assert stub.submits == 2


@pytest.mark.fake_clock
@pytest.mark.parametrize(
    ("change", "assumption", "seen"),
    [
        ({"createTime": "2025-01-01T12:00:00Z"}, "record.createTime", "a string"),
        (
            {"resultJson": {"resultUrls": [f"{FILES}/results/x.png"]}},
            "record.resultJson",
            "an object",
        ),
        ({"costTime": 15.0}, "record.costTime", "a number"),
        ({"completeTime": ...}, "record.completeTime", "missing from the final record"),
        ({"taskId": ...}, "record.taskId", "missing"),
    ],
)
async def test_a_record_field_unlike_the_docs_is_named(stub, change, assumption, seen):
    """A field of another type, or a missing one, is a 'different' row and exit 1."""
    stub.record_changes = change
    status, output = await run()
    assert status == 1
    line = row(output, assumption)
    assert " different " in line
    assert seen in line


@pytest.mark.fake_clock
async def test_an_undocumented_state_is_named(stub):
    """A state outside KIE's five is named in the states row."""
    stub.states = ["waiting", "processing", "success"]
    status, output = await run()
    assert status == 1
    assert "undocumented state 'processing'" in row(output, "states:")


@pytest.mark.fake_clock
async def test_a_task_slower_than_the_timeout_is_named(stub):
    """A task still generating when the doctor gives up is 'different', with its last state."""
    stub.states = ["generating"]
    status, output = await run(timeout=5.0)
    assert status == 1
    line = row(output, "upscale: ends within the poll timeout")
    assert " different " in line
    assert "still 'generating' after 5" in line


@pytest.mark.fake_clock
@pytest.mark.parametrize(
    ("change", "seen"),
    [
        ({"fileSize": "928"}, "data.fileSize is a string"),
        ({"downloadUrl": ...}, "data.downloadUrl is missing"),
    ],
)
async def test_an_odd_upload_answer_is_named(stub, change, seen):
    """An upload answer unlike the documented one is named in the upload row."""
    stub.upload_changes = change
    status, output = await run()
    assert status == 1
    assert seen in row(output, "upload:")


@pytest.mark.fake_clock
async def test_a_price_unlike_the_published_one_is_named(stub):
    """A task that costs more than KIE's published price is 'different', with the cost."""
    stub.surcharge = 0.25
    status, output = await run()
    assert status == 1
    assert "0.75 credits" in row(output, "upscale: costs 0.5 credits")


@pytest.mark.fake_clock
async def test_not_readable_yet_and_retry_after_are_seen_and_confirmed(stub):
    """A 422 'recordInfo is null' before the task reads, and a 429's Retry-After, are confirmed."""
    stub.states = [NOT_READABLE, "waiting", "success"]
    stub.rate_limited_reads, stub.retry_after = 1, "2"
    status, output = await run()
    assert status == 0, output
    assert "confirmed" in row(output, "a new task may answer 404 or 422")
    assert "429 with Retry-After 2" in row(output, "a 429 may carry Retry-After")


@pytest.mark.fake_clock
async def test_a_task_that_never_becomes_readable_is_named(stub):
    """A task answering 'recordInfo is null' until the timeout is 'different'."""
    stub.states = [NOT_READABLE]
    status, output = await run(timeout=3.0)
    assert status == 1
    assert "never readable" in row(output, "a new task may answer 404 or 422")


@pytest.mark.fake_clock
async def test_a_refused_key_exits_2_and_spends_nothing(stub):
    """A key the service refuses stops the doctor before any upload or submit."""
    status, output = await run(key="sk-wrong-key")
    assert status == 2
    assert "the key was refused" in output
    assert "nothing spent" in output
    assert (stub.uploads, stub.submits) == (0, 0)


@pytest.mark.fake_clock
async def test_no_consent_spends_nothing(stub):
    """Without --yes the doctor asks first; a 'no' exits 2 with nothing sent but a balance read."""
    status, output = await run(yes=False, answer=False)
    assert status == 2
    assert "nothing spent" in output
    assert (stub.uploads, stub.submits) == (0, 0)


@pytest.mark.fake_clock
async def test_too_few_credits_exits_2_before_spending(stub):
    """A balance below the doctor's cost stops it before anything is spent."""
    stub.balance = 1.0
    status, output = await run()
    assert status == 2
    assert stub.submits == 0
    assert "fewer than the 1.5" in output


async def test_the_trace_holds_every_exchange_without_the_key_or_signatures(stub, tmp_path):
    """The trace: method, path, status, timing and bodies; no key, no signed query strings."""
    stub.states = ["success"]  # no wait between reads: this test runs on the real clock
    trace = tmp_path / "trace.json"
    status, output = await run(trace=trace)
    assert status == 0, output
    text = trace.read_text()
    assert KEY not in text
    assert KEY not in output
    assert SIGNATURE not in text
    assert "fresh=1" not in text
    document = json.loads(text)
    steps = [e["step"] for e in document["exchanges"]]
    assert steps[:4] == ["credits", "upload upscale", "submit upscale", "read upscale"]
    read = next(e for e in document["exchanges"] if e["step"] == "read upscale")
    assert read["path"].startswith("/api/v1/jobs/recordInfo?taskId=task_recraft_")
    assert {"method", "status", "started", "seconds", "response"} <= set(read)
    result = json.loads(read["response"]["data"]["resultJson"])
    assert result["resultUrls"][0].startswith(f"{FILES}/results/")
    assert [f["verdict"] for f in document["findings"]].count("different") == 0


async def test_a_key_echoed_by_the_service_is_kept_out_of_the_output_and_trace(stub, tmp_path):
    """Even an answer that quotes the key shows it nowhere."""
    stub.states = ["success"]
    stub.upload_changes = {"fileName": f"echo {KEY}"}
    trace = tmp_path / "trace.json"
    await run(trace=trace)
    assert KEY not in trace.read_text()


@pytest.mark.slow
def test_the_command_against_the_emulator_confirms_everything(tmp_path):
    """`doctor --emulator` runs offline, exits 0 and writes a trace without the key."""
    trace = tmp_path / "trace.json"
    done = cli_in_process("doctor", "--emulator", "--trace", trace, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " different " not in done.stdout
    assert "confirmed" in row(done.stdout, "upscale: the result URL serves an image")
    text = trace.read_text()
    assert "emulator-key" not in text
    assert json.loads(text)["exchanges"]


def test_the_command_without_a_key_is_a_usage_error(tmp_path):
    """No KIE_API_KEY and no --api-key-file: exit 2 before anything is sent."""
    done = cli_in_process("doctor", "--yes", cwd=tmp_path)
    assert done.returncode == 2
    assert "no API key" in done.stderr + done.stdout

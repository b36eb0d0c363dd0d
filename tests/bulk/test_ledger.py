"""The ledger: one key per input, one writer, illegal transitions logged and never hidden."""

import hashlib
import sqlite3

import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, image_bytes, market_record

import recraft_async as ra
from recraft_async._bulk import _ledger
from recraft_async._bulk._ledger import Ledger
from recraft_async._core._check import check_upscale
from recraft_async._core._identity import identify_request
from recraft_async._core._models import Result, TaskRecord, TaskState
from recraft_async._core._record import NO_RECORD, NullLedger

pytestmark = pytest.mark.anyio
UP = ra.Operation.UPSCALE
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


def _result(task_id="t1"):
    done = TaskRecord(task_id, TaskState.SUCCESS, ("https://cdn.test/o.png",))
    return Result(task_id, UP, done.result_urls, None, None, done, "a.png")


async def test_one_key_for_a_file_its_bytes_and_the_bytes_read(tmp_path):
    """The bulk run's identity (file hashed) and the job's (bytes read) are the same."""
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes())
    async with ra.Journal(tmp_path / "j.db") as journal:
        ledger = Ledger(journal)
        from_path = check_upscale(path, None, None, None, dialect="market")
        from_bytes = check_upscale(path.read_bytes(), None, None, None, dialect="market")
        registered = await identify_request(from_path)
        await ledger.register(from_path, registered)
        read = await identify_request(from_path, path.read_bytes())
        job_record = await ledger.open(from_path, read)
        assert isinstance(job_record, _ledger.JournalRecord)
        assert registered == read == await identify_request(from_bytes)
        assert job_record.key == registered.key
        assert registered.content == hashlib.sha256(path.read_bytes()).hexdigest()
        assert job_record.state is ra.JournalState.PENDING
        url = check_upscale("https://i.test/a.png", 4, "png", None, dialect="recraft")
        assert (await identify_request(url)).content is None
        assert await identify_request(url) != await identify_request(
            check_upscale("https://i.test/a.png", 2, "png", None, dialect="recraft")
        )


async def test_a_client_without_a_journal_records_nothing(kie, make_client, monkeypatch):
    """Without a journal every record is NO_RECORD: no lookup, no write."""

    async def no_lookup(*_args):
        raise AssertionError("a client without a journal opened a journal record")

    monkeypatch.setattr(_ledger.Ledger, "open", no_lookup)
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).respond(json=market_record("t1"))
    async with make_client() as client:
        assert isinstance(client._life.scheduler.ledger, NullLedger)
        assert (await client.upscale("https://i.test/a.png")).task_id == "t1"
    request = check_upscale("https://i.test/a.png", None, None, None, dialect="market")
    assert await NullLedger().open(request, await identify_request(request)) is NO_RECORD
    assert NO_RECORD.resumable_task(UP) is None


async def test_failures_record_only_what_they_prove(tmp_path):
    """Uncertain only from SUBMITTING; a failed task FAILED; a timeout keeps it resumable."""
    async with ra.Journal(tmp_path / "j.db") as journal:
        ledger = Ledger(journal)

        async def submitted(url):
            request = check_upscale(url, None, None, None, dialect="market")
            entry = await ledger.open(request, await identify_request(request))
            await entry.before_submit()
            await entry.submitted("t-" + url[-5])
            return entry

        timed_out = await submitted("https://i.test/a.png")
        await timed_out.failed(ra.JobTimeoutError("slow", task_id="t-a"))
        failed = await submitted("https://i.test/b.png")
        await failed.failed(ra.TaskFailedError("no", task_id="t-b", state="failed"))
        request = check_upscale("https://i.test/c.png", None, None, None, dialect="market")
        lost = await ledger.open(request, await identify_request(request))
        await lost.before_submit()
        await lost.failed(ra.SubmissionUncertainError("lost", operation=UP, image="c"))
        states = {e.source[-5:]: e.state for e in await journal.entries()}
    assert states == {
        "a.png": ra.JournalState.SUBMITTED,
        "b.png": ra.JournalState.FAILED,
        "c.png": ra.JournalState.UNCERTAIN,
    }


async def test_an_illegal_transition_is_logged_and_never_ends_the_paid_job(
    kie, make_client, tmp_path, monkeypatch, caplog
):
    """The task id was not journalled: SUCCEEDED is then illegal, logged, and the job succeeds."""
    kie.post(UPSCALE).respond(json=envelope({"taskId": "t1"}))
    kie.get(READ).respond(json=market_record("t1"))

    async def broken(*_args):
        raise sqlite3.OperationalError("disk I/O error")

    async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
        monkeypatch.setattr(client.journal, "mark_submitted", broken)
        result = await client.upscale("https://i.test/a.png")
        [entry] = await client.journal.entries()
    assert result.task_id == "t1"
    assert entry.state is ra.JournalState.SUBMITTING
    assert "cannot go from SUBMITTING to SUCCEEDED" in caplog.text


async def test_a_quiet_write_that_breaks_the_protocol_is_logged(tmp_path, caplog):
    """A downloaded input the journal never saw succeed raises inside, and is logged."""
    async with ra.Journal(tmp_path / "j.db") as journal:
        ledger = Ledger(journal)
        request = check_upscale("https://i.test/a.png", None, None, None, dialect="market")
        identity = await identify_request(request)
        await ledger.register(request, identity)
        key = identity.key
        await ledger.downloaded(key, tmp_path / "a.png")
        entry = await journal.get(key)
        assert entry is not None
        await ledger.reopen(entry).succeeded(_result())
        entry = await journal.get(key)
        assert entry is not None
        assert entry.state is ra.JournalState.PENDING
    messages = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [type(m) for m in messages] == [ra.JournalStateError, ra.JournalStateError]
    assert "cannot go from PENDING to DOWNLOADED" in str(messages[0])

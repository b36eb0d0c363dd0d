from __future__ import annotations

import sqlite3

import anyio
import pytest

from recraft_async._bulk._journal import Journal, JournalEntry, JournalState
from recraft_async._core._identity import fingerprint
from recraft_async._core._models import Operation
from recraft_async.errors import JournalStateError

UP = Operation.UPSCALE
S = JournalState
PARAMS = {"scale": 2, "format": "png"}


def test_fingerprint_depends_on_everything_that_matters(tmp_path):
    """Operation, content (not name) and parameters change the fingerprint; order does not."""
    a = tmp_path / "a.png"
    b = tmp_path / "b.png"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    base = fingerprint(UP, a, PARAMS)
    assert base == fingerprint(UP, b, {"format": "png", "scale": 2})
    assert base == fingerprint(UP, b"same bytes", PARAMS)
    assert base == fingerprint(UP, b"same bytes", {**PARAMS, "ignored": None})
    assert base != fingerprint(UP, b"other bytes", PARAMS)
    assert base != fingerprint(UP, a, {"scale": 4, "format": "png"})
    assert base != fingerprint(Operation.REMOVE_BACKGROUND, a, PARAMS)
    assert fingerprint(UP, "https://x.test/a.png", {}) != fingerprint(UP, "https://x.test/b", {})
    assert len(base) == 64


@pytest.mark.anyio
async def test_full_lifecycle_and_reopen(tmp_path):
    """Each step is recorded and survives closing and reopening the journal."""
    path = tmp_path / "j.sqlite"
    async with Journal(path) as j:
        assert await j.get("fp") is None
        await j.add("fp", UP, "a.png", PARAMS)
        await j.mark_submitting("fp", UP, "a.png", PARAMS)
        await j.mark_submitted("fp", "task-1")
        await j.mark_succeeded("fp", ["https://r.test/1.png"])
        await j.mark_downloaded("fp", tmp_path / "out" / "a.png")
    async with Journal(path) as j:
        entry = await j.get("fp")
    assert isinstance(entry, JournalEntry)
    assert entry.state is S.DOWNLOADED
    assert entry.operation is UP
    assert (entry.source, entry.params, entry.task_id) == ("a.png", PARAMS, "task-1")
    assert entry.result_urls == ("https://r.test/1.png",)
    assert entry.output_path == tmp_path / "out" / "a.png"
    assert entry.error is None
    assert entry.updated_at >= entry.created_at


@pytest.mark.anyio
async def test_submitting_without_task_id_becomes_uncertain_on_reopen(tmp_path):
    """A run that died after SUBMITTING leaves an UNCERTAIN entry, never a resubmit."""
    path = tmp_path / "j.sqlite"
    async with Journal(path) as j:
        await j.mark_submitting("lost", UP, "a.png", PARAMS)
        await j.mark_submitting("ok", UP, "b.png", PARAMS)
        await j.mark_submitted("ok", "task-2")
    async with Journal(path) as j:
        lost = await j.get("lost")
        ok = await j.get("ok")
        assert lost is not None
        assert ok is not None
        assert lost.state is S.UNCERTAIN
        assert "may exist" in (lost.error or "")
        assert ok.state is S.SUBMITTED
        with pytest.raises(JournalStateError, match="UNCERTAIN to SUBMITTING"):
            await j.mark_submitting("lost", UP, "a.png", PARAMS)
        # Someone found the task id: the entry can continue.
        await j.mark_submitted("lost", "task-found")
        assert [e.fingerprint for e in await j.entries([S.SUBMITTED])] == ["lost", "ok"]


@pytest.mark.anyio
async def test_writes_are_committed_before_returning(tmp_path):
    """Another connection sees SUBMITTING as soon as mark_submitting returns (write-ahead)."""
    path = tmp_path / "j.sqlite"
    async with Journal(path) as j:
        await j.mark_submitting("fp", UP, "a.png", PARAMS)
        with sqlite3.connect(path) as other:
            row = other.execute("SELECT state FROM entries WHERE fingerprint='fp'").fetchone()
        assert row == ("SUBMITTING",)
        mode = await j._run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"


@pytest.mark.anyio
async def test_forbidden_transitions_raise(tmp_path):
    """A second submit, or results before a task id, are refused."""
    async with Journal(tmp_path / "j.sqlite") as j:
        with pytest.raises(JournalStateError, match="unknown to SUBMITTED"):
            await j.mark_submitted("nope", "t")
        await j.mark_submitting("fp", UP, "a.png", PARAMS)
        with pytest.raises(JournalStateError, match="SUBMITTING to SUBMITTING"):
            await j.mark_submitting("fp", UP, "a.png", PARAMS)
        with pytest.raises(JournalStateError, match="SUBMITTING to SUCCEEDED"):
            await j.mark_succeeded("fp", ["u"])
        await j.mark_submitted("fp", "t")
        with pytest.raises(JournalStateError):
            await j.mark_uncertain("fp", "x")
        await j.mark_succeeded("fp", ["u"])
        await j.mark_downloaded("fp", "out.png")
        with pytest.raises(JournalStateError, match="DOWNLOADED to FAILED"):
            await j.mark_failed("fp", "late")


@pytest.mark.anyio
async def test_failed_and_uncertain_are_recorded(tmp_path):
    """Failures keep their reason; a failed input may be submitted again on purpose."""
    async with Journal(tmp_path / "j.sqlite") as j:
        await j.mark_submitting("a", UP, "a.png", PARAMS)
        await j.mark_uncertain("a", "read timeout after submit")
        await j.mark_submitting("b", UP, "b.png", PARAMS)
        await j.mark_failed("b", "[422] bad image")
        await j.add("c", UP, "c.png", PARAMS)
        states = {e.fingerprint: (e.state, e.error) for e in await j.entries()}
        assert states == {
            "a": (S.UNCERTAIN, "read timeout after submit"),
            "b": (S.FAILED, "[422] bad image"),
            "c": (S.PENDING, None),
        }
        await j.mark_submitting("b", UP, "b.png", PARAMS)
        entry = await j.get("b")
        assert entry is not None
        assert (entry.state, entry.error) == (S.SUBMITTING, None)


@pytest.mark.anyio
async def test_add_is_idempotent(tmp_path):
    """Adding a known input returns the existing entry unchanged."""
    async with Journal(tmp_path / "j.sqlite") as j:
        first = await j.add("fp", UP, "a.png", PARAMS)
        await j.mark_submitting("fp", UP, "a.png", PARAMS)
        again = await j.add("fp", UP, "other.png", {})
    assert first.state is S.PENDING
    assert again.state is S.SUBMITTING
    assert again.source == "a.png"


@pytest.mark.anyio
async def test_concurrent_writers_share_one_connection(tmp_path):
    """Many tasks writing at once all land, each in order."""
    async with Journal(tmp_path / "j.sqlite") as j:

        async def one(i: int) -> None:
            fp = f"fp{i}"
            await j.mark_submitting(fp, UP, f"{i}.png", PARAMS)
            await j.mark_submitted(fp, f"task-{i}")
            await j.mark_succeeded(fp, [f"https://r.test/{i}.png"])

        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(one, i)
        done = await j.entries([S.SUCCEEDED])
    assert len(done) == 60
    assert {e.task_id for e in done} == {f"task-{i}" for i in range(60)}


@pytest.mark.anyio
async def test_cancelled_write_still_commits(tmp_path):
    """A write whose caller is cancelled still completes, so no SUBMITTING is lost."""
    path = tmp_path / "j.sqlite"
    async with Journal(path) as j:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await j.mark_submitting("fp", UP, "a.png", PARAMS)
        entry = await j.get("fp")
    # Either the write happened in full or it never started; never half a row.
    assert entry is None or entry.state is S.SUBMITTING


@pytest.mark.anyio
async def test_closed_journal_refuses_use(tmp_path):
    """Using a journal outside `async with` is an error, not a silent no-op."""
    j = Journal(tmp_path / "j.sqlite")
    with pytest.raises(JournalStateError, match="not open"):
        await j.get("fp")


@pytest.mark.anyio
async def test_newer_schema_is_refused(tmp_path):
    """A journal from a newer version is not silently rewritten."""
    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(JournalStateError, match="newer"):
        async with Journal(path):
            pass


@pytest.mark.anyio
async def test_creates_parent_folder(tmp_path):
    """The journal's folder is made on open."""
    path = tmp_path / "deep" / "er" / "j.sqlite"
    async with Journal(path) as j:
        await j.add("fp", UP, "a", {})
    assert await anyio.Path(path).exists()


@pytest.mark.anyio
async def test_a_refused_submit_goes_back_to_pending(tmp_path):
    """mark_refused takes back a SUBMITTING entry (the service refused it), and nothing else."""
    async with Journal(tmp_path / "j.sqlite") as j:
        await j.mark_submitting("fp", UP, "a.png", PARAMS)
        await j.mark_refused("fp")
        entry = await j.get("fp")
        assert entry is not None
        assert entry.state is JournalState.PENDING
        await j.mark_submitting("fp", UP, "a.png", PARAMS)  # sent again later
        await j.mark_submitted("fp", "t")
        with pytest.raises(JournalStateError, match="SUBMITTED to PENDING"):
            await j.mark_refused("fp")

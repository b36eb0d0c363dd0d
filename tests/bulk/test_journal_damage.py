"""A damaged journal from Python: a typed error carrying the path, never a new journal."""

from __future__ import annotations

import sqlite3

import pytest

import recraft_async as ra
from recraft_async._bulk import _journal
from recraft_async._bulk._journal import Journal, JournalState
from recraft_async._core._models import Operation

UP = Operation.UPSCALE


async def _journal_of(path, *fps: str) -> None:
    """A journal with one DOWNLOADED row per key."""
    async with Journal(path) as j:
        for fp in fps:
            await j.mark_submitting(fp, UP, f"{fp}.png", {})
            await j.mark_submitted(fp, f"task-{fp}")
            await j.mark_succeeded(fp, [f"https://r.test/{fp}.png"])
            await j.mark_downloaded(fp, f"/out/{fp}.png")


def _sql(path, statement: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement)
    conn.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "wrong"),
    [
        (b"", "the file is empty"),
        (b"SQLite format 2\x00" + b"\x00" * 100, "not an SQLite database"),
    ],
)
async def test_a_file_that_is_no_journal_is_refused_and_left_alone(tmp_path, content, wrong):
    """Opening it raises JournalUnreadableError with the path; the file is not rewritten."""
    path = tmp_path / "journal.sqlite"
    path.write_bytes(content)
    with pytest.raises(ra.JournalUnreadableError, match=wrong) as caught:
        async with Journal(path):
            pass
    assert caught.value.path == path
    assert "move it aside" in str(caught.value)
    assert path.read_bytes() == content
    async with Journal(tmp_path / "new.sqlite") as j:  # a path with no file is a new journal
        assert await j.entries() == []


@pytest.mark.anyio
async def test_a_database_without_the_table_is_refused(tmp_path):
    """An SQLite file whose entries table is gone is not made a journal again."""
    path = tmp_path / "journal.sqlite"
    await _journal_of(path, "a")
    _sql(path, "DROP TABLE entries")
    with pytest.raises(ra.JournalUnreadableError, match="without a journal's entries table"):
        async with Journal(path):
            pass
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='entries'").fetchall() == []
    conn.close()


@pytest.mark.anyio
async def test_a_journal_another_program_locks_is_refused_when_its_wait_ends(tmp_path, monkeypatch):
    """A write lock held by another program: a typed error saying so, not a hang."""
    path = tmp_path / "journal.sqlite"
    await _journal_of(path, "a")
    monkeypatch.setattr(_journal, "BUSY_TIMEOUT_MS", 50)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ra.JournalUnreadableError, match="locked by another program"):
            async with Journal(path):
                pass
    finally:
        other.close()
    async with Journal(path) as j:  # the lock gone, the journal opens as before
        assert [e.fingerprint for e in await j.entries()] == ["a"]


@pytest.mark.anyio
async def test_a_damaged_row_is_a_typed_error_and_the_others_stay_readable(tmp_path):
    """get, entries and the transitions of a bad row raise; unreadable() lists it."""
    path = tmp_path / "journal.sqlite"
    await _journal_of(path, "good", "bad")
    _sql(path, "UPDATE entries SET state='ARCHIVED' WHERE fingerprint='bad'")
    async with Journal(path) as j:
        assert await j.get("good") is not None
        with pytest.raises(ra.JournalUnreadableError, match="unknown state 'ARCHIVED'") as got:
            await j.get("bad")
        assert (got.value.path, got.value.source, got.value.fingerprint) == (path, "bad.png", "bad")
        with pytest.raises(ra.JournalUnreadableError):
            await j.mark_submitting("bad", UP, "bad.png", {})
        with pytest.raises(ra.JournalUnreadableError):
            await j.entries([JournalState.DOWNLOADED])  # its state is unknown: never skipped
        readable = await j.entries(skip_unreadable=True)
        assert [e.fingerprint for e in readable] == ["good"]
        (damaged,) = await j.unreadable()
        assert (damaged.path, damaged.source) == (path, "bad.png")

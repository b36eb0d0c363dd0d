"""One run per journal: the lock, its release on any exit, and errors that stay typed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import recraft_async as ra
from recraft_async._bulk._journal import JournalState

# A second process that opens the journal, says so, and holds it until killed.
_HOLDER = textwrap.dedent(
    """
    import sys, time, anyio
    import recraft_async as ra

    async def main():
        async with ra.Journal(sys.argv[1]):
            print("open", flush=True)
            await anyio.sleep(600)

    anyio.run(main)
    """
)


@pytest.fixture
def holder(tmp_path):
    """Start a process holding the journal at ``tmp_path/journal.sqlite`` open; yield it."""
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _HOLDER, str(tmp_path / "journal.sqlite")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "open"
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.anyio
async def test_second_journal_on_one_file_is_refused_at_once(tmp_path):
    """While one Journal is open, a second on the same file raises JournalStateError."""
    path = tmp_path / "journal.sqlite"
    async with ra.Journal(path):
        with pytest.raises(ra.JournalStateError, match="in use by another recraft-async run"):
            async with ra.Journal(path):
                pass  # pragma: no cover - never entered
    async with ra.Journal(path) as again:  # closed: free again
        assert again.is_open


@pytest.mark.slow
@pytest.mark.anyio
async def test_another_process_holding_the_journal_is_named(tmp_path, holder):
    """The error names the process that holds the journal, and nothing of it is changed."""
    with pytest.raises(ra.JournalStateError, match=rf"process {holder.pid}\)"):
        async with ra.Journal(tmp_path / "journal.sqlite"):
            pass  # pragma: no cover - never entered


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    """After SIGKILL of the holder, the journal opens at once (the kernel freed the lock)."""
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    async with ra.Journal(tmp_path / "journal.sqlite") as journal:
        assert await journal.entries() == []


@pytest.mark.anyio
async def test_a_second_run_does_not_touch_the_first_runs_submits(tmp_path):
    """A refused second opener must not turn the first run's SUBMITTING rows UNCERTAIN."""
    path = tmp_path / "journal.sqlite"
    async with ra.Journal(path) as journal:
        await journal.mark_submitting("fp", ra.Operation.UPSCALE, "a.png", {})
        with pytest.raises(ra.JournalStateError):
            async with ra.Journal(path):
                pass  # pragma: no cover - never entered
        entry = await journal.get("fp")
        assert entry is not None
        assert entry.state is JournalState.SUBMITTING


@pytest.mark.anyio
async def test_read_only_inspection_works_while_a_run_holds_the_journal(tmp_path):
    """`sqlite3 journal.sqlite` can still read the entries of a running batch."""
    path = tmp_path / "journal.sqlite"
    async with ra.Journal(path) as journal:
        await journal.add("fp", ra.Operation.UPSCALE, "a.png", {})
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT state FROM entries").fetchall()
    assert rows == [("PENDING",)]


@pytest.mark.anyio
async def test_a_file_that_is_not_a_journal_is_a_typed_error(tmp_path):
    """A corrupt or foreign file raises JournalStateError, never sqlite3.DatabaseError."""
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(ra.JournalStateError, match="cannot be read: not an SQLite database"):
        async with ra.Journal(path):
            pass  # pragma: no cover - never entered
    # The failed open let go of its lock: a good file at the same place opens.
    path.unlink()
    async with ra.Journal(path) as journal:
        assert journal.is_open


@pytest.mark.anyio
async def test_a_failing_write_is_a_typed_error(tmp_path):
    """An SQLite error during a write (here: the table is gone) raises JournalStateError."""
    path = tmp_path / "journal.sqlite"
    async with ra.Journal(path) as journal:
        await journal._run(lambda conn: conn.execute("DROP TABLE entries"))
        with pytest.raises(ra.JournalStateError, match="no such table"):
            await journal.add("fp", ra.Operation.UPSCALE, "a.png", {})


@pytest.mark.anyio
async def test_meta_values_are_stored_and_replaced(tmp_path):
    """meta/set_meta keep one value per name across openings."""
    path = tmp_path / "journal.sqlite"
    async with ra.Journal(path) as journal:
        assert await journal.meta("output_folder") is None
        await journal.set_meta("output_folder", "/a")
        await journal.set_meta("output_folder", "/b")
    async with ra.Journal(path) as journal:
        assert await journal.meta("output_folder") == "/b"


@pytest.mark.anyio
async def test_a_symlinked_path_to_a_journal_meets_the_same_lock(tmp_path):
    """Through a symlink (to the file or to its folder) a held journal is still refused."""
    real = tmp_path / "real" / "journal.sqlite"
    real.parent.mkdir()
    (tmp_path / "link.sqlite").symlink_to(real)
    (tmp_path / "folder-link").symlink_to(real.parent, target_is_directory=True)
    async with ra.Journal(real) as journal:
        for other in (tmp_path / "link.sqlite", tmp_path / "folder-link" / "journal.sqlite"):
            with pytest.raises(ra.JournalStateError, match="in use by another recraft-async run"):
                async with ra.Journal(other):
                    pass  # pragma: no cover - never entered
            assert ra.Journal(other).part_tag == journal.part_tag
    async with ra.Journal(tmp_path / "link.sqlite") as through_link:
        assert through_link.is_open


@pytest.mark.anyio
async def test_a_journal_holds_the_first_output_folder_it_is_given(tmp_path):
    """hold_output_folder keeps the first folder (resolved) and answers it to later calls."""
    path = tmp_path / "journal.sqlite"
    first = (tmp_path / "a").resolve()
    async with ra.Journal(path) as journal:
        assert await journal.output_folder() is None
        assert await journal.hold_output_folder(tmp_path / "a" / ".." / "a") == first
        assert await journal.hold_output_folder(tmp_path / "b") == first
    async with ra.Journal(path) as journal:
        assert await journal.output_folder() == first


@pytest.mark.anyio
async def test_a_journal_under_a_file_is_a_typed_error(tmp_path):
    """A journal path whose folder is a file raises JournalStateError, not a bare OSError."""
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(ra.JournalStateError, match="cannot open the journal"):
        async with ra.Journal(tmp_path / "taken" / "journal.sqlite"):
            pass  # pragma: no cover - never entered

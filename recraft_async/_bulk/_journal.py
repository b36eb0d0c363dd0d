"""A durable, write-ahead record of submitted tasks, so a killed run resumes without paying twice.

Protocol (each step committed before the next network action):

    PENDING -> SUBMITTING -> SUBMITTED -> SUCCEEDED -> DOWNLOADED
                   |             |            |
                   +-> UNCERTAIN +-> FAILED <-+

SUBMITTING is written *before* the submit request leaves, and the task id the moment the
answer arrives. A SUBMITTING row found when the journal is opened means a run died between
those two points: the task may exist and be billed, so it becomes UNCERTAIN and is never
resubmitted silently.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import attrs

from recraft_async._core._errors import JournalStateError, JournalUnreadableError
from recraft_async._core._models import Operation
from recraft_async._core._redact import redact

from ._lockfile import LockFile

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from types import TracebackType

    from typing_extensions import Self

_T = TypeVar("_T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    fingerprint TEXT PRIMARY KEY,
    operation   TEXT NOT NULL,
    source      TEXT NOT NULL,
    params      TEXT NOT NULL,
    state       TEXT NOT NULL,
    task_id     TEXT,
    result_urls TEXT NOT NULL DEFAULT '[]',
    output_path TEXT,
    error       TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_state ON entries (state);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_COLUMNS = [
    "fingerprint", "operation", "source", "params", "state", "task_id", "result_urls",
    "output_path", "error", "created_at", "updated_at",
]  # fmt: skip
_SQLITE_HEADER = b"SQLite format 3\x00"
# How long opening waits for another program's lock on the file before refusing it.
BUSY_TIMEOUT_MS = 5000
_OUT_META = "output_folder"
_LOST_SUBMIT = "the run stopped while submitting; the task may exist (check before resubmitting)"


class JournalState(str, enum.Enum):
    """Where an input stands in the write-ahead protocol."""

    PENDING = "PENDING"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    SUCCEEDED = "SUCCEEDED"
    DOWNLOADED = "DOWNLOADED"
    FAILED = "FAILED"
    UNCERTAIN = "UNCERTAIN"


_S = JournalState
# The states each transition may start from; anything else is a bug in the caller that
# could cost a duplicate submit, so it raises instead of being papered over.
_ALLOWED_FROM: dict[JournalState, frozenset[JournalState | None]] = {
    # From SUBMITTING only when the service refused the submit: nothing was created.
    _S.PENDING: frozenset({None, _S.PENDING, _S.SUBMITTING}),
    _S.SUBMITTING: frozenset({None, _S.PENDING, _S.FAILED}),
    _S.SUBMITTED: frozenset({_S.SUBMITTING, _S.UNCERTAIN, _S.SUBMITTED}),
    _S.SUCCEEDED: frozenset({_S.SUBMITTED, _S.SUCCEEDED}),
    _S.DOWNLOADED: frozenset({_S.SUCCEEDED, _S.DOWNLOADED}),
    _S.FAILED: frozenset(set(_S) - {_S.DOWNLOADED} | {None}),
    _S.UNCERTAIN: frozenset({_S.SUBMITTING, _S.UNCERTAIN}),
}


@attrs.frozen
class JournalEntry:
    """One input's row in the journal."""

    fingerprint: str
    operation: Operation
    source: str
    params: Mapping[str, Any] = attrs.field(hash=False)
    state: JournalState
    task_id: str | None
    result_urls: tuple[str, ...]
    output_path: Path | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class Journal:
    """SQLite journal of bulk work; ``async with Journal(path) as j`` opens it.

    One process at a time: opening a journal another process holds open raises
    ``JournalStateError`` at once (a lock file beside the file the path resolves to,
    ``<name>.lock``, which the system frees when the holder exits, even when killed).

    A journal is created only where no file is. Opening a file that is not a whole journal
    of this version (empty, not SQLite, its tables gone, newer, failing SQLite's integrity
    check, locked by another program) raises ``JournalUnreadableError`` and leaves it as it
    is: a new journal in its place would pay for its inputs again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lockfile: LockFile | None = None
        self._tag: str | None = None
        # One connection for every worker thread; sqlite3 objects are not safe to share
        # without it, and the lock also makes each read-check-write step atomic.
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        """Whether the journal's database is open."""
        return self._conn is not None

    async def __aenter__(self) -> Self:
        await anyio.to_thread.run_sync(self._open)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded: a cancelled run (Ctrl-C) must still close the journal cleanly.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close)

    def _open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Resolved: a symlink, or another spelling of the path, to the same journal
                # must meet the same lock.
                real = self.path.resolve()
            except (OSError, RuntimeError) as exc:  # a file where a folder should be; a loop
                raise JournalStateError(f"cannot open the journal {self.path}: {exc}") from exc
            lockfile = LockFile(real.with_name(real.name + ".lock"))
            # Before SQLite sees the file: a second run must not even mark SUBMITTING rows
            # of the first one UNCERTAIN (see _prepare).
            lockfile.acquire(self.path)
            self._lockfile, self._tag = lockfile, _tag_of(real)
            try:
                # Only a path with no file is a new journal: a file there that is not one
                # of ours (empty, truncated, another program's) is refused, never
                # started over, for a new journal would pay for its inputs again.
                new = not _check_file(self.path)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                conn.text_factory = _text_or_bytes
                try:
                    _prepare(conn, self.path, new=new)
                except BaseException:
                    conn.close()
                    raise
            # SQLite's own message about a damaged schema may not even decode.
            except (sqlite3.Error, UnicodeDecodeError) as exc:
                lockfile.release()
                raise _unreadable(self.path, _sqlite_says(exc)) from exc
            except BaseException:
                lockfile.release()
                raise
            self._conn = conn

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                if self._lockfile is not None:
                    self._lockfile.release()

    @property
    def part_tag(self) -> str:
        """A short id of this journal (of the file its path resolves to).

        Bulk runs put it in the names of their partial downloads, so that a run cleans up
        only what runs of its own journal left behind, never another batch's downloads in
        progress in a shared output folder.
        """
        if self._tag is None:
            self._tag = _tag_of(self.path.resolve())
        return self._tag

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                if self._conn is None:
                    raise JournalStateError("the journal is not open (use `async with`)")
                try:
                    return fn(self._conn)
                # A full disk, a file changed underneath us (SQLite's words may not decode).
                except (sqlite3.Error, UnicodeDecodeError) as exc:
                    raise JournalStateError(f"{self.path}: {exc}") from exc

        # Not abandoned on cancellation: a write that started always finishes and commits.
        return await anyio.to_thread.run_sync(locked)

    async def get(self, fp: str) -> JournalEntry | None:
        """Return the entry for fingerprint ``fp``, if any."""
        return await self._run(lambda c: _get(c, fp, self.path))

    async def entries(
        self, states: Iterable[JournalState] | None = None, *, skip_unreadable: bool = False
    ) -> list[JournalEntry]:
        """Return every entry (or those in ``states``), oldest first.

        A row that cannot be read (see ``unreadable``) raises ``JournalUnreadableError``,
        whatever ``states`` asks for: its state is unknown. ``skip_unreadable=True`` leaves
        such rows out instead, for a caller that reports ``unreadable()`` itself.
        """
        wanted = None if states is None else {JournalState(s) for s in states}

        def query(conn: sqlite3.Connection) -> list[JournalEntry]:
            found = []
            for entry in _read_all(conn, self.path):
                if isinstance(entry, JournalUnreadableError):
                    if skip_unreadable:
                        continue
                    raise entry
                if wanted is None or entry.state in wanted:
                    found.append(entry)
            return found

        return await self._run(query)

    async def unreadable(self) -> list[JournalUnreadableError]:
        """The rows that cannot be read (bad JSON, a wrong type, an unknown state...), oldest first.

        Each error says what is wrong and names the row's input (``.source``) when that
        much is readable. Such an input is never submitted again by a run of this journal:
        its row may hold a task that was paid for.
        """

        def query(conn: sqlite3.Connection) -> list[JournalUnreadableError]:
            rows = _read_all(conn, self.path)
            return [r for r in rows if isinstance(r, JournalUnreadableError)]

        return await self._run(query)

    async def meta(self, name: str) -> str | None:
        """A value the run stored about itself (e.g. its output folder), if any."""

        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
            if row is None:
                return None
            if not isinstance(row[0], str):
                raise _unreadable(self.path, f"its stored {name} is damaged")
            return row[0]

        return await self._run(query)

    async def set_meta(self, name: str, value: str) -> None:
        """Store a value about the run, replacing an earlier one."""
        await self._run(
            lambda c: c.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                (name, value),
            )
        )

    async def hold_output_folder(self, folder: Path) -> Path:
        """Make ``folder`` this journal's output folder unless it holds one; answer the one held.

        One folder per journal: ``resume`` finds every output of the batch there, and a
        run given another folder can be told so before anything is sent.
        """

        def hold(conn: sqlite3.Connection) -> str:
            # Resolved here, in the worker thread: it touches the file system.
            wanted = str(folder.resolve())
            row = conn.execute("SELECT value FROM meta WHERE name=?", (_OUT_META,)).fetchone()
            if row is not None:
                if not isinstance(row[0], str):
                    raise _unreadable(self.path, f"its stored {_OUT_META} is damaged")
                return row[0]
            conn.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (_OUT_META, wanted))
            return wanted

        return Path(await self._run(hold))

    async def output_folder(self) -> Path | None:
        """The output folder this journal holds, if a run gave it one."""
        stored = await self.meta(_OUT_META)
        return None if stored is None else Path(stored)

    async def add(
        self, fp: str, operation: Operation, source: str, params: Mapping[str, Any]
    ) -> JournalEntry:
        """Record an input as PENDING unless it is known; return its entry either way."""

        def insert(conn: sqlite3.Connection) -> JournalEntry:
            existing = _get(conn, fp, self.path)
            if existing is not None:
                return existing
            _insert(conn, fp, operation=operation, source=source, params=params, state=_S.PENDING)
            entry = _get(conn, fp, self.path)
            assert entry is not None  # noqa: S101 - just inserted under the lock
            return entry

        return await self._run(insert)

    async def mark_submitting(
        self, fp: str, operation: Operation, source: str, params: Mapping[str, Any]
    ) -> None:
        """Commit the intent to submit; call it *before* the submit request is sent."""

        def write(conn: sqlite3.Connection) -> None:
            current = _current_state(conn, fp, self.path)
            _check(fp, current, _S.SUBMITTING)
            if current is None:
                _insert(
                    conn, fp, operation=operation, source=source, params=params, state=_S.SUBMITTING
                )
            else:
                _update(conn, fp, state=_S.SUBMITTING, task_id=None, error=None)

        await self._run(write)

    async def mark_refused(self, fp: str) -> None:
        """Take back a submit the service provably refused (429, 455): PENDING again."""
        await self._transition(fp, _S.PENDING, error=None)

    async def mark_submitted(self, fp: str, task_id: str) -> None:
        """Record the task id the moment the submit answer arrives."""
        await self._transition(fp, _S.SUBMITTED, task_id=task_id, error=None)

    async def mark_succeeded(self, fp: str, urls: Iterable[str]) -> None:
        """Record the result URLs of a finished task."""
        await self._transition(fp, _S.SUCCEEDED, result_urls=json.dumps(list(urls)))

    async def mark_downloaded(self, fp: str, path: str | Path) -> None:
        """Record where the result was written."""
        await self._transition(fp, _S.DOWNLOADED, output_path=str(path))

    async def mark_failed(self, fp: str, error: str) -> None:
        """Record a definite failure (no task, or a task that failed)."""
        await self._transition(fp, _S.FAILED, error=error)

    async def mark_uncertain(self, fp: str, error: str) -> None:
        """Record that a submit may have landed without us learning the task id."""
        await self._transition(fp, _S.UNCERTAIN, error=error)

    async def _transition(self, fp: str, state: JournalState, **values: object) -> None:
        def write(conn: sqlite3.Connection) -> None:
            _check(fp, _current_state(conn, fp, self.path), state)
            _update(conn, fp, state=state, **values)

        await self._run(write)


def _tag_of(real: Path) -> str:
    return hashlib.sha256(str(real).encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _check_file(path: Path) -> bool:
    """Whether a file is at ``path`` (False: a new journal); raise if it is not an SQLite one."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _unreadable(path, f"cannot read it ({exc.strerror or type(exc).__name__})") from exc
    if not header:
        raise _unreadable(path, "the file is empty (0 bytes)")
    if header != _SQLITE_HEADER:
        raise _unreadable(path, "not an SQLite database")
    return True


def _prepare(conn: sqlite3.Connection, path: Path, *, new: bool) -> None:
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # FULL: a commit survives power loss too, not only a killed process.
    conn.execute("PRAGMA synchronous=FULL")
    if not new:
        _check_ours(conn, path)
    conn.execute("PRAGMA journal_mode=WAL")
    # One transaction: a run killed while creating the journal leaves no tables half made.
    conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={_SCHEMA_VERSION}; COMMIT;")
    # A run died between committing SUBMITTING and learning the task id: maybe billed.
    conn.execute(
        "UPDATE entries SET state=?, error=?, updated_at=? WHERE state=? AND task_id IS NULL",
        (_S.UNCERTAIN.value, _LOST_SUBMIT, time.time(), _S.SUBMITTING.value),
    )


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """Raise unless the database is a journal of this version, whole."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > _SCHEMA_VERSION:
        raise _unreadable(
            path,
            f"written by a newer recraft-async (journal version {version}; this version reads"
            f" {_SCHEMA_VERSION}); finish it with that version",
            advice=False,
        )
    columns = [row[1] for row in conn.execute("PRAGMA table_info(entries)")]
    if not columns:
        raise _unreadable(path, "an SQLite database without a journal's entries table")
    if columns != _COLUMNS:
        raise _unreadable(path, "its entries table is not a journal's (other columns)")
    # version 0 with our table: a journal whose creation an older version left unstamped.
    meta = [row[1] for row in conn.execute("PRAGMA table_info(meta)")]
    if meta not in ([], ["name", "value"]):  # none: from before the output folder was kept
        raise _unreadable(path, "its meta table is not a journal's (other columns)")
    # integrity_check, not quick_check: it also finds a key that no longer matches its
    # index (a damaged fingerprint), which would make an input look new and paid again.
    problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(1)")]
    if problems != ["ok"]:
        raise _unreadable(path, f"damaged (SQLite's integrity check: {problems[0]})")


def _text_or_bytes(data: bytes) -> str | bytes:
    """A text value; bytes that are no UTF-8 stay bytes, so that their row is found damaged."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def _sqlite_says(exc: sqlite3.Error | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "damaged (SQLite's answer is not even text)"
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"locked by another program ({text}); close it and run again"
    return f"damaged ({text})"


def _unreadable(path: Path, what: str, *, advice: bool = True) -> JournalUnreadableError:
    """The error of a journal file refused as a whole, with how to start anew deliberately."""
    message = f"the journal {path} cannot be read: {what}"
    if advice:
        message += (
            "; it was left as it is. To start a new batch anyway, move it aside (rename it,"
            f" e.g. to {path.name}.damaged): a new journal does not know what this one"
            " submitted, so inputs it holds may be paid for again"
        )
    return JournalUnreadableError(message, path=path)


def _check(fp: str, current: JournalState | None, target: JournalState) -> None:
    if current not in _ALLOWED_FROM[target]:
        was = "unknown" if current is None else current.value
        raise JournalStateError(f"journal entry {fp[:12]}: cannot go from {was} to {target.value}")


def _current_state(conn: sqlite3.Connection, fp: str, path: Path) -> JournalState | None:
    # The whole row, checked: a transition from a damaged one could pay twice.
    entry = _get(conn, fp, path)
    return None if entry is None else entry.state


def _insert(
    conn: sqlite3.Connection,
    fp: str,
    *,
    operation: Operation,
    source: str,
    params: Mapping[str, Any],
    state: JournalState,
) -> None:
    now = time.time()
    conn.execute(
        "INSERT INTO entries (fingerprint, operation, source, params, state, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (fp, Operation(operation).value, source, json.dumps(dict(params), sort_keys=True),
         state.value, now, now),
    )  # fmt: skip


def _update(conn: sqlite3.Connection, fp: str, *, state: JournalState, **values: object) -> None:
    error = values.get("error")
    if isinstance(error, str):  # every row's error text is written here, and only here
        values["error"] = redact(error)
    columns = {"state": state.value, **values, "updated_at": time.time()}
    assignments = ", ".join(f"{name}=?" for name in columns)  # names are ours, not input
    conn.execute(
        f"UPDATE entries SET {assignments} WHERE fingerprint=?",  # noqa: S608
        (*columns.values(), fp),
    )


def _get(conn: sqlite3.Connection, fp: str, path: Path) -> JournalEntry | None:
    row = conn.execute("SELECT * FROM entries WHERE fingerprint=?", (fp,)).fetchone()
    return None if row is None else _entry(row, path)


def _read_all(conn: sqlite3.Connection, path: Path) -> list[JournalEntry | JournalUnreadableError]:
    """Every row, oldest first: its entry, or the error saying what is wrong with it."""
    read: list[JournalEntry | JournalUnreadableError] = []
    for row in conn.execute("SELECT * FROM entries ORDER BY created_at, rowid"):
        try:
            read.append(_entry(row, path))
        except JournalUnreadableError as exc:  # noqa: PERF203 - rare; the row is reported
            read.append(exc)
    return read


def _entry(row: tuple[Any, ...], path: Path) -> JournalEntry:
    """The entry of a row, or ``JournalUnreadableError`` saying what is wrong with it."""
    fp, source = row[0], row[2]
    try:
        return _parse(row)
    except (ValueError, TypeError, OverflowError, OSError) as exc:  # JSON's errors included
        readable = isinstance(source, str) and source.isprintable()
        name = source if readable else f"row {fp[:12] if isinstance(fp, str) else '?'}"
        raise JournalUnreadableError(
            f"{name}: its journal row is damaged ({exc}); not submitted again: it may have"
            " been paid for",
            path=path,
            source=source if readable else None,
            fingerprint=fp if isinstance(fp, str) else None,
        ) from exc


def _parse(row: tuple[Any, ...]) -> JournalEntry:
    (fp, operation, source, params, state, task_id, urls, output, error, created, updated) = row
    try:
        state = JournalState(_text(state, "state"))
    except ValueError:
        raise ValueError(f"unknown state {state!r}") from None
    parsed_params = json.loads(_text(params, "params"))
    if not isinstance(parsed_params, dict):
        raise TypeError("params is not a JSON object")
    parsed_urls = json.loads(_text(urls, "result_urls"))
    if not isinstance(parsed_urls, list) or not all(isinstance(u, str) for u in parsed_urls):
        raise TypeError("result_urls is not a JSON list of strings")
    entry = JournalEntry(
        fingerprint=_text(fp, "fingerprint"),
        operation=Operation(_text(operation, "operation")),
        source=_text(source, "source"),
        params=parsed_params,
        state=state,
        task_id=_text(task_id, "task_id", optional=True),
        result_urls=tuple(parsed_urls),
        output_path=None if output is None else Path(_text(output, "output_path")),
        error=_text(error, "error", optional=True),
        created_at=_time(created, "created_at"),
        updated_at=_time(updated, "updated_at"),
    )
    missing = _missing(entry)
    if missing:
        raise ValueError(f"{state.value} without {missing}")
    return entry


def _missing(entry: JournalEntry) -> str | None:
    """What a row in its state must hold and does not: a task id once submitted, and so on."""
    if entry.state in (_S.SUBMITTED, _S.SUCCEEDED, _S.DOWNLOADED) and not entry.task_id:
        return "a task id"
    if entry.state in (_S.SUCCEEDED, _S.DOWNLOADED) and not entry.result_urls:
        return "result URLs"
    if entry.state is _S.DOWNLOADED and entry.output_path is None:
        return "an output path"
    return None


def _text(value: object, name: str, *, optional: bool = False) -> Any:
    if (value is None and optional) or isinstance(value, str):
        return value
    raise TypeError(f"{name} is {type(value).__name__}, not text")


def _time(value: object, name: str) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} is {type(value).__name__}, not a time")
    return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)

"""One process per journal: an OS file lock beside it, released by the kernel on any exit.

Hand-written rather than a dependency (py-filelock would do): the core depends on httpx,
anyio, attrs and cattrs only, and the lock needs two system calls. The kernel drops the
lock when the process dies, even by SIGKILL, so a crashed run never leaves a stale lock.
SQLite's own locks are no substitute: holding one for a whole run would also shut out
read-only inspection of the journal (``sqlite3 journal.sqlite``) while a batch runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from recraft_async._core._errors import JournalStateError

if sys.platform == "win32":  # pragma: no cover - CI runs on Linux
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class LockFile:
    """An exclusive, non-blocking lock on ``path``; ``acquire`` raises if another holds it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, what: Path) -> None:
        """Take the lock for ``what`` at once, or raise ``JournalStateError`` naming the holder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalStateError(f"cannot lock {what}: {exc}") from exc
        try:
            locked = _try_lock(fd)
            holder = "" if locked else _holder(fd)
            if locked:
                # The holder's pid, for the message the next process shows; informative only.
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, str(os.getpid()).encode())
        except OSError as exc:  # e.g. a file system without locks
            os.close(fd)
            raise JournalStateError(f"cannot lock {what}: {exc}") from exc
        if not locked:
            os.close(fd)
            raise JournalStateError(
                f"{what} is in use by another recraft-async run{holder}; wait for it to"
                " finish (or stop it), then run again"
            )
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the descriptor releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""

"""What a job's life asks of a ledger: an input's key, and its record to read and write.

The scheduler (the core) opens one record per fresh job through a ``RecordBook``; without
a journal that is ``NullLedger``, which writes nothing. The journal-backed ledger
(``recraft_async._bulk._ledger.Ledger``, over SQLite) is passed in by the facade when the
client has a journal: the core itself never imports the journal or SQLite.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._models import Operation

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._check import SubmitRequest
    from ._models import Result


def fingerprint(operation: Operation, source: bytes | str | Path, params: Mapping[str, Any]) -> str:
    """Identify one unit of work: the operation, the input (bytes' hash or URL), the parameters."""
    if isinstance(source, Path):
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        key = "sha256:" + digest.hexdigest()
    elif isinstance(source, bytes):
        key = "sha256:" + hashlib.sha256(source).hexdigest()
    else:
        key = "url:" + source
    clean = {k: v for k, v in params.items() if v is not None}
    text = json.dumps([Operation(operation).value, key, clean], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class Record(Protocol):
    """One input's journal row, as a job's life sees and writes it."""

    def resumable_task(self, operation: Operation) -> str | None:
        """The task an earlier submit of this input created, if it may be polled again."""

    async def before_submit(self) -> None:
        """Write-ahead: record the intent to submit, or raise ``JournalStateError``."""

    async def refused(self) -> None:
        """The service provably refused the submit: nothing was created."""

    async def submitted(self, task_id: str) -> None:
        """The submit created ``task_id``."""

    async def succeeded(self, result: Result) -> None:
        """The task finished with ``result``."""

    async def failed(self, error: Exception) -> None:
        """The job ended in ``error``: record what it proves about the input."""


class NullRecord:
    """The row of a job run without a journal: nothing to find, nothing to write."""

    def resumable_task(self, _operation: Operation) -> str | None:
        """None: without a journal, nothing was submitted before."""
        return None

    async def before_submit(self) -> None:
        """Nothing to write."""

    async def refused(self) -> None:
        """Nothing to write."""

    async def submitted(self, _task_id: str) -> None:
        """Nothing to write."""

    async def succeeded(self, _result: Result) -> None:
        """Nothing to write."""

    async def failed(self, _error: Exception) -> None:
        """Nothing to write."""


NO_RECORD = NullRecord()


class NullLedger:
    """The ledger of a client without a journal: every job's record is ``NO_RECORD``."""

    async def open(self, _request: SubmitRequest, _data: bytes | None) -> Record:
        """The record of a fresh job: one that writes nothing."""
        return NO_RECORD


class RecordBook(Protocol):
    """Where a fresh job's record comes from: a journal's ledger, or ``NullLedger``."""

    async def open(self, request: SubmitRequest, data: bytes | None) -> Record:
        """The record of a fresh job, with what is already known of its input."""
        ...

"""What a job's life asks of a ledger: its input's record, to read and write.

The scheduler (the core) opens one record per fresh job through a ``RecordBook``; without
a journal that is ``NullLedger``, which writes nothing. The journal-backed ledger
(``recraft_async._bulk._ledger.Ledger``, over SQLite) is passed in by the facade when the
client has a journal: the core itself never imports the journal or SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._models import Operation

if TYPE_CHECKING:
    from ._check import SubmitRequest
    from ._identity import InputIdentity
    from ._models import Result


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

    async def open(self, _request: SubmitRequest, _identity: InputIdentity) -> Record:
        """The record of a fresh job: one that writes nothing."""
        return NO_RECORD


class RecordBook(Protocol):
    """Where a fresh job's record comes from: a journal's ledger, or ``NullLedger``."""

    async def open(self, request: SubmitRequest, identity: InputIdentity) -> Record:
        """The record of a fresh job, found by its input's identity."""
        ...

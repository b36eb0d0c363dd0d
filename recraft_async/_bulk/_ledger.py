"""The one writer of the journal: each input's lookup, and every step it records.

A job's life calls the same methods with or without a journal; without one (``NullLedger``)
they do nothing. Writes before a submit must succeed or nothing is sent; writes after it
are quiet: the task exists and is paid for whatever the journal says, so a failed write
(an illegal transition included, as a ``JournalStateError``) is logged, never the job's end.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

import anyio

from recraft_async._core._errors import JournalStateError, SubmissionUncertainError, TaskFailedError
from recraft_async._core._escape import printable
from recraft_async._core._record import Record

from ._journal import Journal, JournalEntry, JournalState

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from pathlib import Path

    from recraft_async._core._check import SubmitRequest
    from recraft_async._core._identity import InputIdentity
    from recraft_async._core._models import Operation, Result

logger = logging.getLogger("recraft_async")

_S = JournalState
_RESUMABLE = frozenset({_S.SUBMITTED, _S.SUCCEEDED, _S.DOWNLOADED})


class Ledger:
    """Looks up and records inputs in one journal; the only code that writes it."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    async def register(self, request: SubmitRequest, identity: InputIdentity) -> None:
        """Record ``request``'s input (known by ``identity``) as PENDING unless known."""
        await self.journal.add(identity.key, request.operation, request.source, request.params)

    async def lookup(self, key: str) -> JournalEntry | None:
        """The journal's entry for ``key``, if any."""
        return await self.journal.get(key)

    async def open(self, request: SubmitRequest, identity: InputIdentity) -> Record:
        """The record of a fresh job, with what the journal already holds for its input."""
        entry = await self.journal.get(identity.key)
        return JournalRecord(self.journal, identity.key, request, entry)

    def reopen(self, entry: JournalEntry) -> Record:
        """The record of an input the journal holds, to finish it by its task id."""
        return JournalRecord(self.journal, entry.fingerprint, None, entry)

    async def downloaded(self, key: str, path: Path) -> None:
        """Record where the input's result was written (quietly)."""
        await _quietly(self.journal.mark_downloaded(key, path))


class JournalRecord:
    """One input's row in a journal; it knows the state it found and every state it wrote."""

    def __init__(
        self,
        journal: Journal,
        key: str,
        request: SubmitRequest | None,
        entry: JournalEntry | None,
    ) -> None:
        self._journal = journal
        self.key = key
        self._request = request
        self._entry = entry
        self.state = entry.state if entry is not None else None

    def resumable_task(self, operation: Operation) -> str | None:
        """The journalled task of this input; an earlier submit that may have landed raises."""
        entry = self._entry
        if entry is None:
            return None
        if entry.task_id is not None and entry.state in _RESUMABLE:
            logger.info(
                "job %s: the journal holds task %s", operation.value, printable(entry.task_id)
            )
            return entry.task_id
        if entry.state in (_S.SUBMITTING, _S.UNCERTAIN):
            raise SubmissionUncertainError(
                f"the journal says an earlier submit of {entry.source} may have created a "
                "task; not resubmitting (check the account, then clear the journal entry)",
                operation=operation,
                image=entry.source,
            )
        return None

    async def before_submit(self) -> None:
        """Commit SUBMITTING; if that fails, raise ``JournalStateError``: nothing was sent."""
        request = self._request
        assert request is not None  # noqa: S101 - only fresh jobs submit
        try:
            await self._journal.mark_submitting(
                self.key, request.operation, request.source, request.params
            )
        except (OSError, sqlite3.Error, JournalStateError) as exc:
            raise JournalStateError(
                f"cannot journal the submit of {request.source} ({exc}); nothing was sent"
            ) from exc
        self.state = _S.SUBMITTING

    async def refused(self) -> None:
        """PENDING again: a run killed in the wait that follows has created nothing."""
        await self._write(_S.PENDING, self._journal.mark_refused(self.key))

    async def submitted(self, task_id: str) -> None:
        """Record the task id the moment the submit's answer arrives."""
        await self._write(_S.SUBMITTED, self._journal.mark_submitted(self.key, task_id))

    async def succeeded(self, result: Result) -> None:
        """Record the result's URLs."""
        await self._write(_S.SUCCEEDED, self._journal.mark_succeeded(self.key, result.urls))

    async def failed(self, error: Exception) -> None:
        """Record what ``error`` proves: uncertain, failed, or nothing (still resumable)."""
        if isinstance(error, SubmissionUncertainError):
            if self.state is _S.SUBMITTING:
                await self._write(_S.UNCERTAIN, self._journal.mark_uncertain(self.key, str(error)))
        elif self.state is _S.SUBMITTING or isinstance(error, TaskFailedError):
            # Refused before a task existed, or the task itself failed: a rerun may submit
            # again. Other failures after a submit keep the task resumable.
            await self._write(_S.FAILED, self._journal.mark_failed(self.key, str(error)))

    async def _write(self, state: JournalState, write: Awaitable[None]) -> None:
        if await _quietly(write):
            self.state = state


async def _quietly(write: Awaitable[None]) -> bool:
    """Make a write after the fact; if it fails, log it and answer False."""
    try:
        with anyio.CancelScope(shield=True):
            await write
    except Exception:
        logger.exception("a journal write failed; the job goes on without it")
        return False
    return True

"""The client a bulk run drives: ``AsyncRecraft`` with the one seam bulk needs beyond it.

The command line is a client like any other: its batch (``_bulk._batch.Batch``) calls the
public API, and through ``bulk_seam()`` three things more (see docs/guides/architecture.md):
the journal's ledger, the submit window's wait, and a job whose input's identity the run
has already computed (so that a local image is hashed once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._bulk._ledger import Ledger
from ._client import AsyncRecraft
from ._core._errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._core._check import SubmitRequest
    from ._core._identity import InputIdentity
    from ._core._jobs import Job
    from ._core._scheduler import Scheduler


class ClientSeam:
    """An open client's seam for bulk (``_bulk._batch.BulkSeam``)."""

    def __init__(
        self,
        ledger: Ledger,
        scheduler: Scheduler,
        submit: Callable[[SubmitRequest, InputIdentity], Job],
    ) -> None:
        self.ledger = ledger
        self._scheduler = scheduler
        self._submit = submit

    def next_submit_in(self) -> float | None:
        """Seconds until a waiting submit may go, or None (throttled, or nothing waits)."""
        return self._scheduler.next_submit_in()

    def submit(self, request: SubmitRequest, identity: InputIdentity) -> Job:
        """A job of ``request``; the client's ledger decides whether it resumes or submits."""
        return self._submit(request, identity)


class BulkRecraft(AsyncRecraft):
    """``AsyncRecraft`` for a bulk run: the same client, plus ``bulk_seam()``."""

    def bulk_seam(self) -> ClientSeam:
        """The seam of this open client; it must have a journal."""
        scheduler = self._open_scheduler()
        ledger = scheduler.ledger
        if not isinstance(ledger, Ledger):
            raise InvalidInputError("a bulk run needs a client with a journal")
        return ClientSeam(
            ledger, scheduler, lambda request, identity: self._schedule(request, identity=identity)
        )

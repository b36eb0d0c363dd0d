"""What the emulator saw: the counters a test or a benchmark asserts on."""

from __future__ import annotations

import collections
from typing import Any

import attrs


@attrs.define
class EmulatorStats:
    """Counters since the emulator was made; read them, don't write them.

    ``submits`` counts the tasks that landed (a task id was answered or, under a
    ``processed`` fault, would have been), per ``(operation, image_url)``: a value above 1
    for one image is a credit paid twice. ``status_reads`` counts the reads that got past
    the key and the read limit and named a task.
    """

    submits: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter)
    submit_requests: int = 0
    tasks_created: int = 0
    status_reads: int = 0
    not_ready_reads: int = 0  # status reads answered 422 "recordInfo is null"
    rate_limited: int = 0  # submits refused by ``rate``
    read_rate_limited: int = 0  # status reads refused by ``read_rate``
    # The most status reads counted within any one second of the (scaled) service clock.
    peak_reads_per_second: int = 0
    max_pending: int = 0
    callbacks_sent: int = 0
    callbacks_delivered: int = 0
    callbacks_failed: int = 0
    callbacks_refused: int = 0
    callbacks_lost: int = 0  # never sent: a ``lost`` callback fault struck
    uploads: int = 0
    downloads: int = 0
    download_links: int = 0  # fresh links made by POST /api/v1/common/download-url
    downloads_refused: int = 0  # result GETs refused: an expired link or URL (faults aside)
    credits_spent: float = 0.0
    faults: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict, as served at ``GET /_emulator/stats``."""
        plain = attrs.asdict(self, recurse=False)
        plain["submits"] = [
            {"operation": op, "imageUrl": url, "count": n} for (op, url), n in self.submits.items()
        ]
        plain["faults"] = dict(self.faults)
        return plain

"""The warm start: learnt processing times kept across processes (a journal or a file).

A fresh process would otherwise add no learnt reads until a few tasks finish. What the poll
planner learnt (the recent finished tasks' processing times, per operation) is written
when the client closes, into the journal's ``meta`` table when there is a journal, else
into an optional small JSON file, and read back when the next client opens. Reading is
forgiving: a missing, unreadable or foreign state is logged and ignored (the process
starts cold), never an error; writing is quiet for the same reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.to_thread

from ._models import Operation

if TYPE_CHECKING:
    from ._adaptive import PollPlanner

logger = logging.getLogger("recraft_async")

STATE_VERSION = 1
# The journal's meta row that holds the state.
JOURNAL_KEY = "processing_times"
# Rounded to the millisecond: enough for a schedule, and the file stays small.
_DIGITS = 3

Learnt = dict[Operation, list[float]]


class MetaStore(Protocol):
    """Where a journal keeps values about the run: ``recraft_async.Journal`` is one."""

    @property
    def is_open(self) -> bool:
        """Whether it can be read and written now."""
        ...

    async def meta(self, name: str) -> str | None:
        """The value stored under ``name``, if any."""
        ...

    async def set_meta(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``, replacing an earlier one."""
        ...


def encode(learnt: Learnt) -> str:
    """The state as JSON: ``{"version": 1, "processing_times": {operation: [seconds]}}``."""
    times = {op.value: [round(t, _DIGITS) for t in values] for op, values in learnt.items()}
    return json.dumps({"version": STATE_VERSION, "processing_times": times})


def decode(text: str) -> Learnt:
    """The learnt times in ``text``; {} for anything that is not a state of this version."""
    try:
        state = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return {}
    times = state.get("processing_times")
    if not isinstance(times, dict):
        return {}
    learnt: Learnt = {}
    for name, values in times.items():
        try:
            operation = Operation(name)
        except ValueError:
            continue
        if isinstance(values, list):
            learnt[operation] = [float(v) for v in values if _is_duration(v)]
    return learnt


def _is_duration(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


async def restore(planner: PollPlanner, journal: MetaStore | None, path: Path | None) -> None:
    """Preload ``planner`` with the state in the journal, else in the file at ``path``."""
    text: str | None = None
    try:
        if journal is not None:
            text = await journal.meta(JOURNAL_KEY)
        if text is None and path is not None:
            text = await anyio.to_thread.run_sync(_read, path)
    except Exception:  # a warm start is an optimisation, never a failure
        logger.warning("could not read the learnt processing times; starting cold", exc_info=True)
        return
    if text is not None:
        planner.preload(decode(text))


async def persist(planner: PollPlanner, journal: MetaStore | None, path: Path | None) -> None:
    """Write what ``planner`` learnt to the journal and to the file at ``path``."""
    learnt = planner.learnt()
    if not learnt:
        return  # nothing new: an earlier state stays as it was
    text = encode(learnt)
    with anyio.CancelScope(shield=True):
        try:
            if journal is not None and journal.is_open:
                await journal.set_meta(JOURNAL_KEY, text)
            if path is not None:
                await anyio.to_thread.run_sync(_write, path, text)
        except Exception:  # the jobs are done: a lost state costs reads only
            logger.warning("could not save the learnt processing times", exc_info=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _write(path: Path, text: str) -> None:
    # Whole or not at all: a process killed mid-write leaves the old state, and workers
    # sharing one file each write their own part (the last to finish wins).
    part = path.with_name(f"{path.name}.{os.getpid()}.part")
    part.write_text(text, encoding="utf-8")
    part.replace(path)

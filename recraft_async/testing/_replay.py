"""Acting out what a real account saw: the emulator replays a ``recraft-async doctor`` trace.

A trace (``recraft-async doctor --trace PATH``) holds every status read of one task per
operation: when it came after the submit, and the answer's shape (envelope, fields, their
types, the states, "not readable yet" answers). ``KieEmulator(replay=...)`` then gives its
own tasks of that operation the trace's processing time (times ``time_scale``, like any
duration) and answers their status reads in the trace's shapes, filled with the emulator's
own values wherever a field keeps its type. Benchmarks and tests thereby run on what a
real account saw, not on what the documentation says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from recraft_async._core._models import TRACE_FORMAT, Operation

_FINAL_STATES = ("success", "fail")


@attrs.frozen
class ReplayedRead:
    """One status read of the trace: seconds after the submit, HTTP status, body."""

    since_submit: float
    status: int
    body: Any

    @property
    def record(self) -> dict[str, Any] | None:
        """The record the answer carried, if any."""
        data = self.body.get("data") if isinstance(self.body, dict) else None
        return data if isinstance(data, dict) else None

    @property
    def final(self) -> bool:
        """Whether this answer ended the task."""
        record = self.record
        return record is not None and record.get("state") in _FINAL_STATES


@attrs.frozen
class Replay:
    """Per operation, the trace's processing time and its status answers, in order."""

    durations: Mapping[Operation, float]
    reads: Mapping[Operation, tuple[ReplayedRead, ...]]

    @classmethod
    def load(cls, source: str | os.PathLike[str] | Mapping[str, Any]) -> Replay:
        """A replay of a doctor's trace: its file, or the parsed document."""
        document = source if isinstance(source, Mapping) else json.loads(Path(source).read_text())
        if document.get("recraftAsyncDoctor") != TRACE_FORMAT:
            raise ValueError("not a trace of recraft-async doctor (no recraftAsyncDoctor: 1)")
        reads: dict[Operation, list[ReplayedRead]] = {}
        for exchange in document.get("exchanges", []):
            operation, since = exchange.get("operation"), exchange.get("since_submit")
            if not str(exchange.get("step", "")).startswith("read ") or since is None:
                continue
            read = ReplayedRead(
                float(since), int(exchange.get("status") or 0), exchange.get("response")
            )
            reads.setdefault(Operation(operation), []).append(read)
        durations = {op: _duration(answers) for op, answers in reads.items()}
        return cls(
            durations={op: d for op, d in durations.items() if d is not None},
            reads={op: tuple(answers) for op, answers in reads.items()},
        )

    def duration(self, operation: Operation) -> float | None:
        """Seconds a task of ``operation`` took in the trace (before ``time_scale``), if seen."""
        return self.durations.get(operation)

    def answer(
        self, operation: Operation, elapsed: float, record: dict[str, Any]
    ) -> tuple[int, Any] | None:
        """(HTTP status, body) for a read ``elapsed`` trace-seconds after the submit.

        ``record`` is the emulator's own market record of the task: an ended task answers
        in the shape of the trace's final answer, a running one in the shape the trace saw
        at that moment. None when the trace has nothing for the moment (then the emulator
        answers as usual).
        """
        reads = self.reads.get(operation, ())
        if record.get("state") in _FINAL_STATES:
            shapes = [read for read in reads if read.final]
        else:
            running = [read for read in reads if not read.final]
            shapes = [read for read in running if read.since_submit <= elapsed] or running[:1]
        if not shapes:
            return None
        shape = shapes[-1]
        template = shape.record
        if template is None:  # "not readable yet", a 404, a 5xx: the answer as it came
            return shape.status, shape.body
        return shape.status, {**shape.body, "data": _filled(template, record)}


def _duration(reads: list[ReplayedRead]) -> float | None:
    """The processing time: the final record's ``costTime``, else the read that saw it end."""
    final = next((read for read in reads if read.final), None)
    if final is None:
        return None
    cost = (final.record or {}).get("costTime")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
        return float(cost) / 1000
    return final.since_submit


def _filled(template: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The trace's fields, in the trace's types, holding the emulator's values where they fit.

    A field the trace lacks stays out, one the trace typed otherwise keeps the trace's
    value, and a running task keeps the trace's state name (an undocumented one included).
    """
    filled: dict[str, Any] = {}
    for name, shape in template.items():
        mine = record.get(name)
        if name == "resultJson" and isinstance(shape, dict) and isinstance(mine, str) and mine:
            filled[name] = json.loads(mine)  # the trace saw an object, not a JSON string
        elif name == "state" and mine not in _FINAL_STATES:
            filled[name] = shape
        elif name in record and _kind(mine) == _kind(shape):
            filled[name] = mine
        else:
            filled[name] = shape
    return filled


def _kind(value: Any) -> type:
    return type(value)

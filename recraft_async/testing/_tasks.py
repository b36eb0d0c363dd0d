"""One emulated task, its state at any moment, and its record in both wire dialects.

A task holds no coroutine: its finish moment is fixed at submit time and every read
computes the state from the clock, so thousands of pending tasks cost a few hundred bytes
each and progress whether or not anyone polls.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from recraft_async._core._models import Operation

SUCCESS, FAILED, CREATE_FAILED, PROCESSING = 1, 2, 3, 0
# Where the emulator serves results: RESULTS_PREFIX + Task.result_name.
RESULTS_PREFIX = "/_emulator/results/"

MARKET_MODELS = {
    "recraft/crisp-upscale": Operation.UPSCALE,
    "recraft/remove-background": Operation.REMOVE_BACKGROUND,
}
MODEL_OF = {op: model for model, op in MARKET_MODELS.items()}


def credit_number(value: float) -> float:
    """Whole credits as JSON integers, as the documented examples write them."""
    return int(value) if float(value).is_integer() else value


def epoch_ms(moment: float | None) -> int | None:
    """Epoch milliseconds, as KIE reports times."""
    return None if moment is None else round(moment * 1000)


@attrs.define(slots=True)
class Task:
    """The emulator's bookkeeping for one task (mutable: read counters)."""

    task_id: str
    operation: Operation
    dialect: str  # "recraft" (the seed's endpoints) or "market"
    image_url: str
    image_key: str | None
    scale: int
    format: str  # "PNG" or "JPG"
    created: float  # time.time() at submit
    finished: float  # time.time() at which the task ends
    outcome: int  # SUCCESS, FAILED or CREATE_FAILED once finished
    error_code: int | None = None
    error_message: str | None = None
    callback_url: str | None = None
    base_url: str = ""
    params: dict[str, Any] = attrs.field(factory=dict)
    cost: float = 0.0
    not_found_reads: int = 0
    hidden_until: float = 0.0  # reads before this moment answer "not found"
    # Market reads before this moment (and the next ``not_ready_reads``) answer KIE's
    # documented 422 "recordInfo is null", with HTTP ``not_ready_status``.
    not_ready_reads: int = 0
    unready_until: float = 0.0
    not_ready_status: int = 200
    unchecked: bool = False  # the input is still to be checked when the task ends
    reads: int = 0
    first_final_read: float | None = None

    def status(self, now: float) -> int:
        """0 while processing, then the outcome."""
        return self.outcome if now >= self.finished else PROCESSING

    @property
    def result_name(self) -> str:
        """The file name of the result under ``/_emulator/results/``."""
        return f"{self.task_id}.{'jpg' if self.format == 'JPG' else 'png'}"

    def result_url(self, base_url: str) -> str:
        """Where the emulator serves this task's result."""
        return f"{base_url}{RESULTS_PREFIX}{self.result_name}"

    def recraft_record(self, now: float, base_url: str) -> dict[str, Any]:
        """The record in the seed's record-info shape (``successFlag``, ``response``)."""
        status = self.status(now)
        done = status != PROCESSING
        return {
            "taskId": self.task_id,
            "successFlag": status,
            "response": {"resultUrls": [self.result_url(base_url)]} if status == SUCCESS else None,
            "errorCode": self.error_code if done and status != SUCCESS else None,
            "errorMessage": self.error_message if done and status != SUCCESS else None,
            "createTime": epoch_ms(self.created),
            "completeTime": epoch_ms(self.finished) if done else None,
        }

    def market_record(self, now: float, base_url: str, *, objects: bool = False) -> dict[str, Any]:
        """The record in the jobs API's recordInfo shape (``state``, ``resultJson``).

        ``param`` and ``resultJson`` are JSON strings, as documented; with ``objects`` they
        are the objects themselves, as some answers seen by public clients carry them.
        """
        status = self.status(now)
        done = status != PROCESSING
        result = {"resultUrls": [self.result_url(base_url)]} if status == SUCCESS else None
        record: dict[str, Any] = {
            "taskId": self.task_id,
            "model": MODEL_OF[self.operation],
            "state": self._market_state(now, status),
            "param": self.params if objects else json.dumps(self.params, separators=(",", ":")),
            "resultJson": result if objects else (json.dumps(result) if result else ""),
            "failCode": str(self.error_code) if done and status != SUCCESS else "",
            "failMsg": (self.error_message or "") if done and status != SUCCESS else "",
            "costTime": epoch_ms(self.finished - self.created) if done else None,
            "createTime": epoch_ms(self.created),
            "updateTime": epoch_ms(min(now, self.finished)),
            "completeTime": epoch_ms(self.finished) if done else None,
        }
        if done:  # what the task cost, as the records public clients read state it
            record["creditsConsumed"] = credit_number(self.cost)
        return record

    def record(
        self, now: float, base_url: str, *, market: bool, objects: bool = False
    ) -> dict[str, Any]:
        """The record in either dialect (``objects``: see ``market_record``)."""
        if market:
            return self.market_record(now, base_url, objects=objects)
        return self.recraft_record(now, base_url)

    def _market_state(self, now: float, status: int) -> str:
        if status == SUCCESS:
            return "success"
        if status != PROCESSING:
            return "fail"
        span = self.finished - self.created
        progress = (now - self.created) / span if span > 0 else 1.0
        # The jobs API shows a task waiting, then queued, then generating.
        if progress < 0.1:
            return "waiting"
        return "queuing" if progress < 0.3 else "generating"

    def info(self) -> TaskInfo:
        """A frozen snapshot for stats and benchmarks."""
        return TaskInfo(
            task_id=self.task_id,
            operation=self.operation.value,
            image_url=self.image_url,
            created=self.created,
            finished=self.finished,
            outcome=self.outcome,
            reads=self.reads,
            first_final_read=self.first_final_read,
        )


@attrs.frozen
class TaskInfo:
    """When a task was created and finished (exact ``time.time()`` values), and its reads.

    ``first_final_read`` is the moment a status read first reported the final state: the
    server's view of when the client learnt the result.
    """

    task_id: str
    operation: str
    image_url: str
    created: float
    finished: float
    outcome: int
    reads: int
    first_final_read: float | None

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict with camelCase keys, like the service's."""
        return {
            "taskId": self.task_id,
            "operation": self.operation,
            "imageUrl": self.image_url,
            "createTime": self.created,
            "finishTime": self.finished,
            "outcome": self.outcome,
            "reads": self.reads,
            "firstFinalRead": self.first_final_read,
        }

"""The two wire dialects: the seed's per-product endpoints and KIE's unified jobs API.

Each dialect is data (paths, body builders) plus a parser that turns a loose answer into
a strict TaskRecord. Parsers raise ProtocolError with the raw body; never KeyError.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import attrs
import cattrs

from ._check import SubmitRequest, task_id_problem
from ._errors import ProtocolError
from ._escape import loggable_url, printable
from ._models import Operation, TaskRecord, TaskState, credits_from, from_epoch, wire
from ._transport import url_problem

_SEED_STATES = {
    0: TaskState.PROCESSING,
    1: TaskState.SUCCESS,
    2: TaskState.FAILED,
    3: TaskState.CREATE_FAILED,
}
_MARKET_STATES = {
    "waiting": TaskState.PROCESSING,
    "queuing": TaskState.PROCESSING,
    "generating": TaskState.PROCESSING,
    "success": TaskState.SUCCESS,
    "fail": TaskState.FAILED,
}
_MARKET_MODELS = {
    Operation.UPSCALE: "recraft/crisp-upscale",
    Operation.REMOVE_BACKGROUND: "recraft/remove-background",
}


class Dialect(Protocol):
    """How one family of endpoints spells submits and status reads."""

    @property
    def name(self) -> str:
        """The dialect's name, as given to ``AsyncRecraft(dialect=...)``."""
        ...

    def submit(self, request: SubmitRequest) -> tuple[str, dict[str, Any]]:
        """The path and JSON body of a submit."""
        ...

    def status(self, operation: Operation, task_id: str) -> tuple[str, dict[str, str]]:
        """The path and query parameters of a status read."""
        ...

    def parse_record(self, data: object, body: str) -> TaskRecord:
        """A status answer's ``data`` as a TaskRecord."""
        ...


def parse_task_id(data: object, body: str) -> str:
    """The task id of a submit answer (both dialects answer ``{"taskId": ...}``)."""
    # cattrs reads any container with ``in`` and ``[]``: a string or list is not an answer.
    if not isinstance(data, dict):
        raise ProtocolError("submit answer has no taskId (data is not an object)", body=body)
    try:
        task_id = wire.structure(data, _SubmitData).taskId
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise ProtocolError("submit answer has no taskId", body=body) from exc
    problem = task_id_problem(task_id)
    if problem is not None:
        # resume() could never read it, yet the task may exist and be paid for: the raw
        # answer keeps the id as the service wrote it, for KIE's task history.
        raise ProtocolError(
            f"submit answer's taskId is unusable ({problem}); a task may have been created"
            " and paid for: its id is in this error's .body, look it up in your KIE task"
            " history (resume cannot read it)",
            body=body,
        )
    return task_id


@attrs.frozen
class _SubmitData:
    taskId: str  # noqa: N815 - the wire's spelling


@attrs.frozen
class _SeedResponse:
    resultUrls: list[str] | None = None  # noqa: N815 - the wire's spelling
    resultImageUrl: str | None = None  # noqa: N815
    resultUrl: str | None = None  # noqa: N815


@attrs.frozen
class _SeedRecord:
    taskId: str  # noqa: N815 - the wire's spelling
    successFlag: int | str | None = None  # noqa: N815
    status: int | str | None = None
    response: _SeedResponse | None = None
    resultUrls: list[str] | None = None  # noqa: N815
    errorCode: int | str | None = None  # noqa: N815
    errorMessage: str | None = None  # noqa: N815


@attrs.frozen
class _MarketRecord:
    # resultJson is read apart (_result_urls): a JSON string as documented, or an object.
    taskId: str  # noqa: N815 - the wire's spelling
    state: str
    failCode: int | str | None = None  # noqa: N815
    failMsg: str | None = None  # noqa: N815


def _structure(data: object, cls: type[Any], body: str) -> Any:
    if not isinstance(data, dict):
        raise ProtocolError("status answer's data is not an object", body=body)
    try:
        return wire.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise ProtocolError(f"status answer does not parse: {exc}", body=body) from exc


# Where a task's cost is stated: records (as public clients see them), then callbacks.
_CREDIT_FIELDS = ("creditsConsumed", "consumeCredits")


def _record(
    data: dict[str, Any], task_id: str, state: TaskState, urls: tuple[str, ...], **error: Any
) -> TaskRecord:
    return TaskRecord(
        task_id=task_id,
        state=state,
        result_urls=urls,
        created_at=from_epoch(data.get("createTime")),
        completed_at=from_epoch(data.get("completeTime")),
        raw=data,
        credits=_credits(data),
        param=_param(data.get("param", data.get("paramJson"))),
        **error,
    )


def _credits(data: dict[str, Any]) -> float | None:
    """The first usable figure of the task's cost, or None."""
    for field in _CREDIT_FIELDS:
        cost = credits_from(data.get(field))
        if cost is not None:
            return cost
    return None


def _param(value: object) -> object:
    """The recorded request: JSON text parsed, anything else kept as sent; never an error."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    # RecursionError: deeply nested JSON inside the string exhausts the decoder.
    except (ValueError, RecursionError):
        return value


class UnusableResultError(ProtocolError):
    """A success record whose result URL cannot be fetched over http(s): no Result.

    The record was read and is final: reading it again gives the same URL, so a job ends
    in it at once (a ProtocolError, as documented) rather than reading until its timeout.
    """

    def __init__(self, message: str, *, body: str | None, task_id: str) -> None:
        super().__init__(message, body=body)
        self.task_id = task_id


def _require_urls(state: TaskState, urls: tuple[str, ...], body: str, task_id: str) -> None:
    """A success has result URLs, each fetchable over http(s): else the answer is broken."""
    if state is not TaskState.SUCCESS:
        return
    if not urls:
        raise ProtocolError("task succeeded but the answer has no result URL", body=body)
    for url in urls:
        problem = url_problem(url)
        if problem is not None:
            # Never a Result whose URL is file:, javascript: or no URL at all.
            raise UnusableResultError(
                f"task {printable(task_id)} succeeded but its result URL"
                f" {loggable_url(url)!r} is unusable ({problem}); the task is paid for:"
                " its answer is in this error's .body",
                body=body,
                task_id=task_id,
            )


@attrs.frozen
class RecraftDialect:
    """The seed's endpoints: ``/api/v1/recraft/<operation>``."""

    name: str = "recraft"

    def submit(self, request: SubmitRequest) -> tuple[str, dict[str, Any]]:
        """The path and JSON body of a submit, spelled exactly as the seed."""
        body: dict[str, Any] = {"image_url": _uploaded(request)}
        if request.operation is Operation.UPSCALE:
            body["scale"] = request.scale
            body["format"] = request.format
        else:
            body["output_format"] = request.output_format
        if request.callback_url is not None:
            body["callBackUrl"] = request.callback_url
        return f"/api/v1/recraft/{request.operation.value}", body

    def status(self, operation: Operation, task_id: str) -> tuple[str, dict[str, str]]:
        """The record-info path and query of one task."""
        return f"/api/v1/recraft/{operation.value}/record-info", {"taskId": task_id}

    def parse_record(self, data: object, body: str) -> TaskRecord:
        """Read either status field, int or str, and any of the result URL spellings."""
        raw = _structure(data, _SeedRecord, body)
        assert isinstance(data, dict)  # noqa: S101 - _structure checked it
        flag = raw.successFlag if raw.successFlag is not None else raw.status
        try:
            state = _SEED_STATES[int(flag)]
        except (KeyError, TypeError, ValueError):
            raise ProtocolError(f"unknown task status {flag!r}", body=body) from None
        urls = _seed_urls(raw)
        _require_urls(state, urls, body, raw.taskId)
        return _record(
            data,
            raw.taskId,
            state,
            urls,
            error_code=raw.errorCode,
            error_message=raw.errorMessage,
        )


def _uploaded(request: SubmitRequest) -> str:
    if request.image_url is None:
        raise RuntimeError("a local image must be uploaded before its submit")
    return request.image_url


def _seed_urls(raw: _SeedRecord) -> tuple[str, ...]:
    response = raw.response or _SeedResponse()
    for candidate in (response.resultUrls, raw.resultUrls):
        if candidate:
            return tuple(candidate)
    single = response.resultImageUrl or response.resultUrl
    return (single,) if single else ()


@attrs.frozen
class MarketDialect:
    """KIE's unified jobs API: ``/api/v1/jobs/createTask`` and ``recordInfo``."""

    name: str = "market"

    def submit(self, request: SubmitRequest) -> tuple[str, dict[str, Any]]:
        """The createTask body: the model name and ``input.image``."""
        body: dict[str, Any] = {
            "model": _MARKET_MODELS[request.operation],
            "input": {"image": _uploaded(request)},
        }
        if request.callback_url is not None:
            body["callBackUrl"] = request.callback_url
        return "/api/v1/jobs/createTask", body

    def status(self, operation: Operation, task_id: str) -> tuple[str, dict[str, str]]:  # noqa: ARG002 - one endpoint serves every model
        """The recordInfo path and query of one task."""
        return "/api/v1/jobs/recordInfo", {"taskId": task_id}

    def parse_record(self, data: object, body: str) -> TaskRecord:
        """Read ``state`` and the JSON string ``resultJson``."""
        raw = _structure(data, _MarketRecord, body)
        assert isinstance(data, dict)  # noqa: S101 - _structure checked it
        state = _MARKET_STATES.get(raw.state)
        if state is None:
            raise ProtocolError(f"unknown task state {raw.state!r}", body=body)
        urls = _result_urls(data.get("resultJson"), body)
        _require_urls(state, urls, body, raw.taskId)
        return _record(
            data, raw.taskId, state, urls, error_code=raw.failCode, error_message=raw.failMsg
        )


def _result_urls(result_json: object, body: str) -> tuple[str, ...]:
    """The URLs in a market record's ``resultJson``: a JSON string, or an object as such.

    KIE documents a string; some answers seen by public clients carry the object itself.
    """
    if not result_json:  # absent, null or "" until the task succeeds
        return ()
    if isinstance(result_json, str):
        try:
            result = json.loads(result_json)
        # RecursionError: deeply nested JSON inside the string exhausts the decoder.
        except (ValueError, RecursionError) as exc:
            raise ProtocolError("resultJson does not parse", body=body) from exc
    else:
        result = result_json
    # Not an object: no URLs, never handed to cattrs (which would index a list or string);
    # a success without URLs is refused by the caller, a failure keeps its own error.
    if not isinstance(result, dict):
        return ()
    try:
        parsed = wire.structure(result, _SeedResponse)
    except (TypeError, ValueError, cattrs.BaseValidationError) as exc:
        raise ProtocolError("resultJson does not parse", body=body) from exc
    return tuple(parsed.resultUrls or ())


_RECRAFT: Dialect = RecraftDialect()
_MARKET: Dialect = MarketDialect()
DIALECTS: dict[str, Dialect] = {"recraft": _RECRAFT, "market": _MARKET}

"""Fault injection: what can go wrong, where, and when (scripted or by chance)."""

from __future__ import annotations

import collections
import enum
import random
import threading
from collections.abc import Callable

import attrs


class Target(str, enum.Enum):
    """Where a fault strikes."""

    SUBMIT = "submit"  # POST upscale / remove-background / createTask
    STATUS = "status"  # GET record-info / recordInfo
    UPLOAD = "upload"  # the three upload endpoints
    TASK = "task"  # the fate of the next created task
    CALLBACK = "callback"  # the delivery of a task's callback
    # The result host: GET of a result or of a download link. Fault.http(403) there is a
    # host refusing the file, as it does once a link has expired.
    RESULT = "result"
    LINK = "link"  # POST /api/v1/common/download-url


class FaultKind(str, enum.Enum):
    """What goes wrong."""

    HTTP_ERROR = "http"  # an HTTP error status with a JSON envelope of the same code
    BODY_ERROR = "body"  # HTTP 200 whose envelope says an error code
    DROP = "drop"  # the connection closes without an answer
    DELAY = "delay"  # the answer comes late
    NON_JSON = "nonjson"  # an HTML error page instead of JSON
    TASK_FAILED = "fail"  # the task ends with status 2
    CREATE_FAILED = "createfail"  # the task ends with status 3
    NOT_FOUND = "notfound"  # the first reads of a new task answer "not found"
    NOT_READY = "notready"  # the first reads of a new task answer 422 "recordInfo is null"
    DUPLICATE_CALLBACK = "duplicate"  # the callback arrives more than once
    LATE_CALLBACK = "late"  # the callback arrives well after the task ended
    LOST_CALLBACK = "lost"  # the callback is never delivered (lost on its way)


_REQUEST_KINDS = frozenset(
    {
        FaultKind.HTTP_ERROR,
        FaultKind.BODY_ERROR,
        FaultKind.DROP,
        FaultKind.DELAY,
        FaultKind.NON_JSON,
    }
)
_TARGET_KINDS = {
    Target.SUBMIT: _REQUEST_KINDS,
    Target.STATUS: _REQUEST_KINDS,
    Target.UPLOAD: _REQUEST_KINDS,
    Target.RESULT: _REQUEST_KINDS,
    Target.LINK: _REQUEST_KINDS,
    Target.TASK: frozenset(
        {FaultKind.TASK_FAILED, FaultKind.CREATE_FAILED, FaultKind.NOT_FOUND, FaultKind.NOT_READY}
    ),
    Target.CALLBACK: frozenset(
        {FaultKind.DUPLICATE_CALLBACK, FaultKind.LATE_CALLBACK, FaultKind.LOST_CALLBACK}
    ),
}


@attrs.frozen
class Fault:
    """One injected fault; build it with the class methods.

    ``processed=True`` on a request fault means the request is fully handled first (for a
    submit: the task is created and the credit spent) and only the answer goes wrong: the
    case where a client must not submit again.
    """

    kind: FaultKind
    code: int = 0
    seconds: float = 0.0
    count: int = 1
    processed: bool = False
    message: str = ""
    retry_after: float | None = None

    @classmethod
    def http(
        cls, status: int, *, processed: bool = False, retry_after: float | None = None
    ) -> Fault:
        """Answer HTTP ``status`` (500, 502, 503, 455, ...) with a matching envelope.

        With ``retry_after`` the answer carries ``Retry-After`` (and ``retry-after-ms``).
        """
        return cls(FaultKind.HTTP_ERROR, code=status, processed=processed, retry_after=retry_after)

    @classmethod
    def body(cls, code: int = 500, *, processed: bool = False) -> Fault:
        """Answer HTTP 200 whose envelope carries ``code``."""
        return cls(FaultKind.BODY_ERROR, code=code, processed=processed)

    @classmethod
    def drop(cls, *, processed: bool = False) -> Fault:
        """Close the connection without any answer."""
        return cls(FaultKind.DROP, processed=processed)

    @classmethod
    def delay(cls, seconds: float, *, processed: bool = False) -> Fault:
        """Answer ``seconds`` late; unprocessed, a caller gone by then leaves no trace."""
        return cls(FaultKind.DELAY, seconds=seconds, processed=processed)

    @classmethod
    def non_json(cls, status: int = 200, *, processed: bool = False) -> Fault:
        """Answer an HTML page with HTTP ``status``, as a misbehaving gateway does."""
        return cls(FaultKind.NON_JSON, code=status, processed=processed)

    @classmethod
    def task_failed(cls, message: str = "generation failed", code: int = 501) -> Fault:
        """The task ends with status 2 (``state: fail``)."""
        return cls(FaultKind.TASK_FAILED, code=code, message=message)

    @classmethod
    def creation_failed(cls, message: str = "task creation failed", code: int = 500) -> Fault:
        """The task ends with status 3; no credit is spent."""
        return cls(FaultKind.CREATE_FAILED, code=code, message=message)

    @classmethod
    def not_found(cls, reads: int = 2, *, seconds: float = 0.0) -> Fault:
        """The task's first ``reads`` status reads, and all within ``seconds``, answer 404."""
        return cls(FaultKind.NOT_FOUND, count=reads, seconds=seconds)

    @classmethod
    def not_ready(cls, reads: int = 2, *, seconds: float = 0.0, status: int = 200) -> Fault:
        """The task's first ``reads`` market reads, and all within ``seconds``, are unreadable.

        They answer KIE's documented ``{"code": 422, "msg": "recordInfo is null", "data":
        null}`` with HTTP ``status`` (200, as KIE answers errors, or 422).
        """
        return cls(FaultKind.NOT_READY, count=reads, seconds=seconds, code=status)

    @classmethod
    def duplicate_callback(cls, copies: int = 2) -> Fault:
        """Deliver the callback ``copies`` times."""
        return cls(FaultKind.DUPLICATE_CALLBACK, count=copies)

    @classmethod
    def late_callback(cls, seconds: float) -> Fault:
        """Deliver the callback ``seconds`` (real, unscaled) after the task ended."""
        return cls(FaultKind.LATE_CALLBACK, seconds=seconds)

    @classmethod
    def lost_callback(cls) -> Fault:
        """Never deliver the callback: it is lost, as callbacks sometimes are."""
        return cls(FaultKind.LOST_CALLBACK)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse the command line's spelling: ``http:503``, ``drop+processed``, ``late:2``."""
        text, plus, flag = spec.strip().partition("+")
        if plus and flag != "processed":
            raise ValueError(f"bad fault {spec!r}: the only flag is '+processed'")
        name, _, arg = text.partition(":")
        try:
            kind = FaultKind(name.lower())
        except ValueError:
            names = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"bad fault {spec!r}: kind must be one of {names}") from None
        try:
            return _build(kind, arg, processed=bool(plus))
        except ValueError as exc:
            raise ValueError(f"bad fault {spec!r}: {exc}") from exc


def _build(kind: FaultKind, arg: str, *, processed: bool) -> Fault:
    simple = {
        FaultKind.HTTP_ERROR: lambda: _http(arg, processed=processed),
        FaultKind.BODY_ERROR: lambda: Fault.body(int(arg or 500), processed=processed),
        FaultKind.DROP: lambda: Fault.drop(processed=processed),
        FaultKind.DELAY: lambda: Fault.delay(float(arg or 5), processed=processed),
        FaultKind.NON_JSON: lambda: Fault.non_json(int(arg or 200), processed=processed),
        FaultKind.TASK_FAILED: lambda: Fault.task_failed(code=int(arg or 501)),
        FaultKind.CREATE_FAILED: lambda: Fault.creation_failed(code=int(arg or 500)),
        FaultKind.NOT_FOUND: lambda: _hidden(Fault.not_found, arg),
        FaultKind.NOT_READY: lambda: _not_ready(arg),
        FaultKind.DUPLICATE_CALLBACK: lambda: Fault.duplicate_callback(int(arg or 2)),
        FaultKind.LATE_CALLBACK: lambda: Fault.late_callback(float(arg or 2)),
        FaultKind.LOST_CALLBACK: Fault.lost_callback,
    }
    return simple[kind]()


def _hidden(make: Callable[..., Fault], arg: str) -> Fault:
    # "3" (the first 3 reads) or "0.5s" (every read within 0.5 s of creation).
    if arg.endswith("s"):
        return make(0, seconds=float(arg[:-1]))
    return make(int(arg or 2))


def _not_ready(arg: str) -> Fault:
    # "notready:2", "notready:0.5s", and an HTTP status after a second colon: "notready:2:422".
    hidden, _, status = arg.partition(":")
    fault = _hidden(Fault.not_ready, hidden)
    return attrs.evolve(fault, code=int(status)) if status else fault


def _http(arg: str, *, processed: bool) -> Fault:
    # "503" or "503:2" (the second part is Retry-After in seconds).
    status, _, retry = arg.partition(":")
    return Fault.http(
        int(status or 500), processed=processed, retry_after=float(retry) if retry else None
    )


def _check(target: Target, fault: Fault) -> None:
    if fault.kind not in _TARGET_KINDS[target]:
        raise ValueError(f"a {fault.kind.value!r} fault cannot target {target.value!r}")


class FaultPlan:
    """Which faults strike: scripted sequences first, then independent chances.

    Safe to drive from the test's thread while a served emulator reads it in its own.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)  # noqa: S311 - reproducible noise, not cryptography
        self._scripts: dict[Target, collections.deque[Fault | None]] = {
            t: collections.deque() for t in Target
        }
        self._chances: dict[Target, list[tuple[Fault, float]]] = {t: [] for t in Target}
        self.injected: collections.Counter[str] = collections.Counter()
        """How many faults struck, by ``"target:kind"``."""

    def next(self, target: Target | str, *faults: Fault | None) -> FaultPlan:
        """Script the next events at ``target``, in order; ``None`` is a clean pass."""
        where = Target(target)
        for fault in faults:
            if fault is not None:
                _check(where, fault)
        with self._lock:
            self._scripts[where].extend(faults)
        return self

    def chance(self, target: Target | str, fault: Fault, probability: float) -> FaultPlan:
        """Let ``fault`` strike each unscripted event at ``target`` with ``probability``."""
        where = Target(target)
        _check(where, fault)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {probability!r}")
        with self._lock:
            self._chances[where].append((fault, probability))
        return self

    def clear(self, target: Target | str | None = None) -> None:
        """Forget scripts and chances, at one target or everywhere."""
        with self._lock:
            for where in [Target(target)] if target is not None else list(Target):
                self._scripts[where].clear()
                self._chances[where].clear()

    def pending(self, target: Target | str) -> int:
        """How many scripted events at ``target`` have not happened yet."""
        with self._lock:
            return len(self._scripts[Target(target)])

    def draw(self, target: Target) -> Fault | None:
        """The fault for one event at ``target``, or None."""
        with self._lock:
            script = self._scripts[target]
            if script:
                fault = script.popleft()
            else:
                fault = next((f for f, p in self._chances[target] if self._rng.random() < p), None)
            if fault is not None:
                self.injected[f"{target.value}:{fault.kind.value}"] += 1
            return fault

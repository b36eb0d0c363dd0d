"""The exception classes (``recraft_async.errors`` is their public module and documents the tree).

They live in the core, which every layer imports; the public module re-exports them.
No exception text ever contains a key: messages are built from the service's answer and
our own words, and every message (a lower library's quoted text included) passes the
redactor (``_redact``) when the exception is made.
"""

from __future__ import annotations

import collections.abc
from typing import TYPE_CHECKING

from . import _redact

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from ._models import Operation


class RecraftError(Exception):
    """Base class of every error this library raises."""

    def __init__(self, *args: object) -> None:
        # The one choke point of every message: a key a lower library quoted is cut out.
        super().__init__(*(_redact.redact(arg) if isinstance(arg, str) else arg for arg in args))


class InvalidInputError(RecraftError, ValueError):
    """An argument was rejected before anything was sent."""


class ClientNotOpenError(RecraftError, RuntimeError):
    """The client was used outside its ``async with`` block."""


class WrongEventLoopError(RecraftError, RuntimeError):
    """The client was used from another thread or event loop, or closed from another task."""


class QueueFullError(RecraftError):
    """``max_queued`` jobs already wait for their turn; the ``enqueue_*`` methods wait."""


class APIError(RecraftError):
    """The service answered with an error code."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        http_status: int,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        """The error code: the answer body's ``code``, else the HTTP status."""
        self.status_code = http_status
        """The answer's HTTP status (KIE may answer 200 with an error ``code`` in the body)."""
        self.message = _redact.redact(message)
        """The service's message."""
        self.body = body
        """The answer's body as received, if any."""
        self.headers: Mapping[str, str] = _Headers(headers or {})
        """The answer's headers, read-only; names match in any case (``Retry-After``)."""

    @property
    def http_status(self) -> int:
        """The same as ``status_code``: the answer's HTTP status."""
        return self.status_code


class AuthenticationError(APIError):
    """The API key is missing or wrong (401)."""


class InsufficientCreditsError(APIError):
    """The account has too few credits (402)."""


class NotFoundError(APIError):
    """The task or resource does not exist (404)."""


class TaskNotReadyError(NotFoundError):
    """A status read found no readable record of the task yet (422 "recordInfo is null")."""

    # KIE documents this answer for recordInfo; it comes just after a task is created. It
    # is no verdict on the job's input: a job's poll keeps reading until its poll timeout
    # (then JobTimeoutError names the task for resume); client.get_task raises it.

    def __init__(
        self,
        message: str,
        *,
        task_id: str,
        code: int,
        http_status: int,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, body=body, headers=headers)
        self.args = (f"[{code}] {message} (task {task_id} has no readable record yet)",)
        self.task_id = task_id
        """The task read: paid for if it was submitted, and perhaps readable later."""


class InvalidRequestError(APIError):
    """The service rejected the request's content (400, 422)."""


class RateLimitError(APIError):
    """Too many requests; the request was rejected, not queued (429)."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        http_status: int,
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status, body=body, headers=headers)
        self.retry_after = retry_after
        """Seconds the answer asked to wait (``Retry-After``, ``retry-after-ms``), if any."""


class ServiceUnavailableError(APIError):
    """The service is down for maintenance or overloaded (455, 503)."""


class GenerationFailedError(APIError):
    """The service could not generate the result (501)."""


class FeatureDisabledError(APIError):
    """The feature is disabled for this account (505)."""


class ServerError(APIError):
    """The service failed with a 5xx error."""


class APIConnectionError(RecraftError):
    """The request could not be completed over the network."""

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent
        """False only when the request provably never left this machine (connect failed)."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class SubmissionUncertainError(RecraftError):
    """A submit may have reached the service; it was not retried, to avoid paying twice."""

    def __init__(self, message: str, *, operation: Operation, image: str) -> None:
        super().__init__(message)
        self.operation = operation
        """The operation whose submit may have landed."""
        self.image = image
        """The image it was submitted for (its URL, or the local file's name)."""


class TaskFailedError(RecraftError):
    """The service reports that the task failed."""

    def __init__(
        self,
        message: str | None,
        *,
        task_id: str,
        state: str,
        code: str | int | None = None,
    ) -> None:
        super().__init__(f"task {task_id} {state}: {message or 'no message'} (code {code})")
        self.task_id = task_id
        """The task that failed."""
        self.state = state
        """Its final state, as the service reports it."""
        self.code = code
        """The service's error code for the task, if any, as it sent it.

        The market dialect's ``failCode`` is a string (``"422"``); the seed's endpoints
        send a number. Compare with ``str(err.code)`` to handle both.
        """
        self.message = None if message is None else _redact.redact(message)
        """The service's error message for the task, if any."""


class JobTimeoutError(RecraftError, TimeoutError):
    """The task did not finish within the poll policy's timeout."""

    def __init__(self, message: str, *, task_id: str | None) -> None:
        super().__init__(message)
        self.task_id = task_id
        """The task, paid for and perhaps still running: ``client.resume`` polls it again."""


class JobCancelledError(RecraftError):
    """The job was cancelled; a submitted task id is kept for resume."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id
        """The task, if the submit had landed: ``client.resume`` can still poll it."""


class InvalidStateError(RecraftError, RuntimeError):
    """A job's result or exception was asked for before the job finished."""


class ProtocolError(RecraftError):
    """The service's answer did not have the documented shape; ``.body`` holds it raw."""

    def __init__(self, message: str, *, body: str | None) -> None:
        super().__init__(message)
        self.body = body
        """The answer as received."""


class DownloadError(RecraftError):
    """A finished task's image was not saved; ``.task_id`` and ``.url`` keep it for another try."""

    def __init__(self, message: str, *, task_id: str, url: str, path: Path) -> None:
        super().__init__(message)
        self.task_id = task_id
        """The task, paid for: ``client.resume`` reads its result URLs again."""
        self.url = url
        """The result URL that was to be downloaded."""
        self.path = path
        """The folder the image was to be saved in."""


class ResultUnavailableError(DownloadError):
    """The result host refused the image (401, 403, 404, 410), and so did a fresh link."""


class DownloadWriteError(DownloadError, OSError):
    """The image could not be written (a full disk, a folder we may not write); an OSError too."""

    def __init__(self, message: str, *, task_id: str, url: str, path: Path, cause: OSError) -> None:
        super().__init__(message, task_id=task_id, url=url, path=path)
        self.errno = cause.errno
        self.strerror = cause.strerror
        self.filename = str(path)

    def __str__(self) -> str:
        # OSError's own __str__ would show "[Errno 28] ..." instead of our message.
        return str(self.args[0])


class WebhookVerificationError(RecraftError):
    """A callback's signature or timestamp did not verify."""


class WebhookReplayError(WebhookVerificationError):
    """A verified callback arrived again (same task id, timestamp and signature)."""


class JournalStateError(RecraftError, RuntimeError):
    """A journal transition the write-ahead protocol forbids (e.g. a second submit)."""


class JournalUnreadableError(JournalStateError):
    """A journal file, or one input's row in it, that cannot be read as a recraft-async journal."""

    def __init__(
        self,
        message: str,
        *,
        path: Path,
        source: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        """The journal's path, as it was given."""
        self.source = source
        """The input of the unreadable row (None when the file itself is unreadable, or the
        row's input is unreadable too)."""
        self.fingerprint = fingerprint
        """The unreadable row's key, if it could be read."""


class CoordinationUnavailableError(RecraftError):
    """The fleet's shared state (Redis) did not answer in time: the submit was not sent."""


class CoordinationNotDurableError(RecraftError):
    """The fleet's Redis keeps nothing across a restart: refused without ``allow_volatile``."""


class _Headers(collections.abc.Mapping[str, str]):
    """An HTTP answer's headers, copied: read-only, and looked up in any case."""

    __slots__ = ("_items",)

    def __init__(self, headers: Mapping[str, str]) -> None:
        # httpx.Headers.items() joins a repeated header's values with ", ".
        self._items = {name.lower(): value for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

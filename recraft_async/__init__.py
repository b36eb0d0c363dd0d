"""recraft-async: the async-first client for KIE.ai's Recraft image services.

The errors and ``__version__`` are here at once; every other public name is imported the
first time it is used (PEP 562), so that ``import recraft_async`` and ``recraft-async
--version`` do not pay for httpx, anyio, attrs and the client before they need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._core._logging import setup_from_env as _setup_logging
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientNotOpenError,
    CoordinationNotDurableError,
    CoordinationUnavailableError,
    DownloadError,
    DownloadWriteError,
    FeatureDisabledError,
    GenerationFailedError,
    InsufficientCreditsError,
    InvalidInputError,
    InvalidRequestError,
    InvalidStateError,
    JobCancelledError,
    JobTimeoutError,
    JournalStateError,
    JournalUnreadableError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    RecraftError,
    ResultUnavailableError,
    ServerError,
    ServiceUnavailableError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskNotReadyError,
    WebhookReplayError,
    WebhookVerificationError,
    WrongEventLoopError,
)

if TYPE_CHECKING:
    from ._aiohttp import AioHttpClient
    from ._bulk._journal import Journal, JournalEntry, JournalState
    from ._client import AsyncRecraft
    from ._core._events import JobEvent, JobEventKind
    from ._core._jobs import Job, JobStatus
    from ._core._models import Callback, Operation, Result, TaskRecord, TaskState
    from ._core._policy import PollPolicy, ProcessingTime, Rate
    from ._core._webhooks import parse_callback, webhook_signature
    from ._fleet._redis import RedisCoordination
    from ._signals import shutdown_on_signals
    from ._sync import Recraft, SyncJob

# Each lazily imported public name and the module that owns it.
_LAZY = {
    "AioHttpClient": "._aiohttp",
    "AsyncRecraft": "._client",
    "JobEvent": "._core._events",
    "JobEventKind": "._core._events",
    "Job": "._core._jobs",
    "JobStatus": "._core._jobs",
    "Journal": "._bulk._journal",
    "JournalEntry": "._bulk._journal",
    "JournalState": "._bulk._journal",
    "Callback": "._core._models",
    "Operation": "._core._models",
    "Result": "._core._models",
    "TaskRecord": "._core._models",
    "TaskState": "._core._models",
    "PollPolicy": "._core._policy",
    "ProcessingTime": "._core._policy",
    "Rate": "._core._policy",
    "RedisCoordination": "._fleet._redis",
    "shutdown_on_signals": "._signals",
    "Recraft": "._sync",
    "SyncJob": "._sync",
    "parse_callback": "._core._webhooks",
    "webhook_signature": "._core._webhooks",
}


def __getattr__(name: str) -> object:
    """Import a public name's module the first time the name is used, and keep the name."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


_setup_logging()  # RECRAFT_LOG=debug|info

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AioHttpClient",
    "AsyncRecraft",
    "AuthenticationError",
    "Callback",
    "ClientNotOpenError",
    "CoordinationNotDurableError",
    "CoordinationUnavailableError",
    "DownloadError",
    "DownloadWriteError",
    "FeatureDisabledError",
    "GenerationFailedError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "InvalidRequestError",
    "InvalidStateError",
    "Job",
    "JobCancelledError",
    "JobEvent",
    "JobEventKind",
    "JobStatus",
    "JobTimeoutError",
    "Journal",
    "JournalEntry",
    "JournalState",
    "JournalStateError",
    "JournalUnreadableError",
    "NotFoundError",
    "Operation",
    "PollPolicy",
    "ProcessingTime",
    "ProtocolError",
    "QueueFullError",
    "Rate",
    "RateLimitError",
    "Recraft",
    "RecraftError",
    "RedisCoordination",
    "Result",
    "ResultUnavailableError",
    "ServerError",
    "ServiceUnavailableError",
    "SubmissionUncertainError",
    "SyncJob",
    "TaskFailedError",
    "TaskNotReadyError",
    "TaskRecord",
    "TaskState",
    "WebhookReplayError",
    "WebhookVerificationError",
    "WrongEventLoopError",
    "__version__",
    "parse_callback",
    "shutdown_on_signals",
    "webhook_signature",
]

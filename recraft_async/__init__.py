"""recraft-async: the async-first client for KIE.ai's Recraft image services."""

from ._client import AsyncRecraft
from ._events import JobEvent, JobEventKind
from ._jobs import Job, JobStatus
from ._journal import Journal, JournalEntry, JournalState
from ._logging import setup_from_env as _setup_logging
from ._models import Callback, Operation, Result, TaskRecord, TaskState
from ._policy import PollPolicy, ProcessingTime, Rate
from ._redis import RedisCoordination
from ._signals import shutdown_on_signals
from ._sync import Recraft, SyncJob
from ._version import __version__
from ._webhooks import parse_callback, webhook_signature
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientNotOpenError,
    CoordinationUnavailableError,
    FeatureDisabledError,
    GenerationFailedError,
    InsufficientCreditsError,
    InvalidInputError,
    InvalidRequestError,
    InvalidStateError,
    JobCancelledError,
    JobTimeoutError,
    JournalStateError,
    NotFoundError,
    ProtocolError,
    QueueFullError,
    RateLimitError,
    RecraftError,
    ServerError,
    ServiceUnavailableError,
    SubmissionUncertainError,
    TaskFailedError,
    WebhookReplayError,
    WebhookVerificationError,
    WrongEventLoopError,
)

_setup_logging()  # RECRAFT_LOG=debug|info

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncRecraft",
    "AuthenticationError",
    "Callback",
    "ClientNotOpenError",
    "CoordinationUnavailableError",
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
    "ServerError",
    "ServiceUnavailableError",
    "SubmissionUncertainError",
    "SyncJob",
    "TaskFailedError",
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

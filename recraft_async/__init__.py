"""recraft-async: the async-first client for KIE.ai's Recraft image services."""

from ._client import AsyncRecraft
from ._jobs import InvalidStateError, Job, JobStatus
from ._models import Operation, Result, TaskRecord, TaskState
from ._policy import PollPolicy, Rate
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientNotOpenError,
    FeatureDisabledError,
    GenerationFailedError,
    InsufficientCreditsError,
    InvalidInputError,
    InvalidRequestError,
    JobCancelledError,
    JobTimeoutError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RecraftError,
    ServerError,
    ServiceUnavailableError,
    SubmissionUncertainError,
    TaskFailedError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncRecraft",
    "AuthenticationError",
    "ClientNotOpenError",
    "FeatureDisabledError",
    "GenerationFailedError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "InvalidRequestError",
    "InvalidStateError",
    "Job",
    "JobCancelledError",
    "JobStatus",
    "JobTimeoutError",
    "NotFoundError",
    "Operation",
    "PollPolicy",
    "ProtocolError",
    "Rate",
    "RateLimitError",
    "RecraftError",
    "Result",
    "ServerError",
    "ServiceUnavailableError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskRecord",
    "TaskState",
    "__version__",
]

"""The exceptions recraft-async raises, as a tree (HTTP statuses on the right).

    RecraftError
    ├── InvalidInputError (also ValueError)
    ├── ClientNotOpenError (also RuntimeError)
    ├── WrongEventLoopError (also RuntimeError)
    ├── QueueFullError
    ├── APIError
    │   ├── AuthenticationError            401
    │   ├── InsufficientCreditsError       402
    │   ├── NotFoundError                  404
    │   │   └── TaskNotReadyError          422 "recordInfo is null" on a status read
    │   ├── InvalidRequestError            400, 422
    │   ├── RateLimitError                 429
    │   ├── ServiceUnavailableError        455, 503
    │   ├── GenerationFailedError          501
    │   ├── FeatureDisabledError           505
    │   └── ServerError                    other 5xx
    ├── APIConnectionError
    │   └── APITimeoutError
    ├── SubmissionUncertainError
    ├── TaskFailedError
    ├── JobTimeoutError (also TimeoutError)
    ├── JobCancelledError
    ├── InvalidStateError (also RuntimeError)
    ├── ProtocolError
    ├── DownloadError
    │   ├── ResultUnavailableError
    │   └── DownloadWriteError (also OSError)
    ├── WebhookVerificationError
    │   └── WebhookReplayError
    ├── JournalStateError (also RuntimeError)
    │   └── JournalUnreadableError
    ├── CoordinationUnavailableError
    └── CoordinationNotDurableError

No exception text ever contains a key: messages are built from the service's answer and
our own words, and every message (a lower library's quoted text included) passes the
redactor (``_redact``) when the exception is made.
"""

from __future__ import annotations

# The classes live in the core (recraft_async/_core/_errors.py), which every layer may
# import; this module is their public name, and the one the documentation shows.
from ._core._errors import (
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

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
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
    "JobCancelledError",
    "JobTimeoutError",
    "JournalStateError",
    "JournalUnreadableError",
    "NotFoundError",
    "ProtocolError",
    "QueueFullError",
    "RateLimitError",
    "RecraftError",
    "ResultUnavailableError",
    "ServerError",
    "ServiceUnavailableError",
    "SubmissionUncertainError",
    "TaskFailedError",
    "TaskNotReadyError",
    "WebhookReplayError",
    "WebhookVerificationError",
    "WrongEventLoopError",
]

# Tracebacks, reprs and pickles name the public module, as before the classes moved.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name

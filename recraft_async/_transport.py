"""One request at a time: authentication, the KIE envelope, error mapping, retries."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx

from ._policy import _parse_retry_after, _retry_delay, _should_retry
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    FeatureDisabledError,
    GenerationFailedError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)

logger = logging.getLogger("recraft_async")

_ERRORS_BY_CODE: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    422: InvalidRequestError,
    429: RateLimitError,
    455: ServiceUnavailableError,
    501: GenerationFailedError,
    503: ServiceUnavailableError,
    505: FeatureDisabledError,
}
# Keep error bodies readable in tracebacks; the full text stays on the exception.
_MAX_MESSAGE = 300


class Secret:
    """A string that never shows itself in repr, str or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def error_for(
    code: int, http_status: int, message: str, body: str, headers: httpx.Headers
) -> APIError:
    """The APIError subclass for a KIE code (the body's, else the HTTP status)."""
    cls = _ERRORS_BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else InvalidRequestError if code >= 400 else APIError
    if cls is RateLimitError:
        return RateLimitError(
            message,
            code=code,
            http_status=http_status,
            body=body,
            retry_after=_parse_retry_after(dict(headers)),
        )
    return cls(message, code=code, http_status=http_status, body=body)


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def decode_envelope(response: httpx.Response) -> tuple[Any, str]:
    """The envelope's ``data`` and the raw text; the body's code wins over the HTTP status."""
    text = response.text
    status = response.status_code
    try:
        body = json.loads(text)
    except ValueError:
        if status >= 400:
            raise error_for(status, status, text[:_MAX_MESSAGE], text, response.headers) from None
        raise ProtocolError(f"answer (HTTP {status}) is not JSON", body=text) from None
    if not isinstance(body, dict):
        raise ProtocolError(f"answer (HTTP {status}) is not a JSON object", body=text)
    code = _as_code(body.get("code"))
    message = str(body.get("msg") or body.get("message") or response.reason_phrase)
    if code is not None and code != 200:
        raise error_for(code, status, message[:_MAX_MESSAGE], text, response.headers)
    if status >= 400:
        raise error_for(status, status, message[:_MAX_MESSAGE], text, response.headers)
    if code is None or "data" not in body:
        raise ProtocolError("answer lacks the envelope's code or data", body=text)
    return body["data"], text


class Transport:
    """Sends requests with the key attached and turns every failure into a typed error."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: Secret,
        max_retries: int,
        timeout: float,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._max_retries = max_retries
        # No pool timeout: a job waiting for a connection is queued work, not a failure.
        self._timeout = httpx.Timeout(timeout, pool=None)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    async def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        files: Any = None,
        data: Any = None,
    ) -> tuple[Any, str]:
        """One attempt; returns the envelope's data and the raw body."""
        target = url if "://" in url else self.base_url + url
        headers = {"Authorization": f"Bearer {self._api_key.reveal()}"}
        try:
            response = await self.http.request(
                method,
                target,
                json=json,
                params=params,
                files=files,
                data=data,
                headers=headers,
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _connection_error(exc, method, target, request_sent=False) from exc
        except httpx.TransportError as exc:
            raise _connection_error(exc, method, target, request_sent=True) from exc
        return decode_envelope(response)

    async def request_json(
        self, method: str, url: str, *, idempotent: bool, **request: Any
    ) -> tuple[Any, str]:
        """Like send() (same keywords), retrying transient failures when idempotent."""
        attempt = 0
        while True:
            try:
                return await self.send(method, url, **request)
            except (APIError, APIConnectionError, ProtocolError) as exc:
                if not idempotent or not _should_retry(exc, attempt, self._max_retries):
                    raise
                delay = _retry_delay(attempt, getattr(exc, "retry_after", None))
                logger.debug("retrying %s %s in %.2fs after %s", method, url, delay, exc)
            await anyio.sleep(delay)
            attempt += 1


def _connection_error(
    exc: httpx.TransportError, method: str, url: str, *, request_sent: bool
) -> APIConnectionError:
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    detail = str(exc) or type(exc).__name__
    return cls(f"{method} {url}: {detail}", request_sent=request_sent)

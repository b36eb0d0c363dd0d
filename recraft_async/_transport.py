"""One request at a time: authentication, the KIE envelope, error mapping, retries."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx

from ._escape import printable
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
# A numeric code longer than this is no KIE code; int() of thousands of digits even
# raises ValueError (sys.get_int_max_str_digits), so long strings are never converted.
_MAX_CODE_DIGITS = 9
# DNS limits (RFC 1035): trio's resolver raises UnicodeError, not an OSError, beyond them.
_MAX_LABEL = 63
_MAX_HOST = 253
_MAX_PORT = 65535


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
    if isinstance(value, str):
        digits = value.strip()
        # str.isdigit() also accepts "²" and other digits int() refuses: ASCII only.
        if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_CODE_DIGITS:
            return int(digits)
    return None


def _message(body: dict[str, Any], fallback: str) -> str:
    # The first non-empty msg/message; a nested value is no message, and str() of a deeply
    # nested one can itself raise RecursionError.
    for key in ("msg", "message"):
        value = body.get(key)
        if value and not isinstance(value, (dict, list)):
            return str(value)
    return fallback


def url_problem(url: str | httpx.URL) -> str | None:
    """Why ``url`` cannot be fetched over HTTP(S), or None when it can.

    httpx accepts some URLs that then fail below it with errors that are not httpx's
    (a port over 65535: OverflowError; a DNS label over 63 bytes: UnicodeError on trio).
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError) as exc:
        return f"invalid URL ({exc})"
    if parsed.scheme not in ("http", "https"):
        return f"scheme {parsed.scheme!r} is not http or https"
    if parsed.port is not None and not 0 < parsed.port <= _MAX_PORT:
        return f"port {parsed.port} is out of range"
    return _host_problem(parsed.raw_host)


def _host_problem(host: bytes) -> str | None:
    if b":" in host:  # an IPv6 literal: no DNS labels
        return None
    name = host[:-1] if host.endswith(b".") else host
    if not name or len(name) > _MAX_HOST:
        return "no usable host name"
    if any(not 0 < len(label) <= _MAX_LABEL for label in name.split(b".")):
        return "a host name label is empty or over 63 bytes"
    return None


def _text(response: httpx.Response) -> str:
    # httpx decodes with whatever codec the Content-Type names, and some raise instead of
    # replacing (idna, utf-16 without a BOM, hex). A declared charset is honoured only
    # when it decodes; else UTF-8, JSON's own encoding (RFC 8259).
    charset = response.charset_encoding
    if charset is not None:
        try:
            return response.content.decode(charset, "replace")
        except (LookupError, UnicodeError):
            pass
    return response.content.decode("utf-8", "replace")


def decode_envelope(response: httpx.Response) -> tuple[Any, str]:
    """The envelope's ``data`` and the raw text; the body's code wins over the HTTP status."""
    text = _text(response)
    status = response.status_code
    try:
        body = json.loads(text)
    # RecursionError: deeply nested arrays or objects ("[" * 100000) exhaust the decoder.
    except (ValueError, RecursionError):
        if status >= 400:
            raise error_for(status, status, text[:_MAX_MESSAGE], text, response.headers) from None
        raise ProtocolError(f"answer (HTTP {status}) is not JSON", body=text) from None
    if not isinstance(body, dict):
        raise ProtocolError(f"answer (HTTP {status}) is not a JSON object", body=text)
    code = _as_code(body.get("code"))
    message = _message(body, response.reason_phrase)
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
        problem = url_problem(target)
        if problem is not None:
            # Refused before anything was built: provably never sent, like a failed connect.
            raise APIConnectionError(f"{method} {target}: {problem}", request_sent=False)
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
        except httpx.InvalidURL as exc:
            # Raised while building the request (a redirect's bad Location is a
            # RemoteProtocolError instead), so nothing left this machine.
            raise _connection_error(exc, method, target, request_sent=False) from exc
        except (httpx.DecodingError, httpx.TooManyRedirects) as exc:
            # The service did answer, just not readably (a corrupt compressed body, a
            # redirect loop): a bad answer, and a submit's outcome stays uncertain.
            detail = str(exc) or type(exc).__name__
            raise ProtocolError(f"{method} {target}: {detail}", body=None) from exc
        except httpx.RequestError as exc:
            # UnsupportedProtocol included: a client that follows redirects may meet it
            # after the request was sent, so it is not provably unsent.
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
                logger.debug(
                    "retrying %s %s in %.2fs after %s",
                    method,
                    printable(url),
                    delay,
                    printable(exc),
                )
            await anyio.sleep(delay)
            attempt += 1


def _connection_error(
    exc: httpx.RequestError | httpx.InvalidURL, method: str, url: str, *, request_sent: bool
) -> APIConnectionError:
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    detail = str(exc) or type(exc).__name__
    return cls(f"{method} {url}: {detail}", request_sent=request_sent)

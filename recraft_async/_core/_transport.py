"""One request at a time: authentication, the KIE envelope, error mapping, retries."""

from __future__ import annotations

import functools
import json
import logging
import math
import zlib
from contextlib import AbstractContextManager
from typing import Any, Protocol

import anyio
import httpx

from recraft_async._version import __version__

from ._errors import (
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
    RecraftError,
    ServerError,
    ServiceUnavailableError,
)
from ._escape import loggable_url, printable
from ._policy import parse_retry_after, server_or_backoff, should_retry
from ._redact import Secret, redact_chain
from ._retry import Retry

logger = logging.getLogger("recraft_async")
# Sent with every request the library makes: API calls, uploads and downloads.
USER_AGENT = f"recraft-async/{__version__}"

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
# KIE's answers are a few KB. An answer that decodes to more is refused as it streams in,
# so that a small gzip bomb (0.5 MB that inflates to gigabytes) never fills memory.
MAX_ANSWER_BYTES = 4 * 1024 * 1024
# How much of an oversized answer its ProtocolError keeps, for the eye.
_KEPT_OF_OVERSIZED = 4096
# The content codings an API request asks for. Decoding stays ours, in bounded steps:
# httpx would inflate each network read whole (up to ~1000 times its 64 KiB).
_ANSWER_CODINGS = "gzip, deflate"
_GZIP_WBITS = zlib.MAX_WBITS | 16
_ZLIB_WBITS = {"gzip": _GZIP_WBITS, "x-gzip": _GZIP_WBITS, "deflate": zlib.MAX_WBITS}


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
            headers=headers,
            retry_after=parse_retry_after(dict(headers)),
        )
    return cls(message, code=code, http_status=http_status, body=body, headers=headers)


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


def _text(response: httpx.Response, content: bytes) -> str:
    # httpx decodes with whatever codec the Content-Type names, and some raise instead of
    # replacing (idna, utf-16 without a BOM, hex). A declared charset is honoured only
    # when it decodes; else UTF-8, JSON's own encoding (RFC 8259).
    charset = response.charset_encoding
    if charset is not None:
        try:
            return content.decode(charset, "replace")
        except (LookupError, UnicodeError):
            pass
    return content.decode("utf-8", "replace")


def decode_envelope(response: httpx.Response, content: bytes | None = None) -> tuple[Any, str]:
    """The envelope's ``data`` and the raw text; the body's code wins over the HTTP status.

    ``content`` is the decoded body when it was read apart (streamed), else the response's.
    """
    text = _text(response, response.content if content is None else content)
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


class AttemptClock:
    """One attempt's total deadline: it ends a trickling body, as per-read timeouts never do.

    The clock starts once a connection is in hand (httpcore's ``trace`` extension reports
    it): waiting for the pool is queued work, not a slow answer. Transports that report
    no progress (mocks, ASGI) start it when the answer's headers arrive. The upload of
    the request's own body is not counted: a large image on a slow link is no hostile
    answer (httpx's per-write timeout still ends a stalled one).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.scope = anyio.CancelScope()
        self._traced = False
        self._sent = False
        self._paused: float | None = None

    @property
    def request_sent(self) -> bool:
        """Whether the request may have left: False only if the trace shows it did not."""
        return self._sent or not self._traced

    @property
    def expired(self) -> bool:
        """Whether the deadline ended the attempt."""
        return self.scope.cancelled_caught

    def start(self) -> None:
        """Start the clock, unless it runs already (or is paused for an upload)."""
        if math.isinf(self.scope.deadline) and self._paused is None:
            self.scope.deadline = anyio.current_time() + self.seconds

    async def trace(self, event: str, _info: dict[str, Any]) -> None:
        """Progress from httpcore (the request's ``trace`` extension)."""
        self._traced = True
        if event.endswith(".send_request_headers.started"):
            self._sent = True
        if event.endswith(".send_request_body.started") and self._paused is None:
            self.start()
            self._paused = self.scope.deadline - anyio.current_time()
            self.scope.deadline = math.inf
        elif event.endswith(".send_request_body.complete") and self._paused is not None:
            self.scope.deadline = anyio.current_time() + self._paused
            self._paused = None
        else:
            self.start()


class _Decoder:
    """Undoes one content coding in bounded steps (zlib's ``max_length``)."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        wbits = _ZLIB_WBITS.get(coding)
        self._zlib = None if wbits is None else zlib.decompressobj(wbits)
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        """``data`` decoded, cut short once it holds more than ``room`` bytes."""
        if self._zlib is None:
            return data[: room + 1]
        out = bytearray()
        while data and len(out) <= room:
            try:
                # max_length is at least 1 here; 0 would mean "no limit".
                out += self._zlib.decompress(data, room + 1 - len(out))
            except zlib.error:
                if self._coding != "deflate" or self._started:
                    raise
                # Some servers send deflate without zlib's header; httpx accepts both.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._started = True
                continue
            self._started = True
            data = self._zlib.unconsumed_tail
        return bytes(out)

    def flush(self) -> bytes:
        """Whatever decoded output zlib still holds."""
        return b"" if self._zlib is None else self._zlib.flush()


def _decoder_for(response: httpx.Response, what: str) -> _Decoder:
    header = response.headers.get("Content-Encoding", "")
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c not in ("", "identity")]
    if not codings:
        return _Decoder("identity")
    if len(codings) > 1 or codings[0] not in _ZLIB_WBITS:
        raise ProtocolError(f"{what}: answer in content coding {header!r}, never asked", body=None)
    return _Decoder(codings[0])


async def _read_answer(response: httpx.Response, what: str) -> bytes:
    """The answer's decoded body; a ProtocolError as soon as it exceeds MAX_ANSWER_BYTES."""
    if response.is_stream_consumed:
        # An in-memory transport (a test's mock) handed over an answer read already.
        body = bytearray(response.content[: MAX_ANSWER_BYTES + 1])
        return _within_cap(body, what)
    decoder = _decoder_for(response, what)
    body = bytearray()
    try:
        async for raw in response.aiter_raw():
            body += decoder.decode(raw, MAX_ANSWER_BYTES - len(body))
            if len(body) > MAX_ANSWER_BYTES:
                break
        else:
            body += decoder.flush()
    except zlib.error as exc:
        raise ProtocolError(f"{what}: the answer does not decode ({exc})", body=None) from None
    return _within_cap(body, what)


def _within_cap(body: bytearray, what: str) -> bytes:
    if len(body) > MAX_ANSWER_BYTES:
        kept = bytes(body[:_KEPT_OF_OVERSIZED]).decode("utf-8", "replace")
        raise ProtocolError(
            f"{what}: the answer is over {MAX_ANSWER_BYTES} bytes (decoded); refused", body=kept
        )
    return bytes(body)


class RequestSpan(Protocol):
    """The span of one HTTP request (``_tracing``)."""

    def answered(self, status: int) -> None:
        """The answer's HTTP status arrived."""


class RequestTracer(Protocol):
    """Makes a span of each request (``_tracing.Tracer``, when OpenTelemetry is there)."""

    def request(self, method: str, url: str) -> AbstractContextManager[RequestSpan]:
        """A span for one request, current around it; an exception out of it marks it failed."""


class Transport:
    """Sends requests with the key attached and turns every failure into a typed error.

    ``timeout`` is httpx's limit on each network operation and also each attempt's total
    (see AttemptClock); answers are bounded to MAX_ANSWER_BYTES after decoding.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: Secret,
        max_retries: int,
        timeout: float,
        tracer: RequestTracer | None = None,
    ) -> None:
        self.http = http
        self.tracer = tracer
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._max_retries = max_retries
        # No pool timeout: a job waiting for a connection is queued work, not a failure.
        self._timeout = httpx.Timeout(timeout, pool=None)
        self._deadline = float(timeout)

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
        """One attempt; returns the envelope's data and the raw body (in a span if traced)."""
        body = {"json": json, "params": params, "files": files, "data": data}
        if self.tracer is None:
            return await self._send(None, method, url, **body)
        with self.tracer.request(method, url if "://" in url else self.base_url + url) as span:
            return await self._send(span, method, url, **body)

    async def _send(
        self,
        span: RequestSpan | None,
        method: str,
        url: str,
        *,
        json: Any,
        params: dict[str, str] | None,
        files: Any,
        data: Any,
    ) -> tuple[Any, str]:
        target = url if "://" in url else self.base_url + url
        problem = url_problem(target)
        if problem is not None:
            # Refused before anything was built: provably never sent, like a failed connect.
            raise APIConnectionError(f"{method} {target}: {problem}", request_sent=False)
        what = f"{method} {target}"
        headers = {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            "Accept-Encoding": _ANSWER_CODINGS,
            # Per request, so that a caller's own http_client sends it too.
            "User-Agent": USER_AGENT,
        }
        clock = AttemptClock(self._deadline)
        try:
            request = self.http.build_request(
                method,
                target,
                json=json,
                params=params,
                files=files,
                data=data,
                headers=headers,
                timeout=self._timeout,
                extensions={"trace": clock.trace},
            )
        except httpx.InvalidURL as exc:
            # Raised while building the request, so nothing left this machine.
            raise _connection_error(exc, method, target, request_sent=False) from exc
        except UnicodeEncodeError:
            # A header httpx cannot encode (a key is checked for this where it enters). The
            # codec's error holds the whole header, the key with it: dropped, not chained.
            raise APIConnectionError(
                f"{method} {target}: a request header is not ASCII", request_sent=False
            ) from None
        answer: tuple[httpx.Response, bytes] | None = None
        with clock.scope:
            try:
                response = await self.http.send(request, stream=True)
                if span is not None:
                    span.answered(response.status_code)
                try:
                    clock.start()
                    answer = response, await _read_answer(response, what)
                finally:
                    with anyio.CancelScope(shield=True):
                        await response.aclose()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise _connection_error(exc, method, target, request_sent=False) from exc
            except (httpx.DecodingError, httpx.TooManyRedirects, httpx.InvalidURL) as exc:
                # The service did answer, just not readably (a corrupt compressed body, a
                # redirect loop or one to "data:..."): a bad answer, and a submit's outcome
                # stays uncertain.
                redact_chain(exc)
                detail = str(exc) or type(exc).__name__
                raise ProtocolError(f"{what}: {detail}", body=None) from exc
            except httpx.RequestError as exc:
                # UnsupportedProtocol included: a client that follows redirects may meet it
                # after the request was sent, so it is not provably unsent.
                raise _connection_error(exc, method, target, request_sent=True) from exc
        if answer is None or clock.expired:
            # Like a read timeout: once the request may have left, a submit is uncertain.
            raise APITimeoutError(
                f"{what}: no complete answer within {self._deadline:g} s",
                request_sent=clock.request_sent,
            )
        return decode_envelope(*answer)

    async def request_json(
        self, method: str, url: str, *, idempotent: bool, **request: Any
    ) -> tuple[Any, str]:
        """Like send() (same keywords), retrying transient failures when idempotent."""
        if not idempotent:
            return await self.send(method, url, **request)

        def retrying(error: RecraftError, delay: float) -> None:
            logger.debug(
                "retrying %s %s in %.2fs after %s",
                method,
                loggable_url(url),
                delay,
                printable(error),
            )

        retry = Retry(
            may_retry=functools.partial(should_retry, max_retries=self._max_retries),
            delay=server_or_backoff,
            retrying=retrying,
        )
        return await retry.call(lambda _attempt: self.send(method, url, **request))


def _connection_error(
    exc: httpx.RequestError | httpx.InvalidURL, method: str, url: str, *, request_sent: bool
) -> APIConnectionError:
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    redact_chain(exc)  # h11 quotes a header it refuses, the key with it; exc stays the cause
    detail = str(exc) or type(exc).__name__
    return cls(f"{method} {url}: {detail}", request_sent=request_sent)

"""The doctor's own HTTP: every exchange with the service recorded as it happened.

The doctor is a probe, so it does not go through the client (whose retries, parsing and
pacing would hide what the service said): each request is one raw httpx call, and each
answer is kept whole in memory for the checks. ``Exchange.as_trace`` is what may leave
the machine: no key, no request headers, and URLs without their query strings (a result
or upload URL may be presigned) outside the API's own reads.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import anyio
import attrs
import httpx

from recraft_async._core._images import sniff_format

# Response headers worth a bug report; the rest (cookies, tracing ids) stay out.
_KEPT_HEADERS = ("content-type", "content-length", "retry-after", "retry-after-ms", "location")
_REDACTED = "[redacted]"


@attrs.frozen
class Exchange:
    """One request and its answer (or the error that stood for one)."""

    step: str
    method: str
    url: str  # as sent; trimmed by as_trace
    status: int | None  # None: no answer came (a connection error or a timeout)
    started: float  # seconds since the doctor began
    seconds: float
    request: Any = None  # the JSON or form sent, files as a note of their size
    body: Any = None  # the JSON answer; for anything else, see text / size / image
    text: str | None = None  # an answer that is not JSON, cut short
    size: int = 0
    image: str | None = None  # the image format the bytes start with, if any
    final_url: str | None = None  # where redirects led, when they did
    headers: dict[str, str] = attrs.field(factory=dict)
    error: str | None = None
    operation: str | None = None
    since_submit: float | None = None  # for a status read: seconds after its submit

    @property
    def is_json(self) -> bool:
        """Whether the answer was a JSON document."""
        return self.image is None and self.text is None and self.error is None and self.size > 0

    def as_trace(self, api_host: str) -> dict[str, Any]:
        """The exchange as it goes into a trace file: redacted (see the module's doc)."""
        parts = urllib.parse.urlsplit(self.url)
        keep_query = parts.netloc == api_host  # the API's own reads: ?taskId=
        entry: dict[str, Any] = {
            "step": self.step,
            "method": self.method,
            "host": parts.netloc,
            "path": parts.path + (f"?{parts.query}" if keep_query and parts.query else ""),
            "status": self.status,
            "started": round(self.started, 3),
            "seconds": round(self.seconds, 3),
        }
        optional = {
            "operation": self.operation,
            "since_submit": None if self.since_submit is None else round(self.since_submit, 3),
            "request": redact(self.request),
            "response": redact(self.body) if self.is_json else None,
            "text": self.text,
            "image": self.image,
            "redirected_to": None if self.final_url is None else redact(self.final_url),
            "headers": self.headers or None,
            "error": self.error,
        }
        entry.update({k: v for k, v in optional.items() if v is not None})
        if not self.is_json and self.size:
            entry["bytes"] = self.size
        return entry


def redact(value: Any) -> Any:
    """``value`` with every URL cut to scheme, host and path, inside JSON strings too."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        if value[:8].lower().startswith(("http://", "https://")):
            parts = urllib.parse.urlsplit(value)
            return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        if value[:1] in "{[":
            try:
                inner = json.loads(value)
            except ValueError:
                return value
            return json.dumps(redact(inner), separators=(",", ":"))
    return value


class Probe:
    """Sends the doctor's requests and keeps every exchange, in order."""

    def __init__(self, api_key: str, *, timeout: float = 30.0) -> None:
        self._key = api_key
        self._start = anyio.current_time()
        self.exchanges: list[Exchange] = []
        # Two pools: result hosts never see the key (as the client's downloads).
        self._api = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            mounts={"http://": httpx.AsyncHTTPTransport()},  # no environment proxy for http
        )
        self._files = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._api.aclose()
        await self._files.aclose()

    def now(self) -> float:
        """Seconds since the probe began."""
        return anyio.current_time() - self._start

    async def call(
        self,
        step: str,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        file: tuple[str, bytes, str] | None = None,
        operation: str | None = None,
        since_submit: float | None = None,
        with_key: bool = True,
    ) -> Exchange:
        """Send one request (with the key unless ``with_key=False``) and record it."""
        client = self._api if with_key else self._files
        request: Any = json_body
        if form is not None:
            request = {**form, **({"file": f"<{len(file[1])} bytes of {file[2]}>"} if file else {})}
        started, clock = self.now(), time.perf_counter()
        fields: dict[str, Any]
        try:
            answer = await client.request(
                method,
                url,
                json=json_body,
                data=form,
                files={"file": file} if file else None,
            )
        except httpx.HTTPError as exc:
            fields = {"status": None, "error": f"{type(exc).__name__}: {exc}"}
        else:
            fields = _answer_fields(answer)
        exchange = Exchange(
            step=step,
            method=method,
            url=url,
            started=started,
            seconds=time.perf_counter() - clock,
            request=request,
            operation=operation,
            since_submit=since_submit,
            **fields,
        )
        self.exchanges.append(exchange)
        return exchange

    def trace(self, api_base_url: str, extra: dict[str, Any]) -> str:
        """Every exchange as a JSON document, redacted; the key appears nowhere."""
        host = urllib.parse.urlsplit(api_base_url).netloc
        document = {**extra, "exchanges": [e.as_trace(host) for e in self.exchanges]}
        return self.scrub(json.dumps(document, indent=2))

    def scrub(self, text: str) -> str:
        """``text`` with the key replaced, wherever an answer may have echoed it."""
        return text.replace(self._key, _REDACTED) if self._key else text


def _answer_fields(answer: httpx.Response) -> dict[str, Any]:
    data = answer.content
    headers = {k: answer.headers[k] for k in _KEPT_HEADERS if k in answer.headers}
    fields: dict[str, Any] = {"status": answer.status_code, "size": len(data), "headers": headers}
    if answer.history:
        fields["final_url"] = str(answer.url)
    image = sniff_format(data[:16])
    if image is not None:
        return {**fields, "image": image}
    try:
        fields["body"] = json.loads(data)
    except ValueError:
        fields["text"] = data[:2000].decode("utf-8", "replace")
    return fields

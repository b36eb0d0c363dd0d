"""OpenTelemetry spans: one per job, and a child of it per HTTP request the job makes.

Imported only when OpenTelemetry is installed (the ``otel`` extra) and tracing is not
switched off: nothing else in the library imports ``opentelemetry``.

A job's span starts at the moment the job was queued and ends at its last event; its
parent is the span that was current where the job was made (``client.upscale()`` and
the others run in the caller's task), and while the job's own task runs, the job's span
is current there, so that each request it sends is the job span's child. The job's
events are the span's events.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ._jobs import Job, JobStatus

_NAME = "recraft_async"


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class _RequestSpan:
    """The span of one request, for the transport to report the answer's status."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def answered(self, status: int) -> None:
        """The answer's HTTP status arrived."""
        self.span.set_attribute("http.response.status_code", status)
        if status >= 400:
            self.span.set_status(Status(StatusCode.ERROR))


class Tracer:
    """The spans of one client's jobs and requests (the global tracer provider's)."""

    def __init__(self, dialect: str) -> None:
        self._dialect = dialect
        self._tracer = trace.get_tracer(_NAME)
        # The caller's context of each queued job made inside one (none: a root span).
        self._parents: dict[Job, otel_context.Context] = {}

    def job_created(self, job: Job) -> None:
        """Remember the context current where ``job`` was made: its span's parent."""
        current = otel_context.get_current()
        if current:  # an empty context parents nothing: store nothing
            self._parents[job] = current

    @contextmanager
    def job_span(self, job: Job) -> Iterator[Span]:
        """The job's span, current in the job's task until the job's life ends."""
        span = self._start(job)
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield span
        finally:
            self._end(span, job)
            span.end()

    def job_unstarted(self, job: Job) -> None:
        """The span of a job that ended before its task started (cancelled while queued)."""
        span = self._start(job)
        self._end(span, job)
        span.end(end_time=_ns(job.events[-1].time))

    @contextmanager
    def request(self, method: str, url: str) -> Iterator[_RequestSpan]:
        """A client span for one request, the current span's child (the job's, in a job)."""
        parts = urllib.parse.urlsplit(url)
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            # Without query or fragment: a presigned URL's query is a credential.
            "url.full": urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        }
        if parts.hostname:
            attributes["server.address"] = parts.hostname
        span = self._tracer.start_span(
            f"{method} {parts.path or '/'}", kind=SpanKind.CLIENT, attributes=attributes
        )
        try:
            with trace.use_span(
                span, end_on_exit=False, record_exception=False, set_status_on_exception=False
            ):
                yield _RequestSpan(span)
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            span.end()

    def _start(self, job: Job) -> Span:
        parent = self._parents.pop(job, None)
        return self._tracer.start_span(
            f"recraft {job.operation.value}",
            # An empty context, not the job task's own: that is where the client was opened.
            context=parent if parent is not None else otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes={"recraft.operation": job.operation.value, "recraft.dialect": self._dialect},
            start_time=_ns(job.events[0].time),
        )

    def _end(self, span: Span, job: Job) -> None:
        """The job's events, outcome and reads on its span (which the caller ends)."""
        events = job.events
        reads = 0
        for event in events:
            reads += event.kind == "status"
            attributes = {
                key: value
                for key, value in (
                    ("recraft.task_id", event.task_id),
                    ("recraft.state", event.state),
                    ("recraft.detail", event.detail),
                )
                if value is not None
            }
            span.add_event(event.kind, attributes, timestamp=_ns(event.time))
        if job.task_id is not None:
            span.set_attribute("recraft.task_id", job.task_id)
        span.set_attribute("recraft.outcome", job.status.value)
        span.set_attribute("recraft.reads", reads)
        if job.status is JobStatus.FAILED:
            error = job.exception()
            assert error is not None  # noqa: S101 - a failed job has its error
            span.set_attribute("error.type", type(error).__name__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

"""OpenTelemetry: a span per job, a child per HTTP request, the caller's span as parent."""

import subprocess
import sys
import textwrap

import httpx
import pytest
from conftest import MARKET_READ, MARKET_STATE, MARKET_SUBMIT, ROOT, envelope, market_record
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


@pytest.fixture
def exporter(monkeypatch):
    """Spans of this test only: a provider of its own stands in for the global one."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    return spans


def _service(kie, *flags):
    """Submits answer t1, t2, ...; each task's reads answer ``flags`` in turn (1 at the end)."""
    counter = iter(range(1, 100))
    kie.post(UPSCALE).mock(
        side_effect=lambda _: httpx.Response(200, json=envelope({"taskId": f"t{next(counter)}"}))
    )
    answered: dict[str, int] = {}

    def read(request):
        task_id = request.url.params["taskId"]
        n = answered[task_id] = answered.get(task_id, 0) + 1
        flag = flags[n - 1] if n <= len(flags) else 1
        if flag not in (0, 1, 2):
            return httpx.Response(flag, json=envelope(code=flag, msg="passing trouble"))
        return httpx.Response(
            200, json=market_record(task_id, state=MARKET_STATE[flag], urls=("https://o/x.png",))
        )

    kie.get(READ).mock(side_effect=read)


def _jobs(spans):
    return [s for s in spans if s.name.startswith("recraft ")]


def _children(spans, parent):
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.span_id]


async def test_one_span_per_job_with_its_attributes_and_events(kie, make_client, exporter):
    """The job's span names the operation, task, dialect, outcome and reads; events too."""
    _service(kie, 0, 1)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        await job
    (span,) = _jobs(exporter.get_finished_spans())
    assert span.name == "recraft upscale"
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes) == {
        "recraft.operation": "upscale",
        "recraft.dialect": "market",
        "recraft.task_id": "t1",
        "recraft.outcome": "succeeded",
        "recraft.reads": 2,
    }
    assert [e.name for e in span.events] == [e.kind for e in job.events]
    assert span.events[2].attributes["recraft.state"] == "processing"
    assert span.parent is None  # made outside any span: a root
    assert span.status.status_code is StatusCode.UNSET


async def test_each_http_request_is_a_child_of_its_job_span(kie, make_client, exporter):
    """The submit and each status read are client spans under the job's span."""
    _service(kie, 500, 0, 1)
    async with make_client() as client:
        await client.upscale("https://i.test/a.png")
    spans = exporter.get_finished_spans()
    (job_span,) = _jobs(spans)
    children = _children(spans, job_span.context)
    assert [s.name for s in children] == [f"POST {UPSCALE}"] + [f"GET {READ}"] * 3
    assert all(s.kind is SpanKind.CLIENT for s in children)
    assert {s.context.trace_id for s in children} == {job_span.context.trace_id}
    submit, failed_read, *_ = children
    assert dict(submit.attributes) == {
        "http.request.method": "POST",
        "url.full": f"https://api.kie.ai{UPSCALE}",
        "server.address": "api.kie.ai",
        "http.response.status_code": 200,
    }
    # The read's query (the task id) stays out of the URL.
    assert children[-1].attributes["url.full"] == f"https://api.kie.ai{READ}"
    assert failed_read.attributes["http.response.status_code"] == 500
    assert failed_read.attributes["error.type"] == "ServerError"
    assert failed_read.status.status_code is StatusCode.ERROR
    assert job_span.attributes["recraft.reads"] == 3


async def test_the_job_span_is_parented_to_the_span_current_where_it_was_made(
    kie, make_client, exporter
):
    """Jobs made inside two web requests' spans are each their own request's child."""
    _service(kie, 0, 1)
    web = trace.get_tracer_provider().get_tracer("app")
    async with make_client() as client:
        with web.start_as_current_span("web-request") as first:
            one = client.upscale("https://i.test/1.png")
        with web.start_as_current_span("web-request") as second:
            two = client.upscale("https://i.test/2.png")
        outside = client.upscale("https://i.test/3.png")
        for job in (one, two, outside):
            await job
    by_task = {s.attributes["recraft.task_id"]: s for s in _jobs(exporter.get_finished_spans())}
    spans = {job: by_task[job.task_id] for job in (one, two, outside)}
    assert spans[one].parent.span_id == first.get_span_context().span_id
    assert spans[two].parent.span_id == second.get_span_context().span_id
    assert spans[one].context.trace_id == first.get_span_context().trace_id
    assert spans[outside].parent is None


async def test_a_failed_job_span_is_an_error_with_the_exception(kie, make_client, exporter):
    """A failed task: outcome failed, ERROR status, error.type and an exception event."""
    _service(kie, 2)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.TaskFailedError):
            await job
    (span,) = _jobs(exporter.get_finished_spans())
    assert span.attributes["recraft.outcome"] == "failed"
    assert span.attributes["error.type"] == "TaskFailedError"
    assert span.status.status_code is StatusCode.ERROR
    assert "exception" in [e.name for e in span.events]


async def test_a_job_cancelled_while_queued_still_gets_its_span(kie, make_client, exporter):
    """A job that never started ends in a span too, parented where it was made."""
    _service(kie, 0, 1)
    web = trace.get_tracer_provider().get_tracer("app")
    async with make_client(max_in_flight=1) as client:
        first = client.upscale("https://i.test/1.png")
        with web.start_as_current_span("web-request") as request:
            queued = client.upscale("https://i.test/2.png")
        queued.cancel()
        await first
    cancelled = [
        s for s in _jobs(exporter.get_finished_spans()) if "recraft.task_id" not in s.attributes
    ]
    (span,) = cancelled
    assert span.attributes["recraft.outcome"] == "cancelled"
    assert span.attributes["recraft.reads"] == 0
    assert span.parent.span_id == request.get_span_context().span_id
    assert [e.name for e in span.events] == ["queued", "cancelled"]


async def test_requests_outside_jobs_are_children_of_the_callers_span(kie, make_client, exporter):
    """credits() in a span of the caller's: its request is that span's child."""
    kie.get("/api/v1/chat/credit").respond(json=envelope(12.5))
    web = trace.get_tracer_provider().get_tracer("app")
    async with make_client() as client:
        with web.start_as_current_span("web-request") as request:
            assert await client.credits() == 12.5
    (span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("GET ")]
    assert span.parent.span_id == request.get_span_context().span_id


async def test_tracing_false_makes_no_spans(kie, make_client, exporter):
    """tracing=False switches the spans off though OpenTelemetry is installed."""
    _service(kie, 1)
    async with make_client(tracing=False) as client:
        assert client.tracing is False
        await client.upscale("https://i.test/a.png")
    assert exporter.get_finished_spans() == ()


async def test_tracing_is_on_by_default_and_checked(make_client):
    """Installed OpenTelemetry turns tracing on; a non-bool is refused."""
    assert make_client().tracing is True
    assert make_client(tracing=True).tracing is True
    with pytest.raises(ra.InvalidInputError, match="tracing"):
        make_client(tracing="yes")


_WITHOUT_OTEL = """
    import sys


    class NoOpenTelemetry:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"no module named {name!r} (hidden by the test)")
            return None


    sys.meta_path.insert(0, NoOpenTelemetry())

    import anyio
    import httpx

    import recraft_async as ra


    def answer(request):
        if request.method == "POST":
            data = {"taskId": "t1"}
        else:
            data = {"taskId": "t1", "successFlag": 1, "response": {"resultUrls": ["https://o/x.png"]}}
        return httpx.Response(200, json={"code": 200, "msg": "ok", "data": data})


    async def main():
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            async with ra.AsyncRecraft(
                api_key="k", http_client=http, dialect="recraft", submit_rate=None,
                read_rate=None, poll=ra.PollPolicy(initial=0.01, max_interval=0.05),
                on_event=lambda job, event: None,
            ) as client:
                assert client.tracing is False
                result = await client.upscale("https://i.test/a.png")
                assert result.url == "https://o/x.png"


    anyio.run(main)
    try:
        ra.AsyncRecraft(api_key="k", tracing=True)
    except ra.InvalidInputError as exc:
        assert "otel" in str(exc)
    else:
        raise AssertionError("tracing=True without OpenTelemetry was accepted")
    print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""


@pytest.mark.slow
def test_without_opentelemetry_nothing_of_it_is_imported():
    """With OpenTelemetry hidden, a whole job runs and no opentelemetry module is loaded."""
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", textwrap.dedent(_WITHOUT_OTEL)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

"""Scheduling: the in-flight bound, submit pacing, 429 pauses, submit safety, polling."""

import itertools
import json

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record, record

import recraft_async as ra
from recraft_async._core import _poll

# Every test here mocks its I/O, so it runs on the fake clock: sleeps cost no wall time.
pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


def running(task_id="t1"):
    """A status answer of a task still generating."""
    return market_record(task_id, state="generating")


class FakeService:
    """Hands out task ids; each task finishes after ``reads_to_finish`` status reads."""

    def __init__(self, reads_to_finish=2):
        self.reads_to_finish = reads_to_finish
        self.ids = itertools.count(1)
        self.reads = {}
        self.submit_times = []
        self.pending = 0
        self.max_pending = 0

    def submit(self, _request):
        """Answer a submit with a new task id."""
        self.submit_times.append(anyio.current_time())
        task_id = f"t{next(self.ids)}"
        self.reads[task_id] = 0
        self.pending += 1
        self.max_pending = max(self.max_pending, self.pending)
        return httpx.Response(200, json=envelope({"taskId": task_id}))

    def read(self, request):
        """Answer a status read: running until the task's read budget is spent."""
        task_id = request.url.params["taskId"]
        self.reads[task_id] += 1
        if self.reads[task_id] < self.reads_to_finish:
            return httpx.Response(200, json=running(task_id))
        if self.reads[task_id] == self.reads_to_finish:
            self.pending -= 1
        urls = (f"https://cdn.test/{task_id}.png",)
        return httpx.Response(200, json=market_record(task_id, urls=urls))

    def install(self, kie):
        """Route the router's submits and reads here."""
        submit = kie.post(MARKET_SUBMIT).mock(side_effect=self.submit)
        kie.get(MARKET_READ).mock(side_effect=self.read)
        return submit


async def test_in_flight_bound(kie, make_client):
    """No more than max_in_flight tasks are submitted and unfinished at once."""
    service = FakeService(reads_to_finish=3)
    service.install(kie)
    async with make_client(max_in_flight=4) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(20)]
    assert all(job.status is ra.JobStatus.SUCCEEDED for job in jobs)
    assert service.max_pending == 4
    assert len({job.task_id for job in jobs}) == 20


async def test_submit_rate_is_a_sliding_window(kie, make_client):
    """No n+1 submits fall in any window of `per` seconds, across all jobs."""
    service = FakeService(reads_to_finish=1)
    service.install(kie)
    rate = ra.Rate(3, per=0.2)
    async with make_client(max_in_flight=10, submit_rate=rate) as client:
        for i in range(9):
            client.upscale(f"https://i.test/{i}.png")
    times = service.submit_times
    assert len(times) == 9
    for i in range(len(times) - rate.n):
        assert times[i + rate.n] - times[i] >= rate.per - 1e-3


@pytest.mark.parametrize(
    "headers", [{"Retry-After": "0.3"}, {"retry-after-ms": "300"}], ids=["seconds", "ms"]
)
async def test_429_pauses_every_submit_of_the_client(kie, make_client, headers):
    """After a 429 no job submits before Retry-After has passed; the refused one is resent."""
    service = FakeService(reads_to_finish=1)
    calls = []

    def submit(request):
        calls.append(anyio.current_time())
        if len(calls) == 1:
            return httpx.Response(429, json=envelope(None, 429, "too many"), headers=headers)
        return service.submit(request)

    kie.post(MARKET_SUBMIT).mock(side_effect=submit)
    kie.get(MARKET_READ).mock(side_effect=service.read)
    async with make_client(max_in_flight=3, submit_rate=ra.Rate(1, per=0.01)) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(3)]
    assert [job.status for job in jobs] == [ra.JobStatus.SUCCEEDED] * 3
    assert len(calls) == 4
    assert all(later - calls[0] >= 0.3 - 1e-3 for later in calls[1:])


async def test_429_retries_are_bounded(kie, make_client):
    """A submit refused with 429 every time fails with RateLimitError after max_retries."""
    route = kie.post(MARKET_SUBMIT).respond(
        429, json=envelope(None, 429, "slow down"), headers={"Retry-After": "0"}
    )
    async with make_client(max_retries=2) as client:
        with pytest.raises(ra.RateLimitError):
            await client.upscale("https://i.test/a.png")
    assert route.call_count == 3


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(200, json=envelope(None, 500, "internal")),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=envelope({"id": "no-task-id"})),
    ],
    ids=[
        "read-timeout",
        "disconnect",
        "reset",
        "http-500",
        "body-500",
        "502",
        "non-json",
        "no-taskid",
    ],
)
async def test_never_resubmits_when_the_submit_may_have_landed(kie, make_client, failure):
    """An answer lost after sending fails the job as uncertain, with one request only."""
    route = kie.post(MARKET_SUBMIT).mock(side_effect=[failure])
    async with make_client(max_retries=5) as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.SubmissionUncertainError) as caught:
            await job
    assert route.call_count == 1
    assert caught.value.operation is ra.Operation.UPSCALE
    assert caught.value.image == "https://i.test/a.png"
    assert caught.value.__cause__ is not None
    assert job.status is ra.JobStatus.FAILED


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.Response(503, json=envelope(None, 503, "maintenance")),
        httpx.Response(200, json=envelope(None, 455, "maintenance")),
    ],
    ids=["connect-error", "connect-timeout", "503", "455"],
)
async def test_resubmits_what_provably_never_landed(kie, make_client, failure, monkeypatch):
    """Connect failures and KIE's 455/503 refusals are resent; the job then succeeds."""
    monkeypatch.setattr("recraft_async._core._policy.INITIAL_RETRY_DELAY", 0.01)
    service = FakeService(reads_to_finish=1)
    route = kie.post(MARKET_SUBMIT).mock(side_effect=[failure, failure, service.submit])
    kie.get(MARKET_READ).mock(side_effect=service.read)
    async with make_client() as client:
        result = await client.upscale("https://i.test/a.png")
    assert route.call_count == 3
    assert result.task_id == "t1"


async def test_connect_failures_exhausted_are_not_uncertain(kie, make_client, monkeypatch):
    """When every attempt failed to connect, the error says nothing was sent."""
    monkeypatch.setattr("recraft_async._core._policy.INITIAL_RETRY_DELAY", 0.01)
    kie.post(MARKET_SUBMIT).mock(side_effect=httpx.ConnectError("refused"))
    async with make_client(max_retries=1) as client:
        with pytest.raises(ra.APIConnectionError) as caught:
            await client.upscale("https://i.test/a.png")
    assert caught.value.request_sent is False


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, ra.InvalidRequestError),
        (401, ra.AuthenticationError),
        (402, ra.InsufficientCreditsError),
        (422, ra.InvalidRequestError),
        (501, ra.GenerationFailedError),
        (505, ra.FeatureDisabledError),
    ],
)
async def test_definite_refusals_fail_without_retry(kie, make_client, code, cls):
    """A submit refused with a final code fails with that error after one request."""
    route = kie.post(MARKET_SUBMIT).respond(json=envelope(None, code, "refused"))
    async with make_client() as client:
        with pytest.raises(cls) as caught:
            await client.upscale("https://i.test/a.png")
    assert route.call_count == 1
    assert caught.value.body is not None


@pytest.mark.parametrize(
    "glitch",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(200, json=envelope(None, 500, "internal")),
        httpx.Response(200, json=envelope(None, 455, "maintenance")),
        httpx.Response(429, json=envelope(None, 429, "slow"), headers={"Retry-After": "0"}),
        httpx.Response(200, text="<html>proxy</html>"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "body-500", "455", "429", "non-json", "read-timeout", "connect"],
)
async def test_status_reads_retry_transient_failures(kie, make_client, glitch, monkeypatch):
    """A transient failure on a status read is retried and the job still succeeds."""
    monkeypatch.setattr("recraft_async._core._policy.INITIAL_RETRY_DELAY", 0.01)
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    done = httpx.Response(200, json=market_record())
    reads = kie.get(MARKET_READ).mock(side_effect=[glitch, glitch, done])
    async with make_client() as client:
        result = await client.upscale("https://i.test/a.png")
    assert result.url == "https://cdn.test/o.png"
    assert reads.call_count == 3


async def test_not_found_just_after_creation_is_retried(kie, make_client):
    """A fresh task answering 404 for its first reads still completes."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    missing = httpx.Response(200, json=envelope(None, 404, "task not found"))
    done = httpx.Response(200, json=market_record())
    reads = kie.get(MARKET_READ).mock(side_effect=[missing, missing, done])
    async with make_client() as client:
        await client.upscale("https://i.test/a.png")
    assert reads.call_count == 3


async def test_not_found_past_the_grace_fails(kie, make_client, monkeypatch):
    """A task still unknown after the grace period fails with NotFoundError."""
    monkeypatch.setattr(_poll, "NOT_FOUND_GRACE", 0.05)
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=envelope(None, 404, "task not found"))
    async with make_client() as client:
        with pytest.raises(ra.NotFoundError):
            await client.upscale("https://i.test/a.png")


async def test_poll_timeout_fails_with_task_id(kie, make_client):
    """A task still running at PollPolicy.timeout fails with JobTimeoutError and its id."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "slow-1"}))
    kie.get(MARKET_READ).respond(json=running("slow-1"))
    poll = ra.PollPolicy(initial=0.01, factor=2, max_interval=0.05, timeout=0.2)
    async with make_client(poll=poll) as client:
        job = client.upscale("https://i.test/a.png")
        with pytest.raises(ra.JobTimeoutError) as caught:
            await job
    assert caught.value.task_id == "slow-1"


async def test_poll_follows_the_policy_schedule(kie, make_client):
    """With nothing learned, reads come at initial, then growing intervals."""
    times = []

    def read(request):
        times.append(anyio.current_time())
        if len(times) < 4:
            return httpx.Response(200, json=running())
        return httpx.Response(200, json=market_record(urls=("https://o/x.png",)))

    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).mock(side_effect=read)
    poll = ra.PollPolicy(initial=0.05, factor=2.0, max_interval=0.15, timeout=5)
    async with make_client(poll=poll) as client:
        await client.upscale("https://i.test/a.png")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Lower bounds only: a loaded machine may read late, never early.
    wanted = [0.1, 0.15, 0.15]
    assert all(gap >= want - 0.005 for gap, want in zip(gaps, wanted, strict=True))


async def _task_failure(client):
    """The TaskFailedError an upscale on ``client`` ends in."""
    async with client:
        with pytest.raises(ra.TaskFailedError) as caught:
            await client.upscale("https://i.test/a.png")
    return caught.value


@pytest.mark.parametrize("code", ["422", 422], ids=["documented-str", "int"])
async def test_failed_tasks_raise_task_failed(kie, make_client, code):
    """A failed task raises TaskFailedError with its id, state, code and message."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    body = market_record(state="fail")
    body["data"].update(failCode=code, failMsg="image too small")
    kie.get(MARKET_READ).respond(json=body)
    error = await _task_failure(make_client())
    assert (error.task_id, error.state, error.code, error.message) == (
        "t1",
        "failed",
        code,
        "image too small",
    )


@pytest.mark.parametrize(("flag", "state"), [(2, "failed"), (3, "create-failed"), ("2", "failed")])
async def test_seed_failed_tasks_raise_task_failed(kie, make_client, flag, state):
    """The seed's status 2 and 3 (int or str) raise TaskFailedError: id, state, code, message."""
    # Seed-only answers: a successFlag (3, create-failed, exists only there) and errorCode.
    kie.post("/api/v1/recraft/upscale").respond(json=envelope({"taskId": "t1"}))
    body = record(flag=flag, urls=())
    body["data"].update(errorCode=422, errorMessage="image too small")
    kie.get("/api/v1/recraft/upscale/record-info").respond(json=body)
    error = await _task_failure(make_client(dialect="recraft"))
    assert (error.task_id, error.state, error.code, error.message) == (
        "t1",
        state,
        422,
        "image too small",
    )


async def test_bad_record_is_read_again_until_the_timeout(kie, make_client):
    """A success without result URL is a ProtocolError (with the body) read patiently again."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    reads = kie.get(MARKET_READ).respond(json=market_record(urls=()))
    poll = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=0.6)
    async with make_client(poll=poll) as client:
        with pytest.raises(ra.JobTimeoutError) as caught:
            await client.upscale("https://i.test/a.png")
    assert caught.value.task_id == "t1"
    assert "client.resume('t1', 'upscale')" in str(caught.value)
    cause = caught.value.__cause__
    assert isinstance(cause, ra.ProtocolError)
    assert cause.body is not None
    assert json.loads(cause.body)["data"]["taskId"] == "t1"
    assert reads.call_count >= 2


async def test_job_transitions_are_logged_once_each(kie, make_client, caplog):
    """Our logger writes one line per job transition."""
    caplog.set_level("INFO", logger="recraft_async")
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record())
    async with make_client() as client:
        await client.upscale("https://i.test/a.png")
    lines = [r.getMessage() for r in caplog.records if r.name == "recraft_async"]
    assert [line.split(":")[0] for line in lines] == [
        "job upscale queued",
        "job upscale submitted",
        "job upscale succeeded",
    ]


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_bare_gateway_error_after_the_send_is_uncertain(kie, make_client, status):
    """A gateway's 502/503/504 page after the submit went out may hide a task: never resent."""
    submit = kie.post(MARKET_SUBMIT).respond(status, text=f"<html><h1>{status}</h1></html>")
    async with make_client() as client:
        with pytest.raises(ra.SubmissionUncertainError):
            await client.upscale("https://i.test/a.png")
    assert submit.call_count == 1


async def test_kies_own_503_refusal_is_resent(kie, make_client):
    """KIE's 503 envelope is its word that nothing was created: the submit is sent again."""
    submit = kie.post(MARKET_SUBMIT).mock(
        side_effect=[
            httpx.Response(503, json=envelope(None, 503, "service unavailable")),
            httpx.Response(200, json=envelope({"taskId": "t1"})),
        ]
    )
    kie.get(MARKET_READ).respond(json=market_record("t1"))
    async with make_client() as client:
        assert (await client.upscale("https://i.test/a.png")).task_id == "t1"
    assert submit.call_count == 2


async def test_a_record_for_another_task_is_never_the_result(kie, make_client):
    """A status answer naming another task is a ProtocolError, never someone else's image."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "mine"}))
    kie.get(MARKET_READ).respond(json=market_record("theirs"))
    poll = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=0.4)
    async with make_client(poll=poll) as client:
        with pytest.raises(ra.ProtocolError, match="answered task 'theirs'"):
            await client.get_task("mine", ra.Operation.UPSCALE)
        with pytest.raises(ra.JobTimeoutError) as caught:
            await client.upscale("https://i.test/a.png")
    assert isinstance(caught.value.__cause__, ra.ProtocolError)

"""AsyncRecraft: configuration, wire bodies, argument checks, lifecycle and secrets."""

import json
import logging

import httpx
import pytest
from conftest import API, MARKET_READ, MARKET_SUBMIT, envelope, market_record, record

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]
KEY = "sk-test-secret-123"


def _accept(kie, task_id="t1"):
    """The default dialect's service: every submit gets ``task_id``, which has succeeded."""
    submit = kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": task_id}))
    kie.get(MARKET_READ).respond(json=market_record(task_id, urls=("https://cdn.test/o.png",)))
    return submit


def _accept_seed(kie, operation="upscale", task_id="t1"):
    """The seed's per-product endpoints (dialect "recraft"), for its own bodies and checks."""
    submit = kie.post(f"/api/v1/recraft/{operation}").respond(json=envelope({"taskId": task_id}))
    kie.get(f"/api/v1/recraft/{operation}/record-info").respond(json=record(task_id))
    return submit


@pytest.mark.parametrize(
    ("call", "path", "body"),
    [
        (
            lambda c: c.upscale("https://i.test/a.jpg"),
            "/api/v1/recraft/upscale",
            {"image_url": "https://i.test/a.jpg", "scale": 2, "format": "PNG"},
        ),
        (
            lambda c: c.upscale(
                "https://i.test/a.jpg", scale=4, format="JpG", callback_url="https://cb.test/h"
            ),
            "/api/v1/recraft/upscale",
            {
                "image_url": "https://i.test/a.jpg",
                "scale": 4,
                "format": "JPG",
                "callBackUrl": "https://cb.test/h",
            },
        ),
        (
            lambda c: c.remove_background("https://i.test/b.png"),
            "/api/v1/recraft/remove-background",
            {"image_url": "https://i.test/b.png", "output_format": "PNG"},
        ),
        (
            lambda c: c.remove_background(
                "https://i.test/b.png", output_format="PNG", callback_url="http://127.0.0.1:9/cb"
            ),
            "/api/v1/recraft/remove-background",
            {
                "image_url": "https://i.test/b.png",
                "output_format": "PNG",
                "callBackUrl": "http://127.0.0.1:9/cb",
            },
        ),
    ],
)
async def test_exact_wire_bodies(kie, make_client, call, path, body):
    """Submits send exactly the seed's body, with the bearer key and JSON content type."""
    operation = path.rsplit("/", 1)[1]
    submit = _accept_seed(kie, operation)
    async with make_client(dialect="recraft") as client:
        result = await call(client)
    request = submit.calls.last.request
    assert json.loads(request.content) == body
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert result.url == "https://cdn.test/o.png"
    assert result.operation.value == operation


async def test_result_carries_record_and_times(kie, make_client):
    """Awaiting a job gives a frozen Result with urls, times and the TaskRecord."""
    _accept(kie)
    async with make_client() as client:
        job = client.upscale("https://i.test/a.jpg")
        result = await job
    assert job.status is ra.JobStatus.SUCCEEDED
    assert result.task_id == job.task_id == "t1"
    assert result.urls == ("https://cdn.test/o.png",)
    assert result.record.state is ra.TaskState.SUCCESS
    assert (result.completed_at - result.created_at).total_seconds() == 1
    with pytest.raises(AttributeError):
        result.task_id = "other"


BAD_CALLS = [
    ("scale 3", lambda c: c.upscale("https://i.test/a.jpg", scale=3)),
    ("scale str", lambda c: c.upscale("https://i.test/a.jpg", scale="2")),
    ("scale bool", lambda c: c.upscale("https://i.test/a.jpg", scale=True)),
    ("format gif", lambda c: c.upscale("https://i.test/a.jpg", format="gif")),
    ("format empty", lambda c: c.upscale("https://i.test/a.jpg", format="")),
    ("empty url", lambda c: c.upscale("")),
    ("blank url", lambda c: c.upscale("   ")),
    ("ftp url", lambda c: c.upscale("ftp://i.test/a.jpg")),
    ("no host", lambda c: c.upscale("https:///a.jpg")),
    ("relative", lambda c: c.upscale("a.jpg")),
    ("url int", lambda c: c.upscale(42)),
    ("space in url", lambda c: c.upscale("https://i.test/a b.jpg")),
    ("bad callback", lambda c: c.upscale("https://i.test/a.jpg", callback_url="not a url")),
    ("rb jpg", lambda c: c.remove_background("https://i.test/a.jpg", output_format="jpg")),
    ("rb bad url", lambda c: c.remove_background("file:///etc/passwd")),
    ("resume empty id", lambda c: c.resume("", ra.Operation.UPSCALE)),
    ("resume bad op", lambda c: c.resume("t1", "sharpen")),
]


@pytest.mark.parametrize(("why", "call"), BAD_CALLS, ids=[why for why, _ in BAD_CALLS])
async def test_bad_input_raises_before_sending(kie, make_client, why, call):
    """Bad arguments raise InvalidInputError (a ValueError) at once and send nothing."""
    async with make_client(dialect="recraft") as client:  # the seed's options are checked
        with pytest.raises(ra.InvalidInputError) as caught:
            call(client)
    assert isinstance(caught.value, ValueError)
    assert not kie.calls


async def test_operations_outside_async_with_raise_and_send_nothing(kie, make_client):
    """Before the block, after it, and on re-entry: a RuntimeError, nothing sent."""
    client = make_client()
    with pytest.raises(ra.ClientNotOpenError) as caught:
        client.upscale("https://i.test/a.jpg")
    assert isinstance(caught.value, RuntimeError)
    async with client:
        pass
    with pytest.raises(ra.ClientNotOpenError):
        client.remove_background("https://i.test/a.jpg")
    with pytest.raises(ra.ClientNotOpenError):
        await client.get_task("t1", ra.Operation.UPSCALE)
    with pytest.raises(ra.ClientNotOpenError):
        async with client:
            pass
    assert not kie.calls


async def test_user_http_client_is_not_closed(kie, make_client):
    """A client given through http_client= stays open; ours is closed on exit."""
    _accept(kie)
    async with httpx.AsyncClient() as http:
        async with make_client(http_client=http) as client:
            await client.upscale("https://i.test/a.jpg")
        assert not http.is_closed
    own = make_client()
    async with own:
        inner = own._life.http
    assert inner.is_closed


async def test_requests_never_wait_on_a_pool_timeout(kie, make_client):
    """Every request disables the pool timeout, so queued work never fails for it."""
    submit = _accept(kie)
    async with make_client() as client:
        await client.upscale("https://i.test/a.jpg")
    assert submit.calls.last.request.extensions["timeout"]["pool"] is None


def test_key_from_environment(monkeypatch):
    """KIE_API_KEY is read when api_key is None; no key at all is a clear error."""
    monkeypatch.setenv("KIE_API_KEY", "sk-env")
    assert ra.AsyncRecraft()._settings.api_key.reveal() == "sk-env"
    monkeypatch.delenv("KIE_API_KEY")
    with pytest.raises(ra.InvalidInputError, match="KIE_API_KEY"):
        ra.AsyncRecraft()


def test_base_url_from_environment(monkeypatch):
    """KIE_BASE_URL is read when base_url is None, else KIE's own URL."""
    monkeypatch.delenv("KIE_BASE_URL", raising=False)
    assert ra.AsyncRecraft(api_key="k").base_url == API
    monkeypatch.setenv("KIE_BASE_URL", "http://127.0.0.1:8123/")
    assert ra.AsyncRecraft(api_key="k").base_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize("url", ["http://api.kie.ai", "http://10.0.0.5:80", "http://example.com"])
def test_key_refused_over_plain_http_to_remote_hosts(url):
    """The key is never sent in clear text off this machine."""
    with pytest.raises(ra.InvalidInputError, match="plain http"):
        ra.AsyncRecraft(api_key="k", base_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://127.8.9.10:9", "http://[::1]:9"])
def test_plain_http_allowed_on_loopback(url):
    """Loopback (the emulator) may use plain http."""
    ra.AsyncRecraft(api_key="k", base_url=url)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_in_flight": 0},
        {"max_retries": -1},
        {"timeout": 0},
        {"submit_rate": 20},
        {"poll": 2.0},
        {"dialect": "v2"},
        {"base_url": "ftp://x"},
    ],
)
def test_bad_configuration_is_refused(kwargs):
    """Configuration errors are InvalidInputError at construction."""
    with pytest.raises(ra.InvalidInputError):
        ra.AsyncRecraft(api_key="k", **kwargs)


async def test_key_never_in_repr_errors_or_logs(kie, make_client, caplog):
    """The key appears in no repr, exception text or log line, at any level."""
    caplog.set_level(logging.DEBUG)
    kie.post(MARKET_SUBMIT).respond(json=envelope(None, 401, "You do not have access permissions"))
    kie.get(MARKET_READ).mock(
        side_effect=[
            httpx.ConnectError("boom"),
            httpx.Response(200, json=market_record("t2", model="recraft/remove-background")),
        ]
    )
    client = make_client(max_retries=2)
    async with client:
        failing = client.upscale("https://i.test/a.jpg")
        with pytest.raises(ra.AuthenticationError) as caught:
            await failing
        await client.resume("t2", "remove-background")
        texts = [
            repr(client),
            repr(client._life.scheduler.transport),
            str(caught.value),
            repr(caught.value),
        ]
    assert caught.value.code == 401
    assert caught.value.http_status == 200
    assert caplog.records, "the scenario should have logged"
    for text in [*texts, caplog.text]:
        assert KEY not in text


async def test_credits(kie, make_client):
    """credits() reads the balance."""
    kie.get("/api/v1/chat/credit").respond(json=envelope(97))
    async with make_client() as client:
        assert await client.credits() == 97


async def test_credits_bad_answer(kie, make_client):
    """A balance that is not a number is a protocol error."""
    kie.get("/api/v1/chat/credit").respond(json=envelope("lots"))
    async with make_client() as client:
        with pytest.raises(ra.ProtocolError):
            await client.credits()


async def test_market_dialect_end_to_end(kie, make_client):
    """dialect='market' speaks createTask and recordInfo."""
    create = kie.post("/api/v1/jobs/createTask").respond(json=envelope({"taskId": "m1"}))
    kie.get("/api/v1/jobs/recordInfo").respond(
        json=envelope(
            {
                "taskId": "m1",
                "state": "success",
                "resultJson": json.dumps({"resultUrls": ["https://o/m.png"]}),
            }
        )
    )
    async with make_client(dialect="market") as client:
        result = await client.remove_background("https://i.test/a.jpg")
    assert result.url == "https://o/m.png"
    assert json.loads(create.calls.last.request.content)["model"] == "recraft/remove-background"


@pytest.mark.parametrize("kwargs", [{"scale": 4}, {"format": "jpg"}])
async def test_market_dialect_refuses_what_it_cannot_send(kie, make_client, kwargs):
    """The market dialect has no scale or format field: asking for one is bad input."""
    async with make_client(dialect="market") as client:
        with pytest.raises(ra.InvalidInputError, match="market"):
            client.upscale("https://i.test/a.jpg", **kwargs)
    assert not kie.calls


def test_market_is_the_default_dialect(monkeypatch):
    """KIE's documented jobs API is the default; KIE_DIALECT or dialect= choose the seed's."""
    monkeypatch.delenv("KIE_DIALECT", raising=False)
    assert ra.AsyncRecraft(api_key="k").dialect == "market"
    monkeypatch.setenv("KIE_DIALECT", "recraft")
    assert ra.AsyncRecraft(api_key="k").dialect == "recraft"
    assert ra.AsyncRecraft(api_key="k", dialect="market").dialect == "market"
    monkeypatch.setenv("KIE_DIALECT", "seed")
    with pytest.raises(ra.InvalidInputError, match="dialect"):
        ra.AsyncRecraft(api_key="k")


MARKET_OPTIONS = [
    ("scale", lambda c: c.upscale("https://i.test/a.png", scale=4)),
    ("scale", lambda c: c.upscale("https://i.test/a.png", scale=2)),
    ("format", lambda c: c.upscale("https://i.test/a.png", format="png")),
    ("output_format", lambda c: c.remove_background("https://i.test/a.png", output_format="png")),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "call"), MARKET_OPTIONS)
async def test_market_dialect_refuses_every_explicit_option(kie, make_client, name, call):
    """The documented models take an image only: any explicit option is refused, nothing sent."""
    async with make_client(dialect="market") as client:
        with pytest.raises(ra.InvalidInputError) as caught:
            call(client)
    assert f"{name}=" in str(caught.value)
    assert "dialect='recraft'" in str(caught.value)
    assert not kie.calls


@pytest.mark.anyio
async def test_market_dialect_sends_the_documented_body(kie, make_client):
    """The default dialect submits model + input.image to createTask and reads recordInfo."""
    submit = kie.post("/api/v1/jobs/createTask").respond(
        json=envelope({"taskId": "task_recraft_1"})
    )
    kie.get("/api/v1/jobs/recordInfo", params={"taskId": "task_recraft_1"}).respond(
        json=envelope(
            {
                "taskId": "task_recraft_1",
                "state": "success",
                "resultJson": '{"resultUrls": ["https://cdn.test/o.png"]}',
            }
        )
    )
    async with make_client(dialect="market") as client:
        result = await client.remove_background("https://i.test/a.png")
    assert json.loads(submit.calls[0].request.content) == {
        "model": "recraft/remove-background",
        "input": {"image": "https://i.test/a.png"},
    }
    assert result.url == "https://cdn.test/o.png"


@pytest.mark.anyio
async def test_recraft_dialect_sends_the_seed_defaults_for_none(kie, make_client):
    """In the seed's dialect an option left None is sent as the seed's default (2, PNG)."""
    submit = kie.post("/api/v1/recraft/upscale").respond(json=envelope({"taskId": "t1"}))
    kie.get("/api/v1/recraft/upscale/record-info").respond(json=record("t1"))
    async with make_client(dialect="recraft") as client:
        await client.upscale("https://i.test/a.png")
        await client.upscale("https://i.test/b.png", scale=4, format="jpg")
    bodies = [json.loads(call.request.content) for call in submit.calls]
    assert [(b["scale"], b["format"]) for b in bodies] == [(2, "PNG"), (4, "JPG")]


@pytest.mark.anyio
async def test_fractional_credits_are_not_truncated(kie, make_client):
    """A balance of 99.5 credits is 99.5, not 99."""
    kie.get("/api/v1/chat/credit").respond(json=envelope(99.5))
    async with make_client() as client:
        assert await client.credits() == pytest.approx(99.5)

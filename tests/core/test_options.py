"""with_options: a view with its own poll policy, retries and timeout, sharing the rest."""

import anyio
import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ


def _route(kie, *, finishes: bool = True):
    """Submits answer t1, t2, ...; reads say done (or forever running)."""
    ids = iter(range(1, 1000))
    submit = kie.post(UPSCALE).mock(
        side_effect=lambda _r: httpx.Response(200, json=envelope({"taskId": f"t{next(ids)}"}))
    )

    def read(request):
        task_id = request.url.params["taskId"]
        if finishes:
            return httpx.Response(200, json=market_record(task_id))
        return httpx.Response(200, json=market_record(task_id, state="generating", urls=()))

    kie.get(READ).mock(side_effect=read)
    return submit


async def test_views_share_the_submit_pacing(kie, make_client):
    """Two views and their client together keep to one submit rate, not one each."""
    submit = _route(kie)
    async with make_client(submit_rate=ra.Rate(2, per=60.0)) as client:
        quick = client.with_options(max_retries=0)
        patient = client.with_options(poll=ra.PollPolicy(initial=0.1, timeout=900.0))
        jobs = [
            view.upscale(f"https://i.test/{i}.png") for i in range(2) for view in (quick, patient)
        ]
        await anyio.sleep(30)
        assert submit.call_count == 2
    assert all(job.status is ra.JobStatus.SUCCEEDED for job in jobs)
    assert submit.call_count == 4


async def test_a_view_has_its_own_poll_policy(kie, make_client):
    """A view's poll timeout ends its jobs; the client's own jobs keep the client's."""
    _route(kie, finishes=False)
    client_poll = ra.PollPolicy(initial=1.0, max_interval=1.0, timeout=100.0)
    async with make_client(poll=client_poll) as client:
        view = client.with_options(poll=ra.PollPolicy(initial=1.0, max_interval=1.0, timeout=5.0))
        mine, its = client.upscale("https://i.test/a.png"), view.upscale("https://i.test/b.png")
        with pytest.raises(ra.JobTimeoutError, match="within 5s"):
            await its
        assert not mine.done()
        mine.cancel()
    assert view.poll.timeout == 5.0
    assert client.poll is client_poll


async def test_a_view_has_its_own_max_retries(kie, make_client):
    """A view's max_retries bounds its submits' retries; the client keeps its own."""
    route = kie.post(UPSCALE).respond(
        429, json=envelope(None, 429, "slow down"), headers={"Retry-After": "0"}
    )
    async with make_client(max_retries=2) as client:
        with pytest.raises(ra.RateLimitError):
            await client.with_options(max_retries=0).upscale("https://i.test/a.png")
        assert route.call_count == 1
        with pytest.raises(ra.RateLimitError):
            await client.upscale("https://i.test/a.png")
        assert route.call_count == 4


async def test_a_view_has_its_own_timeout(make_client):
    """A view's jobs carry a transport with its per-attempt timeout, over the shared pool."""
    async with make_client(timeout=60.0) as client:
        view = client.with_options(timeout=2.0)
        options = view._options()
        assert options is not None
        assert options.transport._deadline == 2.0
        assert options.transport.http is client._life.http
        assert view.timeout == 2.0
        assert client._options() is None


async def test_a_view_shares_its_clients_life(make_client):
    """A view is neither opened nor closed itself; it works while its client is open."""
    client = make_client()
    view = client.with_options(max_retries=1)
    with pytest.raises(ra.ClientNotOpenError, match="with_options"):
        await view.__aenter__()
    async with client:
        job = view.resume("t1", "upscale")
        with pytest.raises(ra.ClientNotOpenError, match="with_options"):
            await view.aclose()
        assert job.cancel()
    with pytest.raises(ra.ClientNotOpenError):
        view.upscale("https://i.test/a.png")


async def test_bad_options_are_refused(make_client):
    """with_options checks its values like the constructor does."""
    client = make_client()
    with pytest.raises(ra.InvalidInputError, match="poll"):
        client.with_options(poll=5)
    with pytest.raises(ra.InvalidInputError, match="timeout"):
        client.with_options(timeout=0)
    with pytest.raises(ra.InvalidInputError, match="max_retries"):
        client.with_options(max_retries=-1)


async def test_a_job_has_its_own_poll_policy(kie, make_client):
    """upscale(poll=...) ends that job on its own timeout; the client's other jobs go on."""
    _route(kie, finishes=False)
    client_poll = ra.PollPolicy(initial=1.0, max_interval=1.0, timeout=100.0)
    short = ra.PollPolicy(initial=1.0, max_interval=1.0, timeout=5.0)
    async with make_client(poll=client_poll) as client:
        mine = client.upscale("https://i.test/a.png")
        its = client.upscale("https://i.test/b.png", poll=short)
        resumed = client.resume("t-old", "upscale", poll=short)
        with pytest.raises(ra.JobTimeoutError, match="within 5s"):
            await its
        with pytest.raises(ra.JobTimeoutError, match="within 5s"):
            await resumed
        assert not mine.done()
        mine.cancel()
        with pytest.raises(ra.InvalidInputError, match="poll must be a PollPolicy"):
            client.upscale("https://i.test/c.png", poll=5)
        with pytest.raises(ra.InvalidInputError, match="poll must be a PollPolicy"):
            await client.enqueue_upscale("https://i.test/c.png", poll=5)


async def test_a_job_poll_policy_keeps_its_view_retries(kie, make_client):
    """A view's job given its own poll keeps the view's max_retries for its submit."""
    route = kie.post(UPSCALE).respond(
        429, json=envelope(None, 429, "slow down"), headers={"Retry-After": "0"}
    )
    async with make_client(max_retries=2) as client:
        view = client.with_options(max_retries=0)
        with pytest.raises(ra.RateLimitError):
            await view.upscale("https://i.test/a.png", poll=ra.PollPolicy(timeout=5.0))
        assert route.call_count == 1


async def test_credits_on_a_view_use_its_retries(kie, make_client):
    """credits() through a view retries as the view says, not as its client."""
    route = kie.get("/api/v1/chat/credit").respond(500, json=envelope(None, 500, "down"))
    async with make_client(max_retries=2) as client:
        with pytest.raises(ra.ServerError):
            await client.with_options(max_retries=0).credits()
        assert route.call_count == 1
        with pytest.raises(ra.ServerError):
            await client.credits()
        assert route.call_count == 4

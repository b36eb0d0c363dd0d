"""The warm start: learnt processing times persist in the journal or a state file."""

import math

import httpx
import pytest
from conftest import MARKET_READ, MARKET_SUBMIT, envelope, market_record

import recraft_async as ra
from recraft_async._core._adaptive import MIN_SAMPLES, PollPlanner
from recraft_async._core._warmstart import JOURNAL_KEY, decode, encode
from recraft_async._settings import DEFAULT_POLL

UP = ra.Operation.UPSCALE
UPSCALE = MARKET_SUBMIT
READ = MARKET_READ
# Fast reads, nothing assumed: only what was learnt can move the first read.
COLD = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=5.0, timeout=30.0, prior=None)
# conftest's market_record() says each task took 1 s (createTime to completeTime).
LEARNT_SECONDS = 1.0


def test_state_round_trips_and_garbage_is_ignored():
    """encode/decode keep each operation's times; a foreign or broken state reads as {}."""
    learnt = {UP: [1.5, 2.25], ra.Operation.REMOVE_BACKGROUND: [3.0]}
    assert decode(encode(learnt)) == learnt
    for text in ("", "not json", "[]", '{"version": 99}', '{"version": 1, "processing_times": 3}'):
        assert decode(text) == {}
    mixed = '{"version": 1, "processing_times": {"upscale": [1, -2, "x", null], "nope": [1]}}'
    assert decode(mixed) == {UP: [1.0]}


def test_preloaded_planner_keeps_the_advised_reads_and_adds_learnt_ones():
    """An earlier process's times add reads near their finishes; the 2 s first read stays."""
    earlier = PollPlanner(ra.PollPolicy())
    for index in range(40):
        earlier.observe(UP, 8.0 * math.exp(0.3 * math.sin(index)))
    fresh = PollPlanner(ra.PollPolicy(prior=None))
    assert fresh.next_read(UP, 5.0, 2)[0] == pytest.approx(4.5)  # cold: the fixed schedule
    fresh.preload(earlier.learnt())
    assert fresh.next_delay(UP, 0.0, 0) == pytest.approx(2.0)
    delay, expected = fresh.next_read(UP, 5.0, 2)
    assert expected
    assert delay < 4.5  # a learnt read before the advised one at 9.5 s


def test_the_clients_default_policy_assumes_nothing():
    """The client's default policy has no prior: a fresh client reads first after 2 s."""
    assert ra.PollPolicy(initial=0.05).prior is None
    assert PollPlanner(ra.PollPolicy(initial=0.05)).next_delay(UP, 0.0, 0) == pytest.approx(0.05)
    assert ra.AsyncRecraft(api_key="k").poll.prior is None
    assert PollPlanner(DEFAULT_POLL).next_delay(UP, 0.0, 0) == pytest.approx(2.0)


def _mock_tasks(kie):
    """Each submit makes a new task t0, t1, ...; every read finds it done after 1 s."""
    made: list[str] = []

    def submit(_request):
        made.append(f"t{len(made)}")
        return httpx.Response(200, json=envelope({"taskId": made[-1]}))

    def read(request):
        return httpx.Response(200, json=market_record(request.url.params["taskId"]))

    kie.post(UPSCALE).mock(side_effect=submit)
    kie.get(READ).mock(side_effect=read)


async def _learn(make_client, **options):
    """Run MIN_SAMPLES + 1 jobs on a cold client, then close it."""
    async with make_client(poll=COLD, **options) as client:
        jobs = [client.upscale(f"https://i.test/{i}.png") for i in range(MIN_SAMPLES + 1)]
        for job in jobs:
            await job
        learnt = client.processing_times()
    assert learnt[UP].median == pytest.approx(LEARNT_SECONDS, rel=0.01)


@pytest.mark.anyio
async def test_journal_keeps_learnt_times_for_the_next_process(kie, make_client, tmp_path):
    """A second client on the same journal starts warm: its first read waits near 1 s."""
    _mock_tasks(kie)
    path = tmp_path / "batch.journal"
    await _learn(make_client, journal=ra.Journal(path))
    async with ra.Journal(path) as journal:
        assert await journal.meta(JOURNAL_KEY) is not None
    async with make_client(poll=COLD, journal=ra.Journal(path)) as client:
        assert client.processing_times()[UP].median == pytest.approx(LEARNT_SECONDS, rel=0.01)


@pytest.mark.anyio
async def test_state_file_keeps_learnt_times_without_a_journal(kie, make_client, tmp_path):
    """state_file= carries the learnt times to the next client; a broken file starts cold."""
    _mock_tasks(kie)
    state = tmp_path / "poll-state.json"
    await _learn(make_client, state_file=state)
    assert decode(state.read_text())[UP]
    async with make_client(poll=COLD, state_file=str(state)) as client:
        assert client.processing_times()[UP].median == pytest.approx(LEARNT_SECONDS, rel=0.01)
    state.write_text("{broken")
    async with make_client(poll=COLD, state_file=state) as client:
        assert client.processing_times() == {}


def test_state_file_must_be_a_path(make_client):
    """A state_file that is not a path is refused at once."""
    with pytest.raises(ra.InvalidInputError, match="state_file"):
        make_client(state_file=3)


def test_processing_time_validates_and_gives_quantiles():
    """ProcessingTime refuses bad values; its median is its 50 % quantile."""
    assert ra.ProcessingTime(20.0).quantile(0.5) == pytest.approx(20.0)
    assert ra.ProcessingTime(20.0, sigma=0.5).quantile(0.99) > 60.0
    with pytest.raises(ra.InvalidInputError, match=r"ProcessingTime\.median"):
        ra.ProcessingTime(0.0)
    with pytest.raises(ra.InvalidInputError, match=r"PollPolicy\.prior"):
        ra.PollPolicy(prior=20.0)  # type: ignore[arg-type]
    with pytest.raises(ra.InvalidInputError, match="callback_quantile"):
        ra.PollPolicy(callback_quantile=1.0)
    with pytest.raises(ra.InvalidInputError, match="callback_growth"):
        ra.PollPolicy(callback_growth=1.0)

"""The adaptive poll planner: fixed schedule until it has learned, then reads near finishes."""

import itertools
import math
import random

import pytest

from recraft_async import Operation, PollPolicy, ProcessingTime
from recraft_async._core._adaptive import (
    MIN_SAMPLES,
    DurationModel,
    PollPlanner,
    _next_moment,
    constant_hazard_schedule,
    fit_lognormal,
)
from recraft_async._core._policy import advised_read_after

UP = Operation.UPSCALE
POLICY = PollPolicy(initial=2.0, factor=1.5, max_interval=15.0, timeout=900.0, prior=None)


def _simulate(planner, durations):
    """Reads per job and detection latencies when jobs take ``durations``."""
    reads, latencies = [], []
    for duration in durations:
        elapsed, count = 0.0, 0
        while True:
            elapsed += planner.next_delay(UP, elapsed, count)
            count += 1
            if elapsed >= duration:
                break
        reads.append(count)
        latencies.append(elapsed - duration)
    return reads, latencies


def _advised_detection(policy, duration):
    """When KIE's advised (the policy's fixed) schedule first reads a task as finished."""
    return advised_read_after(policy, duration - 1e-9)


def _detections(planner, durations):
    """The moment (after the submit) each task of ``durations`` is first read finished."""
    found = []
    for duration in durations:
        elapsed, count = 0.0, 0
        while elapsed < duration:
            elapsed += planner.next_delay(UP, elapsed, count)
            count += 1
        found.append(elapsed)
    return found


# Task lengths from 1 s to 15 minutes, spaced evenly on a log scale.
TASK_LENGTHS = [math.exp(math.log(1.0) + k * math.log(900.0) / 199) for k in range(200)]


def _lognormal(n, median, sigma, seed=1):
    rng = random.Random(seed)
    return [median * math.exp(sigma * rng.gauss(0, 1)) for _ in range(n)]


def test_model_counts_only_finished_tasks_in_its_window():
    """len() is the number of finished tasks still in the window, not the running ones."""
    model = DurationModel()
    model.running("a", 1.0)
    model.running("b", 1.0)
    assert len(model) == 0
    model.observe(2.0, "a")
    model.observe(3.0)
    assert len(model) == 2
    model.forget("b")
    for index in range(300):
        model.running(index, 1.0)
    assert len(model) == 0


def test_model_forgets_old_samples_and_ignores_garbage():
    """Only recent samples count; negative or infinite durations are dropped."""
    model = DurationModel()
    for _ in range(300):
        model.observe(100.0)
    for _ in range(256):
        model.observe(1.0)
    model.observe(-1.0)
    model.observe(math.inf)
    assert len(model) == 256
    mu, _ = model.fit()
    assert mu == pytest.approx(0.0)  # log(1.0): the 100-second samples are gone


def test_fixed_schedule_until_enough_samples():
    """With fewer than MIN_SAMPLES learned, the policy's fixed schedule applies."""
    planner = PollPlanner(POLICY)
    for _ in range(MIN_SAMPLES - 1):
        planner.observe(UP, 30.0)
    assert planner.next_delay(UP, 0.0, 0) == pytest.approx(2.0)
    assert planner.next_delay(UP, 2.0, 1) == pytest.approx(3.0)
    assert planner.next_delay(UP, 5.0, 2) == pytest.approx(4.5)


def test_cold_planner_reads_exactly_on_the_advised_schedule_for_any_task_length():
    """Nothing learnt: every task from 1 s to 15 min is found when the advised schedule finds it."""
    found = _detections(PollPlanner(POLICY), TASK_LENGTHS)
    assert found == [pytest.approx(_advised_detection(POLICY, d)) for d in TASK_LENGTHS]


def test_the_advised_schedule_counts_from_the_submit():
    """2 s, then intervals growing by 1.5 up to max_interval, whatever reads were made."""
    moments, at = [], 0.0
    for _ in range(9):
        at = advised_read_after(POLICY, at)
        moments.append(at)
    assert moments == pytest.approx([2.0, 5.0, 9.5, 16.25, 26.375, 41.375, 56.375, 71.375, 86.375])
    assert advised_read_after(POLICY, 10_000.0) == pytest.approx(10_001.375)


@pytest.mark.parametrize(("median", "sigma"), [(1.0, 0.5), (4.0, 0.1), (20.0, 0.5), (60.0, 0.5)])
def test_learnt_planner_is_never_later_than_advised_after_the_fastest_finish(median, sigma):
    """Learnt or not, a task that ends after the fastest finish seen is found no later."""
    planner = PollPlanner(POLICY)
    learnt = _lognormal(64, median, sigma, seed=7)
    for duration in learnt:
        planner.observe(UP, duration)
    fastest = min(learnt)
    lengths = [d for d in TASK_LENGTHS if d > fastest]
    for duration, found in zip(lengths, _detections(planner, lengths), strict=True):
        assert found <= _advised_detection(POLICY, duration) + 1e-9


def test_learnt_planner_leaves_out_the_reads_before_the_fastest_finish():
    """Tasks seen to take 30 s or more: no read at 2, 5 or 9.5 s, the first near 30 s."""
    planner = PollPlanner(POLICY)
    for duration in _lognormal(64, 40.0, 0.1, seed=8):
        planner.observe(UP, duration)
    first = planner.next_delay(UP, 0.0, 0)
    assert first > 26.0
    assert first < 40.0


def test_a_warm_start_saves_no_read_until_this_process_saw_finishes():
    """Preloaded (another process's) times place extra reads but keep the advised ones."""
    planner = PollPlanner(POLICY)
    planner.preload({UP: _lognormal(64, 40.0, 0.1, seed=9)})
    assert planner.next_delay(UP, 0.0, 0) == pytest.approx(2.0)
    for _ in range(MIN_SAMPLES):
        planner.observe(UP, 40.0)
    assert planner.next_delay(UP, 0.0, 0) > 26.0


def test_a_prior_adds_reads_and_removes_none():
    """With a prior and nothing learnt, every advised read is still made, plus some near it."""
    prior_policy = PollPolicy(
        initial=2.0, factor=1.5, max_interval=15.0, prior=ProcessingTime(20.0)
    )
    planner = PollPlanner(prior_policy)
    moments, at, count = [], 0.0, 0
    while at < 60.0:
        at += planner.next_delay(UP, at, count)
        count += 1
        moments.append(at)
    advised = [2.0, 5.0, 9.5, 16.25, 26.375, 41.375, 56.375]
    assert all(any(m == pytest.approx(a) for m in moments) for a in advised)
    assert len(moments) > len(advised) + 1


def test_expected_reads_are_told_apart_from_advised_ones():
    """next_read says whether a finish is expected near the read (it ranks it in the budget)."""
    planner = PollPlanner(POLICY)
    delay, expected = planner.next_read(UP, 0.0, 0)
    assert delay == pytest.approx(2.0)  # cold: all advised
    assert expected
    for duration in _lognormal(64, 20.0, 0.5, seed=10):
        planner.observe(UP, duration)
    kinds = set()
    at, count = 0.0, 0
    while at < 120.0:
        delay, expected = planner.next_read(UP, at, count)
        kinds.add(expected)
        at += delay
        count += 1
    assert kinds == {True, False}


def test_not_adaptive_means_fixed():
    """adaptive=False keeps the fixed schedule whatever was learned."""
    planner = PollPlanner(PollPolicy(adaptive=False))
    for duration in _lognormal(100, 30, 0.5):
        planner.observe(UP, duration)
    assert planner.next_delay(UP, 0, 0) == 2.0


def test_operations_are_learned_apart():
    """What upscales teach does not move background-removal reads."""
    planner = PollPlanner(POLICY)
    for _ in range(50):
        planner.observe(UP, 40.0)
    assert planner.next_delay(Operation.REMOVE_BACKGROUND, 0, 0) == 2.0
    assert planner.next_delay(UP, 0, 0) > 26.0  # nothing finished before 40 s


@pytest.mark.parametrize("reads_per_job", [2.0, 3.0, 5.0])
def test_learned_schedule_meets_its_read_budget_and_beats_fixed(reads_per_job):
    """Once learned, reads per job track reads_per_job and latency beats the fixed schedule."""
    policy = PollPolicy(
        initial=2.0, factor=1.5, max_interval=60.0, timeout=900.0, reads_per_job=reads_per_job
    )
    planner = PollPlanner(policy)
    for duration in _lognormal(256, 30.0, 0.5, seed=2):
        planner.observe(UP, duration)
    reads, latencies = _simulate(planner, _lognormal(2000, 30.0, 0.5, seed=3))
    mean_reads = sum(reads) / len(reads)
    # The advised reads past the fastest finish come on top of the learnt ones.
    assert mean_reads <= reads_per_job + 3.0
    fixed_reads, fixed_latencies = _simulate(
        PollPlanner(PollPolicy(adaptive=False, max_interval=60.0)),
        _lognormal(2000, 30.0, 0.5, seed=3),
    )
    p50 = sorted(latencies)[len(latencies) // 2]
    fixed_p50 = sorted(fixed_latencies)[len(fixed_latencies) // 2]
    assert mean_reads < sum(fixed_reads) / len(fixed_reads) or p50 < fixed_p50


def test_slower_than_anything_seen_falls_back_to_fixed():
    """A task outliving every learned duration reads on the growing fixed schedule."""
    planner = PollPlanner(POLICY)
    for _ in range(20):
        planner.observe(UP, 10.0)
    delay, expected = planner.next_read(UP, 50.0, 6)
    assert delay == pytest.approx(56.375 - 50.0)
    assert not expected


def test_delays_respect_max_interval():
    """Past the fastest finish seen, no read is further than max_interval away."""
    policy = PollPolicy(initial=1.0, factor=2.0, max_interval=5.0, timeout=900.0)
    planner = PollPlanner(policy)
    learnt = _lognormal(100, 100.0, 0.5)
    for duration in learnt:
        planner.observe(UP, duration)
    past = [min(learnt), 40, 90, 200]
    assert all(planner.next_delay(UP, e, k) <= 5.0 for k in range(10) for e in past)


def test_fit_recovers_a_lognormal():
    """The fit finds the median and spread of log-normal samples."""
    mu, sigma = fit_lognormal(_lognormal(2000, 20.0, 0.5, seed=4), [])
    assert math.exp(mu) == pytest.approx(20.0, rel=0.05)
    assert sigma == pytest.approx(0.5, rel=0.08)


def test_running_tasks_correct_the_early_fast_finishes():
    """The first finishes of a batch are its fast tasks; the running ones pull the fit up."""
    durations = sorted(_lognormal(40, 20.0, 0.5, seed=5))
    whole, _ = fit_lognormal(durations, [])
    finished, now = durations[:8], durations[8]
    naive, _ = fit_lognormal(finished, [])
    censored, _ = fit_lognormal(finished, [now] * 32)
    assert math.exp(naive) < 0.75 * math.exp(whole)
    assert abs(censored - whole) < abs(naive - whole) / 2  # much nearer the truth


def test_planner_counts_running_keys_and_forgets_failed_ones():
    """next_delay with a key records a running task; forget drops it; observe finishes it."""
    planner = PollPlanner(POLICY)
    planner.next_delay(UP, 0.0, 0, key="a")
    planner.next_delay(UP, 3.0, 1, key="a")
    planner.next_delay(UP, 3.0, 1, key="b")
    model = planner._models[UP]
    assert len(model) == 0
    assert sorted(r for d, r in model._cohort.values() if d is None) == [3.0, 3.0]
    planner.forget(UP, "b")
    planner.observe(UP, 5.0, key="a")
    assert len(model) == 1
    assert list(model._cohort.values()) == [(5.0, 0.0)]


def test_schedule_is_dense_in_the_bulk_and_sparse_in_the_tail():
    """Gaps shrink or hold through the bulk of finishes and grow geometrically beyond it."""
    moments = constant_hazard_schedule(math.log(20.0), 0.5, 3.0)
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert moments[0] == pytest.approx(20.0 * math.exp(0.5 * -0.2533), rel=0.01)  # 60 % left
    assert gaps[-1] > 5 * gaps[0]
    assert all(b > a for a, b in itertools.pairwise(moments))


def test_a_read_just_short_of_a_learnt_moment_stands_in_for_it():
    """A read made less than half a gap before a learnt moment skips that moment."""
    moments = [10.0, 14.0, 20.0]
    assert _next_moment(moments, 0.0) == 10.0
    assert _next_moment(moments, 4.0) == 10.0  # 6 s left of a 10 s gap
    assert _next_moment(moments, 6.0) == 14.0  # 4 s left: the read at 6 s stood in
    assert _next_moment(moments, 12.5) == 20.0
    assert _next_moment(moments, 20.0) is None


def test_dense_gap_bounds_the_reads_where_learnt_tasks_finish():
    """With room in the budget, reads are at most dense_gap apart where tasks finish."""
    planner = PollPlanner(POLICY)
    for duration in _lognormal(128, 60.0, 0.5, seed=11):
        planner.observe(UP, duration)
    start, end = planner._models[UP].dense_window()
    moments, at, count = [], 0.0, 0
    while at < 300.0:
        at += planner.next_read(UP, at, count, dense_gap=2.0)[0]
        count += 1
        moments.append(at)
    inside = [m for m in moments if start <= m <= end]
    assert inside[0] == pytest.approx(start)
    assert max(b - a for a, b in itertools.pairwise(inside)) <= 2.0 + 1e-9
    tail = [m for m in moments if m > end]
    assert tail[0] - end <= 2.0 + 1e-9  # a task slower than expected is soon read again
    assert max(b - a for a, b in itertools.pairwise(tail)) <= POLICY.max_interval + 1e-9
    assert len(tail) < (300.0 - end) / 2.0 / 2  # but its gaps grow: sparing at the slow end


def test_no_dense_gap_adds_no_dense_reads():
    """Without dense_gap (no room in the budget) far fewer reads are made for a 90 s task."""
    planner = PollPlanner(POLICY)
    for duration in _lognormal(128, 60.0, 0.5, seed=11):
        planner.observe(UP, duration)

    def reads(dense_gap):
        at, count = 0.0, 0
        while at < 90.0:
            at += planner.next_read(UP, at, count, dense_gap=dense_gap)[0]
            count += 1
        return count

    assert reads(None) * 3 < reads(2.0)

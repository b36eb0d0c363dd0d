"""The adaptive poll planner: fixed schedule until it has learned, then reads near finishes."""

import itertools
import math
import random

import pytest

from recraft_async import Operation, PollPolicy
from recraft_async._adaptive import (
    MIN_SAMPLES,
    DurationModel,
    PollPlanner,
    constant_hazard_schedule,
    fit_lognormal,
)

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
    assert [planner.next_delay(UP, 0, k) for k in range(3)] == [2.0, 3.0, 4.5]


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
    assert planner.next_delay(UP, 0, 0) == 15.0  # capped at max_interval


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
    assert mean_reads <= reads_per_job + 0.5
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
    assert planner.next_delay(UP, 50.0, 6) == POLICY.interval(6)


def test_delays_respect_max_interval():
    """No learned read is further than max_interval away."""
    policy = PollPolicy(initial=1.0, factor=2.0, max_interval=5.0, timeout=900.0)
    planner = PollPlanner(policy)
    for duration in _lognormal(100, 100.0, 0.5):
        planner.observe(UP, duration)
    assert all(planner.next_delay(UP, e, k) <= 5.0 for k in range(10) for e in (0, 40, 90, 200))


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


def test_a_read_capped_by_max_interval_stands_in_for_the_next_moment():
    """After a read capped just short of a scheduled moment, the next read skips that moment."""
    policy = PollPolicy(initial=1.0, factor=1.5, max_interval=25.0, timeout=900.0)
    planner = PollPlanner(policy)
    for duration in _lognormal(256, 30.0, 0.5, seed=6):
        planner.observe(UP, duration)
    moments = planner._models[UP].schedule(policy.reads_per_job)
    assert moments[0] > 25.0
    assert planner.next_delay(UP, 0.0, 0) == 25.0  # capped
    assert 25.0 + planner.next_delay(UP, 25.0, 1) == pytest.approx(moments[1])

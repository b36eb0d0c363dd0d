"""The adaptive poll planner: fixed schedule until it has learned, then reads near finishes."""

import math
import random

import pytest

from recraft_async import Operation, PollPolicy
from recraft_async._adaptive import MIN_SAMPLES, DurationModel, PollPlanner

UP = Operation.UPSCALE
POLICY = PollPolicy(initial=2.0, factor=1.5, max_interval=15.0, timeout=900.0)


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


def test_quantiles_interpolate():
    """The empirical quantile interpolates between sorted samples."""
    model = DurationModel()
    for value in (4.0, 1.0, 3.0, 2.0, 5.0):
        model.observe(value)
    assert model.quantile(0) == 1.0
    assert model.quantile(0.5) == 3.0
    assert model.quantile(1) == 5.0
    assert model.quantile(0.125) == 1.5


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
    assert model.quantile(1.0) == 1.0


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
    policy = PollPolicy(initial=2.0, factor=1.5, max_interval=60.0, timeout=900.0, reads_per_job=reads_per_job)
    planner = PollPlanner(policy)
    for duration in _lognormal(256, 30.0, 0.5, seed=2):
        planner.observe(UP, duration)
    reads, latencies = _simulate(planner, _lognormal(2000, 30.0, 0.5, seed=3))
    mean_reads = sum(reads) / len(reads)
    assert mean_reads <= reads_per_job + 0.5
    fixed_reads, fixed_latencies = _simulate(PollPlanner(PollPolicy(adaptive=False, max_interval=60.0)), _lognormal(2000, 30.0, 0.5, seed=3))
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

"""Processing-time distributions."""

from __future__ import annotations

import random
import statistics

import pytest

from recraft_async.testing import Duration


def test_fixed_and_uniform_samples():
    """Fixed always gives its value; uniform stays within its bounds."""
    rng = random.Random(1)
    assert Duration.fixed(2.5).sample(rng) == 2.5
    samples = [Duration.uniform(1, 3).sample(rng) for _ in range(200)]
    assert all(1 <= s <= 3 for s in samples)


def test_lognormal_has_the_asked_median():
    """The median of many lognormal samples is close to the configured median."""
    rng = random.Random(2)
    samples = [Duration.lognormal(median=20, sigma=0.5).sample(rng) for _ in range(4000)]
    assert statistics.median(samples) == pytest.approx(20, rel=0.05)
    assert max(samples) > 40  # a long tail
    assert Duration.lognormal(median=0, sigma=1).sample(rng) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed:2", Duration.fixed(2)),
        ("uniform:1,3", Duration.uniform(1, 3)),
        ("uniform:low=1,high=3", Duration.uniform(1, 3)),
        ("lognormal:median=20,sigma=0.5", Duration.lognormal(20, 0.5)),
        ("LOGNORMAL:sigma=0.5, median=20", Duration.lognormal(20, 0.5)),
    ],
)
def test_parse(text, expected):
    """The command line's spellings."""
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["gamma:1", "fixed:x", "lognormal:median=1", "uniform:3,1"])
def test_parse_refuses_nonsense(text):
    """Unknown kinds and bad numbers raise ValueError."""
    with pytest.raises(ValueError):
        Duration.parse(text)


def test_negative_values_are_refused():
    """Durations cannot be negative."""
    with pytest.raises(ValueError):
        Duration.fixed(-1)

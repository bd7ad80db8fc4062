"""Seed-paired confidence intervals: the arithmetic against independent computations."""

from __future__ import annotations

import math

import pytest

from crossearth.intervals import AHEAD, BEHIND, NOT_SEPARABLE, paired_interval


def test_textbook_interval_with_a_tabulated_t_quantile():
    # differences 1..5: mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776445 (any t table)
    a = [10.0, 20.0, 30.0, 40.0, 50.0]
    b = [11.0, 22.0, 33.0, 44.0, 55.0]
    iv = paired_interval(a, b)
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert iv.diff == pytest.approx(3.0)
    assert iv.low == pytest.approx(3.0 - half, abs=1e-5)
    assert iv.high == pytest.approx(3.0 + half, abs=1e-5)
    assert (iv.mean_a, iv.mean_b, iv.n) == (30.0, 33.0, 5)
    assert iv.verdict == AHEAD


def test_matches_scipys_paired_t_test_interval():
    from scipy import stats

    a = [51.2, 48.9, 55.0, 47.3, 50.1, 49.8, 52.6]
    b = [52.0, 48.1, 57.9, 47.0, 53.3, 49.9, 52.1]
    for confidence in (0.9, 0.95, 0.99):
        iv = paired_interval(a, b, confidence)
        ref = stats.ttest_rel(b, a).confidence_interval(confidence)
        assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), abs=1e-9)


@pytest.mark.parametrize(
    "b, verdict",
    [([2.0, 3.0, 2.5], AHEAD), ([-2.0, -3.0, -2.5], BEHIND), ([1.0, -1.0, 0.5], NOT_SEPARABLE)],
)
def test_verdict_reads_the_interval(b, verdict):
    assert paired_interval([0.0, 0.0, 0.0], b).verdict == verdict


def test_identical_differences_give_a_point_interval():
    iv = paired_interval([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert (iv.low, iv.diff, iv.high) == pytest.approx((1.0, 1.0, 1.0))
    assert iv.verdict == AHEAD


@pytest.mark.parametrize(
    "a, b, message",
    [([1.0], [2.0], "at least two"), ([1.0, 2.0], [1.0], "differ in number")],
)
def test_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_interval(a, b)

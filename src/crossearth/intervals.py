"""Paired comparisons over seeds: mean difference, its t confidence interval, and a verdict.

Two methods run with the same seeds (same data order, same initialisation of what they share) give
paired results; the differences d_i = b_i - a_i carry the method's effect with the seed's share
of the noise removed. The interval is Student's t over the differences (`scipy.stats.t`):
mean(d) ± t_{1-(1-c)/2, n-1} · sd(d) / √n, sd with n - 1 degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

AHEAD, BEHIND, NOT_SEPARABLE = "ahead", "behind", "not separable"


@dataclass(frozen=True)
class PairedInterval:
    """Mean of `b - a` over paired runs and its confidence interval (`low`, `high`)."""

    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def verdict(self) -> str:
        """'ahead' when the whole interval is above 0 (b beats a), 'behind' when it is below,
        else 'not separable'."""
        if self.low > 0:
            return AHEAD
        if self.high < 0:
            return BEHIND
        return NOT_SEPARABLE


def paired_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> PairedInterval:
    """The t interval of mean(b - a) over pairs (a_i, b_i).

    Raises:
        ValueError: different lengths, fewer than two pairs, or a confidence outside (0, 1).
    """
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired results differ in number: {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        raise ValueError("a confidence interval needs at least two pairs")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(1 - (1 - confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return PairedInterval(
        sum(map(float, a)) / n, sum(map(float, b)) / n, mean, mean - half, mean + half, n,
        confidence,
    )  # fmt: skip

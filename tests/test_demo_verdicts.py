"""The demo's per-domain comparison: intervals over seed-paired runs and one verdict line each."""

from __future__ import annotations

import pytest

import crossearth.demo as demo
from crossearth.intervals import paired_interval


def results(base: list[float], method: list[float]) -> dict:
    domains = (demo.SOURCE, *demo.TARGETS)
    return {
        "baseline": [dict.fromkeys(domains, b) for b in base],
        "crossearth": [dict.fromkeys(domains, m) for m in method],
    }


def test_intervals_pair_the_seeds():
    base, method = [40.0, 50.0, 45.0, 47.0, 43.0], [42.0, 51.5, 46.0, 49.5, 44.0]
    intervals = demo.domain_intervals(results(base, method))
    assert set(intervals) == {demo.SOURCE, *demo.TARGETS}
    iv = intervals[demo.SOURCE]
    assert iv == paired_interval(base, method)
    # the seeds' spread (40..50) is far wider than the interval of the paired differences
    assert iv.verdict == "ahead" and iv.high - iv.low < 3


@pytest.mark.parametrize(
    "method, words",
    [
        ([42.0, 52.0, 47.0], "CrossEarth ahead (+2.0 points, 95 % CI [+2.0, +2.0] over 3 seeds)"),
        ([38.0, 48.0, 43.0], "CrossEarth behind"),
        ([41.0, 49.0, 45.5], "not separable"),
    ],
)
def test_one_verdict_line_per_domain(method, words):
    intervals = demo.domain_intervals(results([40.0, 50.0, 45.0], method))
    line = demo.verdict_line("rural-aerial-rgb", intervals["rural-aerial-rgb"], 3)
    assert line.startswith("rural-aerial-rgb: ") and words in line and "\n" not in line


def test_one_seed_has_no_interval():
    assert demo.domain_intervals(results([40.0], [41.0])) == {}
    assert "no interval from 1 seed" in demo.verdict_line(demo.SOURCE, None, 1)

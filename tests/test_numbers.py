"""Numbers people read carry no float noise (`crossearth.numbers`)."""

from __future__ import annotations

import math

import pytest

from crossearth.numbers import area_ha, area_m2, format_share, round_sig, seconds


def test_round_sig_removes_float_noise():
    assert 0.1 + 0.2 != 0.3
    assert round_sig(0.1 + 0.2) == 0.3
    assert repr(round_sig(0.1 + 0.2)) == "0.3"
    assert round_sig(1234.5600000001, 10) == 1234.56
    assert round_sig(-0.000123456789, 3) == -0.000123
    assert round_sig(987654321.0, 2) == 990000000.0
    assert round_sig(0.0) == 0.0
    assert math.isnan(round_sig(float("nan")))
    assert round_sig(float("inf")) == float("inf")
    with pytest.raises(ValueError):
        round_sig(1.0, 0)


def test_areas_round_to_a_hundredth_of_a_square_metre():
    noisy = sum([0.09] * 100)  # 100 pixels of 0.09 m²: 8.999999999999991
    assert noisy != 9
    assert area_m2(noisy) == 9.0 and repr(area_m2(noisy)) == "9.0"
    assert area_ha(3 * 0.09) == 2.7e-05 and repr(area_ha(3 * 0.09)) == "2.7e-05"
    assert 3 * 0.09 / 1e4 != 2.7e-05  # 2.7000000000000002e-05 without the rounding
    assert area_m2(1234.5600000001) == 1234.56
    assert area_m2(0.004) == 0.0 and area_m2(0.006) == 0.01
    assert area_ha(0.01) == 1e-6  # the same resolution in both units
    assert area_m2(None) is None and area_ha(None) is None
    assert math.isnan(area_m2(float("nan")))


def test_seconds_and_shares():
    assert seconds(1.23456789) == 1.235
    assert format_share(0.1 + 0.2) == "30.0 %"
    assert format_share(1 / 3) == "33.3 %"
    assert format_share(0) == "0.0 %"

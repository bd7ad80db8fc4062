"""Rounding of the numbers people read: areas, shares, timings, without float noise.

Binary floating point turns sums such as 0.1 + 0.2 into 0.30000000000000004 and a class area of
90 000 pixels of 0.09 m² into 8100.000000000001. Every area, share or timing crossearth prints
or writes for people (console, Markdown, summary JSON, polygon attribute tables) goes through
these helpers, so the same quantity always shows the same number of digits:

| quantity | rounded to | why |
| --- | --- | --- |
| area in m² (`area_m2`) | 0.01 m² | far finer than any pixel; removes the noise, keeps every real digit |
| area in ha (`area_ha`) | 1e-6 ha (= 0.01 m²) | the same resolution as `area_m2` |
| polygon `area` in the CRS's units² | 10 significant digits | units may be tiny (square degrees) |
| fractions and rates | 6 significant digits | known no better |
| seconds | 0.001 s | |

Text for the console: `format_share` (percent, one decimal). (The map viewer formats areas in
its page, as m² below 0.01 ha, else ha.)
"""

from __future__ import annotations

import math

AREA_M2_DECIMALS = 2
AREA_HA_DECIMALS = 6
SIGNIFICANT = 6
MAP_AREA_SIGNIFICANT = 10


def round_sig(value: float, digits: int = SIGNIFICANT) -> float:
    """`value` rounded to `digits` significant digits (0, NaN and infinities unchanged).

    >>> round_sig(0.1 + 0.2)
    0.3
    >>> round_sig(123456789.0, 3)
    123000000.0
    """
    if digits < 1:
        raise ValueError(f"digits must be >= 1, got {digits}")
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def area_m2(value: float | None) -> float | None:
    """An area in m² rounded to 0.01 m² (None stays None; NaN stays NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if not math.isfinite(value) else round(value, AREA_M2_DECIMALS)


def area_ha(value_m2: float | None) -> float | None:
    """An area given in m², in hectares rounded to 1e-6 ha (0.01 m²); None stays None."""
    if value_m2 is None:
        return None
    value = float(value_m2) / 1e4
    return value if not math.isfinite(value) else round(value, AREA_HA_DECIMALS)


def seconds(value: float) -> float:
    """A duration in seconds rounded to milliseconds."""
    return round(float(value), 3)


def format_share(fraction: float) -> str:
    """A fraction (0..1) as a percentage with one decimal ("30.0 %")."""
    return f"{100 * float(fraction):.1f} %"

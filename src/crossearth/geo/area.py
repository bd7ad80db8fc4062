"""Ground area of pixels and per-class area tables, for projected and geographic rasters.

Rows are the unit: in a north-up geographic raster every pixel of a row has the same area, so a
class's area is the sum over rows of (its pixel count in that row) x (that row's pixel area).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from crossearth import numbers

if TYPE_CHECKING:
    import affine
    import rasterio.crs

WGS84_A = 6378137.0
WGS84_INVF = 298.257223563

_ELLIPSOID_RE = re.compile(
    r'(?:SPHEROID|ELLIPSOID)\[\s*"[^"]*"\s*,\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)'
)


def row_pixel_areas_m2(
    transform: affine.Affine,
    crs: rasterio.crs.CRS | None,
    height: int,
    *,
    width: int | None = None,
) -> np.ndarray | None:
    """Area in m² of one pixel of each row (float64, shape [height]); None without a CRS.

    Projected CRS: the transform's determinant in the CRS's linear unit, converted to metres
    (feet-based CRSs included) and divided by the projection's areal scale factor at the row's
    centre (PROJ's `get_factors`, at the middle column when `width` is given, else the first):
    a map square metre is not a ground square metre away from a projection's standard lines
    (Web Mercator tiles at 60° N: 4 map m² per ground m²; UTM at its central meridian: 0.9992). Geographic CRS, north-up: the exact area of the cell on the
    CRS's ellipsoid (read from its WKT, WGS84 if unreadable), latitudes clipped to ±90°.
    Geographic CRS, rotated or sheared: approximated with the local ellipsoidal scale at the
    latitude of the row's centre (at the middle column when `width` is given, else the first).
    A CRS that is neither projected nor geographic (engineering/local) gives None.
    """
    if crs is None:
        return None
    a, b, _, d, e, f = (float(v) for v in tuple(transform)[:6])
    det = abs(a * e - b * d)
    if crs.is_geographic:
        to_rad = float(crs.units_factor[1])
        semi_major, flattening = _ellipsoid(crs)
        if b == 0.0 and d == 0.0:
            return _north_up_geographic(a, e, f, height, to_rad, semi_major, flattening)
        col = (width / 2.0) if width else 0.5
        rows = np.arange(height, dtype=np.float64) + 0.5
        lat = np.clip((d * col + e * rows + f) * to_rad, -math.pi / 2, math.pi / 2)
        return det * to_rad**2 * _area_element(lat, semi_major, flattening)
    if crs.is_projected:
        metres = float(crs.linear_units_factor[1])
        col = (width / 2.0) if width else 0.5
        rows = np.arange(height, dtype=np.float64) + 0.5
        x = a * col + b * rows + transform.c
        y = d * col + e * rows + f
        return det * metres**2 / areal_scale(crs, x, y)
    return None


def areal_scale(crs: rasterio.crs.CRS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Map area per ground area (float64, shape of `x`) of a projected CRS at points (x, y) in
    its own coordinates, from PROJ's projection factors on the CRS's ellipsoid.

    Where PROJ gives no finite factor (outside the projection's domain) the scale is taken as 1.
    """
    import pyproj

    projected = pyproj.CRS.from_user_input(crs.to_wkt())
    to_lonlat = pyproj.Transformer.from_crs(projected, projected.geodetic_crs, always_xy=True)
    lon, lat = to_lonlat.transform(np.asarray(x, np.float64), np.asarray(y, np.float64))
    try:
        scale = np.asarray(
            pyproj.Proj(projected).get_factors(lon, lat, errcheck=False).areal_scale,
            dtype=np.float64,
        )
    except pyproj.exceptions.ProjError:
        scale = np.ones_like(np.asarray(x, np.float64))
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def row_class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Count each class id in each row of a [rows, W] label block -> int64 [rows, num_classes].

    Values >= num_classes (nodata, 255) are ignored. Sum blocks' results to cover a whole map.
    """
    labels = np.asarray(labels)
    rows = labels.shape[0]
    flat = labels.reshape(rows, -1).astype(np.int64)
    keep = (flat >= 0) & (flat < num_classes)
    row_index = np.broadcast_to(np.arange(rows, dtype=np.int64)[:, None], flat.shape)
    bins = row_index[keep] * num_classes + flat[keep]
    counts = np.bincount(bins, minlength=rows * num_classes)
    return counts.reshape(rows, num_classes)


def area_table(
    pixel_counts_by_row: np.ndarray,
    row_areas: np.ndarray | None,
    class_names: Sequence[str],
) -> list[dict[str, Any]]:
    """Per class: class_id, class_name, pixels, area_m2 and area_ha (None when areas unknown),
    rounded as `crossearth.numbers` says (0.01 m²: no float noise such as 8100.000000000001).

    `pixel_counts_by_row` is [height, C] (see `row_class_counts`), `row_areas` is
    `row_pixel_areas_m2`'s result for the same rows.
    """
    counts = np.asarray(pixel_counts_by_row, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != len(class_names):
        raise ValueError(
            f"pixel counts of shape {counts.shape} do not match {len(class_names)} class names"
        )
    if row_areas is not None and np.shape(row_areas) != (counts.shape[0],):
        raise ValueError(f"{np.shape(row_areas)} row areas for {counts.shape[0]} rows")
    pixels = counts.sum(axis=0)
    areas = None
    if row_areas is not None:
        areas = counts.astype(np.float64).T @ np.asarray(row_areas, dtype=np.float64)
    table = []
    for class_id, name in enumerate(class_names):
        area = None if areas is None else float(areas[class_id])
        table.append(
            {
                "class_id": class_id,
                "class_name": name,
                "pixels": int(pixels[class_id]),
                "area_m2": numbers.area_m2(area),
                "area_ha": numbers.area_ha(area),
            }
        )
    return table


def _ellipsoid(crs: rasterio.crs.CRS) -> tuple[float, float]:
    """(semi-major axis in metres, flattening) from the CRS's WKT1; WGS84 if unreadable.

    WKT1 gives SPHEROID["name", a (metres), inverse flattening], with 0 meaning a sphere.
    """
    try:
        match = _ELLIPSOID_RE.search(crs.to_wkt())
    except Exception:
        match = None
    if match:
        semi_major, invf = float(match.group(1)), float(match.group(2))
        if semi_major > 0 and (invf == 0 or invf > 1):
            return semi_major, (0.0 if invf == 0 else 1.0 / invf)
    return WGS84_A, 1.0 / WGS84_INVF


def _north_up_geographic(
    a: float, e: float, f: float, height: int, to_rad: float, semi_major: float, flattening: float
) -> np.ndarray:
    """Exact ellipsoidal area of each row's cell, from the closed-form zone area."""
    edges = f + e * np.arange(height + 1, dtype=np.float64)
    lat = np.clip(edges * to_rad, -math.pi / 2, math.pi / 2)
    zone = _zone_area_per_radian(lat, semi_major, flattening)
    return np.abs(np.diff(zone)) * abs(a * to_rad)


def _zone_area_per_radian(lat: np.ndarray, semi_major: float, flattening: float) -> np.ndarray:
    """Area from the equator to latitude `lat` (radians) per radian of longitude, in m².

    (b²/2)·[sinφ/(1−e²sin²φ) + ln((1+e sinφ)/(1−e sinφ))/(2e)]; a² sinφ on a sphere.
    """
    s = np.sin(lat)
    if flattening == 0.0:
        return semi_major**2 * s
    e2 = flattening * (2.0 - flattening)
    ecc = math.sqrt(e2)
    b2 = semi_major**2 * (1.0 - e2)
    return (b2 / 2.0) * (s / (1.0 - e2 * s * s) + np.arctanh(ecc * s) / ecc)


def _area_element(lat: np.ndarray, semi_major: float, flattening: float) -> np.ndarray:
    """M(φ)·N(φ)·cosφ: m² per square radian of latitude x longitude at latitude φ."""
    e2 = flattening * (2.0 - flattening)
    s = np.sin(lat)
    return semi_major**2 * (1.0 - e2) * np.cos(lat) / (1.0 - e2 * s * s) ** 2


def pixel_size_m(dataset: Any) -> float:
    """Ground pixel size (GSD) in metres at the scene's centre: the square root of the ground
    area of the centre pixel, on the CRS's ellipsoid (`row_pixel_areas_m2`), so geographic CRSs
    and projections with a scale factor far from 1 (Web Mercator tiles) give ground metres.

    Raises:
        InputError: the CRS is neither projected nor geographic (no ground size is known).
    """
    from affine import Affine

    from crossearth.errors import InputError
    from crossearth.geo.bands import dataset_label

    t = dataset.transform
    centre = dataset.height // 2
    shifted = t @ Affine.translation(0, centre)  # row `centre` becomes row 0
    areas = row_pixel_areas_m2(shifted, dataset.crs, 1, width=dataset.width)
    if areas is None:
        raise InputError(
            f"{dataset_label(dataset)}: its CRS has no ground unit; --match-gsd cannot be used"
        )
    return math.sqrt(float(areas[0]))

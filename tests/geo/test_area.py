"""Pixel areas for projected and geographic rasters, per-row class counts and area tables."""

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from crossearth.geo.area import area_table, row_class_counts, row_pixel_areas_m2

A = 6378137.0
F = 1 / 298.257223563
E2 = F * (2 - F)
US_SURVEY_FOOT_M = 1200 / 3937  # the legal definition


def cell_area_midpoint(lat0_deg, lat1_deg, dlon_deg, steps=200_000):
    """Integrate the WGS84 area element M(φ)·N(φ)·cosφ dφ dλ with a fine midpoint sum."""
    lo, hi = sorted((math.radians(lat0_deg), math.radians(lat1_deg)))
    h = (hi - lo) / steps
    phi = lo + h * (np.arange(steps) + 0.5)
    w = 1 - E2 * np.sin(phi) ** 2
    meridional = A * (1 - E2) / w**1.5
    normal = A / np.sqrt(w)
    return float(np.sum(meridional * normal * np.cos(phi)) * h * math.radians(dlon_deg))


def test_utm_pixels_on_the_central_meridian_are_map_area_over_k0_squared():
    """UTM's scale factor on its central meridian is k0 = 0.9996 in both directions."""
    areas = row_pixel_areas_m2(Affine(0.3, 0, 500000, 0, -0.3, 4e6), CRS.from_epsg(32633), 7)
    assert areas.dtype == np.float64
    assert areas.shape == (7,)
    np.testing.assert_allclose(areas, 0.09 / 0.9996**2, rtol=1e-6)


def test_rotated_projected_pixel_area():
    c, s = math.cos(0.4), math.sin(0.4)
    transform = Affine(2 * c, -3 * s, 500000, 2 * s, 3 * c, 0)  # 2 m x 3 m pixel, rotated
    areas = row_pixel_areas_m2(transform, CRS.from_epsg(32633), 3)
    np.testing.assert_allclose(areas, 6.0 / 0.9996**2, rtol=1e-6)


def test_foot_based_crs_is_converted_to_m2():
    areas = row_pixel_areas_m2(Affine(2, 0, 1e6, 0, -2, 2e5), CRS.from_epsg(2263), 4)
    # Long Island's Lambert zone: scale within 1e-4 of 1 there
    np.testing.assert_allclose(areas, 4 * US_SURVEY_FOOT_M**2, rtol=1e-4)


def test_no_crs_gives_none():
    assert row_pixel_areas_m2(Affine(1, 0, 0, 0, -1, 0), None, 5) is None


def test_one_degree_cell_at_equator_matches_integral():
    areas = row_pixel_areas_m2(Affine(1, 0, 10, 0, -1, 1), CRS.from_epsg(4326), 1)
    expected = cell_area_midpoint(0, 1, 1)
    assert areas[0] == pytest.approx(expected, rel=1e-9)
    assert areas[0] / 1e6 == pytest.approx(111.32 * 110.57, rel=1e-4)  # km: 1° of lon x 1° of lat


@pytest.mark.parametrize("top", [60.0, 89.5, -30.25])
def test_small_cells_match_integral_anywhere(top):
    transform = Affine(0.25, 0, 0, 0, -0.25, top)
    areas = row_pixel_areas_m2(transform, CRS.from_epsg(4326), 2)
    for row in range(2):
        expected = cell_area_midpoint(top - 0.25 * row, top - 0.25 * (row + 1), 0.25, 20_000)
        assert areas[row] == pytest.approx(expected, rel=1e-9)


def test_global_grid_sums_to_wgs84_surface():
    areas = row_pixel_areas_m2(Affine(1, 0, -180, 0, -1, 90), CRS.from_epsg(4326), 180)
    total_km2 = areas.sum() * 360 / 1e6
    assert total_km2 == pytest.approx(510_065_621.7, rel=1e-6)


def test_south_up_grid_gives_same_areas():
    north_up = row_pixel_areas_m2(Affine(1, 0, -180, 0, -1, 90), CRS.from_epsg(4326), 180)
    south_up = row_pixel_areas_m2(Affine(1, 0, -180, 0, 1, -90), CRS.from_epsg(4326), 180)
    np.testing.assert_allclose(south_up, north_up[::-1], rtol=1e-12)


def test_symmetric_rows_equal_and_polar_rows_smaller():
    areas = row_pixel_areas_m2(Affine(1, 0, -180, 0, -1, 90), CRS.from_epsg(4326), 180)
    np.testing.assert_allclose(areas, areas[::-1], rtol=1e-9)
    assert areas[0] < areas[45] < areas[89]
    assert areas[0] < 0.01 * areas[89]


def test_latitudes_beyond_pole_are_clipped():
    # a grid whose top row spans 91°N..89.5°N: only the part up to the pole has area
    areas = row_pixel_areas_m2(Affine(1, 0, 0, 0, -1.5, 91), CRS.from_epsg(4326), 2)
    assert areas[0] == pytest.approx(cell_area_midpoint(90, 89.5, 1), rel=1e-9)
    assert areas[1] == pytest.approx(cell_area_midpoint(89.5, 88, 1), rel=1e-9)


def test_sphere_crs_uses_its_own_radius():
    crs = CRS.from_string("+proj=longlat +a=6370997 +b=6370997 +no_defs")
    areas = row_pixel_areas_m2(Affine(1, 0, -180, 0, -1, 90), crs, 180)
    assert areas.sum() * 360 == pytest.approx(4 * math.pi * 6370997.0**2, rel=1e-12)
    # and the equatorial cell on a sphere: R² · Δλ · sin(1°)
    assert areas[90] == pytest.approx(6370997.0**2 * math.radians(1) * math.sin(math.radians(1)))


def test_rotated_geographic_small_pixel_close_to_north_up():
    size, lat = 1e-3, 45.0
    north_up = row_pixel_areas_m2(Affine(size, 0, 10, 0, -size, lat), CRS.from_epsg(4326), 1)
    c, s = math.cos(0.5), math.sin(0.5)
    rotated = Affine(size * c, size * s, 10, size * s, -size * c, lat - size * 0.5 * c)
    approx = row_pixel_areas_m2(rotated, CRS.from_epsg(4326), 1)
    assert approx[0] == pytest.approx(north_up[0], rel=1e-4)
    assert approx[0] != north_up[0]  # the approximation, not the exact formula


def test_row_class_counts_matches_loop():
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 2, 255], size=(6, 9)).astype(np.uint8)
    counts = row_class_counts(labels, 3)
    assert counts.shape == (6, 3)
    for r in range(6):
        for k in range(3):
            assert counts[r, k] == int(np.sum(labels[r] == k))


def test_area_table_with_row_areas():
    counts = np.array([[2, 0, 1], [0, 3, 1]])
    table = area_table(counts, np.array([10.0, 100.0]), ["water", "forest", "urban"])
    assert [row["class_name"] for row in table] == ["water", "forest", "urban"]
    assert [row["class_id"] for row in table] == [0, 1, 2]
    assert [row["pixels"] for row in table] == [2, 3, 2]
    assert [row["area_m2"] for row in table] == pytest.approx([20.0, 300.0, 110.0])
    assert [row["area_ha"] for row in table] == pytest.approx([0.002, 0.03, 0.011])


def test_area_table_without_areas():
    table = area_table(np.array([[1, 4]]), None, ["a", "b"])
    assert table[1]["pixels"] == 4
    assert table[1]["area_m2"] is None
    assert table[1]["area_ha"] is None


def test_area_table_rejects_mismatched_names():
    with pytest.raises(ValueError, match="class names"):
        area_table(np.zeros((2, 3), dtype=int), None, ["a", "b"])

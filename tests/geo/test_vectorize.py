"""Polygonizing a class-map GeoTIFF into GeoPackage / GeoJSON."""

import sys

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS

from crossearth.errors import InputError
from crossearth.geo.vectorize import vectorize_class_map

NAMES = ["water", "forest", "urban"]
PIXEL = 10.0  # metres
TRANSFORM = Affine(PIXEL, 0, 400000, 0, -PIXEL, 5000000)


def make_labels():
    """40 x 60 map: 8 four-connected regions, a nodata strip at rows 20-29."""
    labels = np.full((40, 60), 255, dtype=np.uint8)
    labels[0:10] = 0  # 1 region
    labels[10:20, :30] = 1  # 1 region
    labels[10:20, 30:] = 2  # 1 region
    labels[30:40, :20] = 1  # 3 regions: 1 | 2 | 1
    labels[30:40, 20:40] = 2
    labels[30:40, 40:] = 1
    labels[22, 5] = 1  # two pixels touching only at a corner: 2 regions
    labels[23, 6] = 1
    return labels


def write_map(path, labels, crs="EPSG:32633"):
    profile = {
        "driver": "GTiff",
        "height": labels.shape[0],
        "width": labels.shape[1],
        "count": 1,
        "dtype": "uint8",
        "nodata": 255,
        "transform": TRANSFORM,
    }
    if crs is not None:
        profile["crs"] = CRS.from_user_input(crs)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    return path


@pytest.fixture
def class_map(tmp_path):
    return write_map(tmp_path / "classes.tif", make_labels())


def read_back(path):
    meta, _, wkb, fields = pyogrio.raw.read(path)
    columns = dict(zip(meta["fields"], fields, strict=True))
    return meta, shapely.from_wkb(wkb), columns


def pixel_box(row, col):
    x0, y0 = TRANSFORM @ (col, row)
    x1, y1 = TRANSFORM @ (col + 1, row + 1)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def assert_on_own_class(geoms, ids, labels):
    """Every polygon lies on pixels of its own class (checked at a point inside it)."""
    for geom, k in zip(geoms, ids, strict=True):
        x, y = shapely.get_coordinates(shapely.point_on_surface(geom))[0]
        col, row = ~TRANSFORM @ (x, y)
        assert labels[int(row), int(col)] == k


def test_gpkg_polygons_classes_and_areas(class_map, tmp_path):
    labels = make_labels()
    out = tmp_path / "out.gpkg"
    count = vectorize_class_map(class_map, out, NAMES)
    assert count == 8

    info = pyogrio.read_info(out)
    assert info["features"] == 8
    assert info["driver"] == "GPKG"
    assert CRS.from_user_input(info["crs"]) == CRS.from_epsg(32633)
    assert info["layer_name"] == "out"
    assert set(info["fields"]) == {"class_id", "class_name", "area", "area_m2"}

    _, geoms, cols = read_back(out)
    ids = cols["class_id"].astype(int)
    assert sorted(np.bincount(ids).tolist()) == [1, 2, 5]
    assert np.bincount(ids).tolist() == [1, 5, 2]
    assert [NAMES[i] for i in ids] == list(cols["class_name"])
    np.testing.assert_allclose(cols["area"], shapely.area(geoms))
    for k in range(3):
        expected = np.sum(labels == k) * PIXEL**2
        assert cols["area"][ids == k].sum() == pytest.approx(expected)

    assert_on_own_class(geoms, ids, labels)


def test_no_polygon_covers_nodata(class_map, tmp_path):
    labels = make_labels()
    out = tmp_path / "out.gpkg"
    vectorize_class_map(class_map, out, NAMES)
    _, geoms, _ = read_back(out)
    nodata = shapely.union_all([pixel_box(r, c) for r, c in np.argwhere(labels == 255)])
    assert shapely.area(shapely.intersection(geoms, nodata)).max() == pytest.approx(0.0)
    covered = shapely.union_all(geoms)
    assert covered.area == pytest.approx(np.sum(labels != 255) * PIXEL**2)


def test_geojson_output(class_map, tmp_path):
    out = tmp_path / "out.geojson"
    assert vectorize_class_map(class_map, out, NAMES) == 8
    info = pyogrio.read_info(out)
    assert info["driver"] == "GeoJSON"
    assert CRS.from_user_input(info["crs"]) == CRS.from_epsg(32633)
    _, geoms, cols = read_back(out)
    assert len(geoms) == 8
    assert set(cols["class_name"]) == set(NAMES)


def test_block_rows_splits_regions_but_keeps_areas(class_map, tmp_path):
    labels = make_labels()
    out = tmp_path / "blocks.gpkg"
    # blocks of 5 rows: each 10-row region becomes two polygons; the corner pixels stay apart
    assert vectorize_class_map(class_map, out, NAMES, block_rows=5) == 14
    _, geoms, cols = read_back(out)
    ids = cols["class_id"].astype(int)
    assert_on_own_class(geoms, ids, labels)
    vectorize_class_map(class_map, tmp_path / "whole.gpkg", NAMES)
    _, whole_geoms, whole_cols = read_back(tmp_path / "whole.gpkg")
    whole_ids = whole_cols["class_id"].astype(int)
    for k in range(3):
        assert cols["area"][ids == k].sum() == pytest.approx(np.sum(labels == k) * PIXEL**2)
        blocks = shapely.union_all(geoms[ids == k])
        whole = shapely.union_all(whole_geoms[whole_ids == k])
        assert shapely.symmetric_difference(blocks, whole).area == pytest.approx(0.0)


def test_other_nodata_value(tmp_path):
    labels = np.zeros((4, 4), dtype=np.uint8)
    labels[:, 2:] = 1
    path = write_map(tmp_path / "m.tif", labels)
    out = tmp_path / "m.gpkg"
    # class 0 declared nodata: only the class-1 half is vectorized
    assert vectorize_class_map(path, out, NAMES, nodata=0) == 1
    _, _, cols = read_back(out)
    assert cols["class_id"].tolist() == [1]


def test_all_nodata_writes_empty_layer(tmp_path):
    path = write_map(tmp_path / "empty.tif", np.full((5, 5), 255, dtype=np.uint8))
    out = tmp_path / "empty.gpkg"
    assert vectorize_class_map(path, out, NAMES) == 0
    assert pyogrio.read_info(out)["features"] == 0


def test_no_transform_and_no_crs_is_input_error(tmp_path):
    path = tmp_path / "pixels.tif"
    labels = make_labels()
    with rasterio.open(
        path, "w", driver="GTiff", height=labels.shape[0], width=labels.shape[1], count=1,
        dtype="uint8", nodata=255,
    ) as dst:  # fmt: skip
        dst.write(labels, 1)
    out = tmp_path / "out.gpkg"
    with pytest.raises(InputError, match="georeferenced"):
        vectorize_class_map(path, out, NAMES)
    assert not out.exists()


def test_transform_without_crs_gives_polygons_in_map_units(tmp_path):
    """A world-file class map (transform, no CRS): polygons where the transform puts them."""
    path = write_map(tmp_path / "nocrs.tif", make_labels(), crs=None)
    out = tmp_path / "out.gpkg"
    assert vectorize_class_map(path, out, NAMES) > 0
    info = pyogrio.read_info(out)
    assert info["crs"] is None
    xmin, ymin, xmax, ymax = info["total_bounds"]
    with rasterio.open(path) as src:
        bounds = src.bounds
    assert (xmin, ymin, xmax, ymax) == pytest.approx(
        (bounds.left, bounds.bottom, bounds.right, bounds.top)
    )


def test_unknown_extension_is_input_error(class_map, tmp_path):
    with pytest.raises(InputError, match=r"\.gpkg or \.geojson"):
        vectorize_class_map(class_map, tmp_path / "out.shp", NAMES)


def test_missing_class_map_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        vectorize_class_map(tmp_path / "nope.tif", tmp_path / "out.gpkg", NAMES)


def test_too_few_class_names_is_input_error(class_map, tmp_path):
    with pytest.raises(InputError, match="class id 2"):
        vectorize_class_map(class_map, tmp_path / "out.gpkg", NAMES[:2])


def test_missing_libraries_is_input_error(class_map, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyogrio", None)
    monkeypatch.setitem(sys.modules, "pyogrio.raw", None)
    with pytest.raises(InputError, match=r"crossearth\[vector\]"):
        vectorize_class_map(class_map, tmp_path / "out.gpkg", NAMES)


def test_failed_write_leaves_no_file(class_map, tmp_path, monkeypatch):
    real_write = pyogrio.raw.write

    def write_then_fail(path, *args, **kwargs):
        real_write(path, *args, **kwargs)  # a complete file exists under the temp name
        raise OSError("disk full")

    monkeypatch.setattr(pyogrio.raw, "write", write_then_fail)
    out = tmp_path / "out.gpkg"
    with pytest.raises(OSError, match="disk full"):
        vectorize_class_map(class_map, out, NAMES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.tif"]


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:4326"])
def test_polygon_ground_areas_in_square_metres(tmp_path, crs):
    """`area_m2` is ground area in every CRS: the per-class sums equal the ellipsoidal pixel
    areas of `crossearth.geo.area` (an independent formula: scale factors for UTM, the exact
    ellipsoidal cell area for EPSG:4326) over the same pixels."""
    from crossearth.geo.area import row_pixel_areas_m2

    labels = make_labels()
    transform = TRANSFORM if crs != "EPSG:4326" else Affine(0.001, 0, 14.0, 0, -0.001, 60.0)
    path = tmp_path / "classes.tif"
    profile = {"driver": "GTiff", "height": 40, "width": 60, "count": 1, "dtype": "uint8",
               "nodata": 255, "transform": transform, "crs": CRS.from_user_input(crs)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    out = tmp_path / "out.gpkg"
    vectorize_class_map(path, out, NAMES)
    _, _, cols = read_back(out)
    ids = cols["class_id"].astype(int)
    rows = row_pixel_areas_m2(transform, CRS.from_user_input(crs), 40, width=60)
    for k in range(3):
        expected = (rows[:, None] * (labels == k)).sum()
        assert cols["area_m2"][ids == k].sum() == pytest.approx(expected, rel=1e-3)
    if crs == "EPSG:4326":  # square degrees would be about 1e-4 here
        assert cols["area_m2"].sum() > 1e6

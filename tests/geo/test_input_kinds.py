"""Inputs as users have them (issue 12): one test per kind, asserting the right value.

Georeferencing other than CRS + transform (GCPs, RPCs, world files), ground areas in conformal
projections (Web Mercator tiles), band metadata (B,G,R 3-band files, RGBN + alpha), thin and
tiny images. Expected values come from how the files were built or from independent peers
(pyproj's geodesic polygon area, `model.predict` on the same pixels), never from the code under
test.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pyogrio
import pytest
import rasterio
from affine import Affine
from PIL import Image
from pyproj import Geod, Transformer
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.rpc import RPC

from crossearth.geo.area import pixel_size_m
from crossearth.predict import PredictOptions, predict_raster

NAMES = ("water", "road", "tree", "roof", "grass")
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48))
QUICK = {"preview": False, "overlay": False}
CI = ColorInterp


@pytest.fixture(scope="module")
def model(varied_model):
    named = copy.deepcopy(varied_model)
    named.config = dataclasses.replace(named.config, class_names=NAMES, palette=PALETTE)
    return named


def blocky(bands: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """[bands, h, w] uint8 values 1..255, constant over 16 x 16 blocks (labels vary)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 256, (bands, h // 16 + 1, w // 16 + 1))
    return np.kron(base, np.ones((1, 16, 16), np.int64))[:, :h, :w].astype(np.uint8)


def expected_labels(model, bands_hw3: np.ndarray) -> np.ndarray:
    return model.predict(np.ascontiguousarray(bands_hw3)).labels


def geodesic_area_m2(crs, transform: Affine, height: int, width: int, steps: int = 64) -> float:
    """Ellipsoidal area of the raster footprint: its densified outline in lon/lat, through
    pyproj's Geod (an independent peer of the code under test)."""
    t = np.linspace(0.0, 1.0, steps, endpoint=False)
    cols = np.concatenate([t * width, np.full(steps, width), (1 - t) * width, np.zeros(steps)])
    rows = np.concatenate([np.zeros(steps), t * height, np.full(steps, height), (1 - t) * height])
    xs, ys = transform * (cols, rows)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    area, _ = Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
    return abs(area)


def total_area(summary: dict) -> float:
    return sum(row["area_m2"] for row in summary["classes"])


# ------------------------------------------------------------------ georeferencing kinds


def test_gcps_are_carried_to_the_class_map_and_polygons(model, tmp_path, geotiff):
    h, w = 64, 96
    utm = CRS.from_epsg(32632)
    # a 0.5 m grid, slightly rotated: GCPs at the corners and the centre
    truth = Affine(0.5, 0.05, 500_000.0, 0.05, -0.5, 5_000_000.0)
    points = [
        GroundControlPoint(row=r, col=c, x=(truth * (c, r))[0], y=(truth * (c, r))[1])
        for r, c in ((0, 0), (0, w), (h, 0), (h, w), (h / 2, w / 2))
    ]
    src = geotiff(tmp_path / "gcp.tif", blocky(3, h, w), gcps=(points, utm))
    out = tmp_path / "out"
    out.mkdir()
    summary = predict_raster(model, src, out, PredictOptions(vector="gpkg", **QUICK))
    assert summary["georeferencing"] == "gcps"
    with rasterio.open(out / "gcp_classes.tif") as result:
        got, got_crs = result.gcps
    assert got_crs == utm
    assert [(p.row, p.col, p.x, p.y) for p in got] == [(p.row, p.col, p.x, p.y) for p in points]
    # areas and polygons on the GCPs' grid: the valid area is h x w pixels of |det| m²
    assert CRS.from_user_input(summary["crs"]) == utm
    map_area = h * w * abs(truth.determinant)
    assert total_area(summary) == pytest.approx(map_area / 0.9996**2, rel=1e-3)
    info = pyogrio.read_info(out / "gcp.gpkg")
    assert CRS.from_user_input(info["crs"]) == utm
    xmin, _ymin, _xmax, ymax = info["total_bounds"]
    corners = [truth * (c, r) for r, c in ((0, 0), (0, w), (h, 0), (h, w))]
    assert xmin == pytest.approx(min(x for x, _ in corners), abs=0.01)
    assert ymax == pytest.approx(max(y for _, y in corners), abs=0.01)


def _linear_rpc(lat0: float, lon0: float, deg: float, h: int, w: int) -> RPC:
    """RPCs of a north-up image of `deg`-degree pixels whose centre is (lat0, lon0):
    line = line_off - P * line_scale, sample = samp_off + L * samp_scale (P, L normalised)."""
    num_p = [0.0] * 20
    num_p[2] = -1.0  # term 3 of RPC00B is P (latitude)
    num_l = [0.0] * 20
    num_l[1] = 1.0  # term 2 is L (longitude)
    den = [1.0] + [0.0] * 19
    return RPC(
        height_off=0.0, height_scale=100.0, lat_off=lat0, lat_scale=deg * h / 2,
        line_den_coeff=den, line_num_coeff=num_p, line_off=h / 2, line_scale=h / 2,
        long_off=lon0, long_scale=deg * w / 2, samp_den_coeff=den, samp_num_coeff=num_l,
        samp_off=w / 2, samp_scale=w / 2,
    )  # fmt: skip


def test_rpcs_are_carried_over_and_give_ground_areas(model, tmp_path, geotiff):
    h, w, deg = 64, 80, 2e-5
    rpcs = _linear_rpc(48.0, 11.0, deg, h, w)
    src = geotiff(tmp_path / "rpc.tif", blocky(3, h, w, seed=3), rpcs=rpcs)
    out = tmp_path / "out"
    out.mkdir()
    summary = predict_raster(model, src, out, PredictOptions(vector="geojson", **QUICK))
    assert summary["georeferencing"] == "rpcs"
    with rasterio.open(out / "rpc_classes.tif") as result:
        got = result.rpcs
    assert got is not None
    for name in ("lat_off", "long_off", "lat_scale", "long_scale", "line_off", "samp_scale"):
        assert getattr(got, name) == pytest.approx(getattr(rpcs, name))
    assert list(got.line_num_coeff) == pytest.approx(list(rpcs.line_num_coeff))
    # footprint: the lat/lon box the RPCs describe; ground area by pyproj's geodesic
    west, north = 11.0 - deg * w / 2, 48.0 + deg * h / 2
    box = Affine(deg, 0, west, 0, -deg, north)
    expected = geodesic_area_m2(CRS.from_epsg(4326), box, h, w)
    assert total_area(summary) == pytest.approx(expected, rel=0.01)
    assert (out / "rpc.geojson").is_file()


@pytest.mark.parametrize("kind", ["png", "jpg"])
def test_world_file_position_is_kept(model, tmp_path, kind):
    h, w = 48, 64
    image = tmp_path / f"photo.{kind}"
    Image.fromarray(np.moveaxis(blocky(3, h, w, seed=5), 0, -1)).save(image)
    # world file: 0.25 map units per pixel, top-left pixel centre at (1000.125, 2999.875)
    world = image.with_suffix(".pgw" if kind == "png" else ".jgw")
    world.write_text("0.25\n0\n0\n-0.25\n1000.125\n2999.875\n")
    out = tmp_path / "out"
    out.mkdir()
    summary = predict_raster(model, image, out, PredictOptions(vector="gpkg", **QUICK))
    assert summary["georeferencing"] == "transform"
    assert summary["class_map"].endswith("photo_classes.tif")  # georeferenced: not a bare PNG
    with rasterio.open(out / "photo_classes.tif") as result:
        assert result.crs is None
        assert tuple(result.transform)[:6] == (0.25, 0.0, 1000.0, 0.0, -0.25, 3000.0)
    assert all(row["area_m2"] is None for row in summary["classes"])  # no CRS: no ground unit
    xmin, ymin, xmax, ymax = pyogrio.read_info(out / "photo.gpkg")["total_bounds"]
    assert (xmin, ymin, xmax, ymax) == pytest.approx((1000.0, 3000.0 - h / 4, 1000 + w / 4, 3000))


def test_world_file_is_written_beside_a_png_class_map(model, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.moveaxis(blocky(3, 40, 40, seed=6), 0, -1)).save(image)
    image.with_suffix(".pgw").write_text("2\n0\n0\n-2\n101\n199\n")
    predict_raster(model, image, tmp_path / "map.png", PredictOptions(**QUICK))
    with rasterio.open(tmp_path / "map.png") as result:  # GDAL reads map.pgw
        assert tuple(result.transform)[:6] == (2.0, 0.0, 100.0, 0.0, -2.0, 200.0)


# ------------------------------------------------------------------ ground quantities


@pytest.mark.parametrize(
    ("epsg", "x0", "y0", "pixel"),
    [
        (3857, 1_113_194.9, 8_399_737.9, 38.2),  # a zoom-12 Web Mercator tile near 60° N
        (3857, -8_238_310.0, 4_970_072.0, 2.39),  # zoom-16, New York (41° N)
        (32633, 200_000.0, 6_650_000.0, 10.0),  # UTM 33N, 300 km west of its meridian
        (4326, 9.5, 45.2, 1e-4),  # geographic
    ],
)
def test_total_ground_area_matches_the_ellipsoid(model, tmp_path, geotiff, epsg, x0, y0, pixel):
    h, w = 48, 64
    crs = CRS.from_epsg(epsg)
    transform = Affine(pixel, 0, x0, 0, -pixel, y0)
    src = geotiff(tmp_path / "tile.tif", blocky(3, h, w, seed=7), crs=crs, transform=transform)
    summary = predict_raster(model, src, tmp_path, PredictOptions(**QUICK))
    expected = geodesic_area_m2(crs, transform, h, w)
    assert total_area(summary) == pytest.approx(expected, rel=0.01)
    assert summary["classes"][0]["area_ha"] == pytest.approx(summary["classes"][0]["area_m2"] / 1e4)


def test_match_gsd_pixel_size_is_a_ground_size(tmp_path, geotiff):
    """A Web Mercator pixel of 38.2 map metres at 60° N is 19.1 ground metres (sec 60° = 2)."""
    crs = CRS.from_epsg(3857)
    y60 = 8_399_737.9  # about 60° N
    transform = Affine(38.2, 0, 1_113_194.9, 0, -38.2, y60 + 38.2 * 8)
    src = geotiff(tmp_path / "wm.tif", blocky(3, 16, 16), crs=crs, transform=transform)
    _lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(0, y60)
    assert lat == pytest.approx(60.0, abs=0.01)
    with rasterio.open(src) as ds:
        assert pixel_size_m(ds) == pytest.approx(19.1, rel=0.01)


# ------------------------------------------------------------------ bands and masks


def test_three_band_bgr_file_feeds_r_g_b(model, tmp_path, geotiff):
    rgb = blocky(3, 64, 64, seed=8)
    bgr = rgb[::-1].copy()
    src = geotiff(
        tmp_path / "bgr.tif", bgr, crs=CRS.from_epsg(32632),
        transform=Affine(0.3, 0, 500_000, 0, -0.3, 5_000_000),
        colorinterp=[CI.blue, CI.green, CI.red], descriptions=["Blue", "Green", "Red"],
    )  # fmt: skip
    summary = predict_raster(model, src, tmp_path, PredictOptions(**QUICK))
    assert summary["bands"] == [3, 2, 1]
    with rasterio.open(tmp_path / "bgr_classes.tif") as result:
        labels = result.read(1)
    np.testing.assert_array_equal(labels, expected_labels(model, np.moveaxis(rgb, 0, -1)))


def test_alpha_of_a_five_band_file_is_a_mask(model, tmp_path, geotiff):
    h, w = 64, 80
    data = np.concatenate([blocky(4, h, w, seed=9), np.full((1, h, w), 255, np.uint8)])
    data[4, :, :24] = 0  # a transparent collar on the left
    src = geotiff(
        tmp_path / "rgbna.tif", data, crs=CRS.from_epsg(32632),
        transform=Affine(0.3, 0, 500_000, 0, -0.3, 5_000_000),
        colorinterp=[CI.red, CI.green, CI.blue, CI.undefined, CI.alpha],
    )  # fmt: skip
    summary = predict_raster(model, src, tmp_path, PredictOptions(**QUICK))
    assert summary["bands"] == [1, 2, 3]
    assert summary["mask_bands"] == [5]
    assert summary["nodata_pixels"] == h * 24
    with rasterio.open(tmp_path / "rgbna_classes.tif") as result:
        labels = result.read(1)
    assert (labels[:, :24] == 255).all()
    assert (labels[:, 24:] < len(NAMES)).all()


# ------------------------------------------------------------------ small and thin inputs


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (300, 1), (16, 16), (5, 40)])
def test_model_predict_gives_a_map_for_tiny_images(model, shape):
    image = np.moveaxis(blocky(3, *shape, seed=10), 0, -1)
    prediction = model.predict(np.ascontiguousarray(image))
    assert prediction.labels.shape == shape
    assert prediction.scores.shape == (len(NAMES), *shape)
    assert (prediction.labels < len(NAMES)).all()


@pytest.mark.parametrize("shape", [(1, 300), (16, 16), (3, 2)])
def test_predict_raster_on_thin_files_equals_model_predict(model, tmp_path, geotiff, shape):
    data = blocky(3, *shape, seed=11)
    src = geotiff(
        tmp_path / "strip.tif", data, crs=CRS.from_epsg(32632),
        transform=Affine(0.3, 0, 500_000, 0, -0.3, 5_000_000),
    )  # fmt: skip
    summary = predict_raster(model, src, tmp_path, PredictOptions(**QUICK))
    assert summary["size"] == list(shape)
    with rasterio.open(tmp_path / "strip_classes.tif") as result:
        labels = result.read(1)
    np.testing.assert_array_equal(labels, expected_labels(model, np.moveaxis(data, 0, -1)))
    assert json.loads((tmp_path / "strip_summary.json").read_text())["windows"] >= 1

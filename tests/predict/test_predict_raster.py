"""`predict_raster` end to end on generated rasters: georeferencing, masks, labels, companions.

Every expectation here comes from how the test files were built (which pixels are nodata, which
bands hold what, the pixel size) or from `model.predict` on the same pixels, never from the code
under test.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
from geotiff import write_geotiff
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

import crossearth
from crossearth.errors import InputError
from crossearth.geo.scaling import Scaling
from crossearth.predict import PredictOptions, predict_raster

NAMES = ("water", "road", "tree", "roof", "grass")
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48))
UTM = CRS.from_epsg(32632)
WGS84 = CRS.from_epsg(4326)
UTM_ORIGIN = (500_000.0, 5_800_000.0)
WGS84_ORIGIN = (9.5, 45.2)  # lon, lat of the top-left corner
DEG = 1e-5  # pixel size of the EPSG:4326 files, degrees (about 1.1 m x 0.8 m here)


@pytest.fixture(scope="module")
def model(varied_model, tmp_path_factory):
    """`varied_model` with our class names and palette, through a .safetensors file (fp32)."""
    named = copy.deepcopy(varied_model)
    named.config = dataclasses.replace(named.config, class_names=NAMES, palette=PALETTE)
    path = tmp_path_factory.mktemp("model") / "varied.safetensors"
    crossearth.save_model(named, path)
    loaded = crossearth.load_model(path, precision="fp32")
    assert loaded.config.class_names == NAMES
    assert [tuple(c) for c in loaded.config.palette] == list(PALETTE)
    return loaded


# ---------------------------------------------------------------------------------------------
# generated inputs


def blocky(shape: tuple[int, int, int], low: int, high: int, seed: int, dtype) -> np.ndarray:
    """[bands, h, w] values in [low, high], constant over 16 x 16 blocks (so labels vary)."""
    bands, h, w = shape
    rng = np.random.default_rng(seed)
    base = rng.integers(low, high + 1, (bands, h // 16 + 1, w // 16 + 1))
    return np.ascontiguousarray(np.kron(base, np.ones((1, 16, 16), np.int64))[:, :h, :w]).astype(
        dtype
    )


def utm_transform(pixel: float = 0.3):
    return from_origin(*UTM_ORIGIN, pixel, pixel)


def wgs84_transform():
    return from_origin(*WGS84_ORIGIN, DEG, DEG)


def write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs=None,
    transform=None,
    nodata=None,
    descriptions=None,
    internal_mask: np.ndarray | None = None,
    alpha: bool = False,
) -> Path:
    return write_geotiff(
        path, data, crs=crs, transform=transform if crs is not None else None, nodata=nodata,
        descriptions=descriptions, internal_mask=internal_mask, alpha=alpha,
        photometric="RGB" if alpha else None,
    )  # fmt: skip


@dataclass
class Case:
    path: Path
    valid: np.ndarray  # [h, w] bool: the pixels the file marks as data
    crs: CRS
    expected_bands: tuple[int, int, int]
    options: PredictOptions = field(default_factory=PredictOptions)


def case_utm_u8_rgb_nodata(tmp: Path) -> Case:
    """uint8 RGB, nodata value 0 on a top and left border; 200 x 290 (not a tile multiple)."""
    data = blocky((3, 200, 290), 1, 255, 1, np.uint8)
    valid = np.ones((200, 290), bool)
    valid[:17] = valid[:, :23] = False
    data[:, ~valid] = 0
    path = write_tif(tmp / "rgb.tif", data, crs=UTM, transform=utm_transform(), nodata=0)
    return Case(path, valid, UTM, (1, 2, 3))


def case_wgs84_u16_gray_tiny(tmp: Path) -> Case:
    """1-band uint16 in EPSG:4326, 40 x 70 (smaller than a tile, not a multiple of 16)."""
    data = blocky((1, 40, 70), 200, 3000, 2, np.uint16)
    valid = np.ones((40, 70), bool)
    valid[:10, :15] = False
    data[:, ~valid] = 0
    path = write_tif(tmp / "gray.tif", data, crs=WGS84, transform=wgs84_transform(), nodata=0)
    return Case(path, valid, WGS84, (1, 1, 1), PredictOptions(bands=(1, 1, 1)))


def case_utm_u8_rgba_alpha(tmp: Path) -> Case:
    """RGBA: the alpha band (0 = transparent) is the mask and is not used as data."""
    data = blocky((4, 150, 200), 1, 255, 3, np.uint8)
    valid = np.ones((150, 200), bool)
    valid[:, 160:] = False
    valid[60:90, 40:75] = False
    data[3] = np.where(valid, 255, 0)
    path = write_tif(tmp / "rgba.tif", data, crs=UTM, transform=utm_transform(), alpha=True)
    with rasterio.open(path) as ds:  # the fixture really is RGBA
        assert ds.colorinterp[3] == ColorInterp.alpha
    return Case(path, valid, UTM, (1, 2, 3))


def case_utm_u8_internal_mask(tmp: Path) -> Case:
    """RGB with a GDAL internal mask band and no nodata value: masked pixels hold real values."""
    data = blocky((3, 130, 150), 0, 255, 4, np.uint8)
    valid = np.ones((130, 150), bool)
    valid[:, :30] = False
    valid[100:, 100:] = False
    path = write_tif(
        tmp / "masked.tif", data, crs=UTM, transform=utm_transform(), internal_mask=valid
    )
    assert not (tmp / "masked.tif.msk").exists()  # internal, not a sidecar
    return Case(path, valid, UTM, (1, 2, 3))


def case_wgs84_u16_4band_described(tmp: Path) -> Case:
    """4 uint16 bands described blue, green, red, nir: an RGB model takes bands 3, 2, 1."""
    data = blocky((4, 64, 90), 100, 4000, 5, np.uint16)
    valid = np.ones((64, 90), bool)
    valid[-5:] = False
    data[:, ~valid] = 0
    path = write_tif(
        tmp / "bgrn.tif",
        data,
        crs=WGS84,
        transform=wgs84_transform(),
        nodata=0,
        descriptions=("blue", "green", "red", "nir"),
    )
    return Case(path, valid, WGS84, (3, 2, 1), PredictOptions(vector="gpkg"))


def case_utm_u16_8band_described(tmp: Path) -> Case:
    """8 uint16 bands with Sentinel-2 names: red = B04 (band 4), green = B03, blue = B02."""
    data = blocky((8, 120, 180), 100, 4000, 6, np.uint16)
    valid = np.ones((120, 180), bool)
    valid[:, -11:] = False
    data[:, ~valid] = 0
    names = ("coastal", "B02", "B03", "B04", "B05", "B06", "B07", "B08")
    path = write_tif(
        tmp / "s2.tif", data, crs=UTM, transform=utm_transform(), nodata=0, descriptions=names
    )
    return Case(path, valid, UTM, (4, 3, 2))


def case_wgs84_u8_8band_explicit(tmp: Path) -> Case:
    """8 uint8 bands without descriptions: the bands are given explicitly."""
    data = blocky((8, 100, 120), 1, 255, 7, np.uint8)
    rows, cols = np.mgrid[:100, :120]
    valid = rows + cols >= 40  # a triangle of nodata in the top-left corner
    data[:, ~valid] = 0
    path = write_tif(tmp / "eight.tif", data, crs=WGS84, transform=wgs84_transform(), nodata=0)
    return Case(path, valid, WGS84, (5, 3, 1), PredictOptions(bands=(5, 3, 1)))


def case_utm_u16_all_nodata(tmp: Path) -> Case:
    data = np.zeros((3, 200, 300), np.uint16)
    path = write_tif(tmp / "empty.tif", data, crs=UTM, transform=utm_transform(), nodata=0)
    return Case(path, np.zeros((200, 300), bool), UTM, (1, 2, 3))


CASES = {
    "utm-u8-rgb-nodata-200x290": case_utm_u8_rgb_nodata,
    "wgs84-u16-1band-40x70": case_wgs84_u16_gray_tiny,
    "utm-u8-rgba-alpha": case_utm_u8_rgba_alpha,
    "utm-u8-internal-mask": case_utm_u8_internal_mask,
    "wgs84-u16-4band-descriptions": case_wgs84_u16_4band_described,
    "utm-u16-8band-descriptions": case_utm_u16_8band_described,
    "wgs84-u8-8band-explicit": case_wgs84_u8_8band_explicit,
    "utm-u16-all-nodata": case_utm_u16_all_nodata,
}


# ---------------------------------------------------------------------------------------------
# shared checks


def check_class_map(path: Path, source: Path, valid: np.ndarray) -> np.ndarray:
    """The class map is on the input grid, tiled uint8 with nodata 255, palette and names."""
    with rasterio.open(source) as src, rasterio.open(path) as out:
        assert out.crs == src.crs
        assert out.transform == src.transform
        assert (out.height, out.width) == (src.height, src.width)
        assert out.count == 1
        assert out.dtypes[0] == "uint8"
        assert out.nodata == 255
        assert out.profile["tiled"]
        colormap = out.colormap(1)
        for class_id, rgb in enumerate(PALETTE):
            assert colormap[class_id][:3] == rgb
        assert json.loads(out.tags()["class_names"]) == list(NAMES)
        labels = out.read(1)
    assert (labels[~valid] == 255).all(), "nodata input pixels must be nodata in the output"
    assert (labels[valid] < len(NAMES)).all(), "every valid input pixel gets a class"
    return labels


def wgs84_pixel_area_m2(lat_deg: np.ndarray) -> np.ndarray:
    """Spherical approximation (mean Earth radius) of a DEG x DEG cell's area at a latitude."""
    radius = 6_371_008.8
    side = math.radians(DEG) * radius
    return side * side * np.cos(np.radians(lat_deg))


def check_summary(summary: dict, case: Case, labels: np.ndarray, out: Path) -> None:
    h, w = case.valid.shape
    on_disk = json.loads((out / f"{case.path.stem}_summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["size"] == [h, w]
    assert tuple(summary["bands"]) == case.expected_bands
    assert CRS.from_user_input(summary["crs"]) == case.crs
    assert summary["nodata_pixels"] == int((~case.valid).sum())
    table = {row["class_id"]: row for row in summary["classes"]}
    assert [table[i]["class_name"] for i in range(len(NAMES))] == list(NAMES)
    for class_id in range(len(NAMES)):
        assert table[class_id]["pixels"] == int((labels == class_id).sum())
    assert sum(row["pixels"] for row in summary["classes"]) == int(case.valid.sum())
    if case.crs == UTM:
        for row in summary["classes"]:
            # on the central meridian UTM maps 1 ground m² to k0² = 0.9996² map m²
            expected = row["pixels"] * 0.09 / 0.9996**2
            # (rounded to 0.01 m², see crossearth.numbers)
            assert row["area_m2"] == pytest.approx(expected, rel=1e-6, abs=0.005 + 1e-9)
    else:
        lat = WGS84_ORIGIN[1] - (np.arange(h) + 0.5) * DEG
        expected = float((case.valid.sum(axis=1) * wgs84_pixel_area_m2(lat)).sum())
        total = sum(row["area_m2"] for row in summary["classes"])
        assert total == pytest.approx(expected, rel=0.01)  # ellipsoid vs sphere: well under 1 %
        for row in summary["classes"]:
            assert (row["area_m2"] > 0) == (row["pixels"] > 0)
        assert total > 1e9 * case.valid.sum() * DEG * DEG  # m², not a product of degrees


def read_rgb(path: Path, bands=(1, 2, 3)) -> np.ndarray:
    with rasterio.open(path) as ds:
        return np.moveaxis(ds.read(list(bands)), 0, -1)


# ---------------------------------------------------------------------------------------------
# tests


def test_model_fixture_predicts_several_classes(model):
    image = np.moveaxis(blocky((3, 128, 128), 0, 255, 0, np.uint8), 0, -1)
    assert len(np.unique(model.predict(image).labels)) >= 2


@pytest.mark.parametrize("name", list(CASES))
def test_generated_geotiffs(model, tmp_path, name):
    case = CASES[name](tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    progress = []
    summary = predict_raster(
        model, case.path, out, case.options, progress=lambda d, t: progress.append((d, t))
    )
    stem = case.path.stem
    expected_files = {f"{stem}{s}" for s in ("_classes.tif", "_preview.png", "_overlay.png")}
    expected_files.add(f"{stem}_summary.json")
    if case.options.vector:
        expected_files.add(f"{stem}.gpkg")
    assert set(os.listdir(out)) == expected_files  # and no temporary file left behind
    labels = check_class_map(out / f"{stem}_classes.tif", case.path, case.valid)
    check_summary(summary, case, labels, out)
    assert progress and progress[-1] == (summary["windows"], summary["windows"])
    if not case.valid.any():
        assert summary["windows"] > 0
        assert summary["skipped_windows"] == summary["windows"]
        assert (labels == 255).all()
    else:
        assert summary["skipped_windows"] < summary["windows"]
    if case.options.vector:
        check_polygons(out / f"{stem}.gpkg", case, summary)


def check_polygons(path: Path, case: Case, summary: dict) -> None:
    import pyogrio.raw
    import shapely

    meta, _, geometry, fields = pyogrio.raw.read(path)
    assert CRS.from_user_input(meta["crs"]) == case.crs
    columns = dict(zip(meta["fields"], fields, strict=True))
    ids = np.asarray(columns["class_id"])
    assert len(ids) == summary["polygons"] > 0
    assert ((ids >= 0) & (ids < len(NAMES))).all()
    assert [NAMES[i] for i in ids] == list(columns["class_name"])
    shapes = shapely.from_wkb(geometry)
    # polygons tile exactly the valid pixels, class by class (areas in the CRS's units)
    with rasterio.open(case.path) as ds:
        pixel = abs(ds.transform.determinant)
    per_class = {row["class_id"]: row["pixels"] for row in summary["classes"]}
    for class_id, pixels in per_class.items():
        area = float(shapely.area(shapes[ids == class_id]).sum())
        assert area == pytest.approx(pixels * pixel, rel=1e-6, abs=1e-12)


def test_stream_equals_model_predict_uint8(model, tmp_path):
    data = blocky((3, 300, 530), 0, 255, 11, np.uint8)
    src = write_tif(tmp_path / "scene.tif", data, crs=UTM, transform=utm_transform())
    summary = predict_raster(model, src, tmp_path, PredictOptions(preview=False, overlay=False))
    assert summary["windows"] == 6  # 2 rows x 3 columns of 256 windows, stride 171
    image = read_rgb(src)
    expected = model.predict(image).labels
    assert len(np.unique(expected)) >= 2
    labels = check_class_map(tmp_path / "scene_classes.tif", src, np.ones((300, 530), bool))
    assert np.array_equal(labels, expected)


def test_stream_equals_model_predict_of_scaled_uint16(model, tmp_path):
    data = blocky((3, 200, 300), 0, 4000, 12, np.uint16)
    data += np.random.default_rng(0).integers(0, 50, data.shape, dtype=np.uint16)
    src = write_tif(tmp_path / "scene16.tif", data, crs=UTM, transform=utm_transform())
    summary = predict_raster(model, src, tmp_path, PredictOptions(preview=False, overlay=False))
    low, high = summary["scaling"]["low"], summary["scaling"]["high"]
    # the default rule for 16-bit data: per-band 2nd and 98th percentiles of the whole file
    for b in range(3):
        assert low[b] == pytest.approx(np.percentile(data[b], 2), abs=1.0)
        assert high[b] == pytest.approx(np.percentile(data[b], 98), abs=1.0)
    clipped = (
        (data < np.array(low)[:, None, None]) | (data > np.array(high)[:, None, None])
    ).mean()
    assert summary["scaling"]["clipped_fraction"] > 0.0
    assert summary["scaling"]["clipped_fraction"] <= clipped + 1e-9  # each value counted once
    scaled = Scaling(tuple(low), tuple(high)).apply(read_rgb(src))
    expected = model.predict(scaled).labels
    assert len(np.unique(expected)) >= 2
    labels = check_class_map(tmp_path / "scene16_classes.tif", src, np.ones((200, 300), bool))
    assert np.array_equal(labels, expected)


def test_companion_outputs_and_cog(model, tmp_path):
    """Preview, overlay, confidence, polygons, summary and a COG class map, for one UTM scene."""
    data = blocky((3, 180, 530), 1, 255, 13, np.uint8)
    valid = np.ones((180, 530), bool)
    valid[:, :37] = False
    valid[120:150, 300:340] = False
    data[:, ~valid] = 0
    src = write_tif(tmp_path / "scene.tif", data, crs=UTM, transform=utm_transform(), nodata=0)
    out = tmp_path / "out"
    out.mkdir()
    options = PredictOptions(confidence=True, vector="gpkg", cog=True)
    summary = predict_raster(model, src, out, options)
    assert set(os.listdir(out)) == {
        "scene_classes.tif",
        "scene_confidence.tif",
        "scene_preview.png",
        "scene_overlay.png",
        "scene.gpkg",
        "scene_summary.json",
    }
    case = Case(src, valid, UTM, (1, 2, 3), options)
    labels = check_class_map(out / "scene_classes.tif", src, valid)
    check_summary(summary, case, labels, out)
    check_polygons(out / "scene.gpkg", case, summary)

    # COG: tiled, with overviews (the map is wider than 512), COG layout
    with rasterio.open(out / "scene_classes.tif") as cog:
        assert cog.profile["tiled"]
        assert cog.overviews(1)
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"

    # confidence: same grid, a percentage on valid pixels, 255 on nodata
    with rasterio.open(out / "scene_confidence.tif") as conf:
        assert conf.crs == UTM and conf.transform == utm_transform()
        assert conf.shape == (180, 530) and conf.nodata == 255 and conf.dtypes[0] == "uint8"
        percent = conf.read(1)
    assert (percent[~valid] == 255).all()
    assert (percent[valid] <= 100).all()
    assert (percent[valid] > 50).any()

    # preview: class colours, black where there is no data
    lut = np.array(PALETTE, np.uint8)
    preview = np.asarray(Image.open(out / "scene_preview.png").convert("RGB"))
    assert preview.shape == (180, 530, 3)
    assert np.array_equal(preview[valid], lut[labels[valid]])
    assert (preview[~valid] == 0).all()

    # overlay: half class colour, half image; the image unchanged where there is no data
    overlay = np.asarray(Image.open(out / "scene_overlay.png").convert("RGB"))
    rgb = read_rgb(src)
    blend = np.rint(0.5 * rgb[valid].astype(float) + 0.5 * lut[labels[valid]]).astype(np.uint8)
    assert overlay.shape == (180, 530, 3)
    assert np.abs(overlay[valid].astype(int) - blend).max() <= 1
    assert np.array_equal(overlay[~valid], rgb[~valid])
    assert summary["preview"] == str(out / "scene_preview.png")
    assert summary["confidence"] == str(out / "scene_confidence.tif")


def test_png_without_georeferencing_gives_palette_png(model, tmp_path):
    image = np.moveaxis(blocky((3, 50, 70), 0, 255, 14, np.uint8), 0, -1)
    src = tmp_path / "photo.png"
    Image.fromarray(image).save(src)
    out = tmp_path / "out"
    out.mkdir()
    summary = predict_raster(model, src, out)
    assert set(os.listdir(out)) == {
        "photo_classes.png",
        "photo_preview.png",
        "photo_overlay.png",
        "photo_summary.json",
    }
    written = Image.open(out / "photo_classes.png")
    assert written.mode == "P"
    assert written.getpalette()[: 3 * len(PALETTE)] == [c for rgb in PALETTE for c in rgb]
    assert np.array_equal(np.asarray(written), model.predict(image).labels)
    assert summary["crs"] is None
    assert all(row["area_m2"] is None for row in summary["classes"])
    assert sum(row["pixels"] for row in summary["classes"]) == 50 * 70


@pytest.fixture(scope="module")
def gsd_model(model):
    """The same network, recording a training GSD of 0.3 m."""
    net = copy.deepcopy(model)
    net.config = dataclasses.replace(net.config, gsd_m=0.3)
    return net


def gsd_scene(tmp_path: Path, pixel: float, crs=UTM) -> tuple[Path, np.ndarray]:
    data = blocky((3, 97, 131), 1, 255, 15, np.uint8)
    valid = np.ones((97, 131), bool)
    valid[:13] = valid[:, -7:] = False
    valid[50:60, 40:47] = False
    data[:, ~valid] = 0
    src = write_tif(
        tmp_path / "coarse.tif", data, crs=crs, transform=utm_transform(pixel), nodata=0
    )
    return src, valid


@pytest.mark.parametrize("pixel", [0.6, 0.5])  # model grid 2x and 5/3x finer than the input
def test_match_gsd_maps_back_to_the_input_grid(gsd_model, tmp_path, pixel):
    src, valid = gsd_scene(tmp_path, pixel)
    out = tmp_path / "out"
    out.mkdir()
    cog = pixel == 0.6
    summary = predict_raster(gsd_model, src, out, PredictOptions(match_gsd=True, cog=cog))
    assert set(os.listdir(out)) == {
        "coarse_classes.tif",
        "coarse_preview.png",
        "coarse_overlay.png",
        "coarse_summary.json",
    }  # the model-grid map was removed
    labels = check_class_map(out / "coarse_classes.tif", src, valid)
    assert len(np.unique(labels[valid])) >= 2
    if cog:
        with rasterio.open(out / "coarse_classes.tif") as written:
            assert written.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert summary["options"]["match_gsd"] is True
    # windows are counted on the model grid: 97 x 131 at 0.6 m is 194 x 262 at 0.3 m
    if pixel == 0.6:
        assert summary["windows"] == 2
    table = {row["class_id"]: row for row in summary["classes"]}
    for class_id in range(len(NAMES)):
        assert table[class_id]["pixels"] == int((labels == class_id).sum())
        assert table[class_id]["area_m2"] == pytest.approx(
            table[class_id]["pixels"] * pixel * pixel / 0.9996**2,  # UTM k0 at the meridian
            abs=0.005 + 1e-9,  # rounded to 0.01 m² (crossearth.numbers)
        )


def test_match_gsd_summary_counts_input_pixels(gsd_model, tmp_path):
    src, valid = gsd_scene(tmp_path, 0.6)
    summary = predict_raster(
        gsd_model, src, tmp_path, PredictOptions(match_gsd=True, preview=False, overlay=False)
    )
    assert sum(row["pixels"] for row in summary["classes"]) == int(valid.sum())
    assert summary["nodata_pixels"] == int((~valid).sum())


def test_match_gsd_needs_a_crs(gsd_model, tmp_path):
    image = np.moveaxis(blocky((3, 50, 70), 0, 255, 16, np.uint8), 0, -1)
    src = tmp_path / "photo.png"
    Image.fromarray(image).save(src)
    plain = write_tif(tmp_path / "nocrs.tif", np.moveaxis(image, -1, 0))
    out = tmp_path / "out"
    out.mkdir()
    for path in (src, plain):
        with pytest.raises(InputError, match="georeferenced"):
            predict_raster(gsd_model, path, out, PredictOptions(match_gsd=True))
    assert os.listdir(out) == []


def test_match_gsd_needs_a_model_gsd(model, tmp_path):
    src, _ = gsd_scene(tmp_path, 0.6)
    out = tmp_path / "out"
    out.mkdir()
    assert model.config.gsd_m is None
    with pytest.raises(InputError, match="GSD"):
        predict_raster(model, src, out, PredictOptions(match_gsd=True))
    assert os.listdir(out) == []


def test_gaussian_blend_and_flip_tta_end_to_end(model, tmp_path):
    data = blocky((3, 200, 300), 1, 255, 17, np.uint8)
    valid = np.ones((200, 300), bool)
    valid[:, :9] = False
    data[:, ~valid] = 0
    src = write_tif(tmp_path / "scene.tif", data, crs=UTM, transform=utm_transform(), nodata=0)
    smooth_dir, plain_dir = tmp_path / "smooth", tmp_path / "plain"
    smooth_dir.mkdir()
    plain_dir.mkdir()
    options = PredictOptions(blend="gaussian", tta="flip", confidence=True, batch_size=1)
    summary = predict_raster(model, src, smooth_dir, options)
    plain = predict_raster(model, src, plain_dir, PredictOptions(preview=False, overlay=False))
    assert summary["options"]["blend"] == "gaussian" and summary["options"]["tta"] == "flip"
    case = Case(src, valid, UTM, (1, 2, 3), options)
    labels = check_class_map(smooth_dir / "scene_classes.tif", src, valid)
    check_summary(summary, case, labels, smooth_dir)
    plain_labels = check_class_map(plain_dir / "scene_classes.tif", src, valid)
    assert summary["windows"] == plain["windows"] == 2
    assert not np.array_equal(labels, plain_labels)  # the options reach the model
    assert (labels == plain_labels).mean() > 0.5  # ... and do not scramble the result

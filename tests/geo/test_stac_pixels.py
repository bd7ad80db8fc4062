"""STAC metadata that describes the pixels (issue 21, point 4), on generated items and COGs.

An item's `raster:bands` (raster extension) or STAC 1.1 `bands` nodata, scale and offset, over
COGs that carry none, must act as the same values carried by the files themselves (GDAL's own
nodata, scale and offset): nodata masks the pixel, and values are `x * scale + offset` before
the model's scaling. Bands are chosen by common name, band name (`eo:bands` name, `bands[].name`)
or asset key; a band at another resolution is named as such, never by a `/vsimem` path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import from_origin
from remote_server import RangeServer

from crossearth.cli import main
from crossearth.errors import InputError
from crossearth.geo.bands import choose_bands
from crossearth.geo.raster import RasterSource, open_raster

pytest.importorskip("pystac", reason="STAC inputs need pystac: pip install 'crossearth[stac]'")

FAST = ("--precision", "fp32", "--device", "cpu", "-q", "--no-overlay")
SIZE = 96
PROFILE = {
    "driver": "GTiff", "height": SIZE, "width": SIZE, "count": 1, "dtype": "uint16",
    "crs": CRS.from_epsg(32632), "transform": from_origin(600_000.0, 5_200_000.0, 10.0, 10.0),
}  # fmt: skip
# Landsat-like: asset keys, band names and common names all differ for the NIR band
BANDS = (  # asset key, eo:bands name, common name
    ("red", "SR_B4", "red"),
    ("green", "SR_B3", "green"),
    ("blue", "SR_B2", "blue"),
    ("nir08", "SR_B5", "nir"),
)
NODATA, SCALE, OFFSET = 0, 2.75e-05, -0.2
NODATA_ROWS = slice(0, 12)  # every band is nodata there


def digital_numbers() -> np.ndarray:
    """[4, H, W] uint16 surface reflectance DNs with a nodata strip (0 in every band)."""
    rng = np.random.default_rng(21)
    data = rng.integers(7_300, 25_000, (4, SIZE, SIZE)).astype(np.uint16)
    data[:, NODATA_ROWS] = NODATA
    data[0, 40:44, 10:20] = NODATA  # nodata in one band only: valid (GDAL: all bands must be)
    return data


def write_item(folder: Path, form: str = "raster:bands", extra: dict | None = None) -> Path:
    """An item over one COG per band (no nodata, scale or offset in the files), the pixel
    metadata in `raster:bands` (STAC 1.0 raster extension) or in STAC 1.1 `bands`."""
    data = digital_numbers()
    assets = {}
    for i, (key, name, common) in enumerate(BANDS):
        plain = folder / f".{key}_plain.tif"
        with rasterio.open(plain, "w", **PROFILE) as dst:
            dst.write(data[i : i + 1])
        rasterio.shutil.copy(plain, folder / f"{key}.tif", driver="COG", BLOCKSIZE=128)
        plain.unlink()
        asset: dict = {"href": f"./{key}.tif", "type": "image/tiff; application=geotiff",
                       "roles": ["data"]}  # fmt: skip
        if form == "raster:bands":
            asset["eo:bands"] = [{"name": name, "common_name": common}]
            asset["raster:bands"] = [{"nodata": NODATA, "scale": SCALE, "offset": OFFSET,
                                      "data_type": "uint16"}]  # fmt: skip
        else:  # STAC 1.1: one `bands` list with common metadata and the raster extension
            asset["bands"] = [{"name": name, "eo:common_name": common, "nodata": NODATA,
                               "raster:scale": SCALE, "raster:offset": OFFSET,
                               "data_type": "uint16"}]  # fmt: skip
        assets[key] = asset
    assets.update(extra or {})
    version = "1.0.0" if form == "raster:bands" else "1.1.0"
    item = {
        "type": "Feature", "stac_version": version, "id": "LC09_scene", "geometry": None,
        "properties": {"datetime": "2024-06-01T10:00:00Z"}, "links": [], "assets": assets,
    }  # fmt: skip
    path = folder / "LC09_scene.json"
    path.write_text(json.dumps(item))
    return path


def write_local_stack(path: Path) -> Path:
    """The same DNs as one 4-band GeoTIFF carrying nodata, scale and offset itself."""
    profile = {**PROFILE, "count": 4, "nodata": NODATA}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(digital_numbers())
        dst.scales = (SCALE,) * 4
        dst.offsets = (OFFSET,) * 4
        dst.descriptions = tuple(common for _, _, common in BANDS)
    with rasterio.open(path) as src:  # the test is only worth something if GDAL kept them
        assert src.scales == (SCALE,) * 4 and src.offsets == (OFFSET,) * 4
        assert src.nodatavals == (NODATA,) * 4
    return path


@pytest.fixture
def item(tmp_path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir()
    return write_item(folder)


def run(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["crossearth", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def one_error(code: int, out: str) -> str:
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in out, out
    assert "/vsimem" not in out, out
    return errors[0]


@pytest.mark.parametrize("form", ["raster:bands", "bands"])
def test_item_nodata_scale_offset_act_as_the_files_own(tmp_path, form):
    """Read through the stack: the documented mapping of x * scale + offset, nodata masked."""
    folder = tmp_path / form.replace(":", "_")
    folder.mkdir()
    path = write_item(folder, form)
    with open_raster(path) as ds:  # the asset files carry none of it
        for key, _, _ in BANDS:
            with rasterio.open(folder / f"{key}.tif") as asset:
                assert asset.nodata is None and asset.scales == (1.0,)
        assert ds.nodatavals == (NODATA,) * 4
    with RasterSource.open(path, "RGB", None, "0,0.5") as source:
        pixels, valid = source.read(0, SIZE, 0, SIZE)
        assert source.bands == (1, 2, 3)
    dn = digital_numbers()[:3].astype(np.float64)
    reflectance = dn * SCALE + OFFSET
    expected = np.rint(np.clip(reflectance / 0.5, 0, 1) * 255).astype(np.uint8)
    nodata = (digital_numbers() == NODATA).all(axis=0)
    assert nodata[NODATA_ROWS].all() and nodata.sum() == NODATA_ROWS.stop * SIZE
    np.testing.assert_array_equal(valid, ~nodata)
    np.testing.assert_array_equal(pixels[~nodata], np.moveaxis(expected, 0, -1)[~nodata])


def test_file_values_win_over_the_items(tmp_path):
    """An asset file that carries its own nodata, scale and offset keeps them."""
    folder = tmp_path / "own"
    folder.mkdir()
    path = write_item(folder)
    with rasterio.open(folder / "green.tif", "w", **{**PROFILE, "nodata": 9}) as dst:
        dst.write(digital_numbers()[1:2])
        dst.scales, dst.offsets = (1e-4,), (0.5,)
    with open_raster(path) as ds:
        assert ds.nodatavals == (NODATA, 9, NODATA, NODATA)
        assert ds.scales == (SCALE, 1e-4, SCALE, SCALE)
        assert ds.offsets == (OFFSET, 0.5, OFFSET, OFFSET)


def test_percentile_stretch_is_on_scaled_values_and_equals_the_local_stack(tmp_path, item):
    local = write_local_stack(tmp_path / "stack.tif")
    with (
        RasterSource.open(item, "IRRG", None, None) as a,
        RasterSource.open(local, "IRRG", None, None) as b,
    ):
        assert a.bands == b.bands == (4, 1, 2)
        assert a.scaling == b.scaling
        reflectance = digital_numbers()[[3, 0, 1]].astype(np.float64) * SCALE + OFFSET
        valid = ~(digital_numbers() == NODATA).all(axis=0)
        lows = [np.percentile(band[valid & (band != OFFSET)], 2) for band in reflectance]
        np.testing.assert_allclose(a.scaling.low, lows, rtol=1e-9)
        for window in ((0, SIZE, 0, SIZE), (30, 70, 5, 90)):
            for x, y in zip(a.read(*window), b.read(*window), strict=True):
                np.testing.assert_array_equal(x, y)


def test_scale_none_is_refused_for_scaled_values(item):
    with pytest.raises(InputError, match="scale") as info:
        RasterSource.open(item, "RGB", None, "none")
    assert "/vsimem" not in str(info.value)


def test_predict_over_http_equals_the_local_stack_carrying_the_same_metadata(
    monkeypatch, capsys, tmp_path, varied_model_file, item
):
    local = write_local_stack(tmp_path / "LC09_scene.tif")
    args = ("-m", varied_model_file, *FAST, "--scale", "0,0.4")
    code, out = run(monkeypatch, capsys, "predict", local, "-o", tmp_path / "a", *args)
    assert code == 0, out
    with RangeServer(item.parent) as server:
        code, out = run(monkeypatch, capsys, "predict", server.url(item.name),
                        "-o", tmp_path / "b", *args)  # fmt: skip
        assert code == 0, out
    a = (tmp_path / "a" / "LC09_scene_classes.tif").read_bytes()
    assert a == (tmp_path / "b" / "LC09_scene_classes.tif").read_bytes()
    with rasterio.open(tmp_path / "b" / "LC09_scene_classes.tif") as ds:
        classes = ds.read(1)
    assert (classes[NODATA_ROWS] == 255).all() and (classes[NODATA_ROWS.stop :] != 255).all()
    summary = json.loads((tmp_path / "b" / "LC09_scene_summary.json").read_text())
    assert summary["scaling"]["low"] == [0.0] * 3 and summary["scaling"]["high"] == [0.4] * 3
    assert "scale" in summary["scaling"]["rule"]


@pytest.mark.parametrize(
    "spelling",
    ["SR_B5,SR_B4,SR_B3", "nir08,red,green", "nir,red,green", "sr-b5,Sr_B04,SR_B03"],
    ids=["band names", "asset keys", "common names", "case and zeros"],
)
def test_bands_by_band_name_asset_key_or_common_name(
    monkeypatch, capsys, tmp_path, varied_model_file, item, spelling
):
    local = write_local_stack(tmp_path / "LC09_scene.tif")
    args = ("-m", varied_model_file, *FAST)
    code, out = run(monkeypatch, capsys, "predict", local, "-o", tmp_path / "a",
                    "--bands", "4,1,2", *args)  # fmt: skip
    assert code == 0, out
    code, out = run(monkeypatch, capsys, "predict", item, "-o", tmp_path / "b",
                    "--bands", spelling, *args)  # fmt: skip
    assert code == 0, out
    a, b = (tmp_path / d / "LC09_scene_classes.tif" for d in "ab")
    assert a.read_bytes() == b.read_bytes()


def test_sentinel2_b_numbers_choose_bands(tmp_path):
    """Sentinel-2 asset keys (B04, B08) without common names: roles and --bands by B-number."""
    folder = tmp_path / "s2"
    folder.mkdir()
    data = digital_numbers()
    assets = {}
    for i, key in enumerate(("B04", "B03", "B02", "B08")):
        with rasterio.open(folder / f"{key}.tif", "w", **PROFILE) as dst:
            dst.write(data[i : i + 1])
        assets[key] = {"href": f"./{key}.tif", "type": "image/tiff", "eo:bands": [{"name": key}]}
    path = folder / "S2.json"
    path.write_text(json.dumps({
        "type": "Feature", "stac_version": "1.0.0", "id": "S2", "geometry": None,
        "properties": {"datetime": "2024-06-01T10:00:00Z"}, "links": [], "assets": assets,
    }))  # fmt: skip
    with open_raster(path) as ds:
        assert choose_bands(ds, "IRRG", None).bands == (4, 1, 2)
        assert choose_bands(ds, "RGB", None).bands == (1, 2, 3)
        assert choose_bands(ds, "IRRG", ("B8", "b04", "B03")).bands == (4, 1, 2)


def coarse_asset(folder: Path, key: str, name: str, common: str) -> dict:
    """A 20 m asset (half the 10 m grid's pixels a side) over the same area."""
    profile = {**PROFILE, "height": SIZE // 2, "width": SIZE // 2,
               "transform": from_origin(600_000.0, 5_200_000.0, 20.0, 20.0)}  # fmt: skip
    with rasterio.open(folder / f"{key}.tif", "w", **profile) as dst:
        dst.write(np.full((1, SIZE // 2, SIZE // 2), 9_000, np.uint16))
    return {key: {"href": f"./{key}.tif", "type": "image/tiff",
                  "eo:bands": [{"name": name, "common_name": common}]}}  # fmt: skip


@pytest.mark.parametrize("asked", ["SR_B6", "swir16", "swir_16"])
def test_a_band_at_another_resolution_is_named_as_such(
    monkeypatch, capsys, tmp_path, varied_model_file, asked
):
    folder = tmp_path / "coarse"
    folder.mkdir()
    path = write_item(folder, extra=coarse_asset(folder, "swir16", "SR_B6", "swir16"))
    code, out = run(monkeypatch, capsys, "predict", path, "-o", tmp_path / "out",
                    "--bands", f"{asked},red,green", "-m", varied_model_file, *FAST)  # fmt: skip
    error = one_error(code, out)
    assert asked in error and "20 m" in error and "10 m" in error, error
    assert "resolution" in error and "SR_B5" in error  # what the stack holds
    assert "not exist" not in error and "no band named" not in error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_role_only_at_another_resolution_is_named_in_the_automatic_choice(tmp_path):
    """An IRRG model on an item whose only NIR band is at 20 m."""
    folder = tmp_path / "nir20"
    folder.mkdir()
    path = write_item(folder)
    data = json.loads(path.read_text())
    del data["assets"]["nir08"]
    data["assets"].update(coarse_asset(folder, "nir08_20m", "SR_B5", "nir"))
    path.write_text(json.dumps(data))
    with open_raster(path) as ds, pytest.raises(InputError) as info:
        choose_bands(ds, "IRRG", None)
    message = str(info.value)
    assert "near infrared" in message and "SR_B5" in message and "20 m" in message
    assert "/vsimem" not in message and str(path) in message


def test_unknown_band_name_lists_every_name_without_vsimem(monkeypatch, capsys, tmp_path,
                                                           varied_model_file, item):  # fmt: skip
    code, out = run(monkeypatch, capsys, "predict", item, "-o", tmp_path / "out",
                    "--bands", "B99,red,green", "-m", varied_model_file, *FAST)  # fmt: skip
    error = one_error(code, out)
    assert "B99" in error and "LC09_scene.json" in error
    for name in ("SR_B5", "nir08", "nir", "SR_B4"):
        assert name in error


@pytest.mark.parametrize("field", ["nodata", "scale", "offset"])
def test_a_bad_pixel_metadata_value_is_one_error_line(monkeypatch, capsys, tmp_path,
                                                      varied_model_file, item, field):  # fmt: skip
    data = json.loads(item.read_text())
    data["assets"]["green"]["raster:bands"][0][field] = "lots"
    item.write_text(json.dumps(data))
    code, out = run(monkeypatch, capsys, "predict", item, "-o", tmp_path / "out",
                    "-m", varied_model_file, *FAST)  # fmt: skip
    error = one_error(code, out)
    assert field in error and "green" in error and "lots" in error


def test_a_band_number_past_the_stack_names_the_bands_left_out(tmp_path):
    folder = tmp_path / "numbers"
    folder.mkdir()
    path = write_item(folder, extra=coarse_asset(folder, "swir16", "SR_B6", "swir16"))
    with open_raster(path) as ds, pytest.raises(InputError) as info:
        choose_bands(ds, "RGB", (5, 1, 2))
    message = str(info.value)
    assert "band 5" in message and "SR_B6" in message and "20 m" in message
    assert "/vsimem" not in message

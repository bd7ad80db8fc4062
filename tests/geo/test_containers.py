"""Containers of several rasters (issue 21, point 5): a generated 2-variable NetCDF.

`NETCDF:"file.nc":var` (and HDF5's `HDF5:"file.nc"://var`: a NetCDF-4 file is an HDF5 file)
is accepted by that name as a `predict` input, in a scene list and in a data set file; given
the container itself, the error lists its subdatasets by names that work when pasted; a name
GDAL can open is never "not found".
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import from_origin

from crossearth.cli import main
from crossearth.errors import InputError, InputNotFoundError
from crossearth.geo.containers import naming_path, parse_subdataset, resolve_subdataset
from crossearth.geo.raster import RasterSource, open_raster

with rasterio.Env() as _env:
    _DRIVERS = _env.drivers()
if "netCDF" not in _DRIVERS:
    pytest.skip("rasterio's GDAL has no netCDF driver", allow_module_level=True)

FAST = ("--precision", "fp32", "--device", "cpu", "-q", "--no-overlay")
H, W = 70, 90
PROFILE = {
    "driver": "GTiff", "height": H, "width": W, "dtype": "uint8",
    "crs": CRS.from_epsg(32631), "transform": from_origin(400_000.0, 4_900_000.0, 5.0, 5.0),
}  # fmt: skip
VARIABLES = ("brightness", "cloud_mask")  # GDAL names them brightness1, cloud_mask2


def variables() -> np.ndarray:
    """[2, H, W]: a textured image and a blocky mask (both uint8, no value 255 = nodata)."""
    rng = np.random.default_rng(5)
    image = (rng.integers(0, 200, (H, W)) // 2 + np.linspace(0, 100, W)[None]).astype(np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[10:40, 20:70] = 200
    return np.stack([image, mask])


def write_netcdf(path: Path, **options) -> Path:
    """A NetCDF with the two variables, written by GDAL (each band its own variable)."""
    source = path.with_suffix(".src.tif")
    with rasterio.open(source, "w", count=2, **PROFILE) as dst:
        dst.write(variables())
        for band, name in enumerate(VARIABLES, start=1):
            dst.update_tags(band, NETCDF_VARNAME=name)
    rasterio.shutil.copy(source, path, driver="netCDF", **options)
    source.unlink()
    with rasterio.open(path) as ds:  # a container: no bands of its own, two subdatasets
        assert ds.count == 0 and len(ds.subdatasets) == 2
    return path


def gdal_variables(path: Path) -> list[str]:
    """The container's variable names as GDAL lists them, in the order written."""
    with rasterio.open(path) as ds:
        names = [name.rsplit(":", 1)[1] for name in ds.subdatasets]
    assert all(v in n for v, n in zip(VARIABLES, names, strict=True)), names
    return names


def write_geotiff(path: Path, band: np.ndarray) -> Path:
    with rasterio.open(path, "w", count=1, **PROFILE) as dst:
        dst.write(band[None])
    return path


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
    return errors[0]


def listed_names(error: str) -> list[str]:
    """The subdataset names an error lists to choose from (GDAL's `NETCDF:"file":var` form)."""
    return re.findall(r'NETCDF:"[^"]+":\w+', error.split("as the input:", 1)[1])


@pytest.fixture
def scene(tmp_path) -> Path:
    return write_netcdf(tmp_path / "scene.nc")


def test_the_container_is_answered_with_names_that_work_when_pasted(
    monkeypatch, capsys, tmp_path, varied_model_file, scene
):
    args = ("-m", varied_model_file, *FAST, "--bands", "1,1,1")
    code, out = run(monkeypatch, capsys, "predict", scene, "-o", tmp_path / "out", *args)
    error = one_error(code, out)
    assert "not found" not in error and "subdataset" in error
    names = listed_names(error)
    assert len(names) == 2 and all(any(v in n for n in names) for v in VARIABLES), error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    brightness = next(n for n in names if "brightness" in n)
    code, out = run(monkeypatch, capsys, "predict", brightness, "-o", tmp_path / "out", *args)
    assert code == 0, out
    variable = gdal_variables(scene)[0]
    assert (tmp_path / "out" / f"scene_{variable}_classes.tif").is_file()


def test_a_variable_gives_the_class_map_of_the_same_pixels_in_a_geotiff(
    monkeypatch, capsys, tmp_path, varied_model_file, scene
):
    image = variables()[0]
    tif = write_geotiff(tmp_path / "brightness.tif", image)
    variable = gdal_variables(scene)[0]
    name = f'NETCDF:"{scene}":{variable}'
    with rasterio.open(name) as ds:  # GDAL itself: the same pixels
        np.testing.assert_array_equal(ds.read(1), image)
    args = ("-m", varied_model_file, *FAST, "--bands", "1,1,1")
    code, out = run(monkeypatch, capsys, "predict", tif, "-o", tmp_path / "a", *args)
    assert code == 0, out
    code, out = run(monkeypatch, capsys, "predict", name, "-o", tmp_path / "b", *args)
    assert code == 0, out
    with (
        rasterio.open(tmp_path / "a" / "brightness_classes.tif") as a,
        rasterio.open(tmp_path / "b" / f"scene_{variable}_classes.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert b.crs == a.crs and b.transform.almost_equals(a.transform)
    summary = json.loads((tmp_path / "b" / f"scene_{variable}_summary.json").read_text())
    assert summary["input"] == name


def test_hdf5_names_stay_text(monkeypatch, capsys, tmp_path, varied_model_file):
    """`HDF5:"f.nc"://var`: as a Path the `//` would become `/`, which GDAL does not open."""
    if "HDF5" not in _DRIVERS:
        pytest.skip("rasterio's GDAL has no HDF5 driver")
    nc4 = write_netcdf(tmp_path / "scene4.nc", FORMAT="NC4", WRITE_BOTTOMUP="NO")
    variable = gdal_variables(nc4)[1]
    name = f'HDF5:"{nc4}"://{variable}'
    with open_raster(name) as ds:
        np.testing.assert_array_equal(ds.read(1), variables()[1])
    code, out = run(monkeypatch, capsys, "predict", name, "-o", tmp_path / "out",
                    "-m", varied_model_file, *FAST, "--bands", "1,1,1")  # fmt: skip
    assert code == 0, out
    written = [p.name for p in (tmp_path / "out").iterdir()]
    assert any(n.startswith(f"scene4_{variable}_classes") for n in written), written


def test_a_wrong_variable_lists_the_subdatasets_and_a_missing_file_is_not_found(scene, tmp_path):
    with pytest.raises(InputError) as info:
        open_raster(f'NETCDF:"{scene}":brigthness')  # misspelt
    assert not isinstance(info.value, FileNotFoundError)
    assert "brigthness" in str(info.value) and len(listed_names(str(info.value))) == 2
    with pytest.raises(InputNotFoundError, match=r"gone\.nc"):
        open_raster(f'NETCDF:"{tmp_path / "gone.nc"}":brightness1')


def test_scene_list_names_a_variable_relative_to_the_list(
    monkeypatch, capsys, tmp_path, varied_model_file, scene
):
    first, second = gdal_variables(scene)
    listing = tmp_path / "scenes.txt"
    listing.write_text(f'NETCDF:"scene.nc":{first}\nNETCDF:scene.nc:{second}\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out = run(monkeypatch, capsys, "predict", listing, "-o", tmp_path / "out",
                    "-m", varied_model_file, *FAST, "--bands", "1,1,1")  # fmt: skip
    assert code == 0, out
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {f"scene_{first}_classes.tif", f"scene_{second}_classes.tif"} <= names
    listing.write_text('NETCDF:"missing.nc":brightness\n')
    code, out = run(monkeypatch, capsys, "predict", listing, "-o", tmp_path / "out2",
                    "-m", varied_model_file, *FAST)  # fmt: skip
    error = one_error(code, out)
    assert "scenes.txt:1" in error and "missing.nc" in error


def test_data_set_file_images_by_subdataset_name(tmp_path, monkeypatch, scene):
    from crossearth.data.scenes import SceneDataset
    from crossearth.data.spec import load_data_spec

    variable = gdal_variables(scene)[0]
    labels = np.where(variables()[1] > 0, 1, 0).astype(np.uint8)
    write_geotiff(tmp_path / "scene_label.tif", labels)
    spec_file = tmp_path / "data.yaml"
    spec_file.write_text(
        "classes: [clear, cloud]\nbands: [1, 1, 1]\nholdout: 0\n"
        f"train:\n  images: 'NETCDF:\"scene.nc\":{variable}'\n  labels: .\n"
    )
    monkeypatch.chdir(tmp_path.parent)  # the file's paths are relative to the file
    spec = load_data_spec(spec_file)
    assert spec.train.images == (f'NETCDF:"{scene}":{variable}',)
    assert spec.train.labels == (tmp_path / "scene_label.tif",)
    dataset = SceneDataset(spec, spec.train)
    pixels, read = dataset.read(0, 0, H, 0, W)
    np.testing.assert_array_equal(pixels, np.repeat(variables()[0][..., None], 3, axis=-1))
    np.testing.assert_array_equal(read, labels)
    dataset.close()


def test_data_check_runs_on_a_subdataset(monkeypatch, capsys, tmp_path, scene):
    variable = gdal_variables(scene)[0]
    write_geotiff(tmp_path / "scene.tif", np.where(variables()[1] > 0, 1, 0).astype(np.uint8))
    spec_file = tmp_path / "data.yaml"
    spec_file.write_text(
        "classes: [clear, cloud]\nbands: [1, 1, 1]\nholdout: 0\n"
        f"train:\n  images: 'NETCDF:scene.nc:{variable}'\n  labels: scene.tif\n"
    )
    code, out = run(monkeypatch, capsys, "data", "check", spec_file)
    assert code == 0, out
    assert "no problems found" in out, out
    cloud, clear = int((variables()[1] > 0).sum()), int((variables()[1] == 0).sum())
    assert f"{cloud:,} (" in out and f"{clear:,} (" in out, out


def test_names_taken_apart(tmp_path, monkeypatch):
    (tmp_path / "a.nc").write_bytes(b"")
    (tmp_path / "odd:name.tif").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    sd = parse_subdataset('NETCDF:"a.nc":var')
    assert (sd.file, sd.raster) == ("a.nc", "var")
    sd = parse_subdataset("HDF5:a.nc://group/var")
    assert (sd.file, sd.raster, sd.text) == ("a.nc", "group/var", "HDF5:a.nc://group/var")
    sd = parse_subdataset('HDF4_EOS:EOS_GRID:"MOD09.hdf":MODIS_Grid:sur_refl_b01')
    assert sd.file == "MOD09.hdf" and sd.raster == "MODIS_Grid:sur_refl_b01"
    assert parse_subdataset("GTIFF_DIR:2:a.nc").file == "a.nc"
    for plain in ("odd:name.tif", "https://h/a.tif", "s3://b/a.tif", "C:/data/a.tif",
                  "/vsizip/x.zip/a.tif", "scene.tif"):  # fmt: skip
        assert parse_subdataset(plain) is None, plain
    assert naming_path('NETCDF:"d/s.nc":ndvi').stem == "s_ndvi"
    assert naming_path('HDF5:"d/s.h5"://g/v 1').stem == "s_g_v_1"
    absolute = resolve_subdataset('NETCDF:"a.nc":v', Path("/data/lists"))
    assert absolute == 'NETCDF:"/data/lists/a.nc":v'
    assert resolve_subdataset("NETCDF:/abs/a.nc:v", Path("/x")) == "NETCDF:/abs/a.nc:v"
    assert os.path.exists("a.nc")


def test_raster_source_on_a_variable_reads_it(scene):
    name = f'NETCDF:"{scene}":{gdal_variables(scene)[1]}'
    with RasterSource.open(name, "RGB", (1, 1, 1)) as source:
        pixels, valid = source.read(0, H, 0, W)
    np.testing.assert_array_equal(pixels[..., 0], variables()[1])
    assert valid.all()

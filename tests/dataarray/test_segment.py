"""`crossearth.segment` on xarray DataArrays: equal to `crossearth predict` on the same pixels.

References are always files written by the `predict` command (or its windows computed by brute
force), never values computed by the code under test.
"""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
import rioxarray
import torch
import xarray as xr
from cli_runner import run_cli
from dask.callbacks import Callback
from geotiff import write_geotiff
from rasterio.crs import CRS
from rasterio.transform import from_origin

import crossearth
from crossearth.dataarray import models
from crossearth.dataarray.plan import WindowGrid
from crossearth.errors import CheckpointNotFoundError, CrossEarthError, InputError
from crossearth.inference import slide_windows

UTM = CRS.from_epsg(32632)
TRANSFORM = from_origin(500_000.0, 5_800_000.0, 0.25, 0.25)
WINDOWS = {"tile": 96, "stride": 64}
CLI = ("--precision", "fp32", "--device", "cpu", "--tile", "96", "--stride", "64", "-q",
       "--no-preview", "--no-overlay")  # fmt: skip
MODELS = "crossearth.dataarray.models"
CHUNKS = {"y": 70, "x": 55}  # smaller than the 96 px window, not aligned to the 64 px stride


@pytest.fixture(scope="module")
def model_file(varied_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "varied.safetensors"
    crossearth.save_model(varied_model, path)
    return path


def blocky(height: int = 230, width: int = 170, dtype=np.uint8, factor: int = 1) -> np.ndarray:
    """Blocky RGB with nodata (0) rows across the top (whole windows skipped), a hole, and a
    patch where only the first band holds 0 (valid: GDAL's mask needs every band at nodata)."""
    rng = np.random.default_rng(7)
    base = rng.integers(1, 256, (3, height // 16 + 1, width // 16 + 1))
    data = np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width] * factor
    data[:, :40] = 0
    data[:, 150:170, 40:90] = 0
    data[0, 100:120, 100:130] = 0
    return data.astype(dtype)


def predicted(monkeypatch, model_file: Path, image: Path, out: Path, *extra: str) -> Path:
    assert run_cli(monkeypatch, "predict", image, "-m", model_file, "-o", out, *CLI, *extra) == 0
    return out / f"{image.stem}_classes.tif"


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as f:
        return f.read(1)


class Tasks(Callback):
    """Counts the Dask tasks run while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _pretask(self, key, dask, state) -> None:
        self.count += 1


def test_chunked_rioxarray_array_equals_predict_and_stays_lazy(
    monkeypatch, tmp_path, model_file, varied_model
):
    image = write_geotiff(tmp_path / "scene.tif", blocky(), crs=UTM, transform=TRANSFORM, nodata=0)
    reference = predicted(monkeypatch, model_file, image, tmp_path / "out")
    array = rioxarray.open_rasterio(image, chunks=CHUNKS)

    calls = []
    hook = varied_model.register_forward_hook(lambda *_: calls.append(1))
    try:
        with Tasks() as tasks:
            result = crossearth.segment(array, varied_model, chunks=(70, 55), **WINDOWS)
        assert tasks.count == 0 and calls == []  # nothing read, the model not run
        assert result.chunks == ((70, 70, 70, 20), (55, 55, 55, 5))
        values = result.values
    finally:
        hook.remove()
    assert calls
    np.testing.assert_array_equal(values, read(reference))
    assert values.dtype == np.uint8 and (values == 255).any()

    # the model by file, loaded by the task's process, and the default output chunks (the
    # input's, grouped to span 4 windows: 6 x 70 and 7 x 55 px, i.e. the whole array): the same
    by_file = crossearth.segment(array, model_file, precision="fp32", device="cpu", **WINDOWS)
    assert by_file.chunks == ((230,), (170,))
    np.testing.assert_array_equal(by_file.values, read(reference))
    halves = crossearth.segment(array, varied_model, chunks=(115, 85), **WINDOWS)
    np.testing.assert_array_equal(halves.values, read(reference))

    with rasterio.open(reference) as ref:
        assert result.rio.crs == ref.crs
        assert result.rio.transform() == ref.transform
        assert result.rio.nodata == ref.nodata == 255
    np.testing.assert_array_equal(result.x, array.x)
    np.testing.assert_array_equal(result.y, array.y)
    assert result.attrs["class_names"] == [f"class_{i}" for i in range(5)]
    assert len(result.attrs["palette"]) == 5


def test_blend_tta_and_batch_size_as_predict(monkeypatch, tmp_path, model_file, varied_model):
    image = write_geotiff(tmp_path / "scene.tif", blocky(), crs=UTM, transform=TRANSFORM, nodata=0)
    extra = ("--blend", "cosine", "--tta", "flip", "--batch-size", "3")
    reference = read(predicted(monkeypatch, model_file, image, tmp_path / "out", *extra))
    array = rioxarray.open_rasterio(image, chunks=CHUNKS)
    result = crossearth.segment(array, varied_model, blend="cosine", tta="flip", batch_size=3,
                                chunks=(115, 85), **WINDOWS)  # fmt: skip
    np.testing.assert_array_equal(result.values, reference)


def test_scores_of_16_bit_data_match_predict_classes_and_confidence(
    monkeypatch, tmp_path, model_file, varied_model
):
    data = blocky(dtype=np.uint16, factor=40)  # stretched between percentiles, as predict does
    image = write_geotiff(tmp_path / "s16.tif", data, crs=UTM, transform=TRANSFORM, nodata=0)
    reference = predicted(monkeypatch, model_file, image, tmp_path / "out", "--confidence")
    array = rioxarray.open_rasterio(image, chunks={"y": 100, "x": 90})

    result = crossearth.segment(array, varied_model, scores=True, **WINDOWS)
    assert isinstance(result, xr.Dataset)
    assert result.scores.dims == ("class", "y", "x") and result.scores.dtype == np.float32
    labels, scores = dask.compute(result.classes.data, result.scores.data)
    np.testing.assert_array_equal(labels, read(reference))
    nodata = labels == 255
    assert np.isnan(scores[:, nodata]).all() and not np.isnan(scores[:, ~nodata]).any()
    # predict's confidence: the winning class's share of the scores, in percent
    share = scores.max(axis=0) / scores.sum(axis=0)
    confidence = np.where(nodata, 255, np.round(share * 100)).astype(np.uint8)
    np.testing.assert_array_equal(confidence, read(tmp_path / "out" / "s16_confidence.tif"))


def test_bands_by_name_from_a_numpy_backed_array(monkeypatch, tmp_path, model_file, varied_model):
    rgb = blocky()
    image = write_geotiff(tmp_path / "rgb.tif", rgb, crs=UTM, transform=TRANSFORM, nodata=0)
    reference = read(predicted(monkeypatch, model_file, image, tmp_path / "out"))
    nir = np.full(rgb.shape[1:], 7, np.uint8)
    nir[(rgb == 0).all(axis=0)] = 0  # nodata where every band is, as in the file
    stacked = np.stack([nir, rgb[2], rgb[1], rgb[0]])  # as odc-stac/stackstac name them
    file_grid = rioxarray.open_rasterio(image)
    array = xr.DataArray(
        stacked,
        dims=("band", "y", "x"),
        coords={"band": ["nir", "blue", "green", "red"], "y": file_grid.y, "x": file_grid.x},
    ).rio.write_crs(UTM)
    array = array.rio.write_nodata(0)

    result = crossearth.segment(array, varied_model, **WINDOWS)  # roles from the names
    assert isinstance(result.data, np.ndarray)  # computed: NumPy in, NumPy out
    np.testing.assert_array_equal(result.values, reference)
    for bands in (("red", "green", "blue"), (4, 3, 2), "4,3,2"):
        chosen = crossearth.segment(array, varied_model, bands=bands, **WINDOWS)
        np.testing.assert_array_equal(chosen.values, reference)
    assert result.rio.crs == UTM


def test_to_zarr_and_to_raster_round_trip(tmp_path, varied_model):
    image = write_geotiff(tmp_path / "scene.tif", blocky(), crs=UTM, transform=TRANSFORM, nodata=0)
    array = rioxarray.open_rasterio(image, chunks={"y": 128, "x": 96})
    result = crossearth.segment(array, varied_model, **WINDOWS)
    expected = result.values

    result.to_zarr(tmp_path / "classes.zarr", mode="w", consolidated=False)
    back = xr.open_zarr(tmp_path / "classes.zarr", mask_and_scale=False, decode_coords="all",
                        consolidated=False).classes  # fmt: skip
    np.testing.assert_array_equal(back.values, expected)
    assert back.rio.crs == UTM and back.rio.transform() == array.rio.transform()
    assert back.rio.nodata == 255 and back.attrs["class_names"] == result.attrs["class_names"]

    result.rio.to_raster(tmp_path / "classes.tif")
    with rasterio.open(tmp_path / "classes.tif") as f:
        np.testing.assert_array_equal(f.read(1), expected)
        assert (f.crs, f.transform, f.nodata) == (UTM, array.rio.transform(), 255)


def test_windows_of_a_chunk_are_whole_batches_touching_it():
    """Every chunk runs exactly the batches holding a window that touches it (brute force),
    and its reads hold every window of them."""
    rng = np.random.default_rng(3)
    for _ in range(40):
        height, width = (int(n) for n in rng.integers(1, 400, 2))
        crop = (int(rng.integers(16, 200)),) * 2
        stride = (int(rng.integers(1, crop[0] + 1)),) * 2
        size = int(rng.integers(1, 7))
        grid = WindowGrid(height, width, crop, stride, size)
        windows = slide_windows(height, width, (min(crop[0], height), min(crop[1], width)),
                                stride)  # fmt: skip
        batches = [windows[i : i + size] for i in range(0, len(windows), size)]
        y0, x0 = (int(rng.integers(0, n)) for n in (height, width))
        y1, x1 = int(rng.integers(y0 + 1, height + 1)), int(rng.integers(x0 + 1, width + 1))
        plan = grid.plan(y0, y1, x0, x1)
        touching = [b for b in batches if any(w[0] < y1 and w[1] > y0 and w[2] < x1 and w[3] > x0
                                              for w in b)]  # fmt: skip
        assert [list(b) for b in plan.batches] == touching
        for w in (w for b in touching for w in b):
            assert any(r[0] <= w[0] and w[1] <= r[1] and r[2] <= w[2] and w[3] <= r[3]
                       for r in plan.reads)  # fmt: skip


def test_model_is_one_graph_key_and_a_file_is_loaded_once(tmp_path, model_file, varied_model,
                                                          monkeypatch):  # fmt: skip
    image = write_geotiff(tmp_path / "scene.tif", blocky(), crs=UTM, transform=TRANSFORM, nodata=0)
    array = rioxarray.open_rasterio(image, chunks=CHUNKS)
    graph = dict(crossearth.segment(array, varied_model, **WINDOWS).data.__dask_graph__())
    sizes = {key: len(pickle.dumps(task, protocol=5)) for key, task in graph.items()
             if not str(key).startswith("crossearth-model-")}  # fmt: skip
    model_size = len(pickle.dumps(varied_model))
    assert sum(str(k).startswith("crossearth-model-") for k in graph) == 1
    assert max(sizes.values()) < model_size / 20  # no task carries the model

    from crossearth import weights

    loads = []
    real = weights.load_model
    monkeypatch.setattr(weights, "load_model", lambda *a, **k: loads.append(1) or real(*a, **k))
    models.clear()
    for _ in range(2):
        crossearth.segment(array, model_file, precision="fp32", device="cpu", chunks=115,
                           **WINDOWS).compute()  # fmt: skip
    assert loads == [1]


def _data(dims, shape, dtype="uint8", **coords) -> xr.DataArray:
    return xr.DataArray(np.ones(shape, dtype=dtype), dims=dims, coords=coords)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: _data(("y", "x"), (40, 40)), "no band dimension"),
        (lambda: _data(("time", "band", "y", "x"), (2, 3, 40, 40)), "select one scene"),
        (lambda: _data(("band", "y", "x"), (3, 40, 40)).to_dataset(name="v"), "got Dataset"),
        (lambda: _data(("band", "a", "b"), (3, 40, 40)), "rioxarray takes for y and x"),
        (lambda: _data(("band", "y", "x"), (3, 40, 40), "bool"), "pixel type bool"),
        (lambda: _data(("band", "y", "x"), (2, 40, 40)), "has 2 data bands"),
        (lambda: np.ones((3, 40, 40), np.uint8), "got ndarray"),
    ],
)
def test_bad_arrays_are_one_clear_error(make, words, varied_model):
    with pytest.raises(InputError) as info:
        crossearth.segment(make(), varied_model, **WINDOWS)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_bands_options_and_models_are_one_clear_error(tmp_path, varied_model):
    array = _data(("band", "y", "x"), (3, 40, 40), band=["red", "green", "blue"])
    cases = [
        ({"bands": ("red", "green", "swir")}, InputError, "no band named 'swir'"),
        ({"bands": (1, 2, 5)}, InputError, "band 5 does not exist"),
        ({"tile": 8, "stride": 4}, InputError, "--tile 8 is smaller"),
        ({"chunks": 0}, InputError, "chunks must be"),
        ({"blend": "max"}, InputError, "--blend must be one of"),
    ]
    for options, error, words in cases:
        with pytest.raises(error, match=words):
            crossearth.segment(array, varied_model, **{**WINDOWS, **options})
    with pytest.raises(CheckpointNotFoundError, match="neither a file nor a zoo model"):
        crossearth.segment(array, tmp_path / "missing.safetensors")
    with pytest.raises(InputError, match="model must be a crossearth model"):
        crossearth.segment(array, object())
    with pytest.raises(InputError, match="--scale none"):
        crossearth.segment(array.astype("uint16"), varied_model, scale="none", **WINDOWS)
    assert issubclass(InputError, CrossEarthError)


def test_missing_extra_names_the_install(monkeypatch, varied_model):
    monkeypatch.setitem(sys.modules, "xarray", None)  # `import xarray` raises ImportError
    with pytest.raises(InputError, match=r"pip install 'crossearth\[dask\]'"):
        crossearth.segment(object(), varied_model)


def test_importing_crossearth_imports_neither_xarray_nor_dask():
    code = ("import sys, crossearth; crossearth.segment; "
            "print(sorted(m for m in ('xarray', 'dask', 'rioxarray') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scores_are_float32_means_of_the_official_slide(varied_model):
    """On a NumPy array of uint8 RGB, the scores are `model.predict`'s (official crop/stride)."""
    rgb = blocky(height=300, width=280)
    rgb[rgb == 0] = 1  # no nodata: every pixel predicted
    array = xr.DataArray(rgb, dims=("band", "y", "x"))
    with torch.inference_mode():
        official = varied_model.predict(np.moveaxis(rgb, 0, -1))
    result = crossearth.segment(array, varied_model, scores=True)
    np.testing.assert_array_equal(result.classes.values, official.labels)
    np.testing.assert_allclose(result.scores.values, official.scores, rtol=0, atol=1e-6)


def test_runs_on_a_distributed_cluster_of_processes(monkeypatch, tmp_path, model_file,
                                                    varied_model):  # fmt: skip
    """Under a `distributed.Client` the chunks run on its worker processes, each of which keeps
    the model it loaded (by file) or was handed (an object) for all its chunks."""
    distributed = pytest.importorskip(
        "distributed", reason="needs dask.distributed: pip install 'crossearth[dask]'"
    )
    image = write_geotiff(tmp_path / "scene.tif", blocky(), crs=UTM, transform=TRANSFORM, nodata=0)
    reference = read(predicted(monkeypatch, model_file, image, tmp_path / "out"))
    array = rioxarray.open_rasterio(image, chunks=CHUNKS)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,  # fmt: skip
        distributed.Client(cluster) as client,
    ):
        by_file = crossearth.segment(array, model_file, precision="fp32", device="cpu",
                                     chunks=(115, 85), **WINDOWS)  # fmt: skip
        np.testing.assert_array_equal(by_file.values, reference)
        by_object = crossearth.segment(array, varied_model, chunks=(115, 85), **WINDOWS)
        np.testing.assert_array_equal(by_object.values, reference)
        cached = client.run(lambda: len(importlib.import_module(MODELS)._cache))
    # a worker keeps each model once (at most the file's and the object), whatever it ran
    assert max(cached.values()) <= 2 and sum(cached.values()) >= 2

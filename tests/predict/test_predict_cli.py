"""`crossearth predict` on GeoTIFFs: sharding over processes, and clean failures on bad input.

Bad input must end with exit code != 0, one `error:` line on stderr, no traceback, and nothing
left in the output folder (not even a hidden temporary file).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli as run
from geotiff import write_geotiff
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

import crossearth
import crossearth.cli
import crossearth.geo.render
import crossearth.predict.writer
from crossearth.predict.stream import StreamingSegmenter

UTM = CRS.from_epsg(32632)
FAST = ("--precision", "fp32", "--device", "cpu")


@pytest.fixture(scope="module")
def model_file(named_model_file):
    return named_model_file


def pixels(height: int, width: int, bands: int = 3, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    """[bands, h, w] values 1..255 in 16 x 16 blocks."""
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 256, (bands, height // 16 + 1, width // 16 + 1))
    return np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(dtype)


def write_tif(path: Path, data: np.ndarray, nodata=None, crs=UTM) -> Path:
    transform = from_origin(500_000.0, 5_800_000.0, 0.3, 0.3) if crs is not None else None
    return write_geotiff(path, data, crs=crs, transform=transform, nodata=nodata)


def assert_failed_cleanly(code, stderr: str, out_dir: Path, *needles: str) -> None:
    assert code not in (0, None), stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    for needle in needles:
        assert needle in errors[0], stderr
    if out_dir.exists():
        assert os.listdir(out_dir) == [], "outputs or temporary files were left behind"


# ---------------------------------------------------------------------------------------------
# happy paths


def test_cli_writes_exactly_the_requested_files(monkeypatch, tmp_path, model_file):
    data = pixels(120, 150, seed=1)
    data[:, :, :20] = 0
    src = write_tif(tmp_path / "scene.tif", data, nodata=0)
    out = tmp_path / "out"
    code = run(
        monkeypatch, "predict", src, "-m", model_file, "-o", out, *FAST, "-q",
        "--confidence", "--vector", "gpkg", "--cog", "--tile", "128", "--stride", "100",
    )  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(out)) == [
        "scene.gpkg",
        "scene_classes.tif",
        "scene_confidence.tif",
        "scene_overlay.png",
        "scene_preview.png",
        "scene_summary.json",
    ]
    with rasterio.open(out / "scene_classes.tif") as result:
        assert result.crs == UTM and result.shape == (120, 150)
        labels = result.read(1)
    assert (labels[:, :20] == 255).all() and (labels[:, 20:] < 5).all()


def test_corrupt_tiff(monkeypatch, capsys, tmp_path, model_file):
    bad = tmp_path / "noise.tif"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", bad, "-m", model_file, "-o", out, *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, out, "noise.tif")


def test_truncated_tiff(monkeypatch, capsys, tmp_path, model_file):
    """Its header is intact, so it fails only while pixels are read, after the model loaded."""
    whole = write_tif(tmp_path / "whole.tif", pixels(300, 200, seed=2))
    cut = tmp_path / "cut.tif"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", cut, "-m", model_file, "-o", out, *FAST, "-q")
    assert_failed_cleanly(code, capsys.readouterr().err, out, "cut.tif")


def test_corrupt_tiff_in_a_subprocess(tmp_path, model_file):
    """The real stderr of the command: one error line, no traceback, nothing written."""
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00" + bytes(range(256)) * 8)  # a TIFF signature, then garbage
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "crossearth", "predict", str(bad), "-m", str(model_file)]
    proc = subprocess.run(
        [*cmd, "-o", str(out), *FAST],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_failed_cleanly(proc.returncode, proc.stderr, out, "broken.tif")


def test_band_out_of_range(monkeypatch, capsys, tmp_path, model_file):
    src = write_tif(tmp_path / "rgb.tif", pixels(40, 40))
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", out, "--bands", "1,2,9", *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, out, "9")


def test_two_bands_need_explicit_bands(monkeypatch, capsys, tmp_path, model_file):
    src = write_tif(tmp_path / "two.tif", pixels(40, 40, bands=2))
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", out, *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, out, "--bands")


def test_vector_needs_georeferencing(monkeypatch, capsys, tmp_path, model_file):
    src = tmp_path / "photo.png"
    Image.fromarray(np.moveaxis(pixels(40, 60), 0, -1)).save(src)
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", out, "--vector", "gpkg", *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, out, "--vector")


@pytest.mark.parametrize("target", ["missing/classes.tif", "missing/folder"])
def test_output_in_a_missing_folder(monkeypatch, capsys, tmp_path, model_file, target):
    src = write_tif(tmp_path / "rgb.tif", pixels(40, 40))
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", tmp_path / target, *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, tmp_path / "missing", "missing")
    assert not (tmp_path / "missing").exists()


def tall_scene(tmp_path: Path) -> Path:
    """600 rows: with --batch-size 1 the class map is written in two pieces (rows 0-255, rest)."""
    return write_tif(tmp_path / "tall.tif", pixels(600, 100, seed=3))


def test_disk_full_while_writing(monkeypatch, capsys, tmp_path, model_file):
    flush = crossearth.predict.writer._BandWriter._flush
    calls = []

    def failing_flush(self, n):
        calls.append(n)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return flush(self, n)

    monkeypatch.setattr(crossearth.predict.writer._BandWriter, "_flush", failing_flush)
    src = tall_scene(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    code = run(
        monkeypatch, "predict", src, "-m", model_file, "-o", out, "--batch-size", "1", *FAST, "-q"
    )
    assert len(calls) == 2, "the failure must come after a first block was written"
    assert_failed_cleanly(code, capsys.readouterr().err, out, "No space left on device")


def test_disk_full_while_writing_the_preview(monkeypatch, capsys, tmp_path, model_file):
    def no_space(rgb, out_png):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(crossearth.geo.render, "_save_png", no_space)
    src = write_tif(tmp_path / "small.tif", pixels(64, 80, seed=4))
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", out, *FAST, "-q")
    assert_failed_cleanly(code, capsys.readouterr().err, out, "No space left on device")


def test_ctrl_c_leaves_nothing(monkeypatch, capsys, tmp_path, model_file):
    scores = StreamingSegmenter._scores
    calls = []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 3:  # after two batches: one block of rows is already on disk
            raise KeyboardInterrupt
        return scores(self, *args)

    monkeypatch.setattr(StreamingSegmenter, "_scores", interrupted)
    src = tall_scene(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    run(monkeypatch, "predict", src, "-m", model_file, "-o", out, "--batch-size", "1", *FAST, "-q")
    assert len(calls) == 3
    assert "Traceback" not in capsys.readouterr().err
    assert os.listdir(out) == []


def test_ctrl_c_exits_130(monkeypatch, capsys, tmp_path, model_file):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(crossearth.cli.predict, "_probe_inputs", interrupted)
    src = write_tif(tmp_path / "rgb.tif", pixels(40, 40))
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", tmp_path / "out", *FAST)
    assert code == 130
    assert "aborted" in capsys.readouterr().err


def test_processes_started_by_a_launcher_are_refused(monkeypatch, capsys, tmp_path, model_file):
    """Under torchrun/srun every process would run every scene: one error line instead,
    naming what replaced the launchers (--cluster), and nothing written."""
    src = write_tif(tmp_path / "r0.tif", pixels(40, 40))
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", tmp_path / "out", *FAST)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith("error: 2 processes were started (WORLD_SIZE=2)") and "--cluster" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# output safety (issue 12): never over an input, collisions, own outputs, signals


def test_output_named_like_the_input_is_refused_and_the_input_kept(
    monkeypatch, capsys, tmp_path, model_file
):
    src = write_tif(tmp_path / "scene.tif", pixels(40, 40))
    before = src.read_bytes()
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", src, *FAST)
    err = capsys.readouterr().err
    assert code == 1 and "over the input" in err and "Traceback" not in err
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["scene.tif"]


def test_python_api_refuses_to_write_over_its_input(tmp_path, varied_model):
    from crossearth.errors import InputError
    from crossearth.predict import predict_raster

    src = write_tif(tmp_path / "scene.tif", pixels(40, 40))
    before = src.read_bytes()
    with pytest.raises(InputError, match="over the input"):
        predict_raster(varied_model, src, src)
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["scene.tif"]


def test_an_input_named_like_another_inputs_output_is_refused(
    monkeypatch, capsys, tmp_path, model_file
):
    folder = tmp_path / "in"
    folder.mkdir()
    write_tif(folder / "scene.tif", pixels(40, 40))
    photo = folder / "scene_preview.png"  # the user's own image, not an output of ours
    Image.fromarray(np.moveaxis(pixels(40, 40, seed=3), 0, -1)).save(photo)
    before = photo.read_bytes()
    code = run(monkeypatch, "predict", folder, "-m", model_file, "-o", folder, *FAST)
    err = capsys.readouterr().err
    assert code == 1 and "over the input" in err and "scene_preview.png" in err
    assert photo.read_bytes() == before
    assert sorted(os.listdir(folder)) == ["scene.tif", "scene_preview.png"]


def test_same_names_in_different_folders_both_get_outputs(monkeypatch, tmp_path, model_file):
    (tmp_path / "2020").mkdir()
    (tmp_path / "2021").mkdir()
    a = write_tif(tmp_path / "2020" / "tile_01.tif", pixels(48, 48, seed=1))
    b = write_tif(tmp_path / "2021" / "tile_01.tif", pixels(48, 48, seed=2))
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", a, b, "-m", model_file, "-o", out, *FAST, "-q")
    assert code == 0
    names = sorted(os.listdir(out))
    assert "2020_tile_01_classes.tif" in names and "2021_tile_01_classes.tif" in names
    for year, src in (("2020", a), ("2021", b)):
        summary = json.loads((out / f"{year}_tile_01_summary.json").read_text())
        assert summary["input"] == str(src)
        assert summary["class_map"] == str(out / f"{year}_tile_01_classes.tif")


def test_collisions_that_cannot_be_told_apart_are_refused_before_any_work(
    monkeypatch, capsys, tmp_path, model_file
):
    for folder in ("b", "z", "x"):
        (tmp_path / folder).mkdir()
    files = [
        write_tif(tmp_path / "b" / "c.tif", pixels(40, 40)),
        write_tif(tmp_path / "z" / "c.tif", pixels(40, 40)),
        write_tif(tmp_path / "x" / "b_c.tif", pixels(40, 40)),  # = the name b/c.tif would get
    ]
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", *files, "-m", tmp_path / "no-model-needed.pth", "-o", out)
    assert_failed_cleanly(code, capsys.readouterr().err, out, "b_c")
    assert not out.exists()  # refused before the model was even looked for


def test_rerun_on_a_folder_with_earlier_outputs_skips_them(
    monkeypatch, capsys, tmp_path, model_file
):
    folder = tmp_path / "scenes"
    folder.mkdir()
    write_tif(folder / "scene.tif", pixels(40, 56, seed=5))
    (folder / ".scene.k3j2.tmp.tif").write_bytes(b"left by a killed run")  # a temporary
    assert run(monkeypatch, "predict", folder, "-m", model_file, "-o", folder, *FAST, "-q") == 0
    first = sorted(os.listdir(folder))
    assert "scene_classes.tif" in first
    capsys.readouterr()
    assert run(monkeypatch, "predict", folder, "-m", model_file, "-o", folder, *FAST) == 0
    err = capsys.readouterr().err
    assert sorted(os.listdir(folder)) == first  # no scene_classes_classes.tif, no new files
    assert len([line for line in err.splitlines() if " -> " in line]) == 1
    assert "skipped" in err


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGUSR1"])
def test_scheduler_signal_leaves_no_file(tmp_path, model_file, signame):
    """A real subprocess gets the signal mid-run: no output and no temporary file remain."""
    import signal
    import time

    src = write_tif(tmp_path / "big.tif", pixels(1024, 1024, seed=6))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "crossearth", "predict", str(src), "-m", str(model_file)]
    cmd += ["-o", str(out), *FAST, "-q", "--tile", "64", "--batch-size", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not os.listdir(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # wait until the run is writing (hidden temporary files exist)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    assert os.listdir(out), "no temporary file appeared"
    number = getattr(signal, signame)
    proc.send_signal(number)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + number, err
    assert "Traceback" not in err and signame in err
    assert os.listdir(out) == []


# ---------------------------------------------------------------------------------------------
# options (issue 12): validated in one place, before the model is loaded


def test_tile_without_stride_uses_the_official_ratio(monkeypatch, tmp_path, model_file):
    src = write_tif(tmp_path / "scene.tif", pixels(150, 150, seed=7))
    out = tmp_path / "out"
    assert (
        run(monkeypatch, "predict", src, "-m", model_file, "-o", out, "--tile", "100", *FAST, "-q")
        == 0
    )
    summary = json.loads((out / "scene_summary.json").read_text())
    assert summary["options"]["tile"] == 100
    assert summary["options"]["stride"] == 100 * 2 // 3  # official 341/512: two thirds, floored
    assert summary["windows"] == 2 * 2  # 150 px, 100 px windows 66 apart: at 0 and 50 (last)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--stride", "0"), "--stride"),
        (("--tile", "0"), "--tile"),
        (("--batch-size", "0"), "--batch-size"),
        (("--tile", "64", "--stride", "100"), "--stride"),
        (("--blend", "median"), "--blend"),
        (("--tta", "rot"), "--tta"),
        (("--vector", "shp"), "--vector"),
        (("--scale", "p5"), "--scale"),
    ],
)
def test_bad_option_values_fail_before_loading_the_model(
    monkeypatch, capsys, tmp_path, args, needle
):
    src = write_tif(tmp_path / "scene.tif", pixels(40, 40))
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", src, "-m", tmp_path / "absent.pth", "-o", out, *args)
    assert_failed_cleanly(code, capsys.readouterr().err, out, needle)


def test_tile_below_the_model_minimum_is_one_error_line(monkeypatch, capsys, tmp_path, model_file):
    src = write_tif(tmp_path / "scene.tif", pixels(40, 40))
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", src, "-m", model_file, "-o", out, "--tile", "8", *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, out, "--tile 8", "32")
    assert not out.exists(), "a failed run leaves no empty output folder"


@pytest.mark.parametrize("failure", ["missing model", "vector without georeferencing"])
def test_a_failed_run_leaves_no_folder_it_made(monkeypatch, capsys, tmp_path, model_file, failure):
    if failure == "missing model":
        src, extra = (
            write_tif(tmp_path / "scene.tif", pixels(40, 40)),
            ("-m", tmp_path / "no.safetensors"),
        )
    else:
        src = tmp_path / "photo.png"
        Image.fromarray(np.moveaxis(pixels(40, 60), 0, -1)).save(src)
        extra = ("-m", model_file, "--vector", "gpkg")
    out = tmp_path / "new"
    code = run(monkeypatch, "predict", src, *extra, "-o", out, *FAST)
    assert_failed_cleanly(code, capsys.readouterr().err, out)
    assert not out.exists()


def test_thin_strip_gets_a_class_map_from_the_cli(monkeypatch, tmp_path, model_file):
    src = write_tif(tmp_path / "strip.tif", pixels(1, 300, seed=8))
    out = tmp_path / "out"
    assert run(monkeypatch, "predict", src, "-m", model_file, "-o", out, *FAST, "-q") == 0
    with rasterio.open(out / "strip_classes.tif") as result:
        assert result.shape == (1, 300) and (result.read(1) < 5).all()


def test_areas_in_the_summary_and_polygons_carry_no_float_noise(monkeypatch, tmp_path, model_file):
    """0.3 m UTM pixels: 0.09 m² / 0.9996² each, endless decimals; people read 0.01 m²."""
    import pyogrio.raw

    src = write_tif(tmp_path / "scene.tif", pixels(96, 80, seed=3))
    out = tmp_path / "out"
    args = ("predict", src, "-m", model_file, "-o", out, "--vector", "gpkg", *FAST, "-q")
    assert run(monkeypatch, *args) == 0
    text = (out / "scene_summary.json").read_text()
    m2 = re.findall(r'"area_m2": (-?[\d.e+-]+)', text)
    ha = re.findall(r'"area_ha": (-?[\d.e+-]+)', text)
    assert len(m2) == len(ha) == 5
    assert all(len(v.partition(".")[2]) <= 2 for v in m2), m2
    assert all(round(float(v), 6) == float(v) for v in ha), ha
    summary = json.loads(text)
    for row in summary["classes"]:  # the rounding, not another area
        assert row["area_m2"] == pytest.approx(row["pixels"] * 0.09 / 0.9996**2, abs=0.005)
        assert row["area_ha"] == pytest.approx(row["area_m2"] / 1e4, abs=1e-6)
    for value in summary["seconds"].values():
        assert round(value, 3) == value
    _, _, _, columns = pyogrio.raw.read(out / "scene.gpkg", read_geometry=False)[:4]
    ground = columns[3]  # class_id, class_name, area, area_m2
    assert (np.round(ground, 2) == ground).all()
    total = ground.sum()
    assert total == pytest.approx(96 * 80 * 0.09 / 0.9996**2, abs=0.005 * len(ground))

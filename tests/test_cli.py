"""The `crossearth` command: predictions on PNG/JPEG/TIFF and clear failures on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from cli_runner import run_cli as run
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

import crossearth


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256", num_classes=4)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    crossearth.save_model(model, path)
    return path


@pytest.fixture()
def scene():
    return np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)


def test_predict_png_matches_python_api(monkeypatch, tmp_path, model_file, scene):
    src = tmp_path / "scene.png"
    Image.fromarray(scene).save(src)
    out = tmp_path / "out" / "classes.png"
    out.parent.mkdir()
    assert (
        run(
            monkeypatch,
            "predict",
            src,
            "--model",
            model_file,
            "-o",
            out,
            "--device",
            "cpu",
            "--precision",
            "fp32",
        )
        == 0
    )
    written = np.asarray(Image.open(out))
    expected = crossearth.load_model(model_file).predict(scene).labels
    assert written.shape == (200, 300)
    assert np.array_equal(written, expected)
    assert Image.open(out).mode == "P"  # palette PNG: ids are the pixel values, colours for viewing


def test_predict_jpeg_into_folder(monkeypatch, tmp_path, model_file, scene):
    for name in ("a.jpg", "b.jpeg"):
        Image.fromarray(scene).save(tmp_path / name, quality=95)
    out = tmp_path / "maps"
    code = run(
        monkeypatch, "predict", tmp_path / "a.jpg", tmp_path / "b.jpeg", "-m", model_file, "-o", out
    )
    assert code == 0
    maps = sorted(p.name for p in out.iterdir() if p.name.endswith("_classes.png"))
    assert maps == ["a_classes.png", "b_classes.png"]
    assert (out / "a_summary.json").is_file() and (out / "b_preview.png").is_file()


def test_predict_geotiff_keeps_georeferencing(monkeypatch, tmp_path, model_file, scene):
    src = tmp_path / "scene.tif"
    transform = from_origin(500000.0, 5800000.0, 0.3, 0.3)
    profile = dict(
        driver="GTiff",
        height=200,
        width=300,
        count=4,
        dtype="uint8",
        crs=CRS.from_epsg(32632),
        transform=transform,
    )
    with rasterio.open(src, "w", **profile) as dst:
        dst.write(np.moveaxis(scene, -1, 0), [1, 2, 3])
        dst.write(np.full((200, 300), 7, np.uint8), 4)
    out = tmp_path / "classes.tif"
    assert (
        run(
            monkeypatch,
            "predict",
            src,
            "-m",
            model_file,
            "-o",
            out,
            "--bands",
            "1,2,3",
            "--precision",
            "fp32",
        )
        == 0
    )
    with rasterio.open(out) as result:
        assert result.crs == CRS.from_epsg(32632)
        assert result.transform == transform
        labels = result.read(1)
        assert result.colormap(1)[0][:3] == tuple(
            crossearth.load_model(model_file).config.palette[0]
        )
    assert np.array_equal(labels, crossearth.load_model(model_file).predict(scene).labels)


def test_band_choice_changes_the_input(monkeypatch, tmp_path, model_file, scene):
    src = tmp_path / "scene.tif"
    with rasterio.open(
        src, "w", driver="GTiff", height=200, width=300, count=3, dtype="uint8"
    ) as dst:
        dst.write(np.moveaxis(scene, -1, 0))
    out = tmp_path / "swapped.png"
    assert (
        run(
            monkeypatch,
            "predict",
            src,
            "-m",
            model_file,
            "-o",
            out,
            "--bands",
            "3,2,1",
            "--precision",
            "fp32",
        )
        == 0
    )
    expected = (
        crossearth.load_model(model_file).predict(np.ascontiguousarray(scene[..., ::-1])).labels
    )
    assert np.array_equal(np.asarray(Image.open(out)), expected)


def _assert_failed_cleanly(code, capsys, out_dir, *needles):
    assert code != 0
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert "model loaded" not in err  # input checks come before the (slow) model load
    for needle in needles:
        assert needle in err, err
    assert not any(out_dir.iterdir()) if out_dir.exists() else True


def test_missing_image(monkeypatch, capsys, tmp_path, model_file):
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", tmp_path / "nope.png", "-m", model_file, "-o", out)
    _assert_failed_cleanly(code, capsys, out, "not found")


def test_not_an_image(monkeypatch, capsys, tmp_path, model_file):
    bad = tmp_path / "notes.png"
    bad.write_text("this is text, not pixels")
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", bad, "-m", model_file, "-o", out)
    _assert_failed_cleanly(code, capsys, out, "not a readable image")


def test_one_band_image(monkeypatch, capsys, tmp_path, model_file):
    gray = tmp_path / "gray.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(gray)
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", gray, "-m", model_file, "-o", out)
    _assert_failed_cleanly(code, capsys, out, "1 data band", "needs 3")


def test_checkpoint_of_another_model(monkeypatch, capsys, tmp_path, scene):
    other = tmp_path / "resnet.pth"
    torch.save(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 2, 1)).state_dict(), other
    )
    src = tmp_path / "scene.png"
    Image.fromarray(scene).save(src)
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", src, "-m", other, "--config", "vit-tiny-256", "-o", out)
    err_needles = ("another model",)
    assert code != 0
    err = capsys.readouterr().err
    assert all(n in err for n in err_needles) and not any(out.iterdir())


def test_truncated_checkpoint(monkeypatch, capsys, tmp_path, model_file, scene):
    cut = tmp_path / "cut.safetensors"
    data = model_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    src = tmp_path / "scene.png"
    Image.fromarray(scene).save(src)
    out = tmp_path / "out"
    out.mkdir()
    code = run(monkeypatch, "predict", src, "-m", cut, "-o", out)
    _assert_failed_cleanly(code, capsys, out, "cut.safetensors")


def test_failed_write_leaves_no_file(monkeypatch, tmp_path, model_file, scene):
    src = tmp_path / "scene.png"
    Image.fromarray(scene).save(src)
    out = tmp_path / "classes.png"
    import crossearth.imageio as imageio

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(imageio, "_write_png", explode)
    assert run(monkeypatch, "predict", src, "-m", model_file, "-o", out, "-q") == 1
    assert list(tmp_path.iterdir()) == [src]


def test_models_lists_the_zoo(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "250")
    assert run(monkeypatch, "models") == 0
    printed = capsys.readouterr().out
    for name in ("potsdam-irrg", "vaihingen", "casid-trorf", "deepglobe-roads"):
        assert name in printed


def test_convert_official_to_single_file(monkeypatch, tmp_path, model_file):
    # an official-layout .pth ({'state_dict', 'meta'}) -> our file -> same predictions
    model = crossearth.load_model(model_file)
    official = tmp_path / "official.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, official)
    out = tmp_path / "converted.safetensors"
    assert run(monkeypatch, "convert", official, "--config", "vit-tiny-256", "-o", out) == 0
    converted = crossearth.load_model(out)  # no config needed any more: it is in the file
    image = np.random.default_rng(3).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert np.array_equal(converted.predict(image).scores, model.predict(image).scores)


def test_offline_zoo_model_is_a_clear_error(monkeypatch, capsys, tmp_path, scene):
    monkeypatch.setenv("CROSSEARTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    src = tmp_path / "scene.png"
    Image.fromarray(scene).save(src)
    code = run(monkeypatch, "predict", src, "-m", "potsdam-irrg", "-o", tmp_path / "o.png")
    _assert_failed_cleanly(
        code, capsys, tmp_path / "none", "Potsdam(i)-source.pth", "huggingface.co"
    )
    assert not (tmp_path / "o.png").exists()


def test_a_batch_goes_on_past_a_bad_scene_and_fails_at_the_end(
    monkeypatch, capsys, tmp_path, model_file
):
    """A folder with one scene that cannot have polygons (no georeferencing): the others are
    written, every failure is reported, and the exit code is non-zero."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name in ("a", "c"):
        profile = dict(driver="GTiff", width=48, height=40, count=3, dtype="uint8",
                       crs=CRS.from_epsg(32633), transform=from_origin(500_000, 5_500_000, 1, 1))  # fmt: skip
        with rasterio.open(folder / f"{name}.tif", "w", **profile) as dst:
            dst.write(rng.integers(0, 255, (3, 40, 48), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / "b.png")
    out = tmp_path / "out"
    code = run(monkeypatch, "predict", folder, "--model", model_file, "-o", out, "--vector",
               "gpkg", "--precision", "fp32")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "1 of 3 scenes failed" in err and "b:" in err and "Traceback" not in err
    assert (out / "a_classes.tif").is_file() and (out / "c_classes.tif").is_file()
    assert (out / "a.gpkg").is_file() and not list(out.glob("b*"))

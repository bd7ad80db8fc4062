"""Wording (issue 22): "an RGB model", "1 image", "2nd", and bands said to come from the model
when a fine-tuned model chose them, checked on the messages users see."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import rasterio
from cli_runner import run_cli
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

import crossearth
from crossearth.errors import InputError
from crossearth.geo.bands import choose_bands
from crossearth.wording import article, count, ordinal, with_article


@pytest.mark.parametrize(
    ("word", "expected"),
    [("RGB", "an"), ("IRRG", "an"), ("NIR", "an"), ("ISPRS", "an"), ("GeoTIFF", "a"),
     ("SAR", "an"), ("LiDAR", "a"), ("UAV", "a"), ("onnx", "an"), ("torch-export", "a"),
     ("OrderedDict", "an"), ("hour", "an"), ("unit", "a"), ("one-band", "a"), ("8-bit", "an"),
     ("16-bit", "a"), ("11-band", "an"), ("18", "an"), ("100", "a"), ("x", "an"), ("", "a")],
)  # fmt: skip
def test_articles_follow_how_words_are_spoken(word, expected):
    assert article(word) == expected
    assert with_article(word) == f"{expected} {word}"


def test_counts_and_ordinals():
    assert [count(n, "image") for n in (0, 1, 2, 1234)] == [
        "0 images", "1 image", "2 images", "1,234 images",
    ]  # fmt: skip
    assert count(1, "class") == "1 class" and count(3, "class") == "3 classes"
    assert count(2, "boundary") == "2 boundaries" and count(2, "day") == "2 days"
    assert count(2, "nodata pixel") == "2 nodata pixels"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 102, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd", "111th",
    ]  # fmt: skip


def write(path, count_: int, interp=None, descriptions=None):
    data = np.random.default_rng(0).integers(0, 256, (count_, 64, 64), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", height=64, width=64, count=count_,
                       dtype="uint8", crs=CRS.from_epsg(32632),
                       transform=from_origin(5e5, 5.8e6, 1, 1)) as dst:  # fmt: skip
        dst.write(data)
        if interp:
            dst.colorinterp = interp
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return path


@pytest.mark.parametrize("layout", ["RGB", "IRRG"])
def test_band_errors_say_an_rgb_model(tmp_path, layout):
    path = write(tmp_path / "a.tif", 5, descriptions=["x", "y", "z", "w", "v"])
    with rasterio.open(path) as ds, pytest.raises(InputError) as err:
        choose_bands(ds, layout, None)
    assert f"an {layout} model needs" in str(err.value)
    assert f"a {layout} model" not in str(err.value)


def test_bands_chosen_by_a_fine_tuned_model_are_said_to_come_from_it(tmp_path, varied_model):
    net = varied_model
    original = net.config
    net.config = dataclasses.replace(original, band_indices=(4, 1, 2))
    try:
        model = crossearth.save_model(net, tmp_path / "tuned.safetensors")
    finally:
        net.config = original
    four = write(tmp_path / "four.tif", 4)
    three = write(tmp_path / "three.tif", 3)
    tuned = crossearth.load_model(model)
    summary = crossearth.predict_raster(tuned, four, tmp_path / "out")
    assert "from the model" in summary["bands_reason"] and "--bands" not in summary["bands_reason"]
    assert summary["bands"] == [4, 1, 2]
    with pytest.raises(InputError) as err:
        crossearth.predict_raster(tuned, three, tmp_path / "out3")
    message = str(err.value)
    assert message.startswith("bands from the model: band 4 does not exist")
    assert "has 3 bands" in message and "pass --bands" in message
    # --bands given: the user's own words
    options = crossearth.PredictOptions(bands=(3, 2, 1))
    summary = crossearth.predict_raster(tuned, four, tmp_path / "out4", options)
    assert "from --bands" in summary["bands_reason"]
    with rasterio.open(three) as ds, pytest.raises(InputError, match=r"^--bands: band 5 "):
        choose_bands(ds, "RGB", (5, 1, 2))


def test_one_skipped_file_is_one_file(monkeypatch, capsys, tmp_path, varied_model):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "scene.tif", 3, interp=[ColorInterp.red, ColorInterp.green, ColorInterp.blue])
    write(folder / ".scene.partial.tif", 3)  # a hidden temporary file of an interrupted run
    model = crossearth.save_model(varied_model, tmp_path / "m.safetensors")
    code = run_cli(monkeypatch, "predict", folder, "-m", model, "-o", tmp_path / "out",
                   "--precision", "fp32", "--no-overlay")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "note: 1 file in the input folders is an output or temporary file" in err
    assert "was skipped" in err and "file(s)" not in err
    summary = json.loads((tmp_path / "out" / "scene_summary.json").read_text())
    assert summary["windows"] >= 1

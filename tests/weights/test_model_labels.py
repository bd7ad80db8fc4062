"""Class names, palette and GSD set through the Python API end up in the model file."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

import crossearth
from crossearth.errors import ConfigError

NAMES = ("water", "forest", "bare")
PALETTE = ((30, 90, 200), (20, 130, 40), (200, 180, 140))


def _file_config(path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["config"])


def test_create_model_records_labels_in_the_saved_file(tmp_path):
    model = crossearth.create_model("vit-tiny-256", class_names=NAMES, palette=PALETTE, gsd_m=0.3)
    assert model.num_classes == 3  # taken from the names
    path = crossearth.save_model(model, tmp_path / "m.safetensors")
    stored = _file_config(path)
    assert stored["class_names"] == list(NAMES)
    assert [tuple(c) for c in stored["palette"]] == list(PALETTE)
    assert stored["gsd_m"] == 0.3
    loaded = crossearth.load_model(path).config
    assert loaded.class_names == NAMES and loaded.palette == PALETTE and loaded.gsd_m == 0.3


def test_save_model_sets_labels_without_changing_the_model(tmp_path):
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    path = crossearth.save_model(
        model, tmp_path / "m.safetensors", class_names=NAMES, palette=PALETTE, gsd_m=2
    )
    loaded = crossearth.load_model(path).config
    assert loaded.class_names == NAMES and loaded.palette == PALETTE and loaded.gsd_m == 2.0
    assert model.config.class_names != NAMES and model.config.gsd_m is None


def test_save_model_keeps_labels_it_is_not_given(tmp_path):
    model = crossearth.create_model("vit-tiny-256", class_names=NAMES, palette=PALETTE)
    path = crossearth.save_model(model, tmp_path / "m.safetensors", gsd_m=0.5)
    stored = _file_config(path)
    assert stored["class_names"] == list(NAMES) and stored["gsd_m"] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"class_names": ("a", "b")}, ["2 class names", "3 classes"]),
        ({"class_names": "water"}, ["list of names"]),
        ({"class_names": ("a", "a", "b")}, ["distinct"]),
        ({"palette": ((0, 0, 0), (1, 1, 1))}, ["2 palette colours", "3 classes"]),
        ({"palette": ((0, 0, 0), (1, 1, 1), (300, 0, 0))}, ["colour 2", "0-255"]),
        ({"palette": ((0, 0, 0), (1, 1), (2, 2, 2))}, ["colour 1"]),
        ({"palette": ((0, 0, 0), "red", (2, 2, 2))}, ["colour 1"]),
        ({"gsd_m": 0}, ["gsd_m", "positive"]),
        ({"gsd_m": float("nan")}, ["gsd_m"]),
        ({"gsd_m": "fine"}, ["gsd_m"]),
    ],
)
def test_bad_labels_are_refused_with_the_reason(tmp_path, kwargs, words):
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    target = tmp_path / "m.safetensors"
    with pytest.raises(ConfigError) as info:
        crossearth.save_model(model, target, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)
    assert not target.exists()
    with pytest.raises(ConfigError):
        crossearth.create_model("vit-tiny-256", num_classes=3, **kwargs)


def test_create_model_with_an_unknown_preset_names_the_known_ones():
    with pytest.raises(KeyError, match="vit-tiny-256"):
        crossearth.create_model("vit-huge")

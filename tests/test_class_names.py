"""A model of other classes with the same class count (issue 22): a road/roof/grass model is
not scored as water/forest/bare. Names are compared wherever a model's classes meet a data
set's (eval --data, eval --setting, train --init), ignoring case, spaces, `_` and `-`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from cli_runner import run_cli_captured as cli

import crossearth
from crossearth.benchmark import get_setting
from crossearth.data.classes import class_key, differing_class_names
from crossearth.errors import ConfigError
from crossearth.evaluate import check_model_fits
from crossearth.train.config import TrainConfig
from crossearth.train.run import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
import user_data as ud


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """One 64-px scene of water, forest and bare soil with its label raster."""
    root = tmp_path_factory.mktemp("cls")
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    geom = ud.scene_geometry(0, (64, 64))
    ud.write_image(root / "images" / "s.tif", geom)
    ud.write_id_mask(root / "masks" / "s.tif", geom)
    path = root / "data.yaml"
    path.write_text("classes: [water, forest, bare]\ntrain: {images: images, labels: masks}\n"
                    "val: {images: images, labels: masks}\n")  # fmt: skip
    return path


def model_file(folder: Path, names: list[str]) -> Path:
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256", class_names=names)
    return crossearth.save_model(model, folder / f"{'-'.join(names)}.safetensors")


def test_names_are_compared_without_case_spaces_or_separators():
    assert (
        class_key(" Low Vegetation") == class_key("low_vegetation") == class_key("LOW-vegetation")
    )
    assert differing_class_names(["Water", "forest "], ["water", "Forest"]) == []
    assert differing_class_names(["road", "forest"], ["water", "forest"]) == ["0: road / water"]
    assert differing_class_names(None, ["water"]) == [] == differing_class_names(["road"], None)


def test_eval_refuses_a_model_of_other_classes_in_one_line(monkeypatch, capsys, tmp_path, data):
    model = model_file(tmp_path, ["road", "roof", "grass"])
    out = tmp_path / "reports"
    code, output = cli(monkeypatch, capsys, "eval", "--data", data, "--model", model, "-o", out,
                       "--precision", "fp32", "--device", "cpu")  # fmt: skip
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), output
    for pair in ("0: road / water", "1: roof / forest", "2: grass / bare"):
        assert pair in lines[0]
    assert "--ignore-class-names" in lines[0] and not out.exists()
    code, output = cli(monkeypatch, capsys, "eval", "--data", data, "--model", model, "-o", out,
                       "--precision", "fp32", "--device", "cpu", "--ignore-class-names")  # fmt: skip
    assert code == 0, output
    assert list(out.glob("eval_*.json"))


def test_eval_takes_the_same_classes_written_otherwise(monkeypatch, capsys, tmp_path, data):
    model = model_file(tmp_path, ["Water", "Forest", "BARE"])
    code, output = cli(monkeypatch, capsys, "eval", "--data", data, "--model", model,
                       "-o", tmp_path / "r", "--precision", "fp32", "--device", "cpu")  # fmt: skip
    assert code == 0, output


def test_a_benchmark_setting_refuses_a_model_of_other_classes():
    setting = get_setting("P(i)2V")  # ISPRS: impervious_surface, building, ...
    other = crossearth.create_model("vit-tiny-256", class_names=[f"c{i}" for i in range(6)])
    with pytest.raises(ConfigError, match="0: c0 / impervious_surface"):
        check_model_fits(other, setting)
    check_model_fits(other, setting, ignore_class_names=True)
    isprs = crossearth.create_model("vit-tiny-256", class_names=["Impervious surface", "Building",
                                    "Low vegetation", "Tree", "Car", "Clutter"])  # fmt: skip
    check_model_fits(isprs, setting)


def test_init_from_a_model_of_other_classes_relearns_the_class_embedding(tmp_path):
    source = model_file(tmp_path, ["road", "roof", "grass"])
    original = crossearth.load_model(source).state_dict()
    cfg = TrainConfig(init=str(source), preset="vit-tiny-256")
    said: list[str] = []
    model = build_model(cfg, 3, {"class_names": ("water", "forest", "bare")}, report=said.append)
    state = model.state_dict()
    assert not torch.equal(state["decode_head.cls_embed.weight"],
                           original["decode_head.cls_embed.weight"])  # fmt: skip
    kept = [k for k in original if not k.startswith("decode_head.cls_embed.")]
    assert all(torch.equal(state[k], original[k]) for k in kept)
    assert len(said) == 1 and "0: road / water" in said[0] and "cls_embed" in said[0]
    assert model.config.class_names == ("water", "forest", "bare")
    # the same classes, written otherwise: everything is kept, nothing is said
    said.clear()
    same = build_model(cfg, 3, {"class_names": ("ROAD", "Roof", "grass")}, report=said.append)
    assert said == []
    assert torch.equal(same.state_dict()["decode_head.cls_embed.weight"],
                       original["decode_head.cls_embed.weight"])  # fmt: skip

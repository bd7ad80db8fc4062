"""Config sources: preset names, our JSON, the official mmseg model config (JSON or flat Python)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import crossearth
from crossearth.config import ModelConfig
from crossearth.errors import ConfigError
from crossearth.weights.architecture import read_config_source
from crossearth.weights.python_config import read_python_config


@pytest.fixture(scope="module")
def official(reference_dir) -> dict:
    path = reference_dir / "small_ref2_config.json"
    if not path.is_file():
        pytest.skip(f"{path} not found: this copy of the official reference lacks it")
    return json.loads(path.read_text())


class Ref:
    """A name assigned earlier in the Python config (emitted bare, not as a literal)."""

    def __init__(self, name: str) -> None:
        self.name = name


def to_python(value) -> str:
    """Write a JSON-like value as mmengine-style Python source (`dict(k=v)`, lists, tuples)."""
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, dict):
        if all(isinstance(k, str) and k.isidentifier() for k in value):
            return "dict(" + ", ".join(f"{k}={to_python(v)}" for k, v in value.items()) + ")"
        return "{" + ", ".join(f"{k!r}: {to_python(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_python(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(f"{to_python(v)}, " for v in value) + ")"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(type(value))


def python_config_text(model: dict) -> str:
    """A dumped mmengine config: other top-level entries, names referenced by `model`."""
    model = copy.deepcopy(model)
    model["test_cfg"]["crop_size"] = Ref("crop_size")
    model["data_preprocessor"]["size"] = Ref("crop_size")
    model["decode_head"]["num_classes"] = Ref("num_classes")
    model["decode_head"]["ignore_index"] = -1
    return "\n".join(
        [
            "crop_size = (256, 256)",
            "num_classes = 5",
            "norm_cfg = dict(type='SyncBN', requires_grad=True)",
            "train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5)]",
            "iters = 2 * 20000  # not a literal: skipped, never evaluated",
            "param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, by_epoch=False)]",
            "load_from = None",
            "work_dir = './work_dirs/crossearth'",
            f"model = {to_python(model)}",
            "",
        ]
    )


def assert_small_ref2_fields(cfg: ModelConfig) -> None:
    assert cfg.backbone.embed_dim == 128
    assert cfg.backbone.depth == 6
    assert cfg.backbone.num_heads == 2
    assert cfg.backbone.img_size == 256 and cfg.backbone.patch_size == 16
    assert tuple(cfg.backbone.out_indices) == (1, 2, 4, 5)
    assert cfg.rein.lora_dim == 8 and cfg.rein.token_length == 100
    assert cfg.head.num_classes == 5
    assert cfg.head.encoder_layers == 2
    assert cfg.head.decoder_layers == 3
    assert cfg.head.decoder_ffn_dim == 1024
    assert tuple(cfg.inference.crop_size) == (256, 256)
    assert tuple(cfg.inference.stride) == (171, 171)


def test_preset_name():
    cfg = read_config_source("vit-tiny-256")
    assert cfg == crossearth.get_preset("vit-tiny-256")
    assert read_config_source(None) is None
    assert read_config_source(cfg) is cfg


def test_unknown_preset_name_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="preset"):
        read_config_source("vitl-768")


def test_our_json(tmp_path):
    cfg = crossearth.get_preset("vits-512", 3).replace(
        class_names=("background", "building", "road"),
        palette=((0, 0, 0), (255, 0, 0), (255, 255, 255)),
    )
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert read_config_source(path) == cfg
    assert read_config_source(str(path)) == cfg
    assert read_config_source(json.loads(path.read_text())) == cfg


def test_official_json(reference_dir, official):
    cfg = read_config_source(reference_dir / "small_ref2_config.json")
    assert_small_ref2_fields(cfg)
    assert read_config_source(official) == cfg


def test_official_config_is_the_tiny_preset(official):
    cfg = read_config_source(official)
    preset = crossearth.get_preset("vit-tiny-256", 5)
    for section in ("backbone", "rein", "head", "inference"):
        assert getattr(cfg, section) == getattr(preset, section), section


def test_whole_mmengine_config_dict(official, tmp_path):
    whole = {
        "model": official,
        "crop_size": [256, 256],
        "train_dataloader": {"batch_size": 2, "dataset": {"type": "PotsdamDataset"}},
        "default_scope": "mmseg",
    }
    assert_small_ref2_fields(read_config_source(whole))
    path = tmp_path / "whole.json"
    path.write_text(json.dumps(whole))
    assert_small_ref2_fields(read_config_source(path))


def test_flat_python_config(official, tmp_path):
    text = python_config_text(official)
    scope = read_python_config(text)
    assert scope["crop_size"] == (256, 256)
    assert "iters" not in scope
    assert scope["model"]["test_cfg"]["crop_size"] == (256, 256)
    assert scope["model"]["decode_head"]["ignore_index"] == -1
    assert scope["model"]["backbone"]["reins_config"]["link_token_to_query"] is True
    path = tmp_path / "dumped_config.py"
    path.write_text(text)
    cfg = read_config_source(path)
    assert_small_ref2_fields(cfg)
    assert cfg == read_config_source(official)


def test_python_config_with_base_is_refused(official, tmp_path):
    text = "_base_ = ['../_base_/models/crossearth.py']\n" + python_config_text(official)
    with pytest.raises(ConfigError, match="_base_"):
        read_python_config(text)
    path = tmp_path / "inherits.py"
    path.write_text(text)
    with pytest.raises(ConfigError):
        read_config_source(path)


def test_python_config_code_is_never_executed(official, tmp_path):
    sentinel = tmp_path / "pwned"
    touch = f"open({str(sentinel)!r}, 'w').write('x')"
    text = "\n".join(
        [
            "import os",
            f"os.system('touch {sentinel}')",
            f"x = __import__('os').system('touch {sentinel}')",
            f"y = {touch}",
            f"z = [dict(a={touch})]",
            python_config_text(official),
        ]
    )
    scope = read_python_config(text)
    assert not sentinel.exists()
    assert not {"os", "x", "y", "z"} & set(scope)
    assert_small_ref2_fields(read_config_source(scope))

    for model in (f"__import__('os').system('touch {sentinel}')", f"dict(type={touch})"):
        with pytest.raises(ConfigError):
            read_python_config(f"model = {model}\n")
        assert not sentinel.exists()


def test_python_config_syntax_error():
    with pytest.raises(ConfigError):
        read_python_config("model = dict(type='EncoderDecoder'\n")


@pytest.mark.parametrize(
    "data",
    [
        {"backbone": {"embed_dim": 128, "embed_dims": 128}},
        {"head": {"num_class": 5}},
        {"extra": 1},
    ],
)
def test_unknown_keys_in_our_json_are_refused(tmp_path, data):
    with pytest.raises(ConfigError):
        read_config_source(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError):
        read_config_source(path)


def test_malformed_json_files(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"backbone": ')
    with pytest.raises(ConfigError):
        read_config_source(path)
    path.write_text("[1, 2, 3]")
    with pytest.raises(ConfigError):
        read_config_source(path)


def _edited(official: dict, *path_and_value) -> dict:
    data = copy.deepcopy(official)
    *keys, last, value = path_and_value
    node = data
    for key in keys:
        node = node[key]
    node[last] = value
    return data


@pytest.mark.parametrize(
    "edit",
    [
        ("backbone", "type", "MixVisionTransformer"),
        ("decode_head", "type", "SegformerHead"),
        ("type", "CascadeEncoderDecoder"),
        ("backbone", "reins_config", "link_token_to_query", False),
        ("backbone", "ffn_layer", "swiglufused"),
        ("data_preprocessor", "bgr_to_rgb", False),
        ("test_cfg", "mode", "whole"),
    ],
)
def test_unsupported_official_settings_are_refused(official, edit):
    with pytest.raises(ConfigError):
        read_config_source(_edited(official, *edit))


def _drop_num_classes(data: dict) -> None:
    del data["decode_head"]["num_classes"]


def _null_pixel_decoder(data: dict) -> None:
    data["decode_head"]["pixel_decoder"] = None


def _int_out_indices(data: dict) -> None:
    data["backbone"]["out_indices"] = 5


def _int_crop_size(data: dict) -> None:
    data["test_cfg"]["crop_size"] = 256


@pytest.mark.parametrize(
    "edit", [_drop_num_classes, _null_pixel_decoder, _int_out_indices, _int_crop_size]
)
def test_malformed_official_config_is_a_config_error(official, edit):
    data = copy.deepcopy(official)
    edit(data)
    with pytest.raises(ConfigError):
        read_config_source(data)


def test_official_config_loads_its_checkpoint(reference_dir):
    ckpt = reference_dir / "small_ref2.pth"
    if not ckpt.is_file():
        pytest.skip(f"{ckpt} not found: this copy of the official reference lacks it")
    model = crossearth.load_model(ckpt, config=reference_dir / "small_ref2_config.json")
    assert model.load_report.missing == [] and model.load_report.unexpected == []
    assert_small_ref2_fields(model.config)


def test_config_from_checkpoint_meta(reference_dir, official, tmp_path):
    """mmengine keeps the run's config text in meta['cfg']: a config-less load uses it."""
    ckpt = reference_dir / "small_ref2.pth"
    if not ckpt.is_file():
        pytest.skip(f"{ckpt} not found: this copy of the official reference lacks it")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    path = tmp_path / "with_cfg.pth"
    torch.save({"state_dict": state, "meta": {"cfg": python_config_text(official)}}, path)
    model = crossearth.load_model(path)
    assert model.load_report.missing == [] and model.load_report.unexpected == []
    assert_small_ref2_fields(model.config)


def test_checkpoint_without_config_that_is_no_preset(tmp_path, tiny_full_state):
    path = tmp_path / "tiny.pth"
    torch.save({"state_dict": tiny_full_state, "meta": {}}, path)
    with pytest.raises(ConfigError, match="config"):
        crossearth.load_model(path)


def test_reference_checkpoint_without_config_is_no_preset(reference_dir):
    ckpt = reference_dir / "small_ref2.pth"  # its meta has no 'cfg'
    if not ckpt.is_file():
        pytest.skip(f"{ckpt} not found: this copy of the official reference lacks it")
    with pytest.raises(ConfigError, match="config"):
        crossearth.load_model(ckpt)

"""Full-size ViT-L checkpoints in the official key layout, generated from the official key listings.

The files are ~1.3 GB each, so they are written once per module and deleted afterwards.
"""

from __future__ import annotations

import gc
import json
import re
import shutil

import pytest
import torch

import crossearth
from crossearth.errors import CheckpointError, ConfigError

SPOT_KEYS = (
    "backbone.cls_token",
    "backbone.pos_embed",
    "backbone.patch_embed.proj.weight",
    "backbone.blocks.0.attn.qkv.weight",
    "backbone.blocks.23.mlp.fc2.bias",
    "backbone.blocks.11.ls1.gamma",
    "backbone.reins.scale",
    "backbone.reins.learnable_tokens_a",
    "backbone.reins.learnable_tokens_b",
    "decode_head.cls_embed.weight",
    "decode_head.transformer_decoder.layers.8.cross_attn.attn.in_proj_weight",
    "decode_head.pixel_decoder.encoder.layers.5.self_attn.sampling_offsets.weight",
)


def _listing(reference_dir, name: str) -> dict:
    path = reference_dir / name
    if not path.is_file():
        pytest.skip(f"{path} not found: this copy of the official reference lacks it")
    return json.loads(path.read_text())


def _random_state(entries: list[dict], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for entry in entries:
        if entry["key"].startswith("data_preprocessor."):
            continue  # non-persistent buffers, never in a checkpoint
        dtype = getattr(torch, entry["dtype"])  # rand: random enough, and faster than randn
        state[entry["key"]] = torch.rand(entry["shape"], generator=gen, dtype=dtype)
    return state


def _is_backbone_weight(key: str) -> bool:
    return key.startswith("backbone.") and not key.startswith("backbone.reins.")


@pytest.fixture(scope="module")
def listings(reference_dir):
    return _listing(reference_dir, "keys_vitl_512.json"), _listing(
        reference_dir, "keys_vitl_1024.json"
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    path = tmp_path_factory.mktemp("vitl")
    yield path
    shutil.rmtree(
        path, ignore_errors=True
    )  # several GB: do not leave them to pytest's tmp rotation


@pytest.fixture(scope="module")
def state_512(listings):
    listing, _ = listings
    state = _random_state(listing["full_state_dict"], seed=512)
    assert state["backbone.reins.scale"].dim() == 0
    assert len(state) == len(listing["full_state_dict"])
    yield state
    state.clear()
    gc.collect()


@pytest.fixture(scope="module")
def state_1024(listings, state_512):
    """The 1024 listing: same tensors as the 512 state where the shapes agree (saves memory)."""
    _, listing = listings
    gen = torch.Generator().manual_seed(1024)
    state = {}
    for entry in listing["full_state_dict"]:
        key, shape = entry["key"], tuple(entry["shape"])
        if key in state_512 and tuple(state_512[key].shape) == shape:
            state[key] = state_512[key]
        else:
            state[key] = torch.rand(shape, generator=gen, dtype=getattr(torch, entry["dtype"]))
    return state


def _save(state, path):
    torch.save({"state_dict": state, "meta": {}}, path)
    return path


@pytest.fixture(scope="module")
def full_512_path(state_512, workdir):
    path = _save(state_512, workdir / "full_512.pth")
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def full_1024_path(state_1024, workdir):
    path = _save(state_1024, workdir / "full_1024.pth")
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def rein_head_path(listings, state_512, workdir):
    """A released training checkpoint: only the keys the official model.state_dict() keeps."""
    keys = listings[0]["official_model_state_dict_keys"]
    assert not any(_is_backbone_weight(k) for k in keys)
    path = _save({k: state_512[k] for k in keys}, workdir / "rein_head.pth")
    yield path
    path.unlink()


def _converted_backbone(state):
    """dinov2_converted*.pth: prefix-free backbone keys, no Rein weights."""
    return {k[len("backbone.") :]: v for k, v in state.items() if _is_backbone_weight(k)}


@pytest.fixture(scope="module")
def backbone_32_path(state_512, workdir):
    path = workdir / "dinov2_converted.pth"
    torch.save(_converted_backbone(state_512), path)
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def backbone_64_path(state_1024, workdir):
    path = workdir / "dinov2_converted_1024x1024.pth"
    torch.save(_converted_backbone(state_1024), path)
    yield path
    path.unlink()


def _assert_same_tensors(model, expected: dict[str, torch.Tensor], keys) -> None:
    loaded = model.state_dict()
    for key in keys:
        assert loaded[key].dtype == expected[key].dtype, key
        assert torch.equal(loaded[key], expected[key]), key


def _free(model) -> None:
    del model
    gc.collect()


def test_listings_describe_the_official_layout(listings):
    listing_512, listing_1024 = listings
    keys_512 = {e["key"]: tuple(e["shape"]) for e in listing_512["full_state_dict"]}
    keys_1024 = {e["key"]: tuple(e["shape"]) for e in listing_1024["full_state_dict"]}
    assert keys_512.keys() == keys_1024.keys()
    assert {k for k in keys_512 if keys_512[k] != keys_1024[k]} == {"backbone.pos_embed"}
    assert set(listing_512["official_model_state_dict_keys"]) <= keys_512.keys()


def test_full_512_checkpoint_loads_without_config(full_512_path, state_512):
    model = crossearth.load_model(full_512_path)
    report = model.load_report
    assert report.missing == []
    assert report.unexpected == []
    assert report.merged_backbone_keys == 0
    cfg = model.config
    assert cfg.backbone.img_size == 512
    assert cfg.backbone.embed_dim == 1024 and cfg.backbone.depth == 24
    assert cfg.num_classes == 6
    assert tuple(cfg.inference.crop_size) == (512, 512)
    assert tuple(cfg.inference.stride) == (341, 341)
    assert set(model.state_dict()) == set(state_512)
    _assert_same_tensors(model, state_512, state_512)  # every tensor, not only SPOT_KEYS
    assert model.state_dict()["backbone.reins.scale"].dim() == 0
    assert not model.training
    _free(model)


def test_full_1024_checkpoint_loads_without_config(full_1024_path, state_1024):
    model = crossearth.load_model(full_1024_path)
    report = model.load_report
    assert report.missing == [] and report.unexpected == []
    cfg = model.config
    assert cfg.backbone.img_size == 1024
    assert cfg.num_classes == 6
    assert tuple(cfg.inference.crop_size) == (1024, 1024)
    assert tuple(cfg.inference.stride) == (683, 683)
    assert tuple(model.state_dict()["backbone.pos_embed"].shape) == (1, 4097, 1024)
    _assert_same_tensors(model, state_1024, SPOT_KEYS)
    _free(model)


@pytest.mark.parametrize("config", [None, "vitl-512"])
def test_rein_head_only_without_backbone_is_refused(rein_head_path, config):
    with pytest.raises(CheckpointError) as info:
        crossearth.load_model(rein_head_path, config=config)
    message = str(info.value)
    assert "--backbone" in message
    assert "dinov2_converted" in message


def test_raw_dinov2_without_config_asks_for_a_config(rein_head_path, tmp_path):
    raw = {  # the keys of dinov2_vitl14_pretrain.pth that decide the conversion
        "pos_embed": torch.zeros(1, 1 + 37 * 37, 1024),
        "patch_embed.proj.weight": torch.zeros(1024, 3, 14, 14),
        "blocks.0.norm1.weight": torch.ones(1024),
    }
    path = tmp_path / "dinov2_vitl14_pretrain.pth"
    torch.save(raw, path)
    with pytest.raises((CheckpointError, ConfigError), match="config"):
        crossearth.load_model(rein_head_path, backbone=path)


def test_rein_head_only_with_converted_backbone(rein_head_path, backbone_32_path, state_512):
    model = crossearth.load_model(rein_head_path, backbone=backbone_32_path)
    report = model.load_report
    assert report.missing == [] and report.unexpected == []
    assert report.merged_backbone_keys == sum(_is_backbone_weight(k) for k in state_512)
    assert model.config.backbone.img_size == 512
    assert tuple(model.config.inference.crop_size) == (512, 512)
    _assert_same_tensors(model, state_512, SPOT_KEYS)
    _free(model)


def test_backbone_grid_contradicting_config_is_refused(rein_head_path, backbone_64_path):
    with pytest.raises(CheckpointError) as info:
        crossearth.load_model(rein_head_path, config="vitl-512", backbone=backbone_64_path)
    message = str(info.value)
    assert "backbone.pos_embed" in message
    assert re.search(r"1,\s*4097,\s*1024", message), message
    assert re.search(r"1,\s*1025,\s*1024", message), message
    gc.collect()


@pytest.mark.slow
def test_rein_head_only_takes_its_crop_size_from_the_backbone(
    rein_head_path, backbone_64_path, state_1024
):
    model = crossearth.load_model(rein_head_path, backbone=backbone_64_path)
    assert model.load_report.missing == [] and model.load_report.unexpected == []
    assert model.config.backbone.img_size == 1024
    assert tuple(model.config.inference.crop_size) == (1024, 1024)
    assert tuple(model.config.inference.stride) == (683, 683)
    _assert_same_tensors(model, state_1024, ("backbone.pos_embed", "backbone.reins.scale"))
    _free(model)

"""The DINOv2 patch-14 -> patch-16 conversion, and loading a raw DINOv2 as `backbone=`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import crossearth
from crossearth.errors import CheckpointError
from crossearth.weights.dinov2 import convert_dinov2_to_patch16, is_patch14

DIM = 8
SIDE = 37  # the original DINOv2 ViT-L/14 grid (518 / 14)


def _dinov2_state(side: int = SIDE, dim: int = DIM, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "cls_token": torch.randn(1, 1, dim, generator=gen),
        "mask_token": torch.randn(1, dim, generator=gen),
        "pos_embed": torch.randn(1, 1 + side * side, dim, generator=gen),
        "patch_embed.proj.weight": torch.randn(dim, 3, 14, 14, generator=gen),
        "patch_embed.proj.bias": torch.randn(dim, generator=gen),
        "blocks.0.norm1.weight": torch.randn(dim, generator=gen),
        "blocks.0.attn.qkv.weight": torch.randn(3 * dim, dim, generator=gen),
        "norm.bias": torch.randn(dim, generator=gen),
    }


@pytest.mark.parametrize("grid", [32, 64])
def test_output_shapes(grid):
    out = convert_dinov2_to_patch16(_dinov2_state(), grid)
    assert tuple(out["patch_embed.proj.weight"].shape) == (DIM, 3, 16, 16)
    assert tuple(out["pos_embed"].shape) == (1, 1 + grid * grid, DIM)
    assert not is_patch14(out)


def test_cls_position_and_other_keys_unchanged():
    state = _dinov2_state()
    before = {k: v.clone() for k, v in state.items()}
    out = convert_dinov2_to_patch16(state, 32)
    assert torch.equal(out["pos_embed"][:, 0], before["pos_embed"][:, 0])
    for key in before:
        if key not in ("pos_embed", "patch_embed.proj.weight"):
            assert torch.equal(out[key], before[key]), key
    assert set(out) == set(before)
    # The input dict is not modified.
    for key, value in before.items():
        assert torch.equal(state[key], value), key
    assert tuple(state["patch_embed.proj.weight"].shape[-2:]) == (14, 14)


def test_constant_kernel_is_not_rescaled():
    state = _dinov2_state()
    values = torch.arange(1, DIM + 1, dtype=torch.float32).view(DIM, 1, 1, 1) * 0.25
    state["patch_embed.proj.weight"] = values.expand(DIM, 3, 14, 14).clone()
    kernel = convert_dinov2_to_patch16(state, 32)["patch_embed.proj.weight"]
    expected = values.expand(DIM, 3, 16, 16)
    # A resampled constant stays the same constant: no 14²/16² magnitude compensation.
    torch.testing.assert_close(kernel, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("grid", [32, 64])
def test_linear_position_ramp_stays_a_ramp(grid):
    low, high = -3.0, 5.0
    ramp = torch.linspace(low, high, SIDE)  # value depends only on the column (x)
    patch_pos = ramp.view(1, SIDE).expand(SIDE, SIDE).reshape(1, SIDE * SIDE, 1).expand(-1, -1, DIM)
    state = _dinov2_state()
    state["pos_embed"] = torch.cat((state["pos_embed"][:, :1], patch_pos), dim=1).contiguous()
    out = convert_dinov2_to_patch16(state, grid)["pos_embed"][0, 1:, 0].reshape(grid, grid)
    out = out.numpy().astype(np.float64)
    # Every row is the same ramp (the grid does not depend on y).
    np.testing.assert_allclose(out, np.broadcast_to(out[:1], out.shape), atol=1e-5)
    row = out[0]
    assert np.all(np.diff(row) > 0)
    # align_corners=False: output column x samples input column (x + 0.5) * SIDE / grid - 0.5.
    coords = np.clip((np.arange(grid) + 0.5) * SIDE / grid - 0.5, 0, SIDE - 1)
    ideal = low + (high - low) * coords / (SIDE - 1)
    step = (high - low) / (SIDE - 1)
    assert np.max(np.abs(row - ideal)) < 0.12 * step  # bicubic is not exactly linear at borders
    # ... so it spans (nearly) the same range as the input ramp.
    assert abs(row[0] - low) < step and abs(row[-1] - high) < step


def test_refuses_register_tokens_and_non_square_grids():
    state = _dinov2_state()
    state["register_tokens"] = torch.zeros(1, 4, DIM)
    with pytest.raises(CheckpointError):
        convert_dinov2_to_patch16(state, 32)
    state = _dinov2_state()
    state["pos_embed"] = torch.zeros(1, 1 + 37 * 36, DIM)
    with pytest.raises(CheckpointError):
        convert_dinov2_to_patch16(state, 32)
    state = _dinov2_state()
    del state["pos_embed"]
    with pytest.raises(CheckpointError):
        convert_dinov2_to_patch16(state, 32)


def test_raw_dinov2_backbone_is_converted_on_load(tmp_path, tiny_rein_head_state):
    torch.manual_seed(1)
    backbone = {
        k: v.clone()
        for k, v in crossearth.create_model("vit-tiny-256").backbone.state_dict().items()
        if not k.startswith("reins.")
    }
    side = 20  # the target grid of vit-tiny-256 is 16
    backbone["patch_embed.proj.weight"] = torch.randn(128, 3, 14, 14) * 0.02
    backbone["pos_embed"] = torch.randn(1, 1 + side * side, 128) * 0.02
    bb_path = tmp_path / "dinov2_vits14_like.pth"
    torch.save(backbone, bb_path)
    ckpt = tmp_path / "rein_head.pth"
    torch.save({"state_dict": tiny_rein_head_state, "meta": {}}, ckpt)

    model = crossearth.load_model(ckpt, config="vit-tiny-256", backbone=bb_path)
    report = model.load_report
    assert report.missing == [] and report.unexpected == []
    assert report.merged_backbone_keys == len(backbone)
    loaded = model.state_dict()
    assert tuple(loaded["backbone.patch_embed.proj.weight"].shape) == (128, 3, 16, 16)
    assert tuple(loaded["backbone.pos_embed"].shape) == (1, 1 + 16 * 16, 128)
    assert torch.equal(loaded["backbone.pos_embed"][:, 0], backbone["pos_embed"][:, 0])
    assert torch.equal(
        loaded["backbone.blocks.3.attn.qkv.weight"], backbone["blocks.3.attn.qkv.weight"]
    )
    assert torch.equal(
        loaded["backbone.reins.learnable_tokens_a"],
        tiny_rein_head_state["backbone.reins.learnable_tokens_a"],
    )

    image = np.random.default_rng(0).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
    scores = model.predict(image).scores
    assert scores.shape == (6, 256, 256)
    assert np.isfinite(scores).all()

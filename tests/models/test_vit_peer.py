"""Our DINOv2 blocks equal timm's (an independent implementation) given the same weights."""

from __future__ import annotations

import functools

import pytest
import torch

from crossearth.config import BackboneConfig
from crossearth.models.vit import Block, interpolate_pos_embed

timm_vit = pytest.importorskip(
    "timm.models.vision_transformer", reason="the peer ViT comes from timm: pip install timm"
)


@pytest.mark.parametrize("dim,heads", [(128, 2), (192, 3)])
def test_block_matches_timm(dim, heads):
    torch.manual_seed(0)
    ours = Block(BackboneConfig(embed_dim=dim, num_heads=heads, layer_scale_init=0.3)).eval()
    peer = timm_vit.Block(
        dim, heads, mlp_ratio=4.0, qkv_bias=True, init_values=0.3,
        norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
    ).eval()  # fmt: skip
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.2)
    # Same parameter names: the official DINOv2 keys load into both without renaming.
    missing, unexpected = peer.load_state_dict(ours.state_dict(), strict=True)
    assert not missing and not unexpected
    x = torch.randn(2, 1 + 7 * 5, dim)
    with torch.no_grad():
        assert torch.allclose(ours(x), peer(x), atol=1e-5, rtol=1e-5)


def test_pos_embed_plus_point_one_rule():
    """Non-square grids use bicubic with scale_factor (g + 0.1) / sqrt(N), not size=."""
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 16 * 16, 8)
    out = interpolate_pos_embed(pos, 12, 20)
    assert out.shape == (1, 1 + 12 * 20, 8)
    assert torch.equal(out[:, 0], pos[:, 0])
    grid = pos[:, 1:].reshape(1, 16, 16, 8).permute(0, 3, 1, 2)
    by_size = torch.nn.functional.interpolate(grid, size=(12, 20), mode="bicubic")
    by_size = by_size.permute(0, 2, 3, 1).reshape(1, 240, 8)
    # The two forms sample different positions: the official one is not a plain resize.
    assert (out[:, 1:] - by_size).abs().max() > 1e-3
    # An unchanged square grid is returned untouched.
    assert interpolate_pos_embed(pos, 16, 16) is pos


def test_nonsquare_input_runs():
    import crossearth

    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256", num_classes=3)
    with torch.no_grad():
        scores = model(torch.randn(1, 3, 96, 160))
    assert scores.shape == (1, 3, 96, 160)
    assert torch.isfinite(scores).all() and (scores >= 0).all()

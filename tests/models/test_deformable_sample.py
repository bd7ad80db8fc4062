"""The one-call MSDeformAttn sampler equals the per-level formulation it replaces.

The peer below is the textbook form (mmcv's `multi_scale_deformable_attn_pytorch`): one
`grid_sample` per level with zero padding, then the attention-weighted sum over levels and points.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crossearth.models.pixel_decoder import deformable_sample


def to_pixels(locations, shapes):
    """Normalised [0, 1] positions -> each level's pixel units (align_corners=False)."""
    sizes = torch.tensor([[w, h] for h, w in shapes], dtype=torch.float32)[:, None]
    return locations * sizes - 0.5


def per_level_peer(value, shapes, locations, weights):
    b, _, heads, d = value.shape
    _, nq, _, levels, points, _ = locations.shape
    grids = 2 * locations - 1
    sampled, start = [], 0
    for level, (h, w) in enumerate(shapes):
        v = value[:, start : start + h * w].permute(0, 2, 3, 1).reshape(b * heads, d, h, w)
        start += h * w
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)  # [B*heads, Q, points, 2]
        sampled.append(F.grid_sample(v, g, mode="bilinear", align_corners=False))
    stacked = torch.stack(sampled, dim=-2).flatten(-2)  # [B*heads, d, Q, levels*points]
    w = weights.transpose(1, 2).reshape(b * heads, 1, nq, levels * points)
    return (stacked * w).sum(-1).view(b, heads * d, nq).transpose(1, 2)


def random_case(shapes, seed, spread):
    gen = torch.Generator().manual_seed(seed)
    b, heads, d, points, nq = 2, 4, 8, 3, 37
    s = sum(h * w for h, w in shapes)
    value = torch.randn(b, s, heads, d, generator=gen)
    # Centred on [0, 1] but spread beyond it: samples fall inside, on the borders and far outside.
    loc = 0.5 + spread * (torch.rand(b, nq, heads, len(shapes), points, 2, generator=gen) - 0.5)
    weights = torch.rand(b, nq, heads, len(shapes), points, generator=gen)
    return value, loc, weights


@pytest.mark.parametrize(
    "shapes",
    [[(16, 16), (8, 8), (4, 4)], [(12, 20), (6, 10), (3, 5)], [(5, 7)], [(9, 4), (11, 13)]],
)
@pytest.mark.parametrize("spread", [0.9, 1.6, 6.0])
def test_matches_per_level_sampling(shapes, spread):
    value, loc, weights = random_case(
        shapes, seed=len(shapes) * 10 + int(spread * 10), spread=spread
    )
    expected = per_level_peer(value, shapes, loc, weights)
    got = deformable_sample(value, shapes, to_pixels(loc, shapes), weights)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-5)


def test_far_outside_samples_are_zero():
    shapes = [(6, 6), (3, 3)]
    value = torch.randn(1, 45, 2, 4) + 10  # no value near zero: any leak across levels shows
    loc = torch.tensor([-3.0, 5.0])[None, None, None, None, None].expand(1, 5, 2, 2, 2, 2)
    weights = torch.ones(1, 5, 2, 2, 2)
    assert deformable_sample(value, shapes, to_pixels(loc, shapes), weights).abs().max() == 0


def test_border_samples_blend_with_zero_not_the_next_level():
    # Half a pixel below the bottom edge of level 0 the sample is half the edge value; the level
    # packed below it in the atlas must not leak in.
    shapes = [(4, 4), (4, 4)]
    value = torch.cat((torch.ones(1, 16, 1, 1), 100 * torch.ones(1, 16, 1, 1)), dim=1)
    loc = torch.zeros(1, 1, 1, 2, 1, 2)
    loc[..., 0, 0, :] = torch.tensor([0.5, 1.0])  # level 0: x centre, y on the bottom edge
    loc[..., 1, 0, :] = torch.tensor([0.5, 0.0])  # level 1: y on the top edge
    weights = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2, 1)
    assert deformable_sample(
        value, shapes, to_pixels(loc, shapes), weights
    ).item() == pytest.approx(0.5)
    weights = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2, 1)
    assert deformable_sample(
        value, shapes, to_pixels(loc, shapes), weights
    ).item() == pytest.approx(50.0)


def test_bf16_value_is_sampled_in_fp32_and_returned_in_bf16():
    shapes = [(8, 8), (4, 4)]
    value, loc, weights = random_case(shapes, seed=3, spread=1.2)
    got = deformable_sample(value.bfloat16(), shapes, to_pixels(loc, shapes), weights)
    assert got.dtype == torch.bfloat16
    expected = per_level_peer(value.bfloat16().float(), shapes, loc, weights)
    torch.testing.assert_close(got.float(), expected, rtol=1e-2, atol=1e-2)

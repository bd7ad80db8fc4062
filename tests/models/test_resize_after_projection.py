"""Resizing after the head's 1x1 projections equals projecting the resized (official) pyramid."""

from __future__ import annotations

import pytest
import torch

from crossearth.models.backbone import PYRAMID_SCALES
from crossearth.models.layers import ConvNorm


@pytest.mark.parametrize("size", [(64, 64), (48, 80)])
def test_pixel_decoder_on_unresized_maps_equals_official_pyramid(varied_model, size):
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pyramid, _ = varied_model.backbone(x)
        stride16, _ = varied_model.backbone(x, resize=False)
        decoder = varied_model.decode_head.pixel_decoder
        official_masks, official_memories = decoder(pyramid)
        fast_masks, fast_memories = decoder(stride16, PYRAMID_SCALES)
    assert [f.shape[-2:] for f in stride16] == [pyramid[2].shape[-2:]] * 4
    torch.testing.assert_close(fast_masks, official_masks, rtol=0, atol=1e-4)
    for fast, official in zip(fast_memories, official_memories, strict=True):
        torch.testing.assert_close(fast, official, rtol=0, atol=1e-4)


def test_model_forward_uses_the_same_scores_as_the_official_order(varied_model):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        feats, queries = varied_model.backbone(x)
        official = varied_model.decode_head(feats, queries)
        fast = varied_model.forward_head(x)
    torch.testing.assert_close(
        fast.final_mask_logits, official.final_mask_logits, rtol=0, atol=1e-3
    )
    torch.testing.assert_close(
        fast.final_class_logits, official.final_class_logits, rtol=0, atol=1e-3
    )


def test_conv_norm_resizes_only_1x1_convolutions():
    x = torch.randn(1, 8, 4, 4)
    one = ConvNorm(8, 4, 1, 2, bias=True)
    expected = one.gn(
        one.conv(torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear"))
    )
    torch.testing.assert_close(one(x, 2.0), expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="1x1"):
        ConvNorm(8, 4, 3, 2, bias=False)(x, 2.0)

"""MIM modules of Multi-Task Training: block masks, mask token, ASPP reconstruction head, losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import crossearth
from crossearth.models.mim import (
    ASPPHead,
    BlockMaskGenerator,
    MaskToken,
    MultiTaskHead,
    ReconstructionHead,
    mim_losses,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny ops: threads only add contention on a busy CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _nparams(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv_params(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def _pyramid(batch: int = 2, dim: int = 128, size: int = 64, seed: int = 0) -> list[torch.Tensor]:
    """Random features at strides 4, 8, 16, 32 of a size x size image."""
    g = _gen(seed)
    return [torch.randn(batch, dim, size // s, size // s, generator=g) for s in (4, 8, 16, 32)]


def test_block_mask_ratio_over_many_draws():
    masker = BlockMaskGenerator(mask_ratio=0.1, block_size=8)
    mask = masker(64, 64, 64, _gen(0))  # 64 images x 64 blocks = 4096 independent blocks
    assert mask.dtype == torch.bool and mask.shape == (64, 64, 64)
    blocks = mask[:, ::8, ::8]
    assert abs(blocks.float().mean().item() - 0.1) < 0.02
    assert mask.float().mean().item() == pytest.approx(blocks.float().mean().item())
    assert not BlockMaskGenerator(0.0, 8)(4, 32, 32, _gen(0)).any()
    assert BlockMaskGenerator(1.0, 8)(4, 32, 32, _gen(0)).all()


def test_block_mask_blocks_are_aligned_and_whole_including_border():
    masker = BlockMaskGenerator(mask_ratio=0.5, block_size=16)
    mask = masker(8, 50, 37, _gen(1))  # partial blocks at the bottom (2 rows) and right (5 cols)
    assert mask.shape == (8, 50, 37)
    assert masker.grid(50, 37) == (4, 3)
    for r0 in range(0, 50, 16):
        for c0 in range(0, 37, 16):
            block = mask[:, r0 : r0 + 16, c0 : c0 + 16]
            first = block[:, :1, :1]
            assert torch.equal(block, first.expand_as(block)), (r0, c0)
    # Each block is an independent draw: both values occur, including in the border blocks.
    assert mask[:, 48:, 32:].any() and not mask[:, 48:, 32:].all()


def test_block_mask_reproducible_with_the_same_generator():
    masker = BlockMaskGenerator()
    a = masker(2, 512, 512, _gen(7))
    b = masker(2, 512, 512, _gen(7))
    c = masker(2, 512, 512, _gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # The default block size is 64: a 512 image has an 8 x 8 grid of blocks.
    assert torch.equal(a, a[:, ::64, ::64].repeat_interleave(64, 1).repeat_interleave(64, 2))


def test_mask_token_replaces_exactly_the_masked_pixels_and_learns():
    token = MaskToken(16)
    assert torch.equal(token.token, torch.zeros(1, 3, 16, 16))
    with torch.no_grad():
        token.token.normal_(generator=_gen(2))
    x = torch.randn(3, 3, 16, 16, generator=_gen(3))
    mask = BlockMaskGenerator(0.5, 4)(3, 16, 16, _gen(4))
    out = token.apply(x, mask)
    m = mask[:, None].expand_as(x)
    assert torch.equal(out[~m], x[~m])
    assert torch.equal(out[m], token.token.expand_as(x)[m])
    out.sum().backward()
    # d(sum)/d t[c, i, j] = number of images masked at (i, j).
    expected = mask.sum(0).float()[None, None].expand(1, 3, 16, 16)
    assert torch.equal(token.token.grad, expected)


def test_mask_token_is_resized_bilinearly_for_other_sizes():
    token = MaskToken(8)
    with torch.no_grad():
        token.token.normal_(generator=_gen(5))
    x = torch.randn(2, 3, 24, 20, generator=_gen(6))
    mask = torch.ones(2, 24, 20, dtype=torch.bool)
    out = token.apply(x, mask)
    resized = F.interpolate(token.token, size=(24, 20), mode="bilinear", align_corners=False)
    assert torch.equal(out, resized.expand_as(x))
    out.sum().backward()
    assert token.token.grad is not None and token.token.grad.abs().sum() > 0


def test_aspp_shape_and_parameters():
    aspp = ASPPHead(128, 32)
    assert [(b.dilation[0], b.padding[0]) for b in aspp.branches] == [
        (d, d) for d in (1, 6, 12, 18)
    ]
    assert aspp(torch.randn(2, 128, 16, 12)).shape == (2, 32, 16, 12)
    assert _nparams(aspp) == 2 * _conv_params(128, 32, 1) + 4 * _conv_params(32, 32, 3)
    # The only ReLU is the last operation: the output is non-negative, the branches are linear.
    assert (aspp(torch.randn(1, 128, 4, 4)) >= 0).all()


def test_reconstruction_head_shapes_and_one_shared_aspp():
    head = ReconstructionHead(128, channels=32)
    feats = _pyramid()
    calls = []
    head.aspp.register_forward_hook(lambda m, a, o: calls.append(tuple(a[0].shape[-2:])))
    out = head(feats, (64, 64))
    assert out.shape == (2, 3, 64, 64)
    assert calls == [(16, 16), (8, 8), (4, 4), (2, 2)]  # one module, applied to every level
    assert sum(isinstance(m, ASPPHead) for m in head.modules()) == 1
    one_aspp = 2 * _conv_params(128, 32, 1) + 4 * _conv_params(32, 32, 3)
    assert _nparams(head) == one_aspp + _conv_params(4 * 32, 32, 1) + _conv_params(32, 3, 1)
    # A fixed reconstruction size (the released code's 512 x 512) overrides the image size.
    assert ReconstructionHead(128, 32, out_size=40)(feats, (64, 64)).shape == (2, 3, 40, 40)
    with pytest.raises(ValueError, match="4 feature maps"):
        head(feats[:3], (64, 64))


def test_low_res_fusion_equals_the_literal_concat_then_conv():
    fast = ReconstructionHead(128, channels=32, low_res_fusion=True)
    literal = ReconstructionHead(128, channels=32, low_res_fusion=False)
    literal.load_state_dict(fast.state_dict())
    feats = _pyramid(seed=9)
    with torch.no_grad():
        fast.fuse.bias.normal_()  # make the fused pre-ReLU map change sign somewhere
    literal.load_state_dict(fast.state_dict())
    for size in [(64, 64), (48, 80)]:
        torch.testing.assert_close(fast(feats, size), literal(feats, size), rtol=1e-5, atol=1e-5)


def test_mim_losses_match_hand_computed_l1():
    clean = torch.tensor([[[[0.0, 1.0], [2.0, -1.0]]]])
    rm = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    rs = torch.tensor([[[[0.0, 3.0], [2.0, 3.0]]]])
    # |rm - clean| = 1, 0, 2, 1 -> 1.0; |rs - clean| = 0, 2, 0, 4 -> 1.5; |rm - rs| = 1, 2, 2, 3 -> 2
    plain = mim_losses(rm, clean)
    assert set(plain) == {"l1_masked", "loss"}
    assert plain["l1_masked"].item() == 1.0 and plain["loss"].item() == 1.0
    styled = mim_losses(rm, clean, rs)
    assert styled["l1_masked"].item() == 1.0
    assert styled["l1_styled"].item() == 1.5
    assert styled["consistency"].item() == 2.0
    assert styled["loss"].item() == 4.5
    weighted = mim_losses(rm, clean, rs, weights=(2.0, 0.5, 0.25))
    assert weighted["loss"].item() == 2.0 + 0.75 + 0.5
    with pytest.raises(ValueError):
        mim_losses(rm, clean[..., :1])


def test_multitask_head_gradients_reach_mask_token_and_head_through_the_backbone():
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256").train()
    mtt = MultiTaskHead(128, channels=16, token_size=64, mask_ratio=0.5, block_size=16)
    x = torch.randn(2, 3, 64, 64, generator=_gen(11))
    with torch.no_grad():
        mtt.mask_token.token.normal_(generator=_gen(12))
    x_masked, mask = mtt.masked_view(x, _gen(13))
    assert mask.shape == (2, 64, 64) and mask.any() and not mask.all()
    assert torch.equal(x_masked[~mask[:, None].expand_as(x)], x[~mask[:, None].expand_as(x)])
    feats_m, _ = model.backbone(x_masked)
    recon_m = mtt.reconstruct(feats_m, x.shape[-2:])
    feats_s, _ = model.backbone(x + 0.1)  # stands in for the stylised view
    recon_s = mtt(feats_s, x.shape[-2:])
    terms = mtt.losses(recon_m, x, recon_s)
    assert set(terms) == {"l1_masked", "l1_styled", "consistency", "loss"}
    terms["loss"].backward()
    grad = mtt.mask_token.token.grad
    assert grad is not None and grad.abs().sum() > 0
    assert torch.equal(grad[..., ~mask.any(0)], torch.zeros_like(grad[..., ~mask.any(0)]))
    for name, p in mtt.head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.backbone.reins.scale.grad is not None


def test_multitask_head_losses_resize_clean_to_a_fixed_reconstruction_size():
    mtt = MultiTaskHead(128, channels=8, token_size=64, out_size=32)
    x = torch.randn(1, 3, 64, 64, generator=_gen(14))
    recon = mtt.reconstruct(_pyramid(batch=1), x.shape[-2:])
    assert recon.shape == (1, 3, 32, 32)
    clean = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    assert mtt.losses(recon, x)["loss"].item() == pytest.approx(F.l1_loss(recon, clean).item())

"""Masked image modelling (MIM) for CrossEarth's Multi-Task Training: training-only modules.

What the released (compiled) training code does (spec §1.5, §3.2):

* **Masked view** ``X_M = M ⊙ X + (1 − M) ⊙ t``: ``M = 1[rand > 0.1]`` drawn once per 64-px block
  (about 10 % of the blocks masked), ``t`` a learnable pixel-space token initialised to zeros, all
  in normalised-image space (`BlockMaskGenerator`, `MaskToken`).
* **Reconstruction head** ``R`` (bytecode ``TaskHead``): one ASPP module (1x1 conv, four dilated
  3x3 convs at 1/6/12/18, concat, 1x1 conv + ReLU) *shared* by the four pyramid levels, each output
  bilinearly upsampled to the reconstruction size, concatenated, 1x1 conv + ReLU, 1x1 conv to RGB
  (`ASPPHead`, `ReconstructionHead`).
* **Loss** ``L1(R(f_M), X)`` and, when the iteration is stylised, ``+ L1(R(f_S), X) +
  L1(R(f_M), R(f_S))``, all weights 1, ``X`` the normalised clean image resized to the
  reconstruction size (`mim_losses`).

Choices where the spec is silent (all ours):

* **ReLUs.** The bytecode description names exactly one ReLU inside the ASPP (after the final 1x1
  fusion conv) and one after the head's 1x1 fusion conv; we add none elsewhere. The ASPP's 1x1 input
  conv and its four dilated branches are therefore linear (plain ``nn.Conv2d`` with bias, no norm
  layer, as the description lists none).
* **Reconstruction size.** The released code reconstructs at 512x512 whatever the crop; by default
  we reconstruct at the input image size (``out_size=None``) and ``out_size`` restores the fixed size.
* **Low-resolution fusion** (``ReconstructionHead(low_res_fusion=True)``, the default). Bilinear
  resizing is linear with weights summing to one and the head's first fusion conv is 1x1, so
  ``conv1x1(cat_l(up(a_l))) = Σ_l up(W_l · a_l) + b`` exactly (``W_l`` the slice of the conv
  weight that reads level ``l``). Computing ``W_l · a_l`` at each level's own resolution and summing
  the upsampled 256-channel maps gives the same function (up to float rounding; tested) with the
  same parameters, without ever materialising the 1024-channel full-resolution concatenation: for a
  512x512 reconstruction that tensor alone is 1 GiB per image in fp32. ``low_res_fusion=False``
  runs the literal concat-then-conv form.
* **Consistency term** ``L1(R(f_M), R(f_S))`` back-propagates into both reconstructions (no detach
  is visible in the bytecode).
* **Mask token size.** The released token is ``[1, 3, 1024, 1024]``; `MaskToken` takes its size as
  an argument and is resized bilinearly when the image size differs (the natural choice is the
  training crop size, so that no resizing happens).

Cost for ViT-L (1024-channel pyramid, ``channels=256``): 3.15 M parameters in the reconstruction
head (2.89 M of them the one shared ASPP) plus the mask token (``3·size²``: 786 k at 512). One
reconstruction of a 512x512 image takes 64.4 GMACs with ``low_res_fusion`` (62.7 G of it the ASPP
on the four levels) against 131.7 GMACs for the literal form, whose full-resolution fusion conv
alone is 68.7 G; at 1024x1024, 257 G against 527 G (320 G when the literal form reconstructs at
the released 512x512). MIM also costs one extra backbone forward and backward per iteration (the
masked view), which dominates everything here.

None of these modules is part of `CrossEarth`'s state dict: the training module owns a
`MultiTaskHead` next to the segmentor, so the inference path and the official checkpoint key layout
are unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ASPPHead",
    "BlockMaskGenerator",
    "MaskToken",
    "MultiTaskHead",
    "ReconstructionHead",
    "mim_losses",
]


class BlockMaskGenerator:
    """Random block masks: each ``block_size`` x ``block_size`` block is masked independently.

    Blocks are aligned to the top-left corner; a partial block at the right or bottom border is a
    block of its own. A block is masked with probability ``mask_ratio`` (the released code keeps a
    block when ``rand > 0.1``, i.e. masks it when ``rand <= mask_ratio``).
    """

    def __init__(self, mask_ratio: float = 0.1, block_size: int = 64) -> None:
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must lie in [0, 1], got {mask_ratio}")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}")
        self.mask_ratio = float(mask_ratio)
        self.block_size = int(block_size)

    def __repr__(self) -> str:
        return f"BlockMaskGenerator(mask_ratio={self.mask_ratio}, block_size={self.block_size})"

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Number of blocks (rows, columns) covering an image of ``height`` x ``width``."""
        return math.ceil(height / self.block_size), math.ceil(width / self.block_size)

    def __call__(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """A bool mask [batch, height, width], True where masked.

        The random draw happens on ``generator``'s device (the default CPU generator when None),
        so a given generator state gives the same mask on every device; the result is then moved to
        ``device`` (default: that same device).
        """
        rows, cols = self.grid(height, width)
        rand_device = generator.device if generator is not None else torch.device("cpu")
        rand = torch.rand(batch, rows, cols, generator=generator, device=rand_device)
        masked = ~(rand > self.mask_ratio)
        masked = masked.repeat_interleave(self.block_size, dim=1)
        masked = masked.repeat_interleave(self.block_size, dim=2)[:, :height, :width]
        return masked.to(device) if device is not None else masked


class MaskToken(nn.Module):
    """A learnable pixel-space mask token ``t`` [1, 3, size, size], initialised to zeros.

    It lives in normalised-image space (zero = the dataset mean colour). `apply` fills the masked
    pixels with it, resizing it bilinearly (``align_corners=False``) when the image is not
    ``size`` x ``size``.
    """

    def __init__(self, size: int, channels: int = 3) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self.size = int(size)
        self.token = nn.Parameter(torch.zeros(1, channels, self.size, self.size))

    def extra_repr(self) -> str:
        return f"size={self.size}"

    def at_size(self, height: int, width: int) -> torch.Tensor:
        """The token [1, 3, height, width] (resized when needed; differentiable)."""
        if (height, width) == (self.size, self.size):
            return self.token
        return F.interpolate(self.token, size=(height, width), mode="bilinear", align_corners=False)

    def apply(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``M ⊙ x + (1 − M) ⊙ t`` with ``M = ~mask``: masked pixels take the token's values exactly.

        x: normalised images [B, 3, H, W]; mask: bool [B, H, W] (True = masked) or [H, W].
        Gradients reach the token only through masked pixels and ``x`` only through kept ones.
        """
        if x.ndim != 4:
            raise ValueError(f"x must be [B, C, H, W], got shape {tuple(x.shape)}")
        if mask.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match image {tuple(x.shape)}")
        token = self.at_size(x.shape[-2], x.shape[-1]).to(x.dtype)
        mask = mask.to(device=x.device, dtype=torch.bool)
        mask = mask[:, None] if mask.ndim == 3 else mask[None, None]
        return torch.where(mask, token, x)


class ASPPHead(nn.Module):
    """The bytecode's ``ASPPHEAD``: 1x1 conv, four parallel dilated 3x3 convs, concat, 1x1 + ReLU.

    ``in_channels -> channels`` (1x1), then for each dilation ``d`` a 3x3 conv ``channels ->
    channels`` with ``dilation = padding = d`` applied to that, the branches concatenated
    (``len(dilations) * channels``) and fused by a 1x1 conv to ``channels`` followed by the only
    ReLU the description lists. Spatial size is preserved.
    """

    def __init__(
        self, in_channels: int, channels: int = 256, dilations: tuple[int, ...] = (1, 6, 12, 18)
    ) -> None:
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.input_conv = nn.Conv2d(in_channels, channels, 1)
        self.branches = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in self.dilations
        )
        self.fuse = nn.Conv2d(channels * len(self.dilations), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_conv(x)
        x = torch.cat([branch(x) for branch in self.branches], dim=1)
        return F.relu(self.fuse(x))


class ReconstructionHead(nn.Module):
    """The bytecode's ``TaskHead``: RGB reconstruction from the 4-level backbone pyramid.

    One `ASPPHead` shared by all levels; each level's output is resized bilinearly to the
    reconstruction size, the levels are concatenated (``num_levels * channels``), fused by a 1x1
    conv + ReLU and projected to 3 channels by a 1x1 conv. See the module docstring for
    ``low_res_fusion`` (an exact reformulation that avoids the full-resolution concatenation).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        out_size: tuple[int, int] | int | None = None,
        *,
        num_levels: int = 4,
        dilations: tuple[int, ...] = (1, 6, 12, 18),
        out_channels: int = 3,
        low_res_fusion: bool = True,
    ) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.out_size = (out_size, out_size) if isinstance(out_size, int) else out_size
        self.low_res_fusion = low_res_fusion
        self.aspp = ASPPHead(in_channels, channels, dilations)
        self.fuse = nn.Conv2d(channels * num_levels, channels, 1)
        self.predict = nn.Conv2d(channels, out_channels, 1)

    def target_size(self, size: tuple[int, int] | None) -> tuple[int, int]:
        """The reconstruction size: ``out_size`` when fixed, else ``size`` (the image size)."""
        if self.out_size is not None:
            return (int(self.out_size[0]), int(self.out_size[1]))
        if size is None:
            raise ValueError("ReconstructionHead needs a size when out_size is None")
        return (int(size[0]), int(size[1]))

    def forward(
        self, feats: list[torch.Tensor] | tuple[torch.Tensor, ...], size: tuple[int, int] | None
    ) -> torch.Tensor:
        """Reconstruct [B, 3, H, W] from ``feats`` (``num_levels`` maps [B, in_channels, h, w])."""
        if len(feats) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} feature maps, got {len(feats)}")
        out_hw = self.target_size(size)
        levels = [self.aspp(f) for f in feats]
        if self.low_res_fusion:
            weights = self.fuse.weight.chunk(self.num_levels, dim=1)
            fused = self.fuse.bias.view(1, -1, 1, 1)
            for level, weight in zip(levels, weights, strict=True):
                fused = fused + _resize(F.conv2d(level, weight), out_hw)
        else:
            fused = self.fuse(torch.cat([_resize(level, out_hw) for level in levels], dim=1))
        return self.predict(F.relu(fused))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def mim_losses(
    recon_masked: torch.Tensor,
    clean: torch.Tensor,
    recon_styled: torch.Tensor | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, torch.Tensor]:
    """The MIM terms and their weighted sum ``loss`` (computed in float32).

    ``l1_masked = L1(recon_masked, clean)``; with ``recon_styled`` also ``l1_styled =
    L1(recon_styled, clean)`` and ``consistency = L1(recon_masked, recon_styled)``. ``weights``
    are (masked, styled, consistency). ``clean`` is the normalised clean image already resized to
    the reconstruction size (see `MultiTaskHead.losses`, which does that).
    """
    if recon_masked.shape != clean.shape:
        raise ValueError(
            f"recon_masked {tuple(recon_masked.shape)} and clean {tuple(clean.shape)} differ"
        )
    target = clean.detach().float()
    out = {"l1_masked": F.l1_loss(recon_masked.float(), target)}
    loss = weights[0] * out["l1_masked"]
    if recon_styled is not None:
        if recon_styled.shape != clean.shape:
            raise ValueError(
                f"recon_styled {tuple(recon_styled.shape)} and clean {tuple(clean.shape)} differ"
            )
        out["l1_styled"] = F.l1_loss(recon_styled.float(), target)
        out["consistency"] = F.l1_loss(recon_masked.float(), recon_styled.float())
        loss = loss + weights[1] * out["l1_styled"] + weights[2] * out["consistency"]
    out["loss"] = loss
    return out


class MultiTaskHead(nn.Module):
    """Everything MIM needs, owned by the training module (never by `CrossEarth`).

    Per iteration the trainer does::

        x_masked, mask = mtt.masked_view(x_norm, generator)     # X_M
        feats_m, _ = model.backbone(x_masked)                   # second backbone pass
        recon_m = mtt.reconstruct(feats_m, x_norm.shape[-2:])   # R(f_M)
        recon_s = mtt.reconstruct(feats_s, ...) if styled else None  # R(f_S), reusing seg feats
        terms = mtt.losses(recon_m, x_norm, recon_s)            # dict; terms["loss"] to add

    State-dict keys: ``mask_token.token`` and ``head.*``. Consider exempting
    ``mask_token.token`` from weight decay, like the Rein tokens.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 256,
        token_size: int = 512,
        mask_ratio: float = 0.1,
        block_size: int = 64,
        out_size: tuple[int, int] | int | None = None,
        weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        *,
        low_res_fusion: bool = True,
    ) -> None:
        super().__init__()
        self.masker = BlockMaskGenerator(mask_ratio, block_size)
        self.mask_token = MaskToken(token_size)
        self.head = ReconstructionHead(
            in_channels, channels, out_size, low_res_fusion=low_res_fusion
        )
        self.weights = tuple(float(w) for w in weights)

    def extra_repr(self) -> str:
        return f"masker={self.masker!r}, weights={self.weights}"

    def masked_view(
        self, x_norm: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_masked, mask)``: the masked view of a normalised batch and its bool [B, H, W] mask."""
        b, _, h, w = x_norm.shape
        mask = self.masker(b, h, w, generator, device=x_norm.device)
        return self.mask_token.apply(x_norm, mask), mask

    def reconstruct(
        self, feats: list[torch.Tensor], size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """R(f): the [B, 3, H, W] reconstruction of the 4-level pyramid (``size`` = image size)."""
        head_dtype = self.head.predict.weight.dtype
        return self.head([f.to(head_dtype) for f in feats], size)

    forward = reconstruct

    def losses(
        self,
        recon_masked: torch.Tensor,
        x_norm: torch.Tensor,
        recon_styled: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`mim_losses` against the clean normalised batch, resized to the reconstruction size."""
        clean = _resize(x_norm.detach().float(), tuple(recon_masked.shape[-2:]))
        return mim_losses(recon_masked, clean, recon_styled, self.weights)

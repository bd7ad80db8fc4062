"""Earth-Style Injection (ESI): online, block-wise restyling of training batches.

As compiled in the authors' training code (paper notes §2.2): once per iteration, with probability
`prob` (0.1), the whole batch is restyled. Each image gets its own style `e ~ N(μ, Σ)` from the
Earth distribution, blended with the image's own style as `e' = α·e + (1-α)·embed(x)` (α = 0.1),
and rendered by the stylizer. A mask of `block`-px blocks (64) then picks, per block with
probability `stylized_fraction` (0.7), the restyled pixels; the other blocks keep the original
ones: `X_S = M ⊙ X + (1 - M) ⊙ stylize(X, e')` with `M = 1[rand > 0.7]`. The result is detached.

Random numbers are drawn in a fixed order from the caller's generator: the firing draw, then (only
when it fires) the styles, then the block mask, so a seed reproduces a run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from crossearth.errors import InputError
from crossearth.train.style.base import Stylizer, check_images, no_grad_fp32, stylizer_name
from crossearth.train.style.earth import EarthStyle


@dataclass
class Injection:
    """What one call did: `images` (float 0..255), whether it `fired`, and when it did the
    per-image `embeddings` used (B x D) and the `mask` of restyled pixels (B x 1 x H x W bool)."""

    images: Tensor
    fired: bool
    embeddings: Tensor | None = None
    mask: Tensor | None = None


class EarthStyleInjection:
    """Restyle a batch with Earth styles, with probability `prob` per call.

    Args:
        stylizer: embeds and restyles images (`SpectralStylizer`, `NeuralStylizer`, ...).
        earth: the style distribution, fitted with the same stylizer.
        prob: probability that a call restyles its batch (one draw per call).
        alpha: weight of the sampled style against the image's own one.
        block: side of the square mixing blocks in pixels (blocks are aligned to the top left;
            partial blocks at the right and bottom edges are blocks too).
        stylized_fraction: probability that a block shows restyled pixels.
    """

    def __init__(
        self,
        stylizer: Stylizer,
        earth: EarthStyle,
        prob: float = 0.1,
        alpha: float = 0.1,
        block: int = 64,
        stylized_fraction: float = 0.7,
    ) -> None:
        for label, value in (
            ("prob", prob),
            ("alpha", alpha),
            ("stylized_fraction", stylized_fraction),
        ):
            if not 0.0 <= float(value) <= 1.0:
                raise InputError(f"Earth-Style Injection: {label} must be in [0, 1], got {value}")
        if int(block) != block or block < 1:
            raise InputError(
                f"Earth-Style Injection: block must be a positive integer, got {block}"
            )
        dim = int(stylizer.embedding_dim)
        if earth.dim != dim:
            raise InputError(
                f"the earth style has {earth.dim}-d embeddings but the {stylizer_name(stylizer)} "
                f"stylizer uses {dim}; fit the earth style with the same stylizer"
            )
        name = stylizer_name(stylizer)
        if earth.stylizer is not None and earth.stylizer != name:
            raise InputError(
                f"the earth style was fitted with the {earth.stylizer} stylizer, "
                f"not with {name}; fit it again with the stylizer used for training"
            )
        self.stylizer = stylizer
        self.earth = earth
        self.prob = float(prob)
        self.alpha = float(alpha)
        self.block = int(block)
        self.stylized_fraction = float(stylized_fraction)

    def __repr__(self) -> str:
        return (
            f"EarthStyleInjection({stylizer_name(self.stylizer)}, prob={self.prob}, "
            f"alpha={self.alpha}, block={self.block}, "
            f"stylized_fraction={self.stylized_fraction})"
        )

    def __call__(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, bool]:
        result = self.inject(images, generator)
        return result.images, result.fired

    @no_grad_fp32
    def inject(self, images: Tensor, generator: torch.Generator | None = None) -> Injection:
        x = check_images(images)
        device = generator.device if generator is not None else torch.device("cpu")
        fire = torch.rand(1, generator=generator, device=device).item() < self.prob
        if not fire:
            return Injection(x, False)
        b, _, h, w = x.shape
        sampled = self.earth.sample(b, generator).to(x.device)
        own = self.stylizer.embed(x).to(x.device, torch.float32)
        blended = self.alpha * sampled + (1 - self.alpha) * own
        styled = self.stylizer.stylize(x, blended).to(x.device, torch.float32)
        mask = self.block_mask(b, h, w, generator).to(x.device)
        out = torch.where(mask, styled, x)
        return Injection(out, True, blended, mask)

    def block_mask(
        self, batch: int, height: int, width: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """B x 1 x H x W bool: True where a block shows restyled pixels."""
        device = generator.device if generator is not None else torch.device("cpu")
        rows, cols = -(-height // self.block), -(-width // self.block)
        draws = torch.rand(batch, 1, rows, cols, generator=generator, device=device)
        blocks = draws < self.stylized_fraction
        full = blocks.repeat_interleave(self.block, 2).repeat_interleave(self.block, 3)
        return full[..., :height, :width]

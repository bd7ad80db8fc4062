"""Self-supervised objectives for a CrossEarth backbone: masked image modelling and patch-level
self-distillation, on the plain DINOv2 ViT (`crossearth.models.vit`, no Rein).

* **mim** (SimMIM, Xie et al. 2022): about `mask_ratio` of the patch tokens are replaced by the
  backbone's own `mask_token` (the DINOv2 parameter, unused downstream) in blocks of patches; a
  linear decoder on the final tokens predicts each masked patch's pixels, normalised per patch
  (MAE's `norm_pix_loss`); the loss is the L1 over masked patches.
* **distill** (data2vec-style self-distillation, Baevski et al. 2022, across views): a teacher
  (an exponential moving average of the student) sees one photometric view of the crop unmasked;
  the student sees another view of the same crop, masked, and a linear head regresses, for every
  patch, the teacher's target (the mean of its `out_indices` blocks' tokens, each layer-normalised:
  the features a CrossEarth head reads). The two views differ in light, colour, band mixing, haze,
  blur and noise (`crossearth.pretrain.augment`): the invariance frozen features need under
  domain shift. (Prototype-based DINO/iBOT losses collapsed to uniform patch distributions in our
  short CPU runs; regression to normalised features did not.)
* **both** (the default): the sum. Both heads read the same student pass, so it costs one student
  forward/backward and one teacher forward per step.

Why both: on SynthEarth (see docs/method.md, "Pretraining a backbone") MIM alone gives features
that keep colour (a linear probe trained on RGB falls apart on false-colour and hazy imagery),
distillation alone learns slowly at this scale; together the probe is best on every target.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from crossearth.config import BackboneConfig
from crossearth.models.vit import DinoVisionTransformer

OBJECTIVES = ("mim", "distill", "both")


class PlainViT(DinoVisionTransformer):
    """The DINOv2 ViT with a masked forward: the backbone a pretraining run trains and saves."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final normalised tokens [B, 1 + N, C] of images x [B, 3, H, W] (normalised floats).

        mask: bool [B, N] (True = masked, N = (H/p)(W/p) in row-major patch order): those patch
        tokens are replaced by `mask_token` before the position embedding, as DINOv2 does."""
        grid_h, grid_w = x.shape[-2] // self.cfg.patch_size, x.shape[-1] // self.cfg.patch_size
        tokens = self.patch_embed(x)
        if mask is not None:
            tokens = torch.where(mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        from crossearth.models.vit import interpolate_pos_embed

        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        tokens = torch.cat((cls, tokens), dim=1)
        tokens = tokens + interpolate_pos_embed(self.pos_embed, grid_h, grid_w).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


def block_mask(
    batch: int, grid: int, ratio: float, generator: torch.Generator, block: int = 2
) -> torch.Tensor:
    """Bool [batch, grid * grid]: `block` x `block` groups of patches masked with probability
    `ratio` each (SimMIM masks 32-px blocks of 16-px patches: block 2)."""
    cells = math.ceil(grid / block)
    rand = torch.rand(batch, cells, cells, generator=generator)
    masked = rand < ratio
    masked = masked.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :grid, :grid]
    return masked.reshape(batch, grid * grid)


def patch_targets(x: torch.Tensor, patch: int, floor: float = 0.05) -> torch.Tensor:
    """Pixels of every patch, normalised per patch: [B, N, patch * patch * C] (MAE's target).

    The variance gets `floor` added (in normalised-image units: a standard deviation of about 13
    grey values) where MAE adds 1e-6: remote-sensing crops hold flat patches (water, haze, a
    blurred field) whose normalised pixels would otherwise be sensor noise blown up to unit
    variance, a target no encoder can predict."""
    b, c, h, w = x.shape
    patches = x.reshape(b, c, h // patch, patch, w // patch, patch)
    patches = patches.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), -1)
    mean = patches.mean(-1, keepdim=True)
    var = patches.var(-1, keepdim=True)
    return (patches - mean) / (var + floor).sqrt()


class Pretrainer(nn.Module):
    """Student backbone + the heads of the chosen objective (+ the EMA teacher for distill).

    Only the backbone is kept after training (`backbone.safetensors`); everything else is
    training-only. Images enter normalised (ImageNet mean/std of 0..255 pixels, as CrossEarth's).
    """

    def __init__(self, cfg: BackboneConfig, objective: str = "both", mask_ratio: float = 0.4):
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
        self.objective, self.mask_ratio = objective, mask_ratio
        self.backbone = PlainViT(cfg)
        self.patch = cfg.patch_size
        self.uses_mim = objective in ("mim", "both")
        self.uses_distill = objective in ("distill", "both")
        if self.uses_mim:
            self.decoder = nn.Linear(cfg.embed_dim, cfg.patch_size**2 * cfg.in_chans)
        if self.uses_distill:
            self.regressor = nn.Linear(cfg.embed_dim, cfg.embed_dim)
            self.teacher = copy.deepcopy(self.backbone)
            for p in self.teacher.parameters():
                p.requires_grad_(False)

    def sync_teacher(self) -> None:
        """Copy the student into the teacher (after loading weights into the student)."""
        if self.uses_distill:
            self.teacher.load_state_dict(self.backbone.state_dict())

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """teacher = momentum * teacher + (1 - momentum) * student."""
        if not self.uses_distill:
            return
        teacher = list(self.teacher.parameters())
        student = [p.detach() for p in self.backbone.parameters()]
        torch._foreach_mul_(teacher, momentum)
        torch._foreach_add_(teacher, student, alpha=1 - momentum)

    @torch.no_grad()
    def teacher_targets(self, x: torch.Tensor) -> torch.Tensor:
        """data2vec's target: the mean over the `out_indices` blocks of each patch token,
        layer-normalised per block (no affine): [B, N, C] float32."""
        t = self.teacher
        tokens = t.prepare_tokens(x)
        levels = []
        for idx, block in enumerate(t.blocks):
            tokens = block(tokens)
            if idx in t.cfg.out_indices:
                levels.append(F.layer_norm(tokens[:, 1:].float(), tokens.shape[-1:]))
        return torch.stack(levels).mean(0)

    def losses(
        self, view_a: torch.Tensor, view_b: torch.Tensor, generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Loss terms for a batch: the student sees `view_a` masked; MIM reconstructs `view_a`'s
        masked patches; distillation regresses, for every patch, the teacher's features of
        `view_b` (both views [B, 3, H, W], normalised). Returns `loss` and its terms."""
        b, _, h, w = view_a.shape
        grid_h, grid_w = h // self.patch, w // self.patch
        if grid_h != grid_w:
            raise ValueError(f"pretraining crops must be square, got {h}x{w}")
        mask = block_mask(b, grid_h, self.mask_ratio, generator).to(view_a.device)
        tokens = self.backbone(view_a, mask)[:, 1:]
        out: dict[str, torch.Tensor] = {}
        loss = tokens.new_zeros((), dtype=torch.float32)
        if self.uses_mim:
            pred = self.decoder(tokens).float()
            target = patch_targets(view_a.float(), self.patch)
            per_patch = (pred - target).abs().mean(-1)
            weight = mask.float()
            out["mim"] = (per_patch * weight).sum() / weight.sum().clamp(min=1)
            loss = loss + out["mim"]
        if self.uses_distill:
            target = self.teacher_targets(view_b)
            pred = self.regressor(tokens).float()
            out["distill"] = F.smooth_l1_loss(pred, target, beta=2.0)
            loss = loss + out["distill"]
        out["loss"] = loss
        return out


def teacher_momentum(step: int, total: int, base: float = 0.99) -> float:
    """EMA momentum: cosine from `base` to 1 over the run (DINO's schedule)."""
    if total <= 1:
        return base
    return 1 - (1 - base) * (math.cos(math.pi * min(step, total) / total) + 1) / 2

"""The Rein-tuned DINOv2 backbone: ViT blocks, Rein refinement after each, a 4-level pyramid."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint

from crossearth.config import BackboneConfig, ReinConfig
from crossearth.models.rein import build_reins
from crossearth.models.vit import DinoVisionTransformer

# Resize factors that turn the four stride-16 maps into strides 4, 8, 16, 32.
PYRAMID_SCALES = (4.0, 2.0, 1.0, 0.5)


class ReinDinoBackbone(DinoVisionTransformer):
    """`ReinsDinoVisionTransformer`: returns the 4 pyramid features and the Rein queries."""

    def __init__(self, cfg: BackboneConfig, rein_cfg: ReinConfig) -> None:
        super().__init__(cfg)
        if len(cfg.out_indices) != len(PYRAMID_SCALES):
            raise ValueError(f"out_indices must name 4 blocks, got {cfg.out_indices}")
        if any(not 0 <= i < cfg.depth for i in cfg.out_indices):
            raise ValueError(f"out_indices {cfg.out_indices} outside 0..{cfg.depth - 1}")
        self.reins = build_reins(rein_cfg, cfg.embed_dim, cfg.depth, cfg.patch_size)
        self.gradient_checkpointing = (
            False  # recompute blocks in backward to save memory (training)
        )

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Post-Rein, pre-norm tokens of the `out_indices` blocks as [B, C, H/16, W/16] maps."""
        b = x.shape[0]
        grid_h, grid_w = x.shape[-2] // self.cfg.patch_size, x.shape[-1] // self.cfg.patch_size
        tokens = self.prepare_tokens(x.to(self.cls_token.dtype))
        outs = []
        checkpointing = self.gradient_checkpointing and torch.is_grad_enabled()
        for idx, block in enumerate(self.blocks):
            if checkpointing:
                tokens = torch.utils.checkpoint.checkpoint(block, tokens, use_reentrant=False)
            else:
                tokens = block(tokens)
            tokens = self.reins(tokens, idx)
            if idx in self.cfg.out_indices:
                outs.append(
                    tokens[:, 1:].transpose(1, 2).reshape(b, -1, grid_h, grid_w).contiguous()
                )
        return outs

    def forward(
        self, x: torch.Tensor, *, resize: bool = True
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Pyramid maps at strides 4, 8, 16, 32 and the Rein queries (the official outputs).

        `resize=False` leaves the 4 maps at stride 16, to be resized by `PYRAMID_SCALES` later: the
        head resizes after its 1x1 projections (1024 -> 256 channels for ViT-L), which skips
        upsampling the wide stride-4 map."""
        feats = self.forward_features(x)
        if resize:
            feats = [
                f
                if s == 1.0
                else F.interpolate(f, scale_factor=s, mode="bilinear", align_corners=False)
                for f, s in zip(feats, PYRAMID_SCALES, strict=True)
            ]
        return feats, self.reins.queries()

"""Small building blocks shared by the pixel decoder and the transformer decoder.

Their parameter names follow the mmcv/mmdet modules they replace (`conv`/`gn`, `ffn.layers.0.0`,
`ffn.layers.1`, `attn.in_proj_weight`) so that official checkpoints load without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvNorm(nn.Module):
    """Conv2d followed by GroupNorm and an optional ReLU (mmcv `ConvModule` key layout)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        groups: int,
        bias: bool,
        relu: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)
        self.gn = nn.GroupNorm(groups, out_ch)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """conv -> [bilinear resize by `scale`] -> norm -> act, in the conv's dtype; returns x's dtype.

        Resizing after a 1x1 conv equals resizing its input first (both are linear per pixel and
        bilinear weights sum to 1), at a fraction of the cost when the conv narrows the channels.
        """
        y = self.conv(x.to(self.conv.weight.dtype))
        if scale != 1.0:
            if self.conv.kernel_size != (1, 1):
                raise ValueError("only a 1x1 convolution commutes with resizing")
            y = F.interpolate(y, scale_factor=scale, mode="bilinear", align_corners=False)
        return self.act(self.gn(y)).to(x.dtype)


class FFN(nn.Module):
    """Linear-ReLU-Linear with identity shortcut (mmcv `FFN`, keys `layers.0.0` and `layers.1`)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True)), nn.Linear(hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


def sine_position_encoding(
    batch: int,
    height: int,
    width: int,
    num_feats: int,
    *,
    device: torch.device | None = None,
    temperature: float = 10000.0,
) -> torch.Tensor:
    """Normalised 2-D sine encoding [B, 2*num_feats, H, W] of an unpadded map (mmdet's form)."""
    scale, eps = 2 * math.pi, 1e-6
    y_embed = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    x_embed = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    y_embed = y_embed / (y_embed[-1:] + eps) * scale
    x_embed = x_embed / (x_embed[-1:] + eps) * scale
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_x = x_embed[:, None] / dim_t  # [W, F]
    pos_y = y_embed[:, None] / dim_t  # [H, F]
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
    pos = torch.cat(
        (pos_y[:, None, :].expand(height, width, -1), pos_x[None, :, :].expand(height, width, -1)),
        dim=-1,
    )
    return pos.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1)

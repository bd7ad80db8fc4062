"""DINOv2 Vision Transformer with patch 16, parameter names identical to the official checkpoints.

Keys: `cls_token`, `pos_embed`, `mask_token`, `patch_embed.proj`, `blocks.N.{norm1, attn.qkv,
attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2, ls2.gamma}`, `norm` (loaded, never applied: the
official Rein backbone returns pre-norm tokens).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from crossearth.config import BackboneConfig
from crossearth.models.cache import CachedModule


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (softmax(q kᵀ / √d) v)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, proj_bias: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = (
            self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, bias: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm DINOv2 block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x)))."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.attn = Attention(dim, cfg.num_heads, cfg.qkv_bias, cfg.proj_bias)
        self.ls1 = _layer_scale(dim, cfg.layer_scale_init)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio), cfg.ffn_bias)
        self.ls2 = _layer_scale(dim, cfg.layer_scale_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


def _layer_scale(dim: int, init_value: float | None) -> nn.Module:
    return LayerScale(dim, init_value) if init_value else nn.Identity()


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: [B, in_chans, H, W] -> tokens [B, H*W/p², embed_dim]."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        if in_chans < 1:
            raise ValueError(f"in_chans must be at least 1, got {in_chans}")
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"input size {h}x{w} is not a multiple of the patch size {self.patch_size}"
            )
        return self.proj(x).flatten(2).transpose(1, 2)


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_h: int, grid_w: int) -> torch.Tensor:
    """Resize a [1, 1+N, C] position embedding to a grid_h x grid_w token grid.

    Reproduces the official DINOv2 rule: bicubic with `scale_factor=((g+0.1)/√N, ...)` rather than
    an explicit size, which changes the sampling positions slightly. An unchanged square grid is
    returned as is.
    """
    n = pos_embed.shape[1] - 1
    side = math.sqrt(n)
    if grid_h * grid_w == n and grid_h == grid_w:
        return pos_embed
    dtype = pos_embed.dtype
    pos = pos_embed.float()
    cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
    dim = pos.shape[-1]
    grid = patch_pos.reshape(1, int(side), int(side), dim).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid,
        scale_factor=((grid_h + 0.1) / side, (grid_w + 0.1) / side),
        mode="bicubic",
    )
    if grid.shape[-2:] != (grid_h, grid_w):  # the +0.1 rule guarantees this; keep a clear check
        raise RuntimeError(
            f"position embedding resized to {tuple(grid.shape[-2:])}, wanted {grid_h}x{grid_w}"
        )
    patch_pos = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
    return torch.cat((cls_pos, patch_pos), dim=1).to(dtype)


class DinoVisionTransformer(CachedModule):
    """Token preparation and blocks of the DINOv2 ViT; the Rein loop lives in `ReinBackbone`."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.patch_size, dim, cfg.in_chans)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid_size**2 + 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim, eps=cfg.norm_eps)  # present in checkpoints, never applied
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def prepare_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch-embed, prepend the cls token and add the (resized) position embedding."""
        grid_h, grid_w = x.shape[-2] // self.cfg.patch_size, x.shape[-1] // self.cfg.patch_size
        tokens = self.patch_embed(x)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        tokens = torch.cat((cls, tokens), dim=1)
        pos = self.cache.get(
            ("pos_embed", grid_h, grid_w, tokens.dtype),
            (self.pos_embed,),
            lambda: interpolate_pos_embed(self.pos_embed, grid_h, grid_w).to(tokens.dtype),
        )
        return tokens + pos

"""Mask2Former's MSDeformAttn pixel decoder in pure PyTorch (bilinear `grid_sample`, no mmcv ops)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crossearth.config import HeadConfig
from crossearth.models.layers import FFN, ConvNorm, sine_position_encoding


class MultiScaleDeformableAttention(nn.Module):
    """Deformable attention over several feature levels (Zhu et al.), batch-first.

    Keys: `sampling_offsets`, `attention_weights`, `value_proj`, `output_proj`.
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int) -> None:
        super().__init__()
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def forward(
        self,
        query: torch.Tensor,
        query_pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """query [B, Q, C] (also the value), reference_points [Q, 2] normalised (x, y)."""
        b, nq, c = query.shape
        heads, levels, points = self.num_heads, self.num_levels, self.num_points
        q = query + query_pos
        value = self.value_proj(query).view(b, nq, heads, c // heads)
        offsets = self.sampling_offsets(q).view(b, nq, heads, levels, points, 2)
        weights = self.attention_weights(q).view(b, nq, heads, levels * points).softmax(-1)
        # Sampling positions in fp32 (a bf16 position would be off by up to half a pixel).
        normalizer = torch.tensor(
            [[w, h] for h, w in spatial_shapes], dtype=torch.float32, device=offsets.device
        )
        locations = (
            reference_points.float()[None, :, None, None, None, :]
            + offsets.float() / normalizer[None, None, None, :, None, :]
        )
        out = deformable_sample(
            value, spatial_shapes, locations, weights.view(b, nq, heads, levels, points)
        )
        return query + self.output_proj(out)


def deformable_sample(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    locations: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted bilinear sampling of `value` at `locations` (mmcv's pure-PyTorch MSDeformAttn).

    value [B, S, heads, d]; locations [B, Q, heads, levels, points, 2] in [0, 1]; weights
    [B, Q, heads, levels, points]. Zeros outside the map, align_corners=False. Returns [B, Q, heads*d].
    """
    b, _, heads, d = value.shape
    _, nq, _, levels, points, _ = locations.shape
    grids = (2 * locations - 1).transpose(1, 2).flatten(0, 1)  # [B*heads, Q, levels, points, 2]
    sampled = []
    start = 0
    for level, (h, w) in enumerate(spatial_shapes):
        v = value[:, start : start + h * w].permute(0, 2, 3, 1).reshape(b * heads, d, h, w)
        start += h * w
        grid = grids[:, :, level]
        # grid_sample is faster in fp32 than in bf16 on CPU; sample in fp32 and cast back.
        s = F.grid_sample(
            v.float(), grid.float(), mode="bilinear", padding_mode="zeros", align_corners=False
        )
        sampled.append(s)  # [B*heads, d, Q, points]
    stacked = torch.stack(sampled, dim=-2).flatten(-2)  # [B*heads, d, Q, levels*points]
    w = weights.transpose(1, 2).reshape(b * heads, 1, nq, levels * points).float()
    out = (stacked * w).sum(-1).view(b, heads * d, nq)
    return out.transpose(1, 2).to(value.dtype)


class DeformableEncoderLayer(nn.Module):
    """MSDeformAttn -> norms[0] -> FFN -> norms[1] (post-norm)."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        dim = cfg.feat_channels
        self.self_attn = MultiScaleDeformableAttention(
            dim, cfg.encoder_heads, cfg.num_transformer_feat_level, cfg.encoder_points
        )
        self.ffn = FFN(dim, cfg.encoder_ffn_dim)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(2))

    def forward(self, x, pos, reference_points, spatial_shapes):
        x = self.norms[0](self.self_attn(x, pos, reference_points, spatial_shapes))
        return self.norms[1](self.ffn(x))


class DeformableEncoder(nn.Module):
    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DeformableEncoderLayer(cfg) for _ in range(cfg.encoder_layers))

    def forward(self, x, pos, reference_points, spatial_shapes):
        for layer in self.layers:
            x = layer(x, pos, reference_points, spatial_shapes)
        return x


class MSDeformAttnPixelDecoder(nn.Module):
    """Deformable encoder over the 3 coarsest levels, FPN step to stride 4, mask features.

    Returns `(mask_features [B, out, H/4, W/4], memories)` with memories at strides 32, 16, 8.
    """

    def __init__(self, cfg: HeadConfig, in_channels: list[int]) -> None:
        super().__init__()
        self.cfg = cfg
        feat, groups = cfg.feat_channels, cfg.norm_groups
        self.num_levels = cfg.num_transformer_feat_level
        self.num_inputs = len(in_channels)
        # input_convs[i] projects feats[num_inputs - 1 - i] (coarsest first).
        self.input_convs = nn.ModuleList(
            ConvNorm(in_channels[self.num_inputs - 1 - i], feat, 1, groups, bias=True)
            for i in range(self.num_levels)
        )
        self.encoder = DeformableEncoder(cfg)
        self.level_encoding = nn.Embedding(self.num_levels, feat)
        n_fpn = self.num_inputs - self.num_levels
        self.lateral_convs = nn.ModuleList(
            ConvNorm(in_channels[i], feat, 1, groups, bias=False) for i in range(n_fpn)
        )
        self.output_convs = nn.ModuleList(
            ConvNorm(feat, feat, 3, groups, bias=False, relu=True) for _ in range(n_fpn)
        )
        self.mask_feature = nn.Conv2d(feat, cfg.out_channels, 1)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b = feats[0].shape[0]
        inputs, positions, refs, shapes = [], [], [], []
        for i in range(self.num_levels):
            feat = feats[self.num_inputs - 1 - i]
            h, w = feat.shape[-2:]
            projected = self.input_convs[i](feat)
            pos = sine_position_encoding(b, h, w, self.cfg.pos_num_feats, device=feat.device)
            pos = pos + self.level_encoding.weight[i].view(1, -1, 1, 1).float()
            inputs.append(projected.flatten(2).transpose(1, 2))
            positions.append(pos.flatten(2).transpose(1, 2).to(projected.dtype))
            refs.append(_reference_points(h, w, feat.device))
            shapes.append((h, w))
        enc_dtype = (
            self.encoder.layers[0].ffn.layers[1].weight.dtype
            if self.encoder.layers
            else inputs[0].dtype
        )
        memory = self.encoder(
            torch.cat(inputs, 1).to(enc_dtype),
            torch.cat(positions, 1).to(enc_dtype),
            torch.cat(refs, 0),  # sampling positions stay fp32 whatever the compute dtype
            shapes,
        ).to(inputs[0].dtype)
        outs = [
            m.transpose(1, 2).reshape(b, -1, h, w)
            for m, (h, w) in zip(
                memory.split([h * w for h, w in shapes], dim=1), shapes, strict=True
            )
        ]
        for i in range(self.num_inputs - self.num_levels - 1, -1, -1):
            lateral = self.lateral_convs[i](feats[i])
            up = F.interpolate(
                outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            outs.append(self.output_convs[i](lateral + up))
        last = outs[-1]
        mask_features = self.mask_feature(last.to(self.mask_feature.weight.dtype)).to(last.dtype)
        return mask_features, outs[: self.num_levels]


def _reference_points(h: int, w: int, device: torch.device) -> torch.Tensor:
    """Pixel centres ((x+0.5)/W, (y+0.5)/H) in row-major order, [H*W, 2]."""
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=-1)

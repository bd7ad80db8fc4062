"""Mask2Former's MSDeformAttn pixel decoder in pure PyTorch (bilinear `grid_sample`, no mmcv ops)."""

from __future__ import annotations

from collections.abc import Sequence

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
        # The official position ref + offset / (w, h), in pixel units of each level
        # (align_corners=False) is ref * (w, h) - 0.5 + offset: no division, and in fp32 (a bf16
        # position would be off by up to half a pixel).
        sizes = _level_sizes(spatial_shapes, offsets.device)
        ref_pixels = reference_points.float()[:, None] * sizes - 0.5  # [Q, levels, 2]
        pixels = torch.add(ref_pixels[None, :, None, :, None], offsets)  # fp32 by promotion
        out = deformable_sample(
            value, spatial_shapes, pixels, weights.view(b, nq, heads, levels, points)
        )
        return query + self.output_proj(out)


def deformable_sample(
    value: torch.Tensor,
    spatial_shapes: list[tuple[int, int]],
    pixels: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted bilinear sampling of `value` at `pixels` (MSDeformAttn's core), one grid_sample.

    value [B, S, heads, d]; pixels [B, Q, heads, levels, points, 2]: (x, y) in each level's pixel
    units, pixel centres at integers (align_corners=False); weights [B, Q, heads, levels, points].
    Zeros outside each map: the semantics of mmcv's pure-PyTorch version, one `grid_sample` per
    level. Returns [B, Q, heads*d].

    All levels are packed into one zero-bordered atlas (`_level_atlas`) and sampled in a single
    call; positions are clamped to each level's one-pixel zero border, which gives exactly the
    zero padding of a per-level call. Samples come out as [B*heads, d, levels*points, Q] so that
    the weighted sum is a short loop of fused multiply-adds over contiguous Q-vectors.
    """
    b, _, heads, d = value.shape
    _, nq, _, levels, points, _ = pixels.shape
    atlas, origins = _level_atlas(value, spatial_shapes)  # [B*heads, d, Ha, Wa], >= fp32
    sizes = _level_sizes(spatial_shapes, pixels.device)[:, None]  # [levels, 1, 2]
    pixels = torch.clamp(pixels, min=-torch.ones_like(sizes), max=sizes)  # on the zero border
    # Atlas coordinates normalised to [-1, 1]: (pixel + origin + 0.5) * 2 / size - 1.
    scale = 2.0 / torch.tensor(atlas.shape[:1:-1], dtype=torch.float32, device=pixels.device)
    grid = torch.addcmul((origins[:, None] + 0.5) * scale - 1.0, pixels, scale)
    grid = grid.permute(0, 2, 3, 4, 1, 5).reshape(b * heads, levels * points, nq, 2)
    grid = grid.to(atlas.dtype)
    # grid_sample is faster in fp32 than in bf16 on CPU; sample in fp32 and cast back.
    sampled = F.grid_sample(
        atlas, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # [B*heads, d, levels*points, Q]
    w = weights.to(atlas.dtype).permute(0, 2, 3, 4, 1).reshape(b * heads, 1, levels * points, nq)
    out = sampled[:, :, 0] * w[:, :, 0]
    for k in range(1, levels * points):
        out.addcmul_(sampled[:, :, k], w[:, :, k])
    return out.view(b, heads * d, nq).transpose(1, 2).to(value.dtype)


def _level_sizes(spatial_shapes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """(width, height) of each level, [levels, 2] fp32."""
    return torch.tensor([[w, h] for h, w in spatial_shapes], dtype=torch.float32, device=device)


def _level_atlas(
    value: torch.Tensor, spatial_shapes: list[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack the levels of value [B, S, heads, d] top to bottom in one fp32 map [B*heads, d, Ha, Wa],
    each followed by a zero row and with zeros right of it (width max(w) + 1).

    Returns the atlas and each level's (x, y) origin in it [levels, 2].
    """
    b, _, heads, d = value.shape
    width = max(w for _, w in spatial_shapes) + 1
    height = sum(h + 1 for h, _ in spatial_shapes)
    dtype = torch.promote_types(value.dtype, torch.float32)  # at least fp32 (fp64 for checks)
    atlas = value.new_zeros((b * heads, d, height, width), dtype=dtype)
    origins, start, top = [], 0, 0
    for h, w in spatial_shapes:
        level = value[:, start : start + h * w].permute(0, 2, 3, 1)
        atlas[:, :, top : top + h, :w] = level.reshape(b * heads, d, h, w)
        origins.append((0.0, float(top)))
        start, top = start + h * w, top + h + 1
    return atlas, torch.tensor(origins, dtype=torch.float32, device=value.device)


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

    def forward(
        self, feats: list[torch.Tensor], scales: Sequence[float] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """feats: the 4 pyramid maps, or, with `scales`, maps still to be resized by those factors.

        The pyramid only enters through 1x1 convs, so resizing their narrower outputs instead of the
        wide backbone maps gives the same result (up to float rounding) with less work.
        """
        b = feats[0].shape[0]
        scales = list(scales) if scales is not None else [1.0] * len(feats)
        if len(scales) != len(feats):
            raise ValueError(f"{len(scales)} scales for {len(feats)} feature maps")
        inputs, positions, refs, shapes = [], [], [], []
        for i in range(self.num_levels):
            k = self.num_inputs - 1 - i
            projected = self.input_convs[i](feats[k], scales[k])
            h, w = projected.shape[-2:]
            device = projected.device
            pos = sine_position_encoding(b, h, w, self.cfg.pos_num_feats, device=device)
            pos = pos + self.level_encoding.weight[i].view(1, -1, 1, 1).float()
            inputs.append(projected.flatten(2).transpose(1, 2))
            positions.append(pos.flatten(2).transpose(1, 2).to(projected.dtype))
            refs.append(_reference_points(h, w, device))
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
            lateral = self.lateral_convs[i](feats[i], scales[i])
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

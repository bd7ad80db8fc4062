"""Rein's Mask2Former head: pixel decoder, masked-attention transformer decoder, semantic scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from crossearth.config import HeadConfig
from crossearth.models.layers import FFN, sine_position_encoding
from crossearth.models.pixel_decoder import MSDeformAttnPixelDecoder


class Attention(nn.Module):
    """mmcv `MultiheadAttention`: positions added to query and key, identity shortcut (key `attn`)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        query_pos: torch.Tensor,
        key_pos: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = self.attn(
            query + query_pos, key + key_pos, value, attn_mask=attn_mask, need_weights=False
        )[0]
        return query + out


class DecoderLayer(nn.Module):
    """Masked cross-attention -> norms[0] -> self-attention -> norms[1] -> FFN -> norms[2]."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        dim = cfg.feat_channels
        self.cross_attn = Attention(dim, cfg.decoder_heads)
        self.self_attn = Attention(dim, cfg.decoder_heads)
        self.ffn = FFN(dim, cfg.decoder_ffn_dim)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, query, query_pos, memory, memory_pos, attn_mask):
        query = self.norms[0](
            self.cross_attn(query, memory, memory, query_pos, memory_pos, attn_mask)
        )
        query = self.norms[1](self.self_attn(query, query, query, query_pos, query_pos))
        return self.norms[2](self.ffn(query))


class TransformerDecoder(nn.Module):
    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.decoder_layers))
        self.post_norm = nn.LayerNorm(cfg.feat_channels)


@dataclass
class HeadOutput:
    """Per-stage predictions of the head; the last entry of each list is the final one."""

    class_logits: list[torch.Tensor]  # [B, Q, C+1] per stage
    mask_logits: list[torch.Tensor]  # [B, Q, H/4, W/4] per stage
    query_feats: list[torch.Tensor]  # [B, Q, D] per stage, before post_norm
    attn_masks: list[torch.Tensor]  # bool [B, Q, HW_level] received by each decoder layer

    @property
    def final_class_logits(self) -> torch.Tensor:
        return self.class_logits[-1]

    @property
    def final_mask_logits(self) -> torch.Tensor:
        return self.mask_logits[-1]


class ReinMask2FormerHead(nn.Module):
    """Mask2Former head whose queries come from Rein (`querys2feat`, no `query_embed`)."""

    def __init__(self, cfg: HeadConfig, in_channels: list[int]) -> None:
        super().__init__()
        self.cfg = cfg
        feat = cfg.feat_channels
        self.num_levels = cfg.num_transformer_feat_level
        self.pixel_decoder = MSDeformAttnPixelDecoder(cfg, in_channels)
        self.transformer_decoder = TransformerDecoder(cfg)
        self.level_embed = nn.Embedding(self.num_levels, feat)
        self.querys2feat = nn.Linear(feat, feat)
        self.cls_embed = nn.Linear(feat, cfg.num_classes + 1)
        self.mask_embed = nn.Sequential(
            nn.Linear(feat, feat),
            nn.ReLU(inplace=True),
            nn.Linear(feat, feat),
            nn.ReLU(inplace=True),
            nn.Linear(feat, cfg.out_channels),
        )

    def forward(
        self,
        feats: list[torch.Tensor],
        queries: torch.Tensor,
        *,
        all_stages: bool = False,
        scales: Sequence[float] | None = None,
    ) -> HeadOutput:
        """Run the head. With `all_stages=False` only the final prediction is kept (inference).

        `scales`: the feats are stride-16 maps still to be resized (see the pixel decoder)."""
        b = feats[0].shape[0]
        mask_features, memories = self.pixel_decoder(feats, scales)
        # The decoder runs in its own dtype (bf16 precision casts only the pixel decoder).
        dtype = self.querys2feat.weight.dtype
        mask_features, memories = mask_features.to(dtype), [m.to(dtype) for m in memories]
        inputs, positions, sizes = [], [], []
        for i, memory in enumerate(memories):
            h, w = memory.shape[-2:]
            inputs.append(
                memory.flatten(2).transpose(1, 2) + self.level_embed.weight[i].to(memory.dtype)
            )
            pos = sine_position_encoding(b, h, w, self.cfg.pos_num_feats, device=memory.device)
            positions.append(pos.flatten(2).transpose(1, 2).to(memory.dtype))
            sizes.append((h, w))
        query_pos = queries.to(mask_features.dtype).unsqueeze(0).expand(b, -1, -1)
        query = self.querys2feat(query_pos)
        out = HeadOutput([], [], [], [])
        layers = self.transformer_decoder.layers
        # At inference only the last stage's full-resolution masks are kept; the earlier stages
        # only feed the attention masks, at 1/8..1/32 resolution. Bilinear resizing is linear, so
        # resizing the mask features once per level and projecting there equals resizing each
        # stage's full-resolution masks (the official order) at a fraction of the cost.
        small = None if all_stages else _resized_per_level(mask_features, sizes)
        cls, mask, attn_mask = self._predict(query, mask_features, sizes[0], small, not layers)
        self._record(out, query, cls, mask, all_stages)
        heads = self.cfg.decoder_heads
        for i, layer in enumerate(layers):
            level = i % self.num_levels
            # A query that would attend to nothing attends to everything instead.
            attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)
            if all_stages:
                out.attn_masks.append(attn_mask)
            head_mask = attn_mask.repeat_interleave(heads, dim=0)  # [B*heads, Q, HW]
            query = layer(query, query_pos, inputs[level], positions[level], head_mask)
            last = i == len(layers) - 1
            cls, mask, attn_mask = self._predict(
                query, mask_features, sizes[(i + 1) % self.num_levels], small, last
            )
            self._record(out, query, cls, mask, all_stages)
        return out

    @staticmethod
    def _record(out: HeadOutput, query, cls, mask, all_stages: bool) -> None:
        if all_stages or not out.class_logits:
            out.query_feats.append(query)
            out.class_logits.append(cls)
            out.mask_logits.append(mask)
        else:
            out.query_feats[0], out.class_logits[0], out.mask_logits[0] = query, cls, mask

    def _predict(
        self,
        query: torch.Tensor,
        mask_features: torch.Tensor,
        attn_size: tuple[int, int],
        small: dict[tuple[int, int], torch.Tensor] | None = None,
        final: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Class logits, mask logits and the next layer's attention mask (True = masked out).

        With `small` (mask features already resized per level) a non-final stage skips its
        full-resolution masks (returned as None); a final one skips the attention mask."""
        q = self.transformer_decoder.post_norm(query)
        cls = self.cls_embed(q)
        embed = self.mask_embed(q)
        if small is not None and not final:
            attn = torch.einsum("bqc,bchw->bqhw", embed, small[attn_size])
            return cls, None, (attn.flatten(2).sigmoid() < 0.5).detach()
        mask = torch.einsum("bqc,bchw->bqhw", embed, mask_features)
        if small is not None:
            return cls, mask, None
        attn = F.interpolate(mask, size=attn_size, mode="bilinear", align_corners=False)
        attn_mask = (attn.flatten(2).sigmoid() < 0.5).detach()
        return cls, mask, attn_mask


def _resized_per_level(
    mask_features: torch.Tensor, sizes: list[tuple[int, int]]
) -> dict[tuple[int, int], torch.Tensor]:
    """The mask features bilinearly resized to each attention level's size."""
    return {
        size: F.interpolate(mask_features, size=size, mode="bilinear", align_corners=False)
        for size in set(sizes)
    }


def semantic_scores(
    class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Official semantic scores [B, C, H, W]: Σ_q softmax(cls)[..., :C] · sigmoid(mask resized)."""
    masks = F.interpolate(mask_logits.float(), size=size, mode="bilinear", align_corners=False)
    probs = class_logits.float().softmax(-1)[..., :-1]
    return torch.einsum("bqc,bqhw->bchw", probs, masks.sigmoid())

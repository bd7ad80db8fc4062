"""Rein adapters: learnable tokens that refine the frozen ViT features after every block.

`Reins` stores the tokens of each layer as one [L, M, C] tensor; `LoRAReins` factorises them as
`learnable_tokens_a @ learnable_tokens_b` ([L, M, r] @ [L, r, C]). Both also produce the image-
independent object queries of the Mask2Former head (`queries`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from crossearth.config import ReinConfig
from crossearth.models.cache import CachedModule


class Reins(CachedModule):
    """Plain Rein: one [M, C] token set per layer (key `learnable_tokens`)."""

    def __init__(self, cfg: ReinConfig, embed_dim: int, num_layers: int, patch_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_dim = embed_dim
        self.num_layers = num_layers
        self.scale = nn.Parameter(torch.tensor(float(cfg.scale_init)))
        self.mlp_token2feat = nn.Linear(embed_dim, embed_dim)
        self.mlp_delta_f = nn.Linear(embed_dim, embed_dim)
        self.transform = nn.Linear(embed_dim, cfg.query_dims)
        self.merge = nn.Linear(cfg.query_dims * 3, cfg.query_dims)
        self._create_tokens(patch_size)
        if cfg.zero_mlp_delta_f:
            nn.init.zeros_(self.mlp_delta_f.weight)
            nn.init.zeros_(self.mlp_delta_f.bias)

    def _create_tokens(self, patch_size: int) -> None:
        bound = math.sqrt(6.0 / float(3 * patch_size * patch_size + self.embed_dim))
        self.learnable_tokens = nn.Parameter(
            torch.empty(self.num_layers, self.cfg.token_length, self.embed_dim).uniform_(
                -bound, bound
            )
        )

    def tokens(self, layer: int | None = None) -> torch.Tensor:
        """Tokens of one layer [M, C], or of all layers [L, M, C] when `layer` is None."""
        return self.learnable_tokens if layer is None else self.learnable_tokens[layer]

    def forward(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """Refine batch-first tokens [B, 1+N, C]; the cls token (index 0) passes unchanged."""
        cls_token, feats = x[:, :1], x[:, 1:]
        tokens, token_feats = self._layer_tokens(layer, feats.dtype)
        attn = feats @ tokens.t()  # [B, N, M]
        if self.cfg.use_softmax:
            attn = F.softmax(attn * self.embed_dim**-0.5, dim=-1)
        # Token 0 joins the softmax normalisation but contributes no value (an attention sink).
        delta = attn[..., 1:] @ token_feats
        delta = self.mlp_delta_f(delta + feats)
        return torch.cat((cls_token, feats + delta * self.scale.to(feats.dtype)), dim=1)

    def _layer_tokens(self, layer: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """A layer's tokens [M, C] and the value features of tokens 1.. [M-1, C] (image-independent,
        so computed once per weights at inference)."""

        def compute() -> torch.Tensor:
            tokens = self.tokens(layer).to(dtype)
            return torch.cat((tokens, self.mlp_token2feat(tokens[1:])))

        both = self.cache.get(("layer", layer, dtype), self.parameters(), compute)
        m = self.cfg.token_length
        return both[:m], both[m:]

    def queries(self) -> torch.Tensor:
        """Object queries [M, query_dims]: max, mean and last over layers, interleaved, merged."""
        return self.cache.get("queries", self.parameters(), self._compute_queries)

    def _compute_queries(self) -> torch.Tensor:
        per_layer = self.transform(self.tokens()).permute(1, 2, 0)  # [M, Q, L]
        stacked = torch.stack(
            (per_layer.max(dim=-1).values, per_layer.mean(dim=-1), per_layer[..., -1]), dim=-1
        )  # [M, Q, 3]; flatten index is q * 3 + k (interleaved)
        return self.merge(stacked.flatten(-2))


class LoRAReins(Reins):
    """Rein with low-rank tokens: `learnable_tokens_a` [L, M, r] @ `learnable_tokens_b` [L, r, C]."""

    def _create_tokens(self, patch_size: int) -> None:
        rank = self.cfg.lora_dim
        bound = math.sqrt(6.0 / float(3 * patch_size * patch_size + self.embed_dim))
        self.learnable_tokens_a = nn.Parameter(
            torch.empty(self.num_layers, self.cfg.token_length, rank).uniform_(-bound, bound)
        )
        self.learnable_tokens_b = nn.Parameter(
            torch.empty(self.num_layers, rank, self.embed_dim).uniform_(-bound, bound)
        )

    def tokens(self, layer: int | None = None) -> torch.Tensor:
        if layer is None:
            return self.learnable_tokens_a @ self.learnable_tokens_b
        return self.learnable_tokens_a[layer] @ self.learnable_tokens_b[layer]


def build_reins(cfg: ReinConfig, embed_dim: int, num_layers: int, patch_size: int) -> Reins:
    cls = LoRAReins if cfg.lora_dim else Reins
    return cls(cfg, embed_dim, num_layers, patch_size)

"""The module that is exported: one static square window in, per-class probabilities out.

The official semantic scores (Σ over queries of softmax(class) · sigmoid(mask)) are non-negative
but do not sum to one over classes. Deployment tools such as QGIS Deepness expect probabilities,
so the exported graph divides the scores by their sum over classes; the argmax is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from crossearth.models.cache import CachedModule, ParameterCache

# Guards the division where every score underflows to 0 (probabilities 0, label 0 as in
# PyTorch): the smallest normal float32, so that tiny but non-zero sums still normalise to one.
SUM_FLOOR = float(torch.finfo(torch.float32).tiny)


class _PassThroughCache(ParameterCache):
    """A cache that always recomputes: tracing records the computation from the weights."""

    def get(self, key, params, compute):  # type: ignore[override]
        return compute()


@contextmanager
def caches_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Swap every inference-only `ParameterCache` of `model` for a pass-through one meanwhile.

    The caches memoise weight-derived tensors (Rein token features, queries, resized position
    embeddings) keyed by storage pointers, which a tracer must neither read (fake tensors have no
    storage) nor fill (a traced value must not leak into later eager calls).
    """
    saved = []
    for module in model.modules():
        if isinstance(module, CachedModule):
            saved.append((module, module.cache))
            module.cache = _PassThroughCache()
    try:
        yield model
    finally:
        for module, cache in saved:
            module.cache = cache


@contextmanager
def position_embedding_for(model: nn.Module, tile: int) -> Iterator[nn.Module]:
    """Meanwhile, give the backbone its position embedding already resized to `tile` pixels.

    The resize (official DINOv2 bicubic rule) depends only on the weights and the static tile, so
    it is done once here, eagerly, instead of being traced from shape arithmetic."""
    from crossearth.models.vit import interpolate_pos_embed

    backbone = model.backbone
    grid = tile // backbone.cfg.patch_size
    original = backbone.pos_embed
    with torch.no_grad():
        resized = interpolate_pos_embed(original.detach(), grid, grid)
    if resized is original:
        yield model
        return
    backbone.pos_embed = nn.Parameter(resized, requires_grad=False)
    try:
        yield model
    finally:
        backbone.pos_embed = original


class DeployModel(nn.Module):
    """`CrossEarth` for deployment: normalised window [B, 3, S, S] -> probabilities [B, C, S, S].

    The input is what Deepness feeds: uint8 pixels / 255, minus `mean / 255`, divided by
    `std / 255` (identical to the model's own normalisation). With `normalise=False` the output is
    the official scores instead (used inside the ONNX export, which appends the division itself so
    that the raw scores stay addressable by name).
    """

    def __init__(self, model: nn.Module, *, normalise: bool = True) -> None:
        super().__init__()
        self.model = model
        self.normalise = normalise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.model(x).float()
        if not self.normalise:
            return scores
        return scores / scores.sum(dim=1, keepdim=True).clamp_min(SUM_FLOOR)

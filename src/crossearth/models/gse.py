"""Optional Geospatial Semantic Extractor (GSE) and Injectors, designed from the paper's figure.

The paper shows these only as a figure (spec §1.4): a "(Conv → ReLU) ×5" branch on the original
image (3x1024x1024 in, 1024x64x64 out) whose output is the query ``q`` of one cross-attention
"Injector" per backbone stage (``k``, ``v`` from the stage features, then a Linear) that injects
semantics back into the backbone stream. No code was released. Everything below is our design and
is **off by default**: nothing here is part of `CrossEarth`'s state dict, the training module owns
a `GSEInjection` and wires it into the backbone with `install`, and a fresh one leaves the
network's outputs bit-for-bit unchanged.

Design choices (ours; the spec names none of them):

* **Extractor** (`GeoSemanticExtractor`): five 3x3 convs (padding 1), each followed by ReLU, on
  the *normalised* image. The first ``log2(stride)`` convs have stride 2 and the rest stride 1, so
  with ``stride=16`` four halvings bring the image to the patch grid (H/16 x W/16: 64x64 for 1024,
  as drawn). Channels ``width, 2·width, 4·width, 4·width, 4·width`` (64-128-256-256-256), then a 1x1
  projection (bias, no ReLU, so ``q`` can be signed) to ``embed_dim``. No normalisation layers
  (the figure draws none); PyTorch's default conv initialisation.
* **Injector** (`Injector`): pre-LayerNorm on both inputs (eps 1e-6, as the ViT), multi-head
  cross-attention with queries from the GSE tokens and keys/values from the stage's *patch*
  tokens (the cls token neither attends nor is attended to, and passes unchanged), ``num_heads=8``,
  attention width ``attn_dim`` (default ``embed_dim``), then one Linear back to ``embed_dim``: that
  is the figure's "Linear", doubling as the attention output projection (two Linears in a row
  would be redundant). The GSE grid equals the patch grid, so the result is added position by
  position to the patch tokens through a per-channel gate initialised to **zero**: ``f ← f + γ ⊙
  Linear(Attn(q, f))``. A fresh injector is therefore the identity (exactly: ``f + 0``), the
  gate's gradient is non-zero from the first step (the attention branch's is zero until ``γ``
  moves, as in ReZero / LayerScale-0 / ViT-Adapter's injector).
* **Where.** One injector per stage, applied to the tokens leaving the stage's last block *after*
  the Rein refinement of that block, i.e. to exactly the tokens the 4-level pyramid is read from
  (default stages = the backbone's ``out_indices``). Later blocks see the injected tokens. All
  stages share the single ``q`` computed once per image.
* **Wiring.** `install` registers a forward hook on ``backbone.reins`` (called as
  ``reins(tokens, layer)`` after every block) that replaces the output at the chosen layers, and
  one on the backbone that drops ``q`` after each backbone forward: ``q`` is consumed by exactly
  one forward, so a stale ``q`` (say, of the clean view reused for the masked MIM view, which would
  leak the masked pixels) is impossible, and a forward without a fresh ``q`` raises. Call
  ``gse.set_image(x_norm)`` before every backbone forward, or install with ``auto_image=True`` to
  compute ``q`` from the backbone's own input. ``handle.remove()`` removes the hooks, so the
  original behaviour is restored exactly (no attribute of the backbone is modified).

Cost (multiply-accumulates, MACs; norms, softmax, ReLU and the gate are ignored), with ``width=64``
and ``attn_dim = embed_dim``:

==========================  ==========  ======================  =======================
ViT-L (C=1024), 4 stages    parameters  MACs at 512² (N=1024)   MACs at 1024² (N=4096)
==========================  ==========  ======================  =======================
extractor                   1.81 M      4.01 G                  16.0 G
one injector                4.20 M      6.44 G                  51.5 G
GSE + 4 injectors           18.6 M      29.8 G                  222 G
backbone (24 blocks)        304 M       361 G                   2062 G
==========================  ==========  ======================  =======================

i.e. about +8 % (512²) / +11 % (1024²) backbone compute and six times Rein's 2.99 M trainable
parameters; the injector's ``4·N·C·d + 2·N²·d`` dominates. ``attn_dim=256`` cuts each injector to
1.05 M parameters and 1.61 G / 12.9 G MACs. `GSEInjection.macs` and `GSEInjection.num_parameters`
give the numbers for any configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["GSEHandle", "GSEInjection", "GeoSemanticExtractor", "Injector", "install"]

NUM_CONVS = 5


class GeoSemanticExtractor(nn.Module):
    """5 x (conv3x3 + ReLU) from the normalised image to the patch grid, then a 1x1 projection.

    ``forward(x [B, 3, H, W]) -> q [B, (H/stride)·(W/stride), embed_dim]`` (row-major tokens, the
    order of the ViT's patch tokens).
    """

    def __init__(self, embed_dim: int, width: int = 64, stride: int = 16, in_channels: int = 3):
        super().__init__()
        if stride < 1 or stride & (stride - 1) or stride > 2**NUM_CONVS:
            raise ValueError(f"stride must be a power of two up to {2**NUM_CONVS}, got {stride}")
        self.stride = stride
        halvings = stride.bit_length() - 1
        chans = [in_channels, width, 2 * width, 4 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(NUM_CONVS):
            s = 2 if i < halvings else 1
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=s, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(chans[-1], embed_dim, 1)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Output grid for an image of ``height`` x ``width``."""
        return -(-height // self.stride), -(-width // self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.proj(self.convs(x))
        return q.flatten(2).transpose(1, 2)

    def macs(self, height: int, width: int) -> int:
        total, h, w = 0, height, width
        for conv in (m for m in self.convs if isinstance(m, nn.Conv2d)):
            h, w = -(-h // conv.stride[0]), -(-w // conv.stride[1])
            total += h * w * conv.in_channels * conv.out_channels * 9
        return total + h * w * self.proj.in_channels * self.proj.out_channels


class Injector(nn.Module):
    """Gated cross-attention: ``f ← f + γ ⊙ Linear(Attn(LN(q), LN(f)))`` on the patch tokens.

    ``forward(tokens [B, 1+N, C], q [B, N, C]) -> tokens``; the cls token (index 0) is untouched.
    ``gate`` (γ, [C]) starts at zero, so a fresh injector returns its input unchanged.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int = 8,
        attn_dim: int | None = None,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        attn_dim = attn_dim or embed_dim
        if attn_dim % num_heads:
            raise ValueError(f"attn_dim {attn_dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.attn_dim = attn_dim
        self.query_norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.feat_norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.q = nn.Linear(embed_dim, attn_dim)
        self.kv = nn.Linear(embed_dim, 2 * attn_dim)
        self.proj = nn.Linear(attn_dim, embed_dim)
        self.gate = nn.Parameter(torch.zeros(embed_dim))

    def delta(self, q: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """The ungated update ``Linear(Attn(LN(q), LN(feats)))`` [B, N, C]."""
        b, n, _ = q.shape
        heads, head_dim = self.num_heads, self.attn_dim // self.num_heads
        query = self.q(self.query_norm(q)).view(b, n, heads, head_dim).transpose(1, 2)
        key, value = self.kv(self.feat_norm(feats)).view(b, -1, 2, heads, head_dim).unbind(2)
        out = F.scaled_dot_product_attention(query, key.transpose(1, 2), value.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, n, self.attn_dim))

    def forward(self, tokens: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        cls_token, feats = tokens[:, :1], tokens[:, 1:]
        if q.shape[0] != feats.shape[0] or q.shape[1] != feats.shape[1]:
            raise ValueError(
                f"GSE query {tuple(q.shape)} does not match the patch tokens {tuple(feats.shape)}"
            )
        dtype = self.gate.dtype
        update = self.gate * self.delta(q.to(dtype), feats.to(dtype))
        return torch.cat((cls_token, feats + update.to(feats.dtype)), dim=1)

    def macs(self, num_tokens: int) -> int:
        c, d, n = self.q.in_features, self.attn_dim, num_tokens
        return 4 * n * c * d + 2 * n * n * d


class GSEInjection(nn.Module):
    """One `GeoSemanticExtractor` and one `Injector` per stage (block index in ``stages``).

    ``extract(x_norm) -> q``; ``inject(tokens, stage_index, q) -> tokens`` (``stage_index`` is the
    position in ``stages``). For use inside the backbone see `install` and `set_image`.
    State-dict keys: ``extractor.*`` and ``injectors.<i>.*``.
    """

    def __init__(
        self,
        embed_dim: int,
        stages: tuple[int, ...],
        width: int = 64,
        stride: int = 16,
        num_heads: int = 8,
        attn_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.stages = tuple(int(s) for s in stages)
        if len(set(self.stages)) != len(self.stages) or not self.stages:
            raise ValueError(f"stages must be distinct block indices, got {stages}")
        self.extractor = GeoSemanticExtractor(embed_dim, width, stride)
        self.injectors = nn.ModuleList(
            Injector(embed_dim, num_heads, attn_dim) for _ in self.stages
        )
        self._q: torch.Tensor | None = None
        self._installed = False

    @classmethod
    def for_backbone(cls, backbone: nn.Module, **kwargs) -> GSEInjection:
        """Sized for a `ReinDinoBackbone` (or a `CrossEarth`): its width, patch size, out_indices."""
        cfg = _backbone(backbone).cfg
        kwargs.setdefault("stages", tuple(cfg.out_indices))
        kwargs.setdefault("stride", cfg.patch_size)
        return cls(cfg.embed_dim, **kwargs)

    def extract(self, x_norm: torch.Tensor) -> torch.Tensor:
        """GSE tokens ``q`` [B, N, C] of a normalised batch [B, 3, H, W]."""
        return self.extractor(x_norm.to(self.extractor.proj.weight.dtype))

    def inject(self, tokens: torch.Tensor, stage_index: int, q: torch.Tensor) -> torch.Tensor:
        """Tokens [B, 1+N, C] after the injector of stage ``stage_index``; cls untouched."""
        return self.injectors[stage_index](tokens, q)

    def set_image(self, x_norm: torch.Tensor) -> torch.Tensor:
        """Compute and hold ``q`` for the next backbone forward (consumed by it); returns ``q``."""
        self._q = self.extract(x_norm)
        return self._q

    def clear(self) -> None:
        """Drop the held ``q``."""
        self._q = None

    @property
    def pending(self) -> torch.Tensor | None:
        """The ``q`` waiting for the next backbone forward, if any."""
        return self._q

    def num_parameters(self) -> dict[str, int]:
        extractor = sum(p.numel() for p in self.extractor.parameters())
        per_injector = sum(p.numel() for p in self.injectors[0].parameters())
        return {
            "extractor": extractor,
            "injector": per_injector,
            "total": sum(p.numel() for p in self.parameters()),
        }

    def macs(self, height: int, width: int) -> dict[str, int]:
        """Multiply-accumulates for one image of ``height`` x ``width`` (see module docstring)."""
        gh, gw = self.extractor.grid(height, width)
        extractor = self.extractor.macs(height, width)
        per_injector = self.injectors[0].macs(gh * gw)
        return {
            "extractor": extractor,
            "injector": per_injector,
            "total": extractor + per_injector * len(self.injectors),
        }


def _backbone(module: nn.Module) -> nn.Module:
    return module.backbone if hasattr(module, "decode_head") else module


@dataclass
class GSEHandle:
    """Returned by `install`; ``remove()`` (idempotent) undoes it. Also a context manager."""

    gse: GSEInjection
    hooks: list[RemovableHandle] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.hooks)

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
        if self.hooks:
            self.gse._installed = False
            self.gse.clear()
        self.hooks = []

    def __enter__(self) -> GSEHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def install(backbone: nn.Module, gse: GSEInjection, *, auto_image: bool = False) -> GSEHandle:
    """Route the tokens after the ``gse.stages`` blocks (post-Rein) through ``gse``'s injectors.

    ``backbone``: a `ReinDinoBackbone` or a `CrossEarth`. While installed, every backbone forward
    needs a fresh ``q``: call ``gse.set_image(x_norm)`` just before it (with the same batch the
    backbone gets), or pass ``auto_image=True`` to compute it from the backbone's input in a
    forward pre-hook. ``q`` is dropped after each backbone forward. Returns a `GSEHandle`;
    ``handle.remove()`` restores the original behaviour exactly.
    """
    backbone = _backbone(backbone)
    if gse._installed:
        raise RuntimeError("this GSEInjection is already installed; remove() its handle first")
    depth = len(backbone.blocks)
    if any(not 0 <= s < depth for s in gse.stages):
        raise ValueError(f"GSE stages {gse.stages} outside the backbone's blocks 0..{depth - 1}")
    stage_of = {layer: i for i, layer in enumerate(gse.stages)}

    def after_rein(module, args, kwargs, output):
        layer = args[1] if len(args) > 1 else kwargs["layer"]
        stage = stage_of.get(int(layer))
        if stage is None:
            return None
        q = gse.pending
        if q is None:
            raise RuntimeError(
                "GSE is installed but has no image: call gse.set_image(x_norm) before each "
                "backbone forward, or install(..., auto_image=True)"
            )
        return gse.inject(output, stage, q)

    def before_backbone(module, args):
        gse.set_image(args[0])

    def after_backbone(module, args, output):
        gse.clear()

    handle = GSEHandle(gse)
    if auto_image:
        handle.hooks.append(backbone.register_forward_pre_hook(before_backbone))
    handle.hooks.append(backbone.reins.register_forward_hook(after_rein, with_kwargs=True))
    handle.hooks.append(backbone.register_forward_hook(after_backbone, always_call=True))
    gse._installed = True
    return handle

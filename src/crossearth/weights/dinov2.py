"""Convert the original DINOv2 ViT (patch 14) into the patch-16 backbone CrossEarth was trained on.

Same operations as the official converter: the 14x14 patch kernel is resampled to 16x16 (bicubic,
align_corners=False, no magnitude rescaling) and the 37x37 position grid to the target grid; the cls
position is kept. Reins and the head were trained on exactly this backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crossearth.errors import CheckpointError

PATCH_KEY = "patch_embed.proj.weight"
POS_KEY = "pos_embed"


def is_patch14(state: dict[str, torch.Tensor]) -> bool:
    """True for an original DINOv2 state dict (prefix-free keys, 14x14 patch kernel)."""
    weight = state.get(PATCH_KEY)
    return weight is not None and tuple(weight.shape[-2:]) == (14, 14)


def convert_dinov2_to_patch16(
    state: dict[str, torch.Tensor], grid: int, patch_size: int = 16
) -> dict[str, torch.Tensor]:
    """Return a copy of a DINOv2 state dict with the patch kernel and position grid resampled."""
    if PATCH_KEY not in state or POS_KEY not in state:
        raise CheckpointError(f"not a DINOv2 backbone: needs {PATCH_KEY!r} and {POS_KEY!r}")
    if any(k.startswith("register_tokens") for k in state):
        raise CheckpointError(
            "DINOv2 with register tokens is not the CrossEarth backbone (use dinov2_vitl14)"
        )
    out = dict(state)
    kernel = state[PATCH_KEY].float()
    out[PATCH_KEY] = F.interpolate(
        kernel, size=(patch_size, patch_size), mode="bicubic", align_corners=False
    )
    pos = state[POS_KEY].float()
    n, dim = pos.shape[1] - 1, pos.shape[2]
    side = round(n**0.5)
    if side * side != n:
        raise CheckpointError(f"pos_embed of {n} patch positions is not a square grid")
    patch_pos = pos[:, 1:].transpose(1, 2).reshape(1, dim, side, side)
    patch_pos = F.interpolate(patch_pos, size=(grid, grid), mode="bicubic", align_corners=False)
    out[POS_KEY] = torch.cat(
        (pos[:, :1], patch_pos.reshape(1, dim, grid * grid).transpose(1, 2)), dim=1
    )
    return out

"""Backbone files: the ViT weights alone (DINOv2 key names), with the preset and a record of how
they were made, as `crossearth pretrain` writes them and `crossearth train --backbone` reads them.

Keys are those of the DINOv2 ViT without prefix (`cls_token`, `pos_embed`, `mask_token`,
`patch_embed.proj.*`, `blocks.N.*`, `norm.*`), so `crossearth.weights.state.backbone_tensors`
reads them like a converted DINOv2 file. The safetensors metadata holds `format`
(`crossearth-backbone`), `preset`, `backbone_config` (JSON) and `record` (JSON: what the weights
were trained on, the objective, steps, the command).

Shipped backbones (`BACKBONES`) are found by name: `synthearth-backbone` is a vit-tiny-256
pretrained on a broad SynthEarth archive (docs/method.md says exactly which and how).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crossearth.config import BackboneConfig
from crossearth.errors import CheckpointError, CheckpointNotFoundError
from crossearth.fileio import atomic_path

BACKBONE_FORMAT = "crossearth-backbone"
SHIPPED = Path(__file__).parent / "shipped"
BACKBONES: dict[str, Path] = {
    "synthearth-backbone": SHIPPED / "synthearth-backbone-vit-tiny-256.safetensors",
}


@dataclass
class BackboneRecord:
    """What a backbone file says about itself (empty fields for files of other origins)."""

    preset: str | None = None
    config: BackboneConfig | None = None
    record: dict[str, Any] = dataclasses.field(default_factory=dict)


def resolve_backbone(source: str | Path) -> Path:
    """The file of a shipped backbone name (`BACKBONES`), else `source` as a path.

    Raises:
        CheckpointNotFoundError: neither a shipped name nor an existing file.
    """
    text = str(source)
    if text in BACKBONES:
        path = BACKBONES[text]
        if not path.is_file():
            raise CheckpointNotFoundError(
                f"the shipped backbone {text} is missing from this installation ({path})"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"backbone {text} is neither a file nor a shipped backbone "
            f"(shipped: {', '.join(BACKBONES)})"
        )
    return path


def save_backbone(
    backbone: torch.nn.Module, path: str | Path, preset: str, record: dict[str, Any]
) -> Path:
    """Write a ViT's weights (fp32) with its preset and `record`, atomically.

    `backbone` is a `crossearth.models.vit.DinoVisionTransformer` (its `cfg` is stored)."""
    from safetensors.torch import save_file

    tensors = {
        k: v.detach().float().contiguous().cpu()
        for k, v in backbone.state_dict().items()
        if not k.startswith("reins.")
    }
    metadata = {
        "format": BACKBONE_FORMAT,
        "format_version": "1",
        "preset": preset,
        "backbone_config": json.dumps(dataclasses.asdict(backbone.cfg)),
        "record": json.dumps(record),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_backbone_record(path: str | Path) -> BackboneRecord:
    """The preset, config and record of a backbone file (all empty for other files: a DINOv2
    `.pth`, a model file). Raises CheckpointError for an unreadable safetensors header."""
    from crossearth.weights.sniff import FileKind, sniff_checkpoint

    path = Path(path)
    if sniff_checkpoint(path) is not FileKind.SAFETENSORS:
        return BackboneRecord()
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    if meta.get("format") != BACKBONE_FORMAT:
        return BackboneRecord()
    try:
        raw = json.loads(meta.get("backbone_config", "{}"))
        config = BackboneConfig(**{**raw, "out_indices": tuple(raw["out_indices"])})
        record = json.loads(meta.get("record", "{}"))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path}: the backbone record is not valid ({exc})") from None
    return BackboneRecord(meta.get("preset"), config, record)

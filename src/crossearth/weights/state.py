"""Put checkpoint tensors into a model: backbone merge, strict shape checks, a key report."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from crossearth.advice import OPTIONS, Advice
from crossearth.errors import CheckpointError
from crossearth.weights.dinov2 import convert_dinov2_to_patch16, is_patch14

# Keys an official checkpoint may carry that are no model weights (mmseg preprocessor buffers).
IGNORED_PREFIXES = ("data_preprocessor.",)
BACKBONE_PREFIX = "backbone."


@dataclass
class LoadReport:
    """What happened to the keys while loading (kept on the model as `model.load_report`)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    merged_backbone_keys: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.missing)} missing", f"{len(self.unexpected)} unexpected"]
        if self.merged_backbone_keys:
            parts.append(f"{self.merged_backbone_keys} backbone keys merged")
        return ", ".join(parts)


def needs_backbone(state: dict[str, torch.Tensor]) -> bool:
    """A released training checkpoint holds only `backbone.reins.*` and `decode_head.*`."""
    has_rein_and_head = any(k.startswith("backbone.reins.") for k in state) and any(
        k.startswith("decode_head.") for k in state
    )
    lacks_vit = "backbone.blocks.0.norm1.weight" not in state and "backbone.pos_embed" not in state
    return has_rein_and_head and lacks_vit


def backbone_tensors(
    state: dict[str, torch.Tensor], grid: int | None, advice: Advice = OPTIONS
) -> dict[str, torch.Tensor]:
    """Prefix-free backbone weights from a converted DINOv2 file, a full checkpoint or raw DINOv2.

    Raises CheckpointError: no DINOv2 blocks, or raw patch-14 DINOv2 with `grid` unknown (the fix
    named as `advice` has it)."""
    if any(k.startswith(BACKBONE_PREFIX) for k in state):
        state = {
            k[len(BACKBONE_PREFIX) :]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)
        }
    if "blocks.0.norm1.weight" not in state:
        raise CheckpointError(
            "the backbone file holds no DINOv2 blocks (expected keys like 'blocks.0.norm1.weight')"
        )
    if is_patch14(state):
        if grid is None:
            how = (
                f"pass {advice.set_config('vitl-512')} or {advice.set_config('vitl-1024')} (or "
                "use the converted file)"
                if advice.model_config
                else "use the converted file instead: dinov2_converted.pth (512 models) or "
                "dinov2_converted_1024x1024.pth (1024 models)"
            )
            raise CheckpointError(
                "the backbone is the original patch-14 DINOv2; to convert it the crop size must be "
                f"known: {how}"
            )
        state = convert_dinov2_to_patch16(state, grid)
    return {k: v for k, v in state.items() if not k.startswith("reins.")}


def merge_backbone(
    state: dict[str, torch.Tensor], backbone: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], int]:
    """Add `backbone.<k>` for every backbone tensor the checkpoint lacks."""
    merged = dict(state)
    added = 0
    for key, value in backbone.items():
        full = BACKBONE_PREFIX + key
        if full not in merged:
            merged[full] = value
            added += 1
    return merged, added


def apply_state(model: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy `state` into `model`. Missing model keys and shape mismatches are errors."""
    expected = model.state_dict()
    report = LoadReport()
    usable = {}
    for key, value in state.items():
        if key.startswith(IGNORED_PREFIXES):
            continue
        if key not in expected:
            report.unexpected.append(key)
            continue
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                _shape_message(key, tuple(value.shape), tuple(expected[key].shape))
            )
        usable[key] = value
    report.missing = [k for k in expected if k not in usable]
    if report.missing:
        only_backbone = all(
            k.startswith(BACKBONE_PREFIX)
            and ".reins." not in k
            and not k.startswith("backbone.reins")
            for k in report.missing
        )
        hint = (
            "these are backbone weights: pass the converted DINOv2 backbone"
            if only_backbone
            else "this looks like a checkpoint of another model or config"
        )
        shown = ", ".join(report.missing[:5]) + (" ..." if len(report.missing) > 5 else "")
        raise CheckpointError(
            f"the checkpoint lacks {len(report.missing)} model weights ({shown}); {hint}"
        )
    if len(report.unexpected) > len(expected) // 2:
        raise CheckpointError(
            f"{len(report.unexpected)} of the checkpoint's keys are unknown to a CrossEarth model "
            f"(e.g. {report.unexpected[0]!r}): this is a checkpoint of another model"
        )
    model.load_state_dict(usable, strict=True)
    return report


def _shape_message(key: str, got: tuple[int, ...], want: tuple[int, ...]) -> str:
    if key.startswith("decode_head.cls_embed"):
        cause = (
            f"wrong class count: the checkpoint has {got[0] - 1} classes, the config {want[0] - 1}"
        )
    elif key == "backbone.pos_embed":
        cause = (
            "wrong crop config: the backbone's position grid does not match the model's img_size "
            "(a 512 model needs dinov2_converted.pth, a 1024 model dinov2_converted_1024x1024.pth)"
        )
    else:
        cause = "the config describes another architecture (embed width, depth, rank or head sizes)"
    return f"shape mismatch for {key}: checkpoint {list(got)} vs model {list(want)}; likely cause: {cause}"

"""`load_model`: a zoo name, an official `.pth` or our `.safetensors` -> a ready CrossEarth model."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from crossearth.advice import OPTIONS, Advice
from crossearth.config import ModelConfig
from crossearth.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    ConfigError,
    WeightsUnavailableError,
)
from crossearth.models.presets import get_preset
from crossearth.models.segmentor import CrossEarth

if TYPE_CHECKING:
    from crossearth.export.runner import OnnxSegmenter
from crossearth.runtime import resolve_device, resolve_precision
from crossearth.weights.architecture import ConfigSource, read_config_source, resolve_config
from crossearth.weights.checkpoint_io import read_checkpoint
from crossearth.weights.hub import hub_file, is_hub_source
from crossearth.weights.official_config import config_from_official
from crossearth.weights.python_config import read_python_config
from crossearth.weights.state import apply_state, backbone_tensors, merge_backbone, needs_backbone
from crossearth.weights.zoo import ZOO, ZooEntry, checkpoint_dir, hf_url, is_present, locate

log = logging.getLogger(__name__)


def load_model(
    source: str | Path,
    *,
    config: ConfigSource = None,
    backbone: str | Path | None = None,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    download: bool = False,
    advice: Advice = OPTIONS,
) -> CrossEarth | OnnxSegmenter:
    """Load a CrossEarth model ready for inference (eval mode).

    `precision`: fp32 (the parity path), bf16, int8 (an ONNX Runtime runner of the model's int8
    copy, exported once and cached beside the checkpoint; CPU only) or auto (the fastest path
    keeping >= 99 % argmax agreement on this hardware: see `with_precision`). The returned
    model's `precision_reason` says what was chosen and why.

    `source` is a zoo name (`crossearth models`), an official checkpoint (`.pth`, full or Rein+head
    only), our `.safetensors` file, or a Hub file `hf-hub:owner/name[/file][@revision]` (default
    file `model.safetensors`; cached per repository and revision, see `crossearth.weights.hub`). `config` is a preset name, a config file (ours, or the
    official model config as JSON) or a `ModelConfig`; it is needed only for checkpoints that are
    not an official ViT-L preset. `backbone` is the converted DINOv2 file for checkpoints that lack
    backbone weights (the original `dinov2_vitl14_pretrain.pth` is converted on the fly).
    `advice` names the settings errors suggest (`crossearth.advice`: options by default).

    Raises:
        CheckpointNotFoundError: (a `FileNotFoundError`) `source` is neither a file nor a zoo name.
        WeightsUnavailableError: (a `FileNotFoundError`) a zoo file is not on disk and
            `download` is off, or the download failed.
        CheckpointError: (a `ValueError`) the checkpoint is unreadable or does not fit the config.
        ConfigError: (a `ValueError`) `config` is malformed or names an unknown preset, or
            int8 cannot run here (a GPU, ONNX Runtime missing, a model ONNX cannot trace).
        QuantizationError: (a `ValueError`) the int8 copy would agree with fp32 on fewer than
            99 % of its check tile's pixels.
    """
    if precision == "int8":
        from crossearth.export.int8 import require_int8

        require_int8()  # before loading a large model
    entry = ZOO.get(str(source))
    if is_hub_source(source):
        path = hub_file(str(source))
    else:
        path = _locate_zoo(entry, download, backbone, advice) if entry else Path(source)
    if entry is None and not path.exists():
        raise CheckpointNotFoundError(
            f"{source!s} is neither a file nor a zoo model (known: {', '.join(ZOO)})"
        )
    _refuse_backbone_file(path)
    raw = read_checkpoint(path)
    given = read_config_source(config)
    if given is None and raw.native_config is not None:
        try:
            given = ModelConfig.from_dict(raw.native_config)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: the embedded config is not valid ({exc})") from None
    if given is None and entry is not None:
        given = get_preset(entry.preset, entry.num_classes)
    if given is None:
        given = _config_from_meta(raw.meta)
    state = raw.state_dict
    merged = 0
    backbone_grid = None
    if needs_backbone(state):
        bb_path = _backbone_path(backbone, entry, download, path, advice)
        grid = given.backbone.grid_size if given else None
        bb_state = backbone_tensors(read_checkpoint(bb_path).state_dict, grid, advice)
        backbone_grid = round((bb_state["pos_embed"].shape[1] - 1) ** 0.5)
    cfg, notes = resolve_config(state, given, backbone_grid, advice)
    if needs_backbone(state):
        state, merged = merge_backbone(state, bb_state)
    cfg = _with_metadata(cfg, entry)
    model = CrossEarth(cfg)
    report = apply_state(model, state)
    report.merged_backbone_keys, report.notes = merged, notes
    for key in report.unexpected:
        log.warning("unexpected checkpoint key ignored: %s", key)
    model.load_report = report
    return with_precision(model.eval(), path, device, precision)


def _refuse_backbone_file(path: Path) -> None:
    """A backbone file (`crossearth pretrain`, `synthearth-backbone`) holds no Rein or head: it
    is something to train from, not a model. Raises CheckpointError saying so."""
    from crossearth.weights.backbone_file import read_backbone_record

    record = read_backbone_record(path)
    if record.preset is not None:
        raise CheckpointError(
            f"{path} is a pretrained {record.preset} backbone (no Rein adapters, no head), not a "
            f"segmentation model: train one from it with crossearth train --backbone {path}"
        )


def with_precision(
    model: CrossEarth, source: Path | None, device: str | torch.device, precision: str
) -> CrossEarth | OnnxSegmenter:
    """The model ready to run in `precision`, with `precision_reason` saying why.

    int8 (CPU only) returns an ONNX Runtime runner of the model's int8 copy, exported once and
    cached beside `source` (`crossearth.export.int8`); auto on a CPU takes that copy when one is
    cached (it never starts an export: a ViT-L takes minutes), else bf16 where the CPU has
    native bf16, else fp32.

    Raises:
        ConfigError: int8 on a GPU, without ONNX Runtime, or for a model that cannot be exported.
        QuantizationError: the int8 copy would agree with fp32 on fewer than 99 % of its check
            tile's pixels (nothing is cached).
    """
    from crossearth.export import int8

    dev = resolve_device(device)
    if precision == "int8":
        if dev.type != "cpu":
            raise ConfigError(
                "--precision int8 runs on the CPU (ONNX Runtime); on a GPU use bf16 or fp32"
            )
        int8.require_int8()
        model = to_runtime(model, "cpu", "fp32")
        runner = _int8_runner(int8.int8_model_file(model, source))
        runner.precision_reason = "asked for (--precision int8)"
        runner.load_report = getattr(model, "load_report", None)
        return runner
    if precision == "auto" and dev.type == "cpu" and _has_onnxruntime():
        model = to_runtime(model, "cpu", "fp32")
        name = source.stem if source is not None else "model"
        found = int8.existing_int8(source, name, lambda: int8.model_fingerprint(model))
        if found is not None:
            runner = _int8_runner(found)
            runner.precision_reason = (
                "auto: an int8 copy of this model is cached (the fastest CPU path measured: "
                "x3-4 fp32 at >= 99 % agreement)"
            )
            runner.load_report = getattr(model, "load_report", None)
            return runner
    model = to_runtime(model, dev, precision)
    chosen = "bf16" if model.dtype == torch.bfloat16 else "fp32"
    model.precision_reason = _reason(precision, dev, chosen)
    return model


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _int8_runner(path: Path) -> OnnxSegmenter:
    from crossearth.export.runner import OnnxSegmenter

    return OnnxSegmenter(path)


def _reason(precision: str, device: torch.device, chosen: str) -> str:
    """Why a PyTorch model runs in `chosen` (fp32/bf16) after asking for `precision`."""
    if precision != "auto":
        return f"asked for (--precision {precision})"
    if device.type == "cuda":
        return f"auto: {chosen} on this GPU"
    if chosen == "bf16":
        return (
            "auto: bf16, native on this CPU (AVX512-BF16 or AMX); --precision int8 is faster "
            "after a one-time export"
        )
    return (
        "auto: fp32, this CPU has no native bf16; --precision int8 is faster after a "
        "one-time export"
    )


def to_runtime(
    model: CrossEarth, device: str | torch.device = "cpu", precision: str = "fp32"
) -> CrossEarth:
    """Move a model to a device and precision ('auto' picks CUDA and bf16 where they are fast).

    fp32 is the parity path; bf16 casts the backbone only (see below)."""
    dev = resolve_device(device)
    dtype = resolve_precision(precision, dev)
    model.to(device=dev, dtype=torch.float32)
    # bf16 runs the backbone and the pixel decoder (~97% of the FLOPs) in bf16; the transformer
    # decoder, whose masked attention thresholds sigmoid(mask) at 0.5, stays fp32: argmax agreement
    # with fp32 stays above 99% (a bf16 transformer decoder drops it to ~97%). Sampling positions
    # and grid_sample stay fp32 inside the pixel decoder.
    model.backbone.to(dtype)
    model.decode_head.pixel_decoder.to(dtype)
    return model


def _locate_zoo(
    entry: ZooEntry, download: bool, backbone: str | Path | None, advice: Advice = OPTIONS
) -> Path:
    """The zoo checkpoint on disk; when it is missing, the error also names the DINOv2 backbone
    file if that is missing too (both are needed), so one download round fetches both."""
    try:
        return locate(entry.filename, download=download, advice=advice)
    except WeightsUnavailableError as exc:
        if backbone is not None or is_present(entry.backbone_filename):
            raise
        name = entry.backbone_filename
        raise WeightsUnavailableError(
            f"{exc}. It also needs the converted DINOv2 backbone {name}: "
            f"curl -L -o '{checkpoint_dir() / name}' '{hf_url(name)}'"
        ) from None


def _backbone_path(
    backbone: str | Path | None,
    entry: ZooEntry | None,
    download: bool,
    ckpt: Path,
    advice: Advice = OPTIONS,
) -> Path:
    if backbone is not None:
        return Path(backbone)
    if entry is not None:
        try:
            return locate(entry.backbone_filename, download=download, advice=advice)
        except WeightsUnavailableError as exc:
            raise CheckpointError(
                f"{entry.filename} holds only Rein and head weights; it needs the converted DINOv2 "
                f"backbone. {exc}"
            ) from None
    raise CheckpointError(
        f"{ckpt} holds only Rein and head weights (a released training checkpoint), so the "
        "DINOv2 backbone is missing. Refusing to run with a random backbone: pass "
        f"{advice.backbone or '--backbone'} dinov2_converted.pth (512 models) or "
        "dinov2_converted_1024x1024.pth (1024 models), from "
        f"{hf_url('dinov2_converted.pth')}, or the original dinov2_vitl14_pretrain.pth"
    )


def _config_from_meta(meta: dict) -> ModelConfig | None:
    """mmengine stores the run's config text in `meta['cfg']`; use its `model` when readable."""
    text = meta.get("cfg")
    if not isinstance(text, str):
        return None
    try:
        return config_from_official(read_python_config(text)["model"])
    except (ConfigError, KeyError, TypeError) as exc:
        log.info("checkpoint meta config not usable: %s", exc)
        return None


def _with_metadata(cfg: ModelConfig, entry: ZooEntry | None) -> ModelConfig:
    if entry is not None and cfg.num_classes == entry.num_classes:
        cfg = dataclasses.replace(
            cfg,
            class_names=entry.classes.names,
            palette=entry.classes.palette,
            bands=entry.bands,
            gsd_m=entry.gsd_m,
        )
    return cfg.with_display_defaults()

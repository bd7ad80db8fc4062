"""Decide the architecture of a checkpoint: from its own config, a given config, or its shapes.

Shapes reveal sizes (classes, grid, widths, depths) but not head counts or `out_indices`. Without a
config we therefore accept only checkpoints whose shapes are exactly an official ViT-L preset.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crossearth.advice import OPTIONS, Advice
from crossearth.config import ModelConfig
from crossearth.errors import ConfigError
from crossearth.models.presets import PRESETS, get_preset
from crossearth.weights.official_config import config_from_official, is_official_config
from crossearth.weights.python_config import read_python_config

ConfigSource = ModelConfig | dict[str, Any] | str | Path | None


@dataclass(frozen=True)
class ShapeFacts:
    """What the tensor shapes of a checkpoint say about its architecture (None = not present)."""

    num_classes: int | None
    grid: int | None
    embed_dim: int | None
    depth: int | None
    token_length: int | None
    lora_dim: int | None
    encoder_layers: int
    decoder_layers: int
    decoder_ffn_dim: int | None
    encoder_ffn_dim: int | None
    feat_channels: int | None

    @property
    def structure(self) -> tuple:
        """Everything but classes and grid: must equal a preset's for a config-less load."""
        return dataclasses.astuple(self)[2:]


def shape_facts(state: dict[str, torch.Tensor]) -> ShapeFacts:
    def shape(key: str) -> tuple[int, ...] | None:
        return tuple(state[key].shape) if key in state else None

    cls = shape("decode_head.cls_embed.weight")
    pos = shape("backbone.pos_embed")
    tok_a = shape("backbone.reins.learnable_tokens_a")
    tok_b = shape("backbone.reins.learnable_tokens_b")
    tok = shape("backbone.reins.learnable_tokens")
    grid = round((pos[1] - 1) ** 0.5) if pos else None
    embed = tok_b[-1] if tok_b else tok[-1] if tok else pos[-1] if pos else None
    tokens = tok_a or tok
    dec_ffn = shape("decode_head.transformer_decoder.layers.0.ffn.layers.0.0.weight")
    enc_ffn = shape("decode_head.pixel_decoder.encoder.layers.0.ffn.layers.0.0.weight")
    feat = shape("decode_head.querys2feat.weight")
    return ShapeFacts(
        num_classes=cls[0] - 1 if cls else None,
        grid=grid,
        embed_dim=embed,
        depth=tokens[0] if tokens else None,
        token_length=tokens[1] if tokens else None,
        lora_dim=tok_a[-1] if tok_a else None,
        encoder_layers=_count(state, r"decode_head\.pixel_decoder\.encoder\.layers\.(\d+)\."),
        decoder_layers=_count(state, r"decode_head\.transformer_decoder\.layers\.(\d+)\."),
        decoder_ffn_dim=dec_ffn[0] if dec_ffn else None,
        encoder_ffn_dim=enc_ffn[0] if enc_ffn else None,
        feat_channels=feat[0] if feat else None,
    )


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def facts_of_config(cfg: ModelConfig) -> ShapeFacts:
    return ShapeFacts(
        num_classes=cfg.head.num_classes,
        grid=cfg.backbone.grid_size,
        embed_dim=cfg.backbone.embed_dim,
        depth=cfg.backbone.depth,
        token_length=cfg.rein.token_length,
        lora_dim=cfg.rein.lora_dim,
        encoder_layers=cfg.head.encoder_layers,
        decoder_layers=cfg.head.decoder_layers,
        decoder_ffn_dim=cfg.head.decoder_ffn_dim,
        encoder_ffn_dim=cfg.head.encoder_ffn_dim,
        feat_channels=cfg.head.feat_channels,
    )


def read_config_source(source: ConfigSource) -> ModelConfig | None:
    """Turn a preset name, a JSON/Python config file or a dict into a `ModelConfig`."""
    if source is None or isinstance(source, ModelConfig):
        return source
    if isinstance(source, dict):
        return _config_from_dict(source)
    text = str(source)
    if text in PRESETS:
        return get_preset(text)
    path = Path(text)
    if not path.is_file():
        raise ConfigError(
            f"config {text!r} is neither a preset ({', '.join(PRESETS)}) nor an existing file"
        )
    if path.suffix == ".py":
        return _config_from_dict(read_python_config(path.read_text(encoding="utf-8")))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    return _config_from_dict(data)


def _config_from_dict(data: dict[str, Any]) -> ModelConfig:
    if isinstance(data.get("model"), dict):  # a whole mmengine config: take its `model` entry
        data = data["model"]
    if is_official_config(data):
        return config_from_official(data)
    try:
        return ModelConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"not a crossearth or official model config: {exc}") from None


def resolve_config(
    state: dict[str, torch.Tensor],
    given: ModelConfig | None,
    backbone_grid: int | None = None,
    advice: Advice = OPTIONS,
) -> tuple[ModelConfig, list[str]]:
    """The config to build for `state`, and notes on what was taken from the checkpoint.

    The class count always comes from `cls_embed` and the position grid from `pos_embed` (of the
    checkpoint, or of the merged backbone), as in the official code. Errors name the fix as
    `advice` has it (`crossearth.advice`).
    """
    facts = shape_facts(state)
    # A checkpoint without backbone takes its grid from the merged backbone only when no config
    # says otherwise; a backbone that contradicts a given config is then a shape error.
    grid = facts.grid or (backbone_grid if given is None else None)
    notes: list[str] = []
    if given is None:
        given = _match_official_preset(facts, grid, advice)
    cfg = given
    if facts.num_classes is not None and facts.num_classes != cfg.head.num_classes:
        if cfg.class_names is not None and len(cfg.class_names) != facts.num_classes:
            raise ConfigError(
                f"the checkpoint has {facts.num_classes} classes but the config names "
                f"{len(cfg.class_names)} ({', '.join(cfg.class_names)}): wrong config for this checkpoint?"
            )
        notes.append(
            f"num_classes {cfg.head.num_classes} -> {facts.num_classes} (from decode_head.cls_embed)"
        )
        cfg = cfg.replace(head=dataclasses.replace(cfg.head, num_classes=facts.num_classes))
    if grid is not None and grid != cfg.backbone.grid_size:
        img_size = grid * cfg.backbone.patch_size
        notes.append(f"img_size {cfg.backbone.img_size} -> {img_size} (from backbone.pos_embed)")
        cfg = cfg.replace(backbone=dataclasses.replace(cfg.backbone, img_size=img_size))
    return cfg, notes


def _match_official_preset(
    facts: ShapeFacts, grid: int | None, advice: Advice = OPTIONS
) -> ModelConfig:
    for name in ("vitl-512", "vitl-1024"):
        preset = get_preset(name, facts.num_classes or 6)
        if (
            facts.structure == facts_of_config(preset).structure
            and grid == preset.backbone.grid_size
        ):
            return preset
    official = facts_of_config(get_preset("vitl-512")).structure
    if facts.structure == official and grid is None:
        config = advice.set_config("vitl-512 / vitl-1024")
        raise ConfigError(
            "this is an official ViT-L CrossEarth checkpoint without backbone weights, so its crop "
            f"size (512 or 1024) is unknown: pass the converted DINOv2 backbone "
            f"({advice.backbone or '--backbone'})" + (f" or a config ({config})" if config else "")
        )
    found = ", ".join(
        f"{f.name}={getattr(facts, f.name)}"
        for f in dataclasses.fields(facts)
        if f.name != "num_classes"
    )
    raise ConfigError(
        "the checkpoint's shapes are not an official CrossEarth preset (ViT-L 512 or 1024), so its "
        "attention-head counts and out_indices cannot be known from the weights alone. Give a config: "
        f"a preset name ({', '.join(PRESETS)}), a crossearth JSON config, or the official model config "
        f"as JSON. Found: {found}"
    )

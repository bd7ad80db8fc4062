"""The architecture and inference settings of a CrossEarth model, as plain dataclasses.

A `ModelConfig` is everything needed to build the network and run the official test protocol. It
serialises to a JSON-friendly dict (stored in our single-file checkpoints) and can be read from the
official mmseg `cfg.model` dict (see `crossearth.weights.official_config`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass
class BackboneConfig:
    """DINOv2 ViT moved to patch 16 (official `ReinsDinoVisionTransformer`)."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 16
    img_size: int = 512
    out_indices: tuple[int, ...] = (7, 11, 15, 23)
    layer_scale_init: float | None = 1e-5
    qkv_bias: bool = True
    proj_bias: bool = True
    ffn_bias: bool = True
    norm_eps: float = 1e-6
    # Input channels of the patch embedding: 3 for the released (RGB/IRRG) models, any N >= 1 for
    # models trained on other bands (see `ModelConfig.band_indices` / `band_names`).
    in_chans: int = 3

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size


@dataclass
class ReinConfig:
    """Rein adapters: `LoRAReins` when `lora_dim` is set, plain `Reins` otherwise."""

    token_length: int = 100
    lora_dim: int | None = 16
    query_dims: int = 256
    scale_init: float = 1e-3
    use_softmax: bool = True
    zero_mlp_delta_f: bool = False


@dataclass
class HeadConfig:
    """Mask2Former head with an MSDeformAttn pixel decoder (official `ReinMask2FormerHead`)."""

    num_classes: int = 6
    num_queries: int = 100
    feat_channels: int = 256
    out_channels: int = 256
    num_transformer_feat_level: int = 3
    pos_num_feats: int = 128
    norm_groups: int = 32
    # pixel decoder (deformable encoder)
    encoder_layers: int = 6
    encoder_heads: int = 8
    encoder_points: int = 4
    encoder_ffn_dim: int = 1024
    # transformer decoder
    decoder_layers: int = 9
    decoder_heads: int = 8
    decoder_ffn_dim: int = 2048


@dataclass
class InferenceConfig:
    """The official test protocol: normalisation, optional test resize, slide window."""

    # One value per input channel (0..255 units after scaling): the backbone's own ImageNet
    # values for red, green and blue, training-data statistics for every other band.
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop_size: tuple[int, int] = (512, 512)
    stride: tuple[int, int] = (341, 341)
    # Long-edge size of the official test `Resize(scale=(S, S), keep_ratio=True)`; None = no resize.
    test_resize: int | None = None


@dataclass
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    rein: ReinConfig = field(default_factory=ReinConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    # Optional descriptive metadata (class names, palette, source domain, band order).
    class_names: tuple[str, ...] | None = None
    palette: tuple[tuple[int, int, int], ...] | None = None
    bands: str = "RGB"
    gsd_m: float | None = None  # ground sample distance of the training imagery, metres
    # How the training data's files were read (fine-tuned models): the 1-based band numbers fed
    # as the model's inputs (one per input channel) and the `--scale` rule; `predict` uses them
    # unless told otherwise. `band_names`: what each input band is (e.g. red, green, blue, nir;
    # the file's own names where it has them), one per input channel, or None.
    band_indices: tuple[int, ...] | None = None
    scale: str | None = None
    band_names: tuple[str, ...] | None = None

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def in_chans(self) -> int:
        """Number of input bands (channels) the model takes."""
        return self.backbone.in_chans

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from `to_dict()` output; unknown keys are an error, missing ones take defaults."""
        sections = {
            "backbone": BackboneConfig,
            "rein": ReinConfig,
            "head": HeadConfig,
            "inference": InferenceConfig,
        }
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in sections:
                kwargs[key] = _build_section(sections[key], value)
            elif key == "class_names":
                kwargs[key] = None if value is None else tuple(value)
            elif key == "palette":
                kwargs[key] = (
                    None if value is None else tuple(tuple(int(c) for c in p) for p in value)
                )
            elif key == "bands":
                kwargs[key] = str(value)
            elif key == "gsd_m":
                kwargs[key] = None if value is None else float(value)
            elif key == "band_indices":
                kwargs[key] = None if value is None else tuple(int(b) for b in value)
            elif key == "scale":
                kwargs[key] = None if value is None else str(value)
            elif key == "band_names":
                kwargs[key] = None if value is None else tuple(str(b) for b in value)
            else:
                raise ValueError(f"unknown model config key {key!r}")
        return cls(**kwargs)

    def with_display_defaults(self) -> ModelConfig:
        """Fill missing class names ("class_i") and palette (well-separated colours)."""
        from crossearth.data.classes import default_palette, placeholder_names

        cfg = self
        n = self.num_classes
        if cfg.class_names is None or len(cfg.class_names) != n:
            cfg = dataclasses.replace(cfg, class_names=placeholder_names(n))
        if cfg.palette is None or len(cfg.palette) != n:
            cfg = dataclasses.replace(cfg, palette=default_palette(n))
        return cfg

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def with_labels(
        self,
        class_names: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        gsd_m: float | None = None,
    ) -> ModelConfig:
        """This config with the given class names, palette (RGB 0-255 per class) and GSD (metres
        per pixel of the training imagery); None keeps the current value.

        Raises:
            ConfigError: a count that differs from `num_classes`, a colour that is not three
                integers in 0-255, or a GSD that is not a positive finite number.
        """
        from crossearth.errors import ConfigError

        n = self.num_classes
        changes: dict[str, Any] = {}
        if class_names is not None:
            if isinstance(class_names, str):
                raise ConfigError("class_names must be a list of names, not one string")
            names = tuple(str(c) for c in class_names)
            if len(names) != n:
                raise ConfigError(f"{len(names)} class names given for a model of {n} classes")
            if any(not c.strip() for c in names) or len(set(names)) != n:
                raise ConfigError(f"class names must be non-empty and distinct: {list(names)}")
            changes["class_names"] = names
        if palette is not None:
            colours = []
            for i, colour in enumerate(palette):
                try:
                    values = list(colour)
                    rgb = tuple(int(c) for c in values)
                    ok = len(rgb) == 3 and all(
                        0 <= c <= 255 and c == v for c, v in zip(rgb, values, strict=True)
                    )
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ConfigError(
                        f"palette colour {i} is {colour!r}: give three integers 0-255 (R, G, B)"
                    )
                colours.append(rgb)
            if len(colours) != n:
                raise ConfigError(
                    f"{len(colours)} palette colours given for a model of {n} classes"
                )
            changes["palette"] = tuple(colours)
        if gsd_m is not None:
            try:
                gsd = float(gsd_m)
            except (TypeError, ValueError):
                gsd = float("nan")
            if not math.isfinite(gsd) or gsd <= 0:
                raise ConfigError(f"gsd_m must be a positive number of metres, not {gsd_m!r}")
            changes["gsd_m"] = gsd
        return dataclasses.replace(self, **changes) if changes else self


def _build_section(section_cls: type, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(section_cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {section_cls.__name__} keys: {sorted(unknown)}")
    converted = {}
    for name, value in values.items():
        default = getattr(section_cls(), name)
        converted[name] = (
            tuple(value) if isinstance(default, tuple) and value is not None else value
        )
    return section_cls(**converted)

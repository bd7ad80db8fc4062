"""Training configuration: one YAML per benchmark setting (configs/), overridable on the command line.

Defaults follow the official configs (spec §6): AdamW lr 1e-4 (512 settings) / 6e-5 (1024), weight
decay 0.05, betas (0.9, 0.999); no decay for norms, Rein tokens and scale, level embeddings;
poly schedule (power 0.9) defined over 40k iterations and stopped at 30k; the 1024 settings warm
up linearly over 10k iterations first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossearth.errors import ConfigError
from crossearth.problems import Problems, unknown_keys


@dataclass
class TrainConfig:
    setting: str | None = None  # benchmark setting: source domain to train on, targets to validate
    data: str | None = None  # or a data set description file (YAML, `crossearth.data.spec`)
    preset: str = "vitl-512"
    init: str | None = None  # weights to start from: zoo name, official .pth or our .safetensors
    backbone: str | None = None  # DINOv2 backbone file (converted or original patch-14)
    data_root: str | None = None
    out_dir: str = "runs/crossearth"
    # optimisation
    max_steps: int = 30000
    schedule_steps: int = 40000  # the poly curve is defined over this many steps (official quirk)
    warmup_steps: int = 0
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    poly_power: float = 0.9
    batch_size: int = 2  # per device
    # data
    crop: int = 512
    scales: tuple[int, ...] = (
        256,
        307,
        358,
        409,
        460,
        512,
        563,
        614,
        665,
        716,
        768,
        819,
        870,
        921,
        972,
        1024,
    )
    max_size: int = 2048
    cat_max_ratio: float = 0.75
    # --data runs: windows of crop/f source pixels, f uniform in this range (official 0.5-2.0)
    scale_range: tuple[float, float] = (0.5, 2.0)
    val_block: int = 2048  # --data validation: scenes are cut into blocks of at most this side
    num_workers: int = 2
    train_limit: int | None = None
    val_limit: int | None = None  # images per target domain at validation
    # model
    freeze_backbone: bool = True  # official Rein PEFT: only Rein and the head train
    gradient_checkpointing: bool = False
    # loss (Mask2Former)
    class_weight: float = 2.0
    mask_weight: float = 5.0
    dice_weight: float = 5.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    # Earth-Style Injection (the paper's ESI; off for plain Rein training)
    esi: bool = False
    esi_prob: float = 0.1  # chance per iteration that the whole batch is stylised
    esi_alpha: float = 0.1  # weight of the sampled Earth style against the image's own style
    esi_block: int = 64  # stylised pixels replace the original in blocks of this size
    esi_fraction: float = 0.7  # share of blocks that are stylised
    earth_style: str | None = None  # .npz from `crossearth style fit`
    stylizer: str = "spectral"  # "spectral" (no pretrained network) or "neural"
    style_predictor: str | None = None  # neural stylizer checkpoints
    style_transformer: str | None = None
    # Multi-Task Training (masked image modelling beside segmentation)
    mtt: bool = False
    mim_ratio: float = 0.1  # share of masked blocks
    mim_block: int = 64
    mim_weight: float = 1.0  # weight of the whole reconstruction loss
    mim_channels: int = 256  # width of the reconstruction head (ASPP)
    # Geospatial Semantic Extractor + injectors (our design from the paper's figure; off by default)
    gse: bool = False
    # runtime
    precision: str = "auto"  # Lightning's, or auto: bf16-mixed where the hardware computes bf16
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    seed: int = 42
    val_every: int = 10000
    checkpoint_every: int = 10000
    log_every: int = 50
    extra: dict[str, Any] = field(default_factory=dict)  # for method extensions (ESI, MTT)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from a mapping of field names to values (YAML types are coerced).

        Raises:
            ConfigError: naming every unknown key (with a "did you mean" for a near miss) and
                every value of the wrong kind, together in one message.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        problems = Problems()
        problems.extend(unknown_keys(data, known))
        values = {}
        defaults = cls()
        for key, value in data.items():
            if key in known:
                values[key] = problems.check(
                    _coerce, key, value, getattr(defaults, key), known[key].type
                )
        problems.raise_if_any()
        return cls(**values)

    def override(self, items: list[str]) -> TrainConfig:
        """Apply `key=value` overrides (values parsed as YAML: numbers, lists, true/false, null)."""
        import yaml

        data = self.to_dict()
        problems = Problems()
        for item in items:
            key, sep, raw = item.partition("=")
            if not sep:
                problems.add(f"--set needs key=value, got {item!r}")
            elif key not in data:
                problems.extend(m.replace("unknown key", "--set: unknown training config key")
                                for m in unknown_keys([key], data))  # fmt: skip
            else:
                data[key] = yaml.safe_load(raw)
        config = problems.check(TrainConfig.from_dict, data)  # bad values reported alongside
        problems.raise_if_any()
        assert config is not None  # else a problem was noted and raised
        return config


def _coerce(key: str, value: Any, default: Any, annotation: Any) -> Any:
    """A config value of the field's type: YAML reads `5e-4` as a string (YAML 1.1 floats need a
    dot), lists become tuples. Raises ConfigError for a value of the wrong kind."""
    if value is None:
        return None
    if isinstance(default, tuple):
        return tuple(value) if isinstance(value, list | tuple) else value
    want_float = isinstance(default, float) or (default is None and "float" in str(annotation))
    if want_float and isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    return value


def default_config(setting_name: str | None) -> TrainConfig:
    """The official hyper-parameters for a setting (512 vs 1024 crop config)."""
    if setting_name is None:
        return TrainConfig()
    from crossearth.benchmark import get_setting

    try:
        setting = get_setting(setting_name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if setting.preset == "vitl-1024":
        scales = tuple(int(1024 * r / 10) for r in range(5, 21))
        return TrainConfig(
            setting=setting.name, preset="vitl-1024", lr=6e-5, warmup_steps=10000, crop=1024,
            scales=scales, max_size=4096,
        )  # fmt: skip
    if setting.preset == "vit-tiny-256":  # SynthEarth: small model, 128-256 px tiles, no DINOv2
        return synth_config(setting.name)
    return TrainConfig(setting=setting.name, preset=setting.preset)


def synth_config(setting_name: str = "SynthEarth") -> TrainConfig:
    """Defaults for SynthEarth (`crossearth synth` tiles of 128-256 px, the vit-tiny-256 model
    trained whole from random init; `--backbone synthearth-backbone --set freeze_backbone=true`
    trains Rein and the head on the shipped pretrained backbone instead). Crops of 128 px from tiles whose
    short edge is resized to 128-256 px; validation and a checkpoint every 100 steps, so even a
    short run validates and writes best.safetensors (`fit` also validates at the last step)."""
    return TrainConfig(
        setting=setting_name, preset="vit-tiny-256", freeze_backbone=False, max_steps=1000,
        schedule_steps=1000, lr=6e-4, batch_size=4, crop=128, scales=(128, 160, 192, 224, 256),
        max_size=1024, num_points=1024, esi_block=32, mim_block=32, mim_channels=64,
        val_every=100, checkpoint_every=100, log_every=10,
    )  # fmt: skip


def load_config(path: str | Path | None, setting: str | None) -> TrainConfig:
    """A YAML file (keys of TrainConfig) on top of the setting's defaults."""
    cfg = default_config(setting)
    if path is None:
        return cfg
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training config {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys")
    merged = cfg.to_dict() | data
    if setting is not None and data.get("setting") not in (None, setting):
        raise ConfigError(f"{path} is for setting {data['setting']!r}, not {setting!r}")
    try:
        return TrainConfig.from_dict(merged)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

"""Training defaults that follow the model a run starts from and the device it runs on.

`TrainConfig`'s own defaults are the official ViT-L recipe (crop 512, 12,544 points, a poly
schedule over 40,000 steps stopped at 30,000, validation every 10,000). A run on your data
(`train --data`) that starts from a smaller model (a preset such as vit-tiny-256, or a model
file such as the demo's) takes instead, for every key the user did not set (options, `--set`,
a `--config` file):

- crop: the model's own crop (its inference crop, the size it was built for);
- num_points (the points each mask loss samples): 12,544 x (crop / 512)², at most 12,544;
- a short run: 300 steps on a CPU, 3,000 on a GPU (`max_steps`), validating and writing a
  checkpoint about 3 times and at the last step (`val_every`, `checkpoint_every`: see
  `interval`; a `max_steps` given alone brings them along). The learning rate stays near its start: the poly curve is still defined over
  `schedule_steps` (40,000), as the official runs stop early on it; a curve decaying to zero
  within 80 steps learnt half as much in a measured run (mIoU 21 against 38-39).
- precision "auto" (`crossearth.runtime.training_precision`): bf16-mixed where the hardware
  computes bf16 natively, else 32-true.

ViT-L models (embed dim 1024) keep the official recipe, whatever the device. Benchmark settings
(`--setting`) keep their own configs.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from crossearth.config import ModelConfig
from crossearth.train.config import TrainConfig

#: Keys this module may choose; a key the user set is never changed.
FOLLOWING = ("crop", "num_points", "max_steps", "val_every", "checkpoint_every")

#: The official recipe's points per mask at crop 512 (Mask2Former's 112 x 112).
OFFICIAL_POINTS = 12544
OFFICIAL_CROP = 512
#: Steps of a run from a model smaller than ViT-L, per device type.
SMALL_MODEL_STEPS = {"cpu": 300, "cuda": 3000}
VALIDATIONS = 3  # per short run: validation and a checkpoint this many times


def model_config_of(init: str | None, preset: str) -> ModelConfig | None:
    """The architecture a run starts from, read without loading weights: a zoo name's preset, a
    model file's stored config (our .safetensors header; a Hub file once it is in the cache),
    else the preset when there is no `init`. None when it cannot be told this cheaply (an
    official .pth: those are ViT-L)."""
    from crossearth.models.presets import PRESETS, get_preset

    if init is None:
        return get_preset(preset) if preset in PRESETS else None
    from crossearth.weights.zoo import ZOO

    if init in ZOO:
        return get_preset(ZOO[init].preset, ZOO[init].num_classes)
    path = _local_file(init)
    if path is None:
        return None
    from crossearth.weights.checkpoint_io import stored_config

    stored = stored_config(path)
    try:
        return ModelConfig.from_dict(stored) if stored else None
    except (TypeError, ValueError):  # load_model reports a bad config
        return None


def _local_file(init: str) -> Path | None:
    from crossearth.weights.hub import is_hub_source

    if is_hub_source(init):
        from crossearth.weights.hub import cached_hub_file

        try:
            return cached_hub_file(init)
        except Exception:  # a malformed name: load_model reports it
            return None
    path = Path(init)
    return path if path.is_file() else None


def follow_model(
    cfg: TrainConfig, given: set[str], model: ModelConfig | None, device_type: str
) -> tuple[TrainConfig, str | None]:
    """`cfg` with the keys of `FOLLOWING` that are not in `given` chosen for `model` on
    `device_type` ("cpu", "cuda", ...) by the module's rules, and a line saying what was chosen
    (None when nothing changed: a ViT-L model, an unknown one, or every key given)."""
    if model is None or model.backbone.embed_dim >= 1024 or cfg.setting is not None:
        return cfg, None
    chosen: dict[str, int] = {}
    crop = cfg.crop if "crop" in given else model.inference.crop_size[0]
    chosen["crop"] = crop
    scale = (crop / OFFICIAL_CROP) ** 2
    chosen["num_points"] = min(OFFICIAL_POINTS, max(1, round(OFFICIAL_POINTS * scale)))
    steps = (
        cfg.max_steps
        if "max_steps" in given
        else SMALL_MODEL_STEPS.get(device_type, SMALL_MODEL_STEPS["cpu"])
    )
    chosen["max_steps"] = steps
    chosen["val_every"] = chosen["checkpoint_every"] = interval(steps)
    changes = {k: v for k, v in chosen.items() if k not in given and getattr(cfg, k) != v}
    if not changes:
        return cfg, None
    where = {"cpu": "a CPU", "cuda": "a GPU"}.get(device_type, device_type)
    line = (
        ", ".join(f"{k} {v}" for k, v in changes.items())
        + f" (a model smaller than ViT-L, crop {model.inference.crop_size[0]}, on {where}; "
        "options and --set choose others)"
    )
    return dataclasses.replace(cfg, **changes), line


def interval(steps: int, times: int = VALIDATIONS) -> int:
    """Steps between validations (and checkpoints) so that a run of `steps` validates about
    `times` times and always at its last step: the smallest divisor of `steps` that is at least
    `steps / times` (300 -> 100, 80 -> 40, a prime -> itself). Validation steps come every
    `interval` steps, so one that does not divide `steps` would leave the last steps unscored."""
    start = max(1, math.ceil(steps / times))
    return next(d for d in range(start, steps + 1) if steps % d == 0) if steps > 0 else 1


def given_keys(config_file: Path | None, direct: dict[str, object], sets: list[str]) -> set[str]:
    """The training config keys the user set: in a `--config` YAML file, as options (`direct`,
    None meaning not given) or with `--set key=value`."""
    import yaml

    keys = {k for k, v in direct.items() if v is not None}
    keys |= {item.partition("=")[0] for item in sets}
    if config_file is not None and Path(config_file).is_file():
        try:
            data = yaml.safe_load(Path(config_file).read_text()) or {}
        except yaml.YAMLError:
            data = {}  # load_config reported it already
        if isinstance(data, dict):
            keys |= set(data)
    return keys


def record(cfg: TrainConfig, lines: list[str]) -> str:
    """The resolved config as YAML, headed by `lines` (the choices made for it) as comments: the
    run folder's config.yaml, readable again with `--config`."""
    import yaml

    head = "".join(f"# {line}\n" for line in lines)
    return head + yaml.safe_dump(json.loads(json.dumps(cfg.to_dict())), sort_keys=False)

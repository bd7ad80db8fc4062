"""What a run trains and validates on: a benchmark setting's domains or a user's data set.

Both kinds end in the same pieces: a position-deterministic `StreamDataset` for training and one
`ValidationSet` per validation domain, read through `crossearth.data` (`DomainDataset` for the
benchmark's prepared folders, `SceneDataset` for a data set description file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crossearth.benchmark import get_setting
from crossearth.data.domains import DomainDataset
from crossearth.errors import ConfigError, InputError
from crossearth.train.config import TrainConfig
from crossearth.train.data import StreamDataset, ValidationSet
from crossearth.train.transforms import TrainPipeline


@dataclass
class RunData:
    """Training stream, validation sets and what the model file should record about the data."""

    train: StreamDataset
    val_sets: list[ValidationSet]
    val_names: list[str]
    num_classes: int
    class_names: tuple[str, ...] | None = None
    palette: tuple[tuple[int, int, int], ...] | None = None
    band_layout: str = "RGB"
    band_indices: tuple[int, ...] | None = None
    scale: str | None = None
    gsd_m: float | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the data, printed before training
    # Models of other than three bands: what each band is, where red/green/blue sit, and the
    # per-band normalisation (`crossearth.data.bandstats`); None for 3-band runs.
    band_names: tuple[str, ...] | None = None
    rgb_slots: tuple[int | None, int | None, int | None] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # the training domain, when a setting also validates on it (not in the selection mean)
    source_domain: str | None = None

    @property
    def in_chans(self) -> int:
        """Number of input bands of the model this run trains."""
        return len(self.band_indices) if self.band_indices else 3

    def metadata(self) -> dict:
        """The `ModelConfig` fields the trained model records about the data."""
        out = {
            "class_names": self.class_names, "palette": self.palette, "bands": self.band_layout,
            "band_indices": self.band_indices, "scale": self.scale, "gsd_m": self.gsd_m,
        }  # fmt: skip
        if self.band_names is not None:
            out["band_names"] = self.band_names
        return out


def domain_source(
    domain_key: str, split: str, data_root: Path, limit: int | None = None
) -> DomainDataset:
    """One split of a benchmark domain under `data_root` (see `DomainDataset`)."""
    return DomainDataset(domain_key, split, Path(data_root), limit=limit)


def validation_set(source: DomainDataset) -> ValidationSet:
    d = source.domain
    return ValidationSet(source.load_arrays, len(source), d.test_resize, d.keep_ratio)


def setting_datasets(cfg: TrainConfig) -> RunData:
    """Training stream and validation sets of `cfg.setting` under `cfg.data_root`.

    Raises:
        ConfigError: unknown setting. InputError: missing data root or prepared folders.
    """
    try:
        setting = get_setting(cfg.setting)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if not cfg.data_root:
        raise InputError(
            "no data root: pass --data-root (the folder `crossearth data prepare` wrote; for "
            "SynthEarth, the one `crossearth synth` wrote)"
        )
    root = Path(cfg.data_root)
    if not root.is_dir():
        raise InputError(f"data root {root} does not exist")
    source = domain_source(setting.source, "train", root, cfg.train_limit)
    pipeline = TrainPipeline(crop=cfg.crop, scales=cfg.scales, max_size=cfg.max_size,
                             cat_max_ratio=cfg.cat_max_ratio)  # fmt: skip
    train = StreamDataset(source, pipeline, cfg.seed)
    vals, names = [], []
    for target in setting.targets:
        vals.append(validation_set(domain_source(target.domain, target.split, root, cfg.val_limit)))
        names.append(target.domain)
    domain = source.domain
    return RunData(train, vals, names, setting.num_classes, domain.classes.names,
                   domain.classes.palette, domain.bands, gsd_m=domain.gsd_m,
                   source_domain=setting.source)  # fmt: skip


def user_datasets(cfg: TrainConfig) -> RunData:
    """Training windows and validation blocks of the data set description `cfg.data`.

    Every label is checked first (`crossearth.data.check`): a problem is one error naming the
    file, before the run folder is touched.

    Raises:
        ConfigError, InputError (LabelProblem): the description or a file does not fit.
    """
    from crossearth.data.check import check_data
    from crossearth.data.scenes import RandomWindows, SceneDataset, ValidationBlocks
    from crossearth.data.spec import load_data_spec

    spec = load_data_spec(cfg.data)
    report = check_data(spec)
    report.raise_problems()
    train_scenes = SceneDataset(spec, spec.train)
    windows = RandomWindows(train_scenes, cfg.crop, tuple(cfg.scale_range), cfg.cat_max_ratio)
    pipeline = TrainPipeline(crop=cfg.crop, scales=None, max_size=cfg.max_size,
                             cat_max_ratio=cfg.cat_max_ratio)  # fmt: skip
    train = StreamDataset(windows, pipeline, cfg.seed)
    vals, names = [], []
    block = max(cfg.val_block, cfg.crop)
    for name, split in spec.validation_splits().items():
        blocks = ValidationBlocks(SceneDataset(spec, split), block)
        size = min(len(blocks), cfg.val_limit) if cfg.val_limit else len(blocks)
        vals.append(ValidationSet(blocks.load, size, None))
        names.append(name)
    gsd = spec.gsd_m if spec.gsd_m is not None else report.gsd_m
    notes = [spec.holdout] if spec.holdout else []
    run = RunData(train, vals, names, spec.num_classes, spec.classes, spec.palette,
                  spec.band_layout, None, spec.scale, gsd, notes, report.warnings)  # fmt: skip
    if spec.bands:
        _describe_bands(run, train_scenes)
    return run


def _describe_bands(run: RunData, scenes) -> None:
    """Record the chosen bands as numbers (names resolved in the first training image); for
    other than three bands also their names, RGB slots and per-band normalisation."""
    from crossearth.data.bandstats import band_statistics, describe_bands, normalisation

    source = scenes.source(0)
    info = describe_bands(source.dataset, source.bands)
    run.band_indices = info.indices
    if len(info.indices) == 3:
        return
    mean, std = band_statistics(scenes)
    run.band_names, run.rgb_slots = info.names, info.rgb_slots
    run.mean, run.std = normalisation(info, mean, std)


def run_datasets(cfg: TrainConfig) -> RunData:
    """`user_datasets` for a run with `data`, else `setting_datasets`."""
    if cfg.data and cfg.setting:
        raise ConfigError("train on a setting or on a data set description, not both")
    if cfg.data:
        return user_datasets(cfg)
    if cfg.setting is None:
        raise InputError(
            "say what to train on: --data DATA.yaml (your data) or --setting NAME "
            "(a benchmark setting, see `crossearth data list`)"
        )
    return setting_datasets(cfg)

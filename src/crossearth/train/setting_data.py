"""Datasets of a benchmark setting: the source domain's train split, every target for validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from crossearth.benchmark import get_setting
from crossearth.data.catalog import DOMAINS, Domain
from crossearth.errors import ConfigError, InputError
from crossearth.evaluate import (
    Pair,
    detect_one_based,
    domain_root,
    find_pairs,
    read_image,
    read_label,
)
from crossearth.train.config import TrainConfig
from crossearth.train.data import StreamDataset, ValidationSet
from crossearth.train.transforms import TrainPipeline


class DomainSource:
    """Image/label pairs of one domain split, decoded with the domain's label convention."""

    def __init__(self, domain: Domain, pairs: list[Pair]) -> None:
        self.domain, self.pairs = domain, pairs
        self.num_classes = len(domain.classes)
        self.one_based = domain.labels.detect_one_based and detect_one_based(pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def load_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pairs[index]
        image = read_image(pair.image)
        label = read_label(pair.label, self.domain.labels, self.num_classes, self.one_based)
        if image.shape[:2] != label.shape:
            raise InputError(
                f"{pair.image.name}: image {image.shape[:2]} and label {label.shape} differ"
            )
        return image, label

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.load_arrays(index)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label)


def domain_source(
    domain_key: str, split: str, data_root: Path, limit: int | None = None
) -> DomainSource:
    domain = DOMAINS[domain_key]
    pairs = find_pairs(domain, split, domain_root(domain, data_root))
    return DomainSource(domain, pairs[:limit] if limit else pairs)


def validation_set(source: DomainSource) -> ValidationSet:
    d = source.domain
    return ValidationSet(source.load_arrays, len(source), d.test_resize, d.keep_ratio)


def setting_datasets(cfg: TrainConfig) -> tuple[StreamDataset, list[ValidationSet], list[str], int]:
    """Training stream and validation sets of `cfg.setting` under `cfg.data_root`."""
    try:
        setting = get_setting(cfg.setting)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if not cfg.data_root:
        raise InputError(
            "no data root: pass --data-root (the folder `crossearth data prepare` wrote)"
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
    return train, vals, names, setting.num_classes

"""The benchmark's prepared domains as data sets: image/label pairs and the label conventions.

`DomainDataset` is one split of one catalog domain (`crossearth.data.catalog`) under a data root:
`load_arrays(i)` gives (image H x W x 3 uint8, labels H x W uint8 with 255 = ignore), decoded with
the domain's label convention. Training (`crossearth.train.datasets`) and `crossearth eval` read
the benchmark through it; user data sets have `crossearth.data.scenes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crossearth.data.catalog import DOMAINS, Domain, LabelSpec
from crossearth.errors import InputError
from crossearth.metrics import IGNORE_INDEX


@dataclass(frozen=True)
class Pair:
    image: Path
    label: Path


def domain_root(domain: Domain, data_root: Path, overrides: dict[str, Path] | None = None) -> Path:
    if overrides and domain.key in overrides:
        return overrides[domain.key]
    return data_root / domain.folder


def find_pairs(domain: Domain, split: str, root: Path, domain_dir: bool = False) -> list[Pair]:
    """Image/label pairs of one split, sorted by name; errors say what is missing and how to fix
    it (`domain_dir`: the caller takes `--domain-dir KEY=PATH`, so the advice may name it)."""
    if split not in domain.splits:
        raise InputError(
            f"{domain.title} has no {split!r} split (it has {', '.join(domain.splits)})"
        )
    layout = domain.splits[split]
    images_dir = root / layout.images
    if not images_dir.is_dir():
        how = (
            "Generate it with `crossearth synth --out DATA_ROOT`"
            if domain.key.startswith("synthearth-")
            else "Prepare the data with `crossearth data prepare`"
        )
        other = f" (or --domain-dir {domain.key}=PATH)" if domain_dir else ""
        raise InputError(
            f"{domain.title} {split} images not found at {images_dir}. {how} or point --data-root"
            f"{other} at it"
        )
    label_dirs = [root / layout.labels] + [
        images_dir.parent / d for d in layout.label_dirs_fallback
    ]
    label_dir = next((d for d in label_dirs if d.is_dir()), None)
    if label_dir is None:
        raise InputError(
            f"{domain.title} {split} labels not found (looked for {', '.join(map(str, label_dirs))})"
        )
    images = sorted(p for p in images_dir.iterdir() if p.name.endswith(layout.image_suffix))
    if not images:
        raise InputError(f"no {layout.image_suffix} images in {images_dir}")
    pairs, missing = [], []
    for image in images:
        stem = image.name[: -len(layout.image_suffix)]
        label = label_dir / f"{stem}{layout.label_suffix}"
        (pairs.append(Pair(image, label)) if label.is_file() else missing.append(label.name))
    if missing:
        raise InputError(f"{len(missing)} labels missing in {label_dir}, e.g. {missing[0]}")
    return pairs


def read_image(path: Path, model_bands: str = "RGB") -> np.ndarray:
    """H x W x 3 uint8 of a prepared benchmark image.

    Read through `RasterSource`, the reader `predict`, training and `style fit` share: prepared
    folders store the model's three bands in order (bands 1, 2, 3; grey images repeat band 1),
    8-bit data is used as is and anything else is scaled by the `--scale auto` rule.
    """
    from crossearth.geo.raster import RasterSource, open_raster

    with open_raster(path) as ds:
        count = ds.count
    bands = (1, 2, 3) if count >= 3 else (1, 1, 1)
    with RasterSource.open(path, model_bands=model_bands, bands=bands, scale="auto") as src:
        pixels, _ = src.read(0, src.height, 0, src.width)
    return np.ascontiguousarray(pixels)


def read_label(
    path: Path, spec: LabelSpec, num_classes: int, one_based: bool = False
) -> np.ndarray:
    """Class ids 0..C-1 and 255 (ignore) from a label file, following the domain's convention."""
    raw = _read_array(path)
    if raw.ndim == 3:
        raw = raw[..., 0]
    raw = raw.astype(np.int64)
    if spec.binary:
        label = (raw > 0).astype(np.int64)
    elif spec.reduce_zero_label or one_based:
        label = np.where((raw == 0) | (raw == IGNORE_INDEX), IGNORE_INDEX, raw - 1)
    else:
        label = raw
    bad = (label != IGNORE_INDEX) & ((label < 0) | (label >= num_classes))
    if bad.any():
        values = sorted(set(np.unique(raw[bad]).tolist()))
        raise InputError(
            f"{path}: label values {values} are out of range for {num_classes} classes"
        )
    return label.astype(np.uint8)


def detect_one_based(pairs: list[Pair], sample: int = 8) -> bool:
    """CASID labels: True if the first label files hold the value 5 and never 0 (ids 1..5)."""
    seen: set[int] = set()
    for pair in pairs[:sample]:
        seen |= set(np.unique(_read_array(pair.label)).tolist())
    return 5 in seen and 0 not in seen


def _read_array(path: Path, rgb: bool = False) -> np.ndarray:
    """Pixels as stored (labels: palette PNGs give their indices); `rgb` converts PNG/JPEG to RGB."""
    if path.suffix.lower() in {".tif", ".tiff"}:
        import rasterio

        with rasterio.open(path) as src:
            data = src.read()
        return data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB") if rgb and img.mode != "RGB" else img)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


class DomainDataset:
    """One split of a benchmark domain: pairs in name order, labels decoded by its convention.

    `overrides` (domain key -> folder) come from `eval --domain-dir`; None: the caller has no such
    option, and errors do not suggest it."""

    def __init__(self, domain: Domain | str, split: str, data_root: Path,
                 overrides: dict[str, Path] | None = None, limit: int | None = None) -> None:  # fmt: skip
        self.domain = DOMAINS[domain] if isinstance(domain, str) else domain
        self.split = split
        root = domain_root(self.domain, Path(data_root), overrides)
        pairs = find_pairs(self.domain, split, root, domain_dir=overrides is not None)
        self.pairs = pairs[:limit] if limit else pairs
        self.num_classes = len(self.domain.classes)
        self.one_based = self.domain.labels.detect_one_based and detect_one_based(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def load_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image [H, W, 3] uint8, labels [H, W] uint8, 255 = ignore). Raises InputError."""
        pair = self.pairs[index]
        label = read_label(pair.label, self.domain.labels, self.num_classes, self.one_based)
        image = read_image(pair.image, self.domain.bands)
        if image.shape[:2] != label.shape:
            raise InputError(
                f"{pair.image.name}: image {image.shape[:2]} and label {label.shape} differ"
            )
        return image, label

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image [3, H, W] uint8, labels [H, W] uint8) tensors for the training stream."""
        image, label = self.load_arrays(index)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label)

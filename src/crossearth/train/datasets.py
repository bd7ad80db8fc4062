"""Training and validation datasets: image/label pairs read as the benchmark reads them.

Samples are dicts ``image`` (uint8 ``[3, H, W]``, channels in file order), ``label`` (uint8
``[H, W]``, class ids 0..C-1 and 255 = ignore, after the domain's label convention) and ``index``.

Augmentation is reproducible: the transform's generator is seeded from ``(seed, epoch, index)``
only, so a sample index drawn in a given epoch gets the same augmentation in any worker, process or
rank, and after a resume. Call `set_epoch` before each epoch's loader iterator is created (worker
processes copy the dataset when the iterator starts; with ``persistent_workers=True`` they keep the
old epoch, so index the dataset with ``(epoch, index)`` tuples instead, e.g. from the sampler).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from crossearth.data.catalog import LabelSpec, get_domain
from crossearth.evaluate import (
    Pair,
    detect_one_based,
    domain_root,
    find_pairs,
    read_image,
    read_label,
)

Transform = Callable[
    [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]
]


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 64-bit seed that depends only on (seed, epoch, index) (NumPy's SeedSequence mixing)."""
    if min(seed, epoch, index) < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got {seed}, {epoch}, {index}")
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)
    return int(state[0])


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed, epoch, index))


class _AugmentedDataset(Dataset):
    """Shared logic: epoch-aware, per-sample generators and the uint8 tensor conversion."""

    def __init__(self, transform: Transform | None, seed: int) -> None:
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image_np, label_np = self._load(index)
        image = torch.from_numpy(np.ascontiguousarray(image_np.transpose(2, 0, 1)))
        label = torch.from_numpy(np.ascontiguousarray(label_np))
        if self.transform is not None:
            generator = sample_generator(self.seed, int(epoch), index)
            image, label = self.transform(image, label, generator)
        return {"image": image, "label": label, "index": index}


class SegmentationDataset(_AugmentedDataset):
    """Image/label files (`Pair`s) read with the evaluation readers and the domain's `LabelSpec`."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        label_spec: LabelSpec,
        num_classes: int,
        one_based: bool = False,
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(transform, seed)
        self.pairs = list(pairs)
        self.label_spec = label_spec
        self.num_classes = int(num_classes)
        self.one_based = one_based

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pairs[index]
        image = read_image(pair.image)
        label = read_label(pair.label, self.label_spec, self.num_classes, self.one_based)
        if label.shape != image.shape[:2]:
            raise ValueError(
                f"{pair.label}: label {label.shape} does not match image {image.shape[:2]}"
            )
        return image, label


def domain_dataset(
    domain_key: str,
    split: str,
    data_root: str | Path,
    transform: Transform | None = None,
    limit: int | None = None,
    overrides: dict[str, Path] | None = None,
    seed: int = 0,
) -> SegmentationDataset:
    """A catalog domain's split (the first ``limit`` pairs by name), with its label convention."""
    domain = get_domain(domain_key)
    pairs = find_pairs(domain, split, domain_root(domain, Path(data_root), overrides))
    if limit is not None:
        pairs = pairs[:limit]
    one_based = domain.labels.detect_one_based and detect_one_based(pairs)
    return SegmentationDataset(
        pairs, domain.labels, len(domain.classes), one_based, transform=transform, seed=seed
    )


class InMemorySegmentation(_AugmentedDataset):
    """The same interface over arrays (H x W x 3 uint8 images, H x W uint8 labels)."""

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(transform, seed)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"image {i}: expected H x W x 3 uint8, got {image.dtype} {image.shape}"
                )
            if label.dtype != np.uint8 or label.shape != image.shape[:2]:
                raise ValueError(
                    f"label {i}: expected {image.shape[:2]} uint8, got {label.dtype} {label.shape}"
                )
        self.images = list(images)
        self.labels = list(labels)

    def __len__(self) -> int:
        return len(self.images)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index]


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack equal-size samples (training crops): image [B, 3, h, w], label [B, h, w], uint8.

    Samples of different sizes (validation images) come back as lists of tensors instead; ``index``
    is always a LongTensor [B].
    """
    images = [sample["image"] for sample in batch]
    labels = [sample["label"] for sample in batch]
    index = torch.tensor([int(sample["index"]) for sample in batch], dtype=torch.long)
    if len({tuple(image.shape) for image in images}) == 1:
        return {"image": torch.stack(images), "label": torch.stack(labels), "index": index}
    return {"image": images, "label": labels, "index": index}

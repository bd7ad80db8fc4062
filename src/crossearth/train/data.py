"""Iteration-based data streams: sample k of the run is a pure function of (seed, k).

The training stream is a sequence of positions 0, 1, 2, ...; position p draws image
`perm(seed, p // N)[p % N]` (a fresh shuffle per pass) and augments it with a generator seeded from
(seed, p). A process of rank r among W, at step s with per-device batch b, takes positions
`s*b*W + r*b + [0..b)`. So a run resumed at step k continues with exactly the samples an unbroken
run would have drawn, and a W-process run sees the same global batches as one process with a
W-times larger batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class SampleSource(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]: ...


Transform = Callable[
    [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]
]


def _seeded(seed: int, *parts: int) -> torch.Generator:
    gen = torch.Generator()
    value = seed
    for part in parts:
        value = (value * 1_000_003 + part) % (2**63)
    gen.manual_seed(value)
    return gen


class StreamDataset(Dataset):
    """Map-style dataset indexed by stream position (see module docstring)."""

    def __init__(self, source: SampleSource, transform: Transform | None, seed: int) -> None:
        if len(source) == 0:
            raise ValueError("the training set is empty")
        self.source, self.transform, self.seed = source, transform, seed
        self._perm_pass, self._perm = -1, None

    def index_of(self, position: int) -> int:
        n = len(self.source)
        epoch = position // n
        if epoch != self._perm_pass:
            self._perm = torch.randperm(n, generator=_seeded(self.seed, 0, epoch))
            self._perm_pass = epoch
        return int(self._perm[position % n])

    def __len__(self) -> int:
        return 2**62  # effectively infinite: the run length is set by max_steps

    def __getitem__(self, position: int) -> dict[str, Any]:
        generator = _seeded(self.seed, 1, position)
        if hasattr(self.source, "sample"):  # windows of large scenes: the window is a draw too
            image, label = self.source.sample(self.index_of(position), generator)
        else:
            image, label = self.source.load(self.index_of(position))
        if self.transform is not None:
            image, label = self.transform(image, label, generator)
        return {"image": image, "label": label, "position": position}


class StreamSampler(Sampler[int]):
    """Positions for one rank, starting at a given optimizer step (resume)."""

    def __init__(self, batch_size: int, rank: int = 0, world: int = 1, start_step: int = 0) -> None:
        self.batch_size, self.rank, self.world, self.start_step = (
            batch_size,
            rank,
            world,
            start_step,
        )

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = step * self.batch_size * self.world + self.rank * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1

    def __len__(self) -> int:
        return 2**62

    @classmethod
    def for_trainer(cls, trainer, batch_size: int) -> StreamSampler:
        """This rank's positions from the trainer's global step (the restored one on resume)."""
        if trainer is None:
            return cls(batch_size)
        return cls(batch_size, trainer.global_rank, trainer.world_size, trainer.global_step)


def collate_train(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {
        "image": torch.stack([b["image"] for b in batch]),
        "label": torch.stack([b["label"] for b in batch]),
        "position": torch.tensor([b["position"] for b in batch]),
    }


class ArraySource:
    """Images and labels held in memory (synthetic data, tests)."""

    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray]) -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in number")
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The image (H x W x 3 uint8) and label as stored (for validation sets)."""
        return self.images[index], self.labels[index]

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(np.ascontiguousarray(self.images[index])).permute(2, 0, 1)
        return image, torch.from_numpy(np.ascontiguousarray(self.labels[index]))


class ValidationSet(Dataset):
    """Whole images for the official slide protocol (numpy, variable sizes; batch = list)."""

    def __init__(self, load: Callable[[int], tuple[np.ndarray, np.ndarray]], size: int,
                 test_resize: int | None, keep_ratio: bool = True) -> None:  # fmt: skip
        self.load, self.size, self.test_resize, self.keep_ratio = (
            load,
            size,
            test_resize,
            keep_ratio,
        )

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, Any]:
        image, label = self.load(i)
        return {
            "image": image,
            "label": label,
            "test_resize": self.test_resize,
            "keep_ratio": self.keep_ratio,
        }


def collate_list(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return batch

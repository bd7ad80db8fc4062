"""Your own labelled scenes as data sets: windows of any-size images with their labels.

In the style of TorchGeo's datasets, one class per job:

- `SceneDataset`: the scenes of one split of a `DataSpec`. `read(i, y1, y2, x1, x2)` gives the
  image window (H x W x N uint8: the N bands of `bands:`, else 3; and scaling chosen by the same rule as `predict`:
  `crossearth.geo.raster.RasterSource`) and its labels (H x W uint8, 255 = ignore: unlabelled,
  under no polygon, or image nodata). Files are opened lazily, once per process, and only the
  window is read, so scene size never sets memory.
- `RandomWindows`: training windows, a pure function of (scene slot, generator): a scale factor f
  from `scale_range` (the official 0.5-2.0 of the crop), a window of crop/f source pixels at a
  random position (up to 10 draws, as mmseg's cat-max crop, until no class covers more than
  `cat_max_ratio`), resized by f. Scenes are drawn in proportion to their area (one slot per
  crop-sized tile), so a pass over the slots covers the data about once.
- `ValidationBlocks`: every scene cut into blocks of at most `block` pixels a side, each run with
  the official slide inference (`CrossEarth.predict`); used by training's validation and by
  `crossearth eval --data`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crossearth.data.labels import IGNORE, ImageGrid, LabelProblem, RasterLabels, VectorLabels
from crossearth.data.spec import VECTOR_SUFFIXES, DataSpec, SplitSpec, scene_name
from crossearth.errors import InputError


@dataclass(frozen=True)
class Scene:
    image: Path | str  # str: a GDAL subdataset name
    label: Path | None
    rows: tuple[float, float] = (0.0, 1.0)  # fraction of the image's rows in this split


class SceneDataset:
    """Windows of image and label from the scenes of one split (see module docstring).

    Raises:
        InputError: unreadable images or labels, bands the rule cannot choose.
        LabelProblem: labels that do not fit the description (with `strict`, at first read).
    """

    def __init__(self, spec: DataSpec, split: SplitSpec, *, strict: bool = True) -> None:
        self.spec, self.split, self.strict = spec, split, strict
        rows = split.rows or ((0.0, 1.0),) * len(split.images)
        self.scenes = [Scene(img, lab, r) for img, lab, r in
                       zip(split.images, split.labels, rows, strict=True)]  # fmt: skip
        self._labels: dict[Path, object] = {}
        self._sources: dict[int, object] = {}
        self._pid = os.getpid()
        self._shapes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.scenes)

    def __getstate__(self) -> dict:  # open files stay in the process that opened them
        return self.__dict__ | {"_sources": {}, "_labels": {}}

    # -- files ----------------------------------------------------------------------------------
    def source(self, i: int):
        """The image's `RasterSource` (bands and scaling chosen once per file)."""
        if self._pid != os.getpid():
            self._sources, self._labels, self._pid = {}, {}, os.getpid()
        if i not in self._sources:
            from crossearth.advice import DATA_SET
            from crossearth.geo.raster import RasterSource

            self._sources[i] = RasterSource.open(
                self.scenes[i].image, model_bands=self.spec.band_layout, bands=self.spec.bands,
                scale=self.spec.scale, advice=DATA_SET, count=None if self.spec.bands else 3,
            )  # fmt: skip
        return self._sources[i]

    def grid(self, i: int) -> ImageGrid:
        return ImageGrid.of(self.source(i).dataset)

    def labels(self, i: int):
        """The scene's label source. Raises InputError if it has none."""
        path = self.scenes[i].label
        if path is None:
            raise InputError(f"{self.scenes[i].image}: no label file matches this image")
        if self._pid != os.getpid():
            self._sources, self._labels, self._pid = {}, {}, os.getpid()
        if path not in self._labels:
            self._labels[path] = open_labels(path, self.spec, self.split, strict=self.strict)
        return self._labels[path]

    def label_sources(self) -> dict[Path, object]:
        """The label sources opened so far in this process, by file (their `seen` codes, ...)."""
        return dict(self._labels)

    def shape(self, i: int) -> tuple[int, int]:
        """(height, width) of scene i in pixels."""
        if i not in self._shapes:
            src = self.source(i)
            self._shapes[i] = (src.height, src.width)
        return self._shapes[i]

    def row_range(self, i: int) -> tuple[int, int]:
        """First and end row of scene i that belong to this split."""
        height = self.shape(i)[0]
        lo, hi = self.scenes[i].rows
        return round(lo * height), round(hi * height)

    # -- pixels ---------------------------------------------------------------------------------
    def read(
        self, i: int, y1: int, y2: int, x1: int, x2: int, labels: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(image [h, w, N] uint8, labels [h, w] uint8 with 255 = ignore) of one window;
        `labels` already read for this window are reused (and updated with image nodata)."""
        pixels, valid = self.source(i).read(y1, y2, x1, x2)
        labels = self.read_labels(i, y1, y2, x1, x2) if labels is None else labels
        labels[~valid] = IGNORE  # image nodata is never a training target
        return pixels, labels

    def read_labels(self, i: int, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
        try:
            return self.labels(i).read(self.grid(i), y1, y2, x1, x2)
        except LabelProblem as exc:
            raise LabelProblem(f"{exc} (image {scene_name(self.scenes[i].image)})") from None

    def close(self) -> None:
        for src in self._sources.values():
            src.close()
        for lab in self._labels.values():
            lab.close()
        self._sources, self._labels = {}, {}


def open_labels(path: Path, spec: DataSpec, split: SplitSpec, strict: bool = True):
    """The right `LabelSource` for a label file (vector by suffix, else raster)."""
    if path.suffix.lower() in VECTOR_SUFFIXES:
        return VectorLabels(path, split.label_field or "", spec.codes)
    return RasterLabels(path, spec.codes, spec.ignore_index, spec.palette, split.label_format,
                        spec.ignore_colours, strict=strict, nodata_rule=spec.label_nodata)  # fmt: skip


class RandomWindows:
    """Training samples drawn from scenes of any size (see module docstring).

    `sample(slot, generator)` returns (image uint8 [N, h, w], label uint8 [h, w]) with h, w about
    `crop` (smaller where the scene is); the train pipeline then crops, flips, distorts and pads.
    """

    def __init__(self, dataset: SceneDataset, crop: int,
                 scale_range: tuple[float, float] = (0.5, 2.0), cat_max_ratio: float = 0.75,
                 tries: int = 10) -> None:  # fmt: skip
        self.dataset, self.crop = dataset, crop
        self.scale_range, self.cat_max_ratio, self.tries = scale_range, cat_max_ratio, tries
        slots = []
        for i in range(len(dataset)):
            y0, y1 = dataset.row_range(i)
            width = dataset.shape(i)[1]
            slots.append(max(1, math.ceil((y1 - y0) / crop) * math.ceil(width / crop)))
        self._ends = np.cumsum(slots)

    def __len__(self) -> int:
        return int(self._ends[-1])

    def scene_of(self, slot: int) -> int:
        return int(np.searchsorted(self._ends, slot, side="right"))

    def sample(self, slot: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        i = self.scene_of(slot)
        lo, hi = self.scale_range
        factor = lo + (hi - lo) * float(torch.rand((), generator=generator))
        y_start, y_end = self.dataset.row_range(i)
        width = self.dataset.shape(i)[1]
        side = max(1, round(self.crop / factor))
        win_h, win_w = min(side, y_end - y_start), min(side, width)
        for _ in range(self.tries):
            y = y_start + int(
                torch.randint(0, y_end - y_start - win_h + 1, (), generator=generator)
            )
            x = int(torch.randint(0, width - win_w + 1, (), generator=generator))
            label = self.dataset.read_labels(i, y, y + win_h, x, x + win_w)
            if _acceptable(label, self.cat_max_ratio):
                break
        image, label = self.dataset.read(i, y, y + win_h, x, x + win_w, labels=label)
        from crossearth.train.transforms import resize_pair

        out_h = max(1, round(win_h * factor))
        out_w = max(1, round(win_w * factor))
        image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return resize_pair(image_t, torch.from_numpy(label), (out_h, out_w))

    def load(self, slot: int) -> tuple[torch.Tensor, torch.Tensor]:  # SampleSource protocol
        return self.sample(slot, torch.Generator().manual_seed(slot))


def _acceptable(label: np.ndarray, cat_max_ratio: float) -> bool:
    """mmseg's rule: some labelled pixels, and no class above `cat_max_ratio` of them (if < 1)."""
    counts = np.bincount(label.ravel(), minlength=256)[:IGNORE]
    total = counts.sum()
    if total == 0:
        return False
    return cat_max_ratio >= 1 or (
        np.count_nonzero(counts) > 1 and counts.max() / total < cat_max_ratio
    )


class ValidationBlocks:
    """Blocks of at most `block` x `block` pixels covering every scene's rows of this split."""

    def __init__(self, dataset: SceneDataset, block: int = 2048) -> None:
        self.dataset, self.block = dataset, block
        self.items: list[tuple[int, int, int, int, int]] = []
        for i in range(len(dataset)):
            y0, y1 = dataset.row_range(i)
            width = dataset.shape(i)[1]
            for ya in range(y0, y1, block):
                for xa in range(0, width, block):
                    self.items.append((i, ya, min(ya + block, y1), xa, min(xa + block, width)))

    def __len__(self) -> int:
        return len(self.items)

    def load(self, k: int, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(image [h, w, N] uint8, labels [h, w] uint8) of block k; `labels` already read by
        `read_labels(k)` are reused."""
        return self.dataset.read(*self.items[k], labels=labels)

    def read_labels(self, k: int) -> np.ndarray:
        """Labels [h, w] uint8 of block k (255 = ignore; image nodata not yet applied)."""
        return self.dataset.read_labels(*self.items[k])

"""`crossearth data check`: what a data set description really holds, and what does not fit.

For every split: the images, their labelled pixels per class, and the problems a run would hit —
images without a label file, labels that do not overlap their image, label ids out of range or
colours not in the palette, vector class names not in `classes`, a missing `label_field`, images
with no labelled pixel. Labels are read in blocks of rows, so memory follows the image width.
Training runs the same check first and stops on the first report with problems.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from crossearth.data.labels import LabelProblem
from crossearth.data.scenes import SceneDataset
from crossearth.data.spec import VECTOR_SUFFIXES, DataSpec, scene_name
from crossearth.errors import InputError

BLOCK_ROWS = 1024


@dataclass
class SplitReport:
    name: str
    images: int = 0
    pixels: int = 0
    labelled: np.ndarray | None = None  # [C] labelled pixels per class
    problems: list[str] = field(default_factory=list)
    band_counts: dict[str, int] = field(default_factory=dict)  # image name -> bands in its file


@dataclass
class DataReport:
    spec: DataSpec
    splits: list[SplitReport]
    gsd_m: float | None = None  # ground pixel size of the first training image, metres

    @property
    def problems(self) -> list[str]:
        """Every problem once (a vector file shared by splits fails the same way in each)."""
        return list(dict.fromkeys(p for s in self.splits for p in s.problems))

    def raise_problems(self) -> None:
        """Raise one InputError listing every problem (the first few in full)."""
        problems = self.problems
        if problems:
            more = (
                f" (and {len(problems) - 5} more: run `crossearth data check`)"
                if len(problems) > 5
                else ""
            )
            raise InputError(f"{self.spec.path}: " + "; ".join(problems[:5]) + more)

    def as_dict(self) -> dict:
        names = self.spec.classes
        return {
            "data": str(self.spec.path),
            "holdout": self.spec.holdout or None,
            "gsd_m": self.gsd_m,
            "splits": {
                s.name: {
                    "images": s.images,
                    "pixels": s.pixels,
                    "labelled": {n: int(v) for n, v in zip(names, s.labelled, strict=True)},
                    "problems": s.problems,
                    "bands": s.band_counts,
                }
                for s in self.splits
            },
        }


def check_data(spec: DataSpec, progress=None) -> DataReport:
    """Read every label of every split once and report counts and problems (never raises for
    problems in the labels themselves; unreadable images or a bad description still raise)."""
    splits = [("train", spec.train), *spec.validation_splits().items()]
    report = DataReport(spec, [])
    for name, split in splits:
        if split is None:
            continue
        dataset = SceneDataset(spec, split, strict=False)
        out = SplitReport(name, labelled=np.zeros(spec.num_classes, np.int64))
        seen_files: set = set()
        for i, scene in enumerate(dataset.scenes):
            out.images += 1
            where = f"{name}: {scene_name(scene.image)}"
            out.band_counts[scene_name(scene.image)] = dataset.source(i).dataset.count
            if scene.label is None:
                out.problems.append(f"{where} has no label file")
                continue
            try:
                labels = dataset.labels(i)
                grid = dataset.grid(i)
                if report.gsd_m is None and name == "train" and grid.crs is not None:
                    from crossearth.geo.resample import pixel_size_m

                    # a CRS without a ground size (InputError): the model records none
                    with contextlib.suppress(InputError):
                        report.gsd_m = round(float(pixel_size_m(dataset.source(i).dataset)), 4)
                if not labels.overlaps(grid):
                    out.problems.append(
                        f"{where}: labels {scene.label.name} do not overlap the image"
                    )
                    continue
                counts = _count(dataset, i, spec.num_classes)
            except LabelProblem as exc:
                message = str(exc) if scene.label in seen_files else f"{where}: {exc}"
                if message not in out.problems and str(exc) not in out.problems:
                    out.problems.append(
                        str(exc) if scene.label.suffix.lower() in VECTOR_SUFFIXES else message
                    )
                seen_files.add(scene.label)
                continue
            problems = getattr(labels, "problems", {})
            if problems:
                kind = (
                    "colours not in the palette"
                    if getattr(labels, "colours", False)
                    else "label values out of range"
                )
                listed = ", ".join(f"{list(k) if isinstance(k, tuple) else k} ({n} px)"
                                   for k, n in sorted(problems.items(), key=lambda kv: -kv[1])[:8])  # fmt: skip
                out.problems.append(
                    f"{where}: {scene.label.name}: {kind} for {spec.num_classes} classes: {listed}"
                )
                problems.clear()
            y0, y1 = dataset.row_range(i)
            out.pixels += (y1 - y0) * dataset.shape(i)[1]
            if counts.sum() == 0:
                out.problems.append(f"{where} has no labelled pixel")
            out.labelled += counts
            if progress is not None:
                progress(name, i + 1, len(dataset))
        dataset.close()
        report.splits.append(out)
    mixed = _mixed_band_counts(report.splits)
    if mixed:
        report.splits[0].problems.insert(0, mixed)
    return report


def _mixed_band_counts(splits: list[SplitReport]) -> str:
    """A problem naming images of different band counts (one model takes one band set), or ""."""
    by_count: dict[int, list[str]] = {}
    for split in splits:
        for image, count in split.band_counts.items():
            by_count.setdefault(count, []).append(f"{split.name}: {image}")
    if len(by_count) < 2:
        return ""
    listed = "; ".join(
        f"{count} band{'s' if count != 1 else ''}: {', '.join(names[:3])}"
        + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        for count, names in sorted(by_count.items())
    )
    return (
        f"images have different band counts ({listed}); one model reads the same bands from "
        f"every image: give images of one band layout"
    )


def _count(dataset: SceneDataset, i: int, num_classes: int) -> np.ndarray:
    """Labelled pixels per class of scene i (its rows of this split), read in row blocks."""
    counts = np.zeros(num_classes, np.int64)
    y_start, y_end = dataset.row_range(i)
    width = dataset.shape(i)[1]
    for y in range(y_start, y_end, BLOCK_ROWS):
        _, labels = dataset.read(i, y, min(y + BLOCK_ROWS, y_end), 0, width)
        counts += np.bincount(labels.ravel(), minlength=256)[:num_classes]  # 255 = ignore
    return counts

"""`crossearth data check`: what a data set description really holds, and what does not fit.

For every split: the images, their labelled pixels per class, and the problems a run would hit —
images without a label file, labels that do not overlap their image, label codes no class has or
colours not in the palette, ambiguous vector codes, a missing `label_field`, images with no
labelled pixel, a class with no labelled pixel in `train` (unless `allow_empty_classes` lists
it). Warnings: a class with no labelled pixel in a validation split (it is not scored there),
and label rasters whose declared nodata value is a class's code (read as that class). The code
-> class table each label source was read with is in `codes`. Labels are read in blocks of rows,
so memory follows the image width. Training runs the same check first and stops on the first
report with problems.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.data.labels import LabelProblem, RasterLabels, VectorLabels
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
    warnings: list[str] = field(default_factory=list)
    band_counts: dict[str, int] = field(default_factory=dict)  # image name -> bands in its file


@dataclass
class CodeReport:
    """How one label source's codes became classes: the rule, and (code, class, how, count)
    rows; counts are polygons (vector) or labelled pixels read (rasters)."""

    source: str
    rule: str
    unit: str
    rows: list[tuple[str, str, str, int]]


@dataclass
class DataReport:
    spec: DataSpec
    splits: list[SplitReport]
    gsd_m: float | None = None  # ground pixel size of the first training image, metres
    codes: list[CodeReport] = field(default_factory=list)
    nodata_warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every problem once (a vector file shared by splits fails the same way in each)."""
        return list(dict.fromkeys(p for s in self.splits for p in s.problems))

    @property
    def warnings(self) -> list[str]:
        """Every warning once: label nodata read as a class, classes without a labelled pixel
        in a validation split."""
        return list(dict.fromkeys([*self.nodata_warnings, *(w for s in self.splits
                                                          for w in s.warnings)]))  # fmt: skip

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
                    "warnings": s.warnings,
                    "bands": s.band_counts,
                }
                for s in self.splits
            },
            "warnings": self.warnings,
            "codes": [
                {
                    "source": c.source,
                    "rule": c.rule,
                    "unit": c.unit,
                    "table": [
                        {"code": code, "class": name, "read_as": how, c.unit: n}
                        for code, name, how, n in c.rows
                    ],
                }
                for c in self.codes
            ],
        }


def check_data(spec: DataSpec, progress=None) -> DataReport:
    """Read every label of every split once and report counts and problems (never raises for
    problems in the labels themselves; unreadable images or a bad description still raise)."""
    splits = [("train", spec.train), *spec.validation_splits().items()]
    report = DataReport(spec, [])
    vector_seen: dict[str, tuple[str, dict[str, int]]] = {}  # source -> (rule, code -> polygons)
    raster_seen: dict[str, int] = {}  # code -> pixels, over every label raster of ids
    nodata: dict[tuple[float, int], dict[str, int]] = {}  # (nodata, class) -> {file: pixels}
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
                    from crossearth.geo.area import pixel_size_m

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
                worst = sorted(problems.items(), key=lambda kv: -kv[1])[:8]
                listed = ", ".join(f"{list(k) if isinstance(k, tuple) else k} ({n} px)"
                                   for k, n in worst)  # fmt: skip
                what = (
                    f"colours not in the palette for {spec.num_classes} classes: {listed}"
                    if labels.colours
                    else "label values " + labels.unknown_values([str(k) for k, _ in worst], listed)
                )
                out.problems.append(f"{where}: {scene.label.name}: {what}")
                problems.clear()
            y0, y1 = dataset.row_range(i)
            out.pixels += (y1 - y0) * dataset.shape(i)[1]
            if counts.sum() == 0:
                out.problems.append(f"{where} has no labelled pixel")
            out.labelled += counts
            if progress is not None:
                progress(name, i + 1, len(dataset))
        for path, source in dataset.label_sources().items():
            _collect_codes(path, source, vector_seen, raster_seen, nodata)
        dataset.close()
        if not out.problems:
            _empty_classes(spec, out)
        report.splits.append(out)
    report.codes = [CodeReport(src, rule, "polygons", spec.codes.table(seen))
                    for src, (rule, seen) in vector_seen.items()]  # fmt: skip
    if raster_seen:
        report.codes.append(CodeReport("label rasters", spec.codes.rule, "pixels",
                                       spec.codes.table(raster_seen)))  # fmt: skip
    report.nodata_warnings = [_nodata_warning(spec, value, class_id, files)
                              for (value, class_id), files in nodata.items()]  # fmt: skip
    mixed = _mixed_band_counts(report.splits)
    if mixed:
        report.splits[0].problems.insert(0, mixed)
    return report


def _collect_codes(path, source, vector_seen, raster_seen, nodata) -> None:
    """Add one label source's codes met and nodata pixels read as a class to the totals."""
    if isinstance(source, VectorLabels):
        key = f"{source.label_field} in {path.name}"
        vector_seen.setdefault(key, (source.codes.rule, dict(source.seen)))
        return
    if not isinstance(source, RasterLabels):
        return
    for code, n in source.seen.items():
        raster_seen[code] = raster_seen.get(code, 0) + n
    _count_nodata(path, source, nodata)


def _count_nodata(path, source, nodata: dict[tuple[float, int], dict[str, int]]) -> None:
    if isinstance(source, RasterLabels) and source.nodata_is_class and source.nodata_pixels:
        files = nodata.setdefault((float(source.nodata), int(source.nodata_class)), {})
        files[path.name] = files.get(path.name, 0) + source.nodata_pixels


def nodata_warnings(spec: DataSpec, sources: Iterable[tuple[Path, Any]]) -> list[str]:
    """One warning per (nodata value, class) for label rasters among `sources` (path, label
    source) whose declared nodata, a class's code, was read as that class."""
    nodata: dict[tuple[float, int], dict[str, int]] = {}
    for path, source in sources:
        _count_nodata(path, source, nodata)
    return [_nodata_warning(spec, v, c, files) for (v, c), files in nodata.items()]


def _nodata_warning(spec: DataSpec, value: float, class_id: int, files: dict[str, int]) -> str:
    shown = f"{value:g}"
    names = ", ".join(sorted(files)[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    cls = spec.classes[class_id]
    return (
        f"label raster{'s' if len(files) > 1 else ''} {names} declare{'' if len(files) > 1 else 's'} "
        f"nodata {shown}, which is the code of class {cls!r}: its {sum(files.values()):,} pixels "
        f"are read as {cls}, not as unlabelled. If {shown} marks unlabelled pixels there, set "
        "`label_nodata: ignore` in the data set file"
    )


def _empty_classes(spec: DataSpec, out: SplitReport) -> None:
    """A class without a labelled pixel: a problem in train (unless allowed), else a warning."""
    allowed = set(spec.allow_empty_classes)
    empty = [
        n for n, v in zip(spec.classes, out.labelled, strict=True) if v == 0 and n not in allowed
    ]
    if not empty or out.images == 0:
        return
    listed = ", ".join(empty)
    plural = "es" if len(empty) > 1 else ""
    if out.name == "train":
        out.problems.append(
            f"train: no labelled pixel of class{plural} {listed}: the model cannot learn "
            f"{'them' if plural else 'it'}. Label some, check the label codes (`crossearth data "
            f"check` shows how they were read), or, if {'they are' if plural else 'it is'} meant "
            f"to be absent, set `allow_empty_classes: [{listed}]` in the data set file"
        )
    else:
        its, it = ("their", "them") if plural else ("its", "it")
        out.warnings.append(
            f"{out.name}: no labelled pixel of class{plural} {listed}: {its} F1 and recall are "
            f"not scored there (left out of the means), and {its} IoU is 0 if the model predicts "
            f"{it} anywhere (as in mmseg)"
        )


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

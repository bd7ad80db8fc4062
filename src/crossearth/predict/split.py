"""One scene over several processes: the window grid split into bands of rows, run as parts.

A scene of H rows split into n parts gives part k the output rows `part_rows(H, n)[k]`. Each part
runs exactly the whole run's batches of windows that touch its rows (`StreamingSegmenter.run(...,
rows=...)`: the same windows batched the same way, their scores summed in the same order), so its
rows are bit for bit the single-process rows; the overlap costs the window rows that straddle a
cut (and the batch-mates of their windows), run by both neighbours. A part is written as a plain
uint8 GeoTIFF of its rows (plus its confidence rows); its counts and timings are a `PartResult`.

`assemble` then streams the parts, in row order, into the very writer a single-process run uses
(`predict_raster(..., parts=...)`), so the class map, its companions and its summary are made
by the same code from the same rows: the class map is byte for byte the single-process one.
The part files are kept in the run manifest (`crossearth.predict.manifest`); each part is a task
of its own (`crossearth.predict.tasks`), and a scene's assembly runs once all its parts are done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from crossearth.errors import InputError
from crossearth.fileio import recording, signals_deferred
from crossearth.geo.containers import is_subdataset
from crossearth.geo.remote import is_remote
from crossearth.predict.source import open_for_prediction
from crossearth.predict.stream import StreamStats
from crossearth.predict.writer import ClassMapWriter

ASSEMBLE_ROWS = 256  # rows replayed per step (bounds memory: 256 x width bytes per raster)


def part_rows(height: int, parts: int) -> list[tuple[int, int]]:
    """The output rows [a, b) of each of `parts` parts of a scene `height` rows high: as equal
    as whole rows allow, in order, covering 0..height.

    Raises:
        InputError: `parts` is below 1 or above `height` (a part must hold a row).
    """
    if not 1 <= parts <= height:
        raise InputError(f"cannot split {height} rows into {parts} parts (1..{height})")
    edges = [k * height // parts for k in range(parts + 1)]
    return list(pairwise(edges))


def auto_parts(windows: Sequence[int], window_rows: Sequence[int], world: int) -> list[int]:
    """How many parts each scene is split into when `world` processes share the scenes.

    A scene is split only when it holds more than its share (1/world) of all the windows: it
    would otherwise keep one process busy after the others are done. It is then split into one
    part per process (at most one per window row); every other scene stays whole, since a
    split costs the window rows that straddle its cuts.

    Args:
        windows: windows per scene (`len(slide_windows(...))`).
        window_rows: rows of windows per scene.
        world: number of processes.
    """
    total = sum(windows)
    return [
        min(world, rows) if world > 1 and count * world > total else 1
        for count, rows in zip(windows, window_rows, strict=True)
    ]


@dataclass
class PartResult:
    """A finished part: its rows of the class map (and confidence) on disk, and its counts."""

    index: int
    parts: int
    rows: tuple[int, int]
    classes: Path
    confidence: Path | None
    windows: int  # windows of the batches this part owns (the parts' counts add up)
    windows_run: int  # windows it ran, with its share of the overlap
    skipped_windows: int
    seconds: dict[str, float]
    clipped: int
    considered: int
    started: float = 0.0  # when the part started, seconds since the epoch (any process's clock)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["classes"] = str(self.classes)
        record["confidence"] = str(self.confidence) if self.confidence else None
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> PartResult:
        fields = dict(record)
        fields["rows"] = tuple(fields["rows"])
        fields["classes"] = Path(fields["classes"])
        fields["confidence"] = Path(fields["confidence"]) if fields["confidence"] else None
        return cls(**fields)

    def files(self) -> list[Path]:
        return [self.classes] + ([self.confidence] if self.confidence else [])


def predict_part(
    model: Any,
    image: str | Path,
    classes: Path,
    options: Any,
    index: int,
    parts: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> PartResult:
    """Segment part `index` of `parts` of `image` and write its rows to `classes` (uint8
    GeoTIFF, rows a:b of the class map, nodata 255), and with `options.confidence` its
    confidence rows beside it (`<name>.confidence.tif`). Rows are those of the grid the model
    runs on (the input's, or the resampled one with `options.match_gsd`).

    Raises:
        InputError, InputNotFoundError, OSError: as `predict_raster`; nothing of the part is
            left on error or a termination signal.
    """
    started, started_at = time.perf_counter(), time.time()
    image = str(image) if is_subdataset(image) else image if is_remote(image) else Path(image)
    with open_for_prediction(model, image, options) as prepared:
        source, reader, segmenter = prepared.source, prepared.reader, prepared.segmenter
        rows = part_rows(reader.height, parts)[index]
        total = segmenter.part_windows(reader.height, reader.width, rows)
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        confidence = classes.with_suffix(".confidence.tif") if options.confidence else None
        writer = None
        with recording([]) as created:  # the part's files: both of them or none
            try:
                with signals_deferred():
                    writer = ClassMapWriter(
                        classes, height=rows[1] - rows[0], width=reader.width, crs=None,
                        transform=None, palette=model.config.palette,
                        class_names=model.config.class_names, confidence_path=confidence,
                    )  # fmt: skip
                stats = segmenter.run(reader, _Offset(writer, rows[0]), progress=tick, rows=rows)
                writer.commit()
            except BaseException:
                if writer is not None:
                    writer.discard()
                for path in created:
                    path.unlink(missing_ok=True)
                raise
        result = PartResult(
            index=index,
            parts=parts,
            rows=rows,
            classes=classes,
            confidence=confidence,
            windows=stats.windows,
            windows_run=total,
            skipped_windows=stats.skipped_windows,
            seconds={
                "total": time.perf_counter() - started,
                "read": stats.seconds_read,
                "model": stats.seconds_model,
                "finish": stats.seconds_finish,
                "write": stats.seconds_write,
            },
            clipped=source.clipped + (reader.clipped if reader is not source else 0),
            considered=source.considered + (reader.considered if reader is not source else 0),
            started=started_at,
        )
    return result


def assemble(
    parts: Sequence[PartResult], sink: Any, height: int, width: int, num_classes: int
) -> StreamStats:
    """Replay the parts' rows, in order, into `sink` (a `RowSink`, e.g. the `ClassMapWriter`
    of the scene); returns the scene's stats as a single run would count them (windows and
    skipped windows summed over the parts, per-row class counts from the rows themselves,
    timings summed).

    Raises:
        InputError: the parts do not tile rows 0..height of a `width`-wide grid in order, or a
            part file does not hold its rows (a part of another run).
    """
    parts = sorted(parts, key=lambda p: p.index)
    expected = part_rows(height, len(parts)) if parts else []
    if [p.rows for p in parts] != expected or any(p.parts != len(parts) for p in parts):
        raise InputError(
            f"the parts ({[p.rows for p in parts]}) do not split rows 0..{height} into "
            f"{len(parts)} parts"
        )
    stats = StreamStats(pixel_counts=np.zeros((height, num_classes), np.int64))
    for part in parts:
        stats.windows += part.windows
        stats.skipped_windows += part.skipped_windows
        for key in ("read", "model", "finish"):
            setattr(stats, f"seconds_{key}", getattr(stats, f"seconds_{key}") + part.seconds[key])
        a, b = part.rows
        with _open_part(part.classes, b - a, width) as labels_ds, _open_part(
            part.confidence, b - a, width
        ) as conf_ds:  # fmt: skip
            for r0 in range(0, b - a, ASSEMBLE_ROWS):
                n = min(ASSEMBLE_ROWS, b - a - r0)
                window = Window(0, r0, width, n)
                labels = labels_ds.read(1, window=window)
                conf = conf_ds.read(1, window=window) if conf_ds is not None else None
                start = time.perf_counter()
                sink.write_rows(a + r0, labels, conf)
                stats.seconds_write += time.perf_counter() - start
                for c in range(num_classes):
                    stats.pixel_counts[a + r0 : a + r0 + n, c] = (labels == c).sum(axis=1)
                stats.nodata_pixels += int((labels == 255).sum())
    return stats


class _Offset:
    """A `RowSink` that shifts global row numbers to the part's own (its row a becomes 0)."""

    def __init__(self, sink: Any, start: int) -> None:
        self.sink, self.start = sink, start

    def write_rows(self, y0: int, labels: np.ndarray, confidence: np.ndarray | None) -> None:
        self.sink.write_rows(y0 - self.start, labels, confidence)


class _open_part:
    """Open a part raster and check its size (None passes through as None)."""

    def __init__(self, path: Path | None, height: int, width: int) -> None:
        self.path, self.shape = path, (height, width)
        self.dataset = None

    def __enter__(self):
        if self.path is None:
            return None
        try:
            self.dataset = rasterio.open(self.path)
        except rasterio.errors.RasterioIOError:
            raise InputError(f"part file {self.path} is missing or unreadable") from None
        if (self.dataset.height, self.dataset.width) != self.shape:
            self.dataset.close()
            raise InputError(
                f"part file {self.path} holds {self.dataset.height} x {self.dataset.width} px, "
                f"not its rows' {self.shape[0]} x {self.shape[1]}"
            )
        return self.dataset

    def __exit__(self, *exc: object) -> None:
        if self.dataset is not None:
            self.dataset.close()

"""Streaming slide inference: windows in, finished rows of labels out, memory bounded by the tile.

Windows follow the official grid (`slide_windows`) in row-major order. Scores are accumulated in a
band of rows that starts at the first unfinished row; as soon as no remaining window can touch a
row, that row is final: its labels are computed and handed to the sink, and the band moves down.
With uniform weights and no TTA the result equals `model.predict` on the whole array (same windows,
same sums, same division by the window count).

`run(..., rows=(a, b))` computes only the rows a:b of the scene, bit for bit as the whole run
does: it runs exactly the whole run's batches that hold a window touching those rows (the same
windows batched the same way, so the model sees identical inputs), adds their scores in the same
order, and hands on only rows a:b. Rows split over several processes this way reassemble into
the single-process result (`crossearth.predict.split`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from crossearth.inference import normalize, slide_windows, window_scores

BLENDS = ("mean", "cosine", "gaussian")
TTAS = ("none", "flip", "d4")
NODATA = 255


class WindowReader(Protocol):
    height: int
    width: int

    def read(self, y1: int, y2: int, x1: int, x2: int) -> tuple[np.ndarray, np.ndarray]: ...


class RowSink(Protocol):
    def write_rows(self, y0: int, labels: np.ndarray, confidence: np.ndarray | None) -> None: ...


@dataclass
class StreamStats:
    windows: int = 0
    skipped_windows: int = 0
    pixel_counts: np.ndarray | None = None  # [rows, classes] valid pixels per class per row
    nodata_pixels: int = 0
    seconds_read: float = 0.0
    seconds_model: float = 0.0
    seconds_finish: float = 0.0  # labels from the score band (main thread)
    seconds_write: float = (
        0.0  # main thread waiting for the sink (all of the writing without a thread)
    )
    peak_band_rows: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def blend_weights(height: int, width: int, blend: str) -> np.ndarray:
    """Per-pixel weight of a window's scores: uniform (official), cosine or Gaussian (smoother seams)."""
    if blend == "mean":
        return np.ones((height, width), dtype=np.float32)
    if blend == "cosine":
        # Hann window lifted so edge pixels of the image (covered by one window) keep a weight.
        wy = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(height) + 0.5) / height)
        wx = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(width) + 0.5) / width)
        return (np.outer(wy, wx) + 1e-3).astype(np.float32)
    if blend == "gaussian":
        sy, sx = height / 4, width / 4
        wy = np.exp(-0.5 * ((np.arange(height) + 0.5 - height / 2) / sy) ** 2)
        wx = np.exp(-0.5 * ((np.arange(width) + 0.5 - width / 2) / sx) ** 2)
        return np.outer(wy, wx).astype(np.float32)
    raise ValueError(f"unknown blend {blend!r}; use one of {', '.join(BLENDS)}")


def _tta_transforms(tta: str, square: bool) -> list[tuple[Callable, Callable]]:
    """(forward, inverse) pairs on [B, C, H, W] tensors."""
    identity = (lambda t: t, lambda t: t)
    if tta == "none":
        return [identity]
    flips = [
        identity,
        (lambda t: t.flip(-1), lambda t: t.flip(-1)),
        (lambda t: t.flip(-2), lambda t: t.flip(-2)),
    ]
    if tta == "flip":
        return flips
    if tta == "d4":
        out = [*flips, (lambda t: t.flip(-1).flip(-2), lambda t: t.flip(-2).flip(-1))]
        if square:  # rotations keep the window shape only for square windows
            for k in (1, 3):
                out.append(
                    (lambda t, k=k: t.rot90(k, (-2, -1)), lambda t, k=k: t.rot90(-k, (-2, -1)))
                )
                out.append(
                    (
                        lambda t, k=k: t.rot90(k, (-2, -1)).flip(-1),
                        lambda t, k=k: t.flip(-1).rot90(-k, (-2, -1)),
                    )
                )
        return out
    raise ValueError(f"unknown TTA {tta!r}; use one of {', '.join(TTAS)}")


class StreamingSegmenter:
    """Runs a CrossEarth model over a `WindowReader`, writing finished rows to a `RowSink`."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        crop: tuple[int, int] | None = None,
        stride: tuple[int, int] | None = None,
        batch_size: int = 4,
        blend: str = "mean",
        tta: str = "none",
        confidence: bool = False,
        background_io: bool = True,
    ) -> None:
        cfg = model.config.inference
        self.model = model
        self.crop = tuple(crop or cfg.crop_size)
        self.stride = tuple(stride or cfg.stride)
        self.batch_size = batch_size
        self.blend = blend
        self.tta = tta
        self.confidence = confidence
        self.background_io = background_io  # read ahead and write behind on threads
        blend_weights(4, 4, blend)  # validate early
        _tta_transforms(tta, True)

    def windows(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        crop = (min(self.crop[0], height), min(self.crop[1], width))
        return slide_windows(height, width, crop, self.stride)

    def _batches(self, windows: list, rows: tuple[int, int]) -> list[list]:
        """The whole run's batches (row-major, `batch_size` windows each) that hold a window
        touching rows a:b; they are consecutive, since windows are in row order."""
        batches = [
            windows[i : i + self.batch_size] for i in range(0, len(windows), self.batch_size)
        ]
        a, b = rows
        return [batch for batch in batches if any(w[0] < b and w[1] > a for w in batch)]

    def part_windows(self, height: int, width: int, rows: tuple[int, int]) -> int:
        """How many windows `run(..., rows=rows)` runs (its own and its neighbours' overlap)."""
        return sum(len(b) for b in self._batches(self.windows(height, width), rows))

    @torch.inference_mode()
    def run(
        self,
        reader: WindowReader,
        sink: RowSink,
        progress: Callable[[int], None] | None = None,
        on_scores: Callable[[int, np.ndarray], None] | None = None,
        rows: tuple[int, int] | None = None,
    ) -> StreamStats:
        """Segment the reader, or only its rows `rows = (a, b)` (0 <= a < b <= height).

        The sink receives rows a:b only (labels as the whole run gives them); `on_scores(y0,
        rows)`, if given, receives the finished mean scores [C, n, W] of each band of rows (the
        official scores with the default blend). With `rows`, `StreamStats.windows` and
        `skipped_windows` count the batches this part *owns* (those whose first window starts
        in a:b), so that the parts of a split scene add up to the whole run's counts.

        Raises:
            ValueError: `rows` is not a non-empty range inside the image.
        """
        height, width = reader.height, reader.width
        keep = (0, height) if rows is None else (int(rows[0]), int(rows[1]))
        if not 0 <= keep[0] < keep[1] <= height:
            raise ValueError(f"rows {rows} must be a non-empty range inside 0..{height}")
        windows = self.windows(height, width)
        win_h, win_w = windows[0][1] - windows[0][0], windows[0][3] - windows[0][2]
        weights = torch.from_numpy(blend_weights(win_h, win_w, self.blend))
        transforms = _tta_transforms(self.tta, win_h == win_w)
        num_classes = self.model.num_classes
        stats = StreamStats(pixel_counts=np.zeros((height, num_classes), np.int64))
        rows_per_batch = -(-self.batch_size // len({w[2] for w in windows})) + 1
        capacity = min(height, win_h + self.stride[0] * rows_per_batch)
        batches = self._batches(windows, keep)
        owned = [keep[0] <= b[0][0] < keep[1] for b in batches]  # a batch's owner: its first row
        stats.windows = sum(len(b) for b, own in zip(batches, owned, strict=True) if own)
        band = _ScoreBand(num_classes, width, capacity, top=batches[0][0][0])
        # first row any later window touches; rows from b on are not wanted
        next_start = [b[0][0] for b in batches[1:]] + [keep[1]]
        # Finished rows are compressed and written by a writer thread while the model runs on.
        with _RowWriter(sink, background=self.background_io, stats=stats) as rows_out:
            for batch, own, reads, rows_final in zip(
                batches, owned, self._reads(reader, batches, stats), next_start, strict=True
            ):
                band.extend_to(max(w[1] for w in batch))
                todo = [(w, px, ok) for w, (px, ok) in zip(batch, reads, strict=True)]
                for (y1, y2, x1, x2), _, ok in todo:
                    band.valid[y1 - band.top : y2 - band.top, x1:x2] |= ok
                todo = [t for t in todo if t[2].any()]
                stats.skipped_windows += (len(batch) - len(todo)) if own else 0
                if todo:
                    start = time.perf_counter()
                    scores = self._scores(
                        [px for _, px, _ in todo], [ok for _, _, ok in todo], transforms
                    )
                    stats.seconds_model += time.perf_counter() - start
                    for k, ((y1, y2, x1, x2), _, _) in enumerate(todo):
                        band.add(y1, y2, x1, x2, scores[k] * weights, weights)
                rows_final = min(rows_final, keep[1])
                if rows_final > band.top:
                    start = time.perf_counter()
                    y0 = max(band.top, keep[0])
                    labels, conf = band.finish(
                        rows_final, self.confidence, stats, on_scores, keep_from=keep[0]
                    )
                    stats.seconds_finish += time.perf_counter() - start
                    if labels.shape[0]:
                        rows_out.write(y0, labels, conf)
                stats.peak_band_rows = max(stats.peak_band_rows, band.rows)
                if progress is not None:
                    progress(len(batch))
        return stats

    def _reads(self, reader: WindowReader, batches, stats: StreamStats) -> Iterator[list]:
        """Read each batch's windows; with background I/O the next batch is read while the model runs."""

        def read_batch(batch):
            start = time.perf_counter()
            out = [reader.read(*w) for w in batch]
            return out, time.perf_counter() - start

        if not self.background_io:
            for batch in batches:
                out, seconds = read_batch(batch)
                stats.seconds_read += seconds
                yield out
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: Future = pool.submit(read_batch, batches[0])
            for i in range(len(batches)):
                out, seconds = pending.result()
                stats.seconds_read += seconds
                if i + 1 < len(batches):
                    pending = pool.submit(read_batch, batches[i + 1])
                yield out

    def _scores(
        self, pixels: list[np.ndarray], valid: list[np.ndarray], transforms
    ) -> torch.Tensor:
        cfg = self.model.config.inference
        device = self.model.device
        batch = torch.from_numpy(np.stack(pixels)).to(device).permute(0, 3, 1, 2).float()
        x = normalize(batch, cfg.mean, cfg.std)
        mask = torch.from_numpy(np.stack(valid)).to(device)
        if not bool(mask.all()):
            x = x * mask[:, None]  # missing pixels enter as the mean colour (0 after normalising)
        patch = self.model.config.backbone.patch_size
        total = None
        for forward, inverse in transforms:
            out = inverse(window_scores(self.model, forward(x), patch))
            total = out if total is None else total + out
        return (total / len(transforms)).cpu()


class _RowWriter:
    """Hands finished rows to the sink, on one background thread when `background` is set.

    At most one write is in flight: the next waits for it, which keeps rows in order, bounds the
    memory held by pending rows and surfaces a failed write (e.g. a full disk) at the next batch.
    Leaving the context waits for the last write, also when an error is propagating.
    """

    def __init__(self, sink: RowSink, *, background: bool, stats: StreamStats) -> None:
        self.sink, self.stats = sink, stats
        self.pool = ThreadPoolExecutor(max_workers=1) if background else None
        self.pending: Future | None = None

    def write(self, y0: int, labels: np.ndarray, confidence: np.ndarray | None) -> None:
        start = time.perf_counter()
        self._wait()
        if self.pool is None:
            self.sink.write_rows(y0, labels, confidence)
        else:
            self.pending = self.pool.submit(self.sink.write_rows, y0, labels, confidence)
        self.stats.seconds_write += time.perf_counter() - start

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def __enter__(self) -> _RowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            start = time.perf_counter()
            if exc_type is None:
                self._wait()
            elif self.pending is not None:
                self.pending.exception()  # let it finish; the original error wins
            self.stats.seconds_write += time.perf_counter() - start
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


class _ScoreBand:
    """Score sums and weights for the rows [top, top + rows) of the scene.

    The buffers are allocated once (`capacity` rows, grown only if a batch ever needs more) and
    finished rows are dropped by shifting the rest up in place, in chunks, so memory stays at
    about C x capacity x W floats with no transient copies of the whole band.
    """

    CHUNK = 64  # rows per step when finishing or shifting (bounds temporaries)

    def __init__(self, num_classes: int, width: int, capacity: int, top: int = 0) -> None:
        self.num_classes, self.width = num_classes, width
        self.top = top
        self.rows = 0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        scores = torch.zeros((self.num_classes, capacity, self.width))
        weight = torch.zeros((capacity, self.width))
        valid = np.zeros((capacity, self.width), dtype=bool)
        if self.rows:
            scores[:, : self.rows] = self.scores[:, : self.rows]
            weight[: self.rows] = self.weight[: self.rows]
            valid[: self.rows] = self.valid[: self.rows]
        self.scores, self.weight, self.valid = scores, weight, valid

    def extend_to(self, bottom: int) -> None:
        need = bottom - self.top
        if need > self.weight.shape[0]:
            self._allocate(need)
        self.rows = max(self.rows, need)

    def add(
        self, y1: int, y2: int, x1: int, x2: int, scores: torch.Tensor, weights: torch.Tensor
    ) -> None:
        self.scores[:, y1 - self.top : y2 - self.top, x1:x2] += scores
        self.weight[y1 - self.top : y2 - self.top, x1:x2] += weights

    def finish(
        self,
        bottom: int,
        confidence: bool,
        stats: StreamStats,
        on_scores: Callable | None = None,
        keep_from: int = 0,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels (and confidence) of rows [max(top, keep_from), bottom); drops rows [top,
        bottom) from the band (rows above `keep_from` are incomplete in a part run: dropped
        unlooked at)."""
        skip = min(max(keep_from - self.top, 0), bottom - self.top)
        n = bottom - self.top - skip
        labels = np.empty((n, self.width), dtype=np.uint8)
        conf = np.empty((n, self.width), dtype=np.uint8) if confidence else None
        for r0 in range(0, n, self.CHUNK):
            r1 = min(r0 + self.CHUNK, n)
            r0, r1, out0, out1 = r0 + skip, r1 + skip, r0, r1  # band rows, output rows
            weight = self.weight[r0:r1]
            covered = weight > 0
            mean = self.scores[:, r0:r1] / torch.where(covered, weight, torch.ones_like(weight))
            if on_scores is not None:
                on_scores(self.top + r0, mean.numpy())
            chunk = mean.argmax(0).numpy().astype(np.uint8)
            ok = self.valid[r0:r1] & covered.numpy()
            chunk[~ok] = NODATA
            labels[out0:out1] = chunk
            if conf is not None:
                total = mean.sum(0)
                share = mean.max(0).values / torch.where(total > 0, total, torch.ones_like(total))
                conf[out0:out1] = np.where(ok, np.round(share.numpy() * 100), NODATA).astype(
                    np.uint8
                )
            stats.nodata_pixels += int((~ok).sum())
        rows = np.arange(bottom - n, bottom)
        for c in range(self.num_classes):
            stats.pixel_counts[rows, c] = (labels == c).sum(axis=1)
        self._drop(bottom - self.top)
        self.top = bottom
        return labels, conf

    def _drop(self, n: int) -> None:
        """Shift rows [n, rows) to the top; destination rows lie above their sources, so copying
        chunks of at most n rows in ascending order never overwrites rows not yet moved."""
        rest = self.rows - n
        step = max(1, min(self.CHUNK, n))
        for r0 in range(0, rest, step):
            r1 = min(r0 + step, rest)
            self.scores[:, r0:r1] = self.scores[:, n + r0 : n + r1]
            self.weight[r0:r1] = self.weight[n + r0 : n + r1]
            self.valid[r0:r1] = self.valid[n + r0 : n + r1]
        self.scores[:, rest : self.rows] = 0
        self.weight[rest : self.rows] = 0
        self.valid[rest : self.rows] = False
        self.rows = rest

"""One output chunk of `crossearth.segment`: the task every chunk of the graph runs.

It runs the chunk's `ChunkPlan` (the whole run's batches that touch it) with the streaming
segmenter's own window scores, reads windows by `RasterSource.read` (bands, nodata, scale and
offset, scaling: as `predict` reads a file), and adds each window's weighted scores in window
order, then divides and takes the argmax as `crossearth.predict.stream` does: labels equal the whole
run's, bit for bit, on the same device, precision and thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from crossearth.dataarray.models import LoadSpec, cached_model
from crossearth.dataarray.plan import ChunkPlan
from crossearth.dataarray.source import ArrayDataset, ArrayMeta
from crossearth.geo.raster import RasterSource
from crossearth.geo.scaling import NodataOverride, Scaling, ValueTransform
from crossearth.predict.stream import NODATA, StreamingSegmenter, _tta_transforms, blend_weights


@dataclass(frozen=True)
class Settings:
    """Everything a chunk task needs besides its plan and pixels (pickled into every task)."""

    fingerprint: str
    spec: LoadSpec | None  # how to load the model; None: it travels as a graph key
    meta: ArrayMeta
    bands: tuple[int, ...]  # 1-based, in model input order
    nodata: NodataOverride
    values: ValueTransform
    crop: tuple[int, int]
    stride: tuple[int, int]
    batch_size: int
    blend: str
    tta: str
    scores: bool


def segment_chunk(
    settings: Settings,
    plan: ChunkPlan,
    scaling: Scaling,
    model: Any,
    *pieces: np.ndarray,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Labels [h, w] uint8 (255: nodata) of the chunk, and with `settings.scores` also the mean
    scores [C, h, w] float32 (NaN: nodata). `pieces`: the pixels [count, h, w] of each of
    `plan.reads`; `model`: the model object, or None to take it from the cache / load it."""
    net = cached_model(settings.fingerprint, settings.spec, model)
    dataset = ArrayDataset(settings.meta, list(zip(plan.reads, pieces, strict=True)))
    source = RasterSource(dataset, settings.bands, scaling, nodata=settings.nodata,
                          values=settings.values)  # fmt: skip
    segmenter = StreamingSegmenter(
        net, crop=settings.crop, stride=settings.stride, batch_size=settings.batch_size,
        blend=settings.blend, tta=settings.tta, background_io=False,
    )  # fmt: skip
    with torch.inference_mode():
        return _run(segmenter, source, plan, settings.scores)


def _run(
    segmenter: StreamingSegmenter, source: RasterSource, plan: ChunkPlan, want_scores: bool
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    y0, y1, x0, x1 = plan.y0, plan.y1, plan.x0, plan.x1
    first = plan.batches[0][0]
    win_h, win_w = first[1] - first[0], first[3] - first[2]
    weights = torch.from_numpy(blend_weights(win_h, win_w, segmenter.blend))
    transforms = _tta_transforms(segmenter.tta, win_h == win_w)
    num_classes = segmenter.model.num_classes
    total = torch.zeros((num_classes, y1 - y0, x1 - x0))
    weight = torch.zeros((y1 - y0, x1 - x0))
    valid = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for batch in plan.batches:
        reads = [source.read(*w) for w in batch]
        for w, (_, ok) in zip(batch, reads, strict=True):
            cut = _overlap(w, plan)
            if cut is not None:
                inside, window = cut
                valid[inside] |= ok[window]
        todo = [(w, px, ok) for w, (px, ok) in zip(batch, reads, strict=True) if ok.any()]
        if not todo:
            continue
        scores = segmenter._scores([px for _, px, _ in todo], [ok for _, _, ok in todo],
                                   transforms)  # fmt: skip
        for k, (w, _, _) in enumerate(todo):
            cut = _overlap(w, plan)
            if cut is not None:  # the whole window's weighted scores, as the stream adds them
                inside, window = cut
                total[(slice(None), *inside)] += (scores[k] * weights)[(slice(None), *window)]
                weight[inside] += weights[window]
    covered = weight > 0
    mean = total / torch.where(covered, weight, torch.ones_like(weight))
    labels = mean.argmax(0).numpy().astype(np.uint8)
    ok = valid & covered.numpy()
    labels[~ok] = NODATA
    if not want_scores:
        return labels
    out = mean.numpy()
    out[:, ~ok] = np.nan
    return labels, out


def _overlap(window: tuple[int, int, int, int], plan: ChunkPlan) -> tuple[tuple, tuple] | None:
    """(the chunk's slices, the window's slices) of their common pixels, or None."""
    wy1, wy2, wx1, wx2 = window
    a, b = max(wy1, plan.y0), min(wy2, plan.y1)
    c, d = max(wx1, plan.x0), min(wx2, plan.x1)
    if a >= b or c >= d:
        return None
    return (
        (slice(a - plan.y0, b - plan.y0), slice(c - plan.x0, d - plan.x0)),
        (slice(a - wy1, b - wy1), slice(c - wx1, d - wx1)),
    )

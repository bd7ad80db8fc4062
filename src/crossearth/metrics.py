"""Segmentation metrics from accumulated confusion matrices (pooled pixels, no per-image averaging).

This is the official protocol (mmseg `IoUMetric`, CrossEarth `DGIoUMetric`): per-class intersection
and union are summed over a whole dataset, every per-class value that mmseg leaves undefined (0/0,
NaN) is left out of its mean (mmseg's `np.nanmean`), and percentages are reported:

- IoU = TP / (TP + FP + FN): undefined for a class neither in the labels nor predicted.
- Acc (= recall) = TP / (TP + FN): undefined for a class absent from the labels.
- precision = TP / (TP + FP): undefined for a class never predicted.
- F1 = 2 P R / (P + R) from the pooled precision P and recall R (mmseg's `mFscore`, beta 1):
  undefined whenever TP = 0, i.e. for a class absent from the labels, never predicted, or never
  predicted where it is (P = R = 0 gives 0/0). So a class the model misses entirely counts as 0 in
  mIoU but is left out of mF1, exactly as in mmseg.
- OA (mmseg's aAcc) = sum TP / labelled pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_INDEX = 255


class ConfusionMatrix:
    """`matrix[t, p]` counts pixels of true class t predicted as p; `ignore_index` is skipped."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and label {target.shape} differ in shape")
        keep = target != self.ignore_index
        t = target[keep].astype(np.int64)
        p = pred[keep].astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= self.num_classes):
            bad = sorted(set(np.unique(t[(t < 0) | (t >= self.num_classes)]).tolist()))
            raise ValueError(
                f"label values {bad} are outside 0..{self.num_classes - 1} (and not {self.ignore_index})"
            )
        if p.size and (p.min() < 0 or p.max() >= self.num_classes):
            raise ValueError("predicted class ids outside the class range")
        self.matrix += np.bincount(t * self.num_classes + p, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def merge(self, other: ConfusionMatrix) -> None:
        self.matrix += other.matrix


@dataclass
class Scores:
    """Per-class [C] and mean metrics, in percent; NaN where mmseg's value is undefined (module
    docstring), and the means leave those classes out (NaN when nothing is left to average)."""

    iou: np.ndarray
    f1: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    accuracy: np.ndarray  # per-class recall, mmseg's "Acc"
    miou: float
    mf1: float
    macc: float
    oa: float  # overall pixel accuracy (mmseg's aAcc)
    pixels: int

    def as_dict(self, class_names: list[str] | tuple[str, ...]) -> dict:
        def clean(v: float) -> float | None:
            return None if np.isnan(v) else round(float(v), 4)

        return {
            "mIoU": clean(self.miou),
            "mF1": clean(self.mf1),
            "mAcc": clean(self.macc),
            "OA": clean(self.oa),
            "pixels": self.pixels,
            "per_class": {
                name: {
                    "IoU": clean(self.iou[i]),
                    "F1": clean(self.f1[i]),
                    "precision": clean(self.precision[i]),
                    "recall": clean(self.recall[i]),
                }
                for i, name in enumerate(class_names)
            },
        }


def scores(matrix: np.ndarray) -> Scores:
    """Scores of a pooled confusion matrix `matrix[t, p]` (C x C pixel counts, int64).

    Every value follows mmseg's `IoUMetric.total_area_to_metrics` (module docstring); a matrix
    without a labelled pixel gives NaN everywhere and `pixels` 0 (nothing to score).
    """
    m = matrix.astype(np.float64)
    tp = np.diag(m)
    gt = m.sum(1)  # label area per class
    pred = m.sum(0)  # predicted area per class
    union = gt + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        precision = np.where(pred > 0, tp / pred, np.nan)
        recall = np.where(gt > 0, tp / gt, np.nan)
        # 2PR/(P+R) = 2TP/(GT+PRED) where TP > 0; mmseg's 0/0 (NaN) everywhere else
        f1 = np.where(tp > 0, 2 * tp / (gt + pred), np.nan)
    total = m.sum()
    return Scores(
        iou=iou * 100,
        f1=f1 * 100,
        precision=precision * 100,
        recall=recall * 100,
        accuracy=recall * 100,
        miou=_nanmean(iou) * 100,
        mf1=_nanmean(f1) * 100,
        macc=_nanmean(recall) * 100,
        oa=(tp.sum() / total * 100) if total else float("nan"),
        pixels=int(total),
    )


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")

"""Our pooled confusion-matrix metrics equal torchmetrics' on the same data (ignore index included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossearth.metrics import ConfusionMatrix, scores

tm = pytest.importorskip(
    "torchmetrics.classification",
    reason="the peer metrics come from torchmetrics: pip install 'crossearth[train]'",
)


def random_batch(seed: int, num_classes: int, absent: int | None = None):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, (4, 37, 53))
    pred = np.where(
        rng.random(target.shape) < 0.6, target, rng.integers(0, num_classes, target.shape)
    )
    target[rng.random(target.shape) < 0.1] = 255  # ignored pixels
    if absent is not None:
        target[target == absent] = 0
        pred[pred == absent] = 1
    return pred.astype(np.uint8), target.astype(np.uint8)


@pytest.mark.parametrize("num_classes,seed", [(2, 0), (6, 1), (7, 2)])
def test_matches_torchmetrics(num_classes, seed):
    cm = ConfusionMatrix(num_classes)
    preds, targets = [], []
    for k in range(3):  # accumulate over several "images"
        p, t = random_batch(seed * 10 + k, num_classes)
        cm.update(p, t)
        preds.append(torch.from_numpy(p.astype(np.int64)))
        targets.append(torch.from_numpy(t.astype(np.int64)))
    p, t = torch.cat(preds), torch.cat(targets)
    ours = scores(cm.matrix)
    kw = dict(num_classes=num_classes, ignore_index=255)
    iou = tm.MulticlassJaccardIndex(average="none", **kw)(p, t).numpy() * 100
    f1 = tm.MulticlassF1Score(average="none", **kw)(p, t).numpy() * 100
    recall = tm.MulticlassRecall(average="none", **kw)(p, t).numpy() * 100
    oa = tm.MulticlassAccuracy(average="micro", **kw)(p, t).item() * 100
    np.testing.assert_allclose(ours.iou, iou, rtol=1e-5)
    np.testing.assert_allclose(ours.f1, f1, rtol=1e-5)
    np.testing.assert_allclose(ours.accuracy, recall, rtol=1e-5)
    assert ours.miou == pytest.approx(iou.mean(), rel=1e-6)
    assert ours.mf1 == pytest.approx(f1.mean(), rel=1e-6)
    assert ours.oa == pytest.approx(oa, rel=1e-6)
    assert ours.pixels == int((t != 255).sum())


def test_absent_class_is_left_out_of_the_mean():
    p, t = random_batch(5, 6, absent=3)
    cm = ConfusionMatrix(6)
    cm.update(p, t)
    s = scores(cm.matrix)
    assert np.isnan(s.iou[3])
    assert s.miou == pytest.approx(np.nanmean(np.delete(s.iou, 3)))


def test_hand_computed_binary_case():
    target = np.array([[0, 0, 1, 1], [0, 1, 1, 255]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [0, 0, 1, 1]], np.uint8)
    cm = ConfusionMatrix(2)
    cm.update(pred, target)
    s = scores(cm.matrix)
    # class 1: tp 3, fp 1, fn 1 -> IoU 3/5, F1 6/8; class 0: tp 2, fp 1, fn 1 -> IoU 2/4
    assert s.iou[1] == pytest.approx(60.0)
    assert s.f1[1] == pytest.approx(75.0)
    assert s.iou[0] == pytest.approx(50.0)
    assert s.oa == pytest.approx(500 / 7)


def test_out_of_range_labels_are_an_error():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"\[7\]"):
        cm.update(np.zeros((2, 2), np.uint8), np.array([[0, 7], [1, 2]], np.uint8))


def mmseg_reference(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict:
    """mmseg's `IoUMetric` (intersect_and_union + total_area_to_metrics, 'mIoU' and 'mFscore'),
    written out with torch's division, whose 0/0 is NaN, and `np.nanmean` for the means."""
    keep = target != 255
    p = torch.from_numpy(pred[keep].astype(np.int64)).float()
    t = torch.from_numpy(target[keep].astype(np.int64)).float()
    bins = dict(bins=num_classes, min=0, max=num_classes - 1)
    intersect = torch.histc(p[p == t], **bins)
    area_pred, area_label = torch.histc(p, **bins), torch.histc(t, **bins)
    union = area_pred + area_label - intersect
    precision, recall = intersect / area_pred, intersect / area_label
    fscore = torch.tensor(
        [2 * (pr * rc) / (pr + rc) for pr, rc in zip(precision, recall, strict=True)]
    )
    per_class = {"IoU": intersect / union, "Acc": intersect / area_label, "Fscore": fscore,
                 "Precision": precision, "Recall": recall}  # fmt: skip
    out = {k: v.numpy() * 100 for k, v in per_class.items()}
    means = {f"m{k}": float(np.nanmean(v)) for k, v in out.items()}
    return out | means | {"aAcc": float(intersect.sum() / area_label.sum() * 100)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_means_follow_mmseg_for_absent_never_predicted_and_missed_classes(seed):
    # 6 classes: 0-2 ordinary, 3 never in the labels (but predicted), 4 in the labels but never
    # predicted, 5 absent from both; and class 2 predicted only where it is not (TP 0).
    rng = np.random.default_rng(seed)
    target = rng.choice([0, 1, 2, 4], size=(3, 41, 47)).astype(np.uint8)
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.choice([0, 1, 3], target.shape))
    pred[pred == 4] = rng.choice([0, 1], size=int((pred == 4).sum()))
    pred[pred == 2] = 0
    pred[(target != 2) & (rng.random(target.shape) < 0.05)] = 2
    target[rng.random(target.shape) < 0.1] = 255
    pred = pred.astype(np.uint8)
    cm = ConfusionMatrix(6)
    for k in range(3):
        cm.update(pred[k], target[k])
    ours, ref = scores(cm.matrix), mmseg_reference(pred, target, 6)
    for mine, theirs in ((ours.iou, "IoU"), (ours.f1, "Fscore"), (ours.accuracy, "Acc"),
                         (ours.precision, "Precision"), (ours.recall, "Recall")):  # fmt: skip
        np.testing.assert_allclose(mine, ref[theirs], rtol=1e-5, equal_nan=True)
    assert np.isnan(ours.f1[[2, 3, 4, 5]]).all() and ours.iou[4] == 0 and ours.iou[2] == 0
    assert ours.miou == pytest.approx(ref["mIoU"], rel=1e-6)
    assert ours.mf1 == pytest.approx(ref["mFscore"], rel=1e-6)
    assert ours.macc == pytest.approx(ref["mAcc"], rel=1e-6)
    assert ours.oa == pytest.approx(ref["aAcc"], rel=1e-6)


def test_nothing_labelled_gives_no_score():
    cm = ConfusionMatrix(3)
    cm.update(np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8))
    s = scores(cm.matrix)
    assert s.pixels == 0 and np.isnan([s.miou, s.mf1, s.macc, s.oa]).all()
    assert s.as_dict(["a", "b", "c"])["mIoU"] is None

"""Mask2Former criterion for semantic segmentation (training only).

Reimplemented from the description of the standard Mask2Former loss as configured by CrossEarth
(spec §1.6 and the ``decode_head`` ``loss_*`` / ``train_cfg`` entries of the reference config):

* the semantic label map becomes one binary mask per class present (ignore excluded);
* every stage (deep supervision) is matched to the targets independently with a Hungarian
  matcher whose cost is ``2·class + 5·pairwise sigmoid BCE + 5·pairwise naive dice``, evaluated
  on ``num_points`` uniformly random points shared by predictions and targets;
* losses per stage: softmax CE over ``C + 1`` classes with class weights ``[1]*C + [0.1]``,
  sigmoid BCE and naive dice on importance-sampled points of the matched masks.

Normalisations (as mmdet's ``Mask2FormerHead``):

* ``loss_cls = Σ_q w[t_q]·CE_q / Σ_q w[t_q]`` over all queries of all images of the batch, where
  ``t_q`` is the matched class or ``C`` (no object) and ``w = [1]*C + [no_object_weight]``. The
  denominator is averaged across processes like the mask count (mmdet does not average it): with
  DDP's gradient averaging, a run split over W devices then computes exactly the loss of one
  process with the W-times larger batch.
* ``loss_mask = Σ_{m,p} BCE_{m,p} / (M·P)`` and ``loss_dice = Σ_m dice_m / M`` where ``M`` is
  the number of matched masks over the whole batch (averaged across processes when
  ``torch.distributed`` is initialised, then clamped to at least 1) and ``P = num_points``.
* Dice is the "naive" variant (linear denominator, mmdet's default ``naive_dice=True`` for both
  ``DiceCost`` and the configured ``DiceLoss``): ``1 − (2·Σ p·t + 1) / (Σ p + Σ t + 1)``, with
  ``p = sigmoid(logit)``.

The returned per-stage terms are *unweighted*; ``loss`` is
``Σ_stages (class_weight·cls + mask_weight·bce + dice_weight·dice)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

__all__ = [
    "HungarianMatcher",
    "Mask2FormerLoss",
    "dice_loss",
    "pairwise_dice_cost",
    "pairwise_sigmoid_bce_cost",
    "point_sample",
    "sample_uncertain_points",
    "semantic_to_instances",
    "sigmoid_bce_loss",
]


def semantic_to_instances(
    label: Tensor, num_classes: int, ignore_index: int = 255
) -> tuple[Tensor, Tensor]:
    """Split a semantic label map ``[H, W]`` into ``(classes [K], masks [K, H, W] float)``.

    One binary mask per class present, classes in ascending order; ``ignore_index`` pixels
    belong to no mask. ``K`` is 0 (masks ``[0, H, W]``) when every pixel is ignored. Any other
    value outside ``[0, num_classes)`` is an error.
    """
    if label.ndim != 2:
        raise ValueError(f"label must be [H, W], got shape {tuple(label.shape)}")
    label = label.long()
    classes = torch.unique(label)
    classes = classes[classes != ignore_index]
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
        bad = classes[(classes < 0) | (classes >= num_classes)].tolist()
        raise ValueError(f"label values {bad} are outside [0, {num_classes}) and not ignore_index")
    masks = (label.unsqueeze(0) == classes.view(-1, 1, 1)).float()
    return classes, masks


def point_sample(input: Tensor, coords: Tensor) -> Tensor:
    """Bilinearly sample ``input [B, C, H, W]`` at ``coords [B, P, 2]`` → ``[B, C, P]``.

    ``coords`` are ``(x, y)`` in ``[0, 1]`` over the whole image extent (``align_corners=False``:
    ``(0.5/W, 0.5/H)`` is the centre of the top-left pixel). Zero padding, as in Mask2Former: a
    point within half a pixel of the border blends with 0, so sampling low-resolution logits at
    high-resolution pixel centres differs from ``F.interpolate`` at the border.
    """
    grid = (2.0 * coords - 1.0).unsqueeze(2).to(input.dtype)  # [B, P, 1, 2]
    return F.grid_sample(input, grid, mode="bilinear", align_corners=False).squeeze(3)


def _rand(shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None):
    """Uniform ``[0, 1)`` numbers drawn on the generator's device, then moved to ``device``."""
    if generator is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


@torch.no_grad()
def sample_uncertain_points(
    mask_logits: Tensor,
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance-sampled point coordinates ``[M, num_points, 2]`` for masks ``[M, h, w]``.

    Draws ``int(num_points·oversample_ratio)`` uniform candidates per mask, keeps the
    ``int(importance_sample_ratio·num_points)`` most uncertain ones (uncertainty = −|logit| of the
    bilinearly sampled logit) and fills the rest with fresh uniform points.
    """
    m = mask_logits.shape[0]
    device = mask_logits.device
    num_sampled = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    if not 0 <= num_uncertain <= num_sampled:
        raise ValueError(
            "need 0 <= importance_sample_ratio and importance_sample_ratio <= oversample_ratio"
        )
    candidates = _rand((m, num_sampled, 2), device, generator)
    logits = point_sample(mask_logits.unsqueeze(1).float(), candidates)[:, 0]  # [M, S]
    idx = torch.topk(-logits.abs(), k=num_uncertain, dim=1).indices
    chosen = torch.gather(candidates, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    if num_random > 0:
        chosen = torch.cat([chosen, _rand((m, num_random, 2), device, generator)], dim=1)
    return chosen


def pairwise_sigmoid_bce_cost(pred_logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over points of BCE-with-logits for every (prediction, target) pair.

    ``pred_logits [N, P]``, ``targets [K, P]`` in {0, 1} → ``[N, K]``.
    """
    p = pred_logits.shape[1]
    pos = F.softplus(-pred_logits)  # BCE-with-logits against target 1
    neg = F.softplus(pred_logits)  # ... against target 0
    return (pos @ targets.T + neg @ (1.0 - targets).T) / p


def pairwise_dice_cost(pred_logits: Tensor, targets: Tensor, eps: float = 1.0) -> Tensor:
    """Naive dice cost ``1 − (2·Σ p·t + eps)/(Σ p + Σ t + eps)`` with ``p = sigmoid``; ``[N, K]``."""
    prob = pred_logits.sigmoid()
    numerator = 2.0 * prob @ targets.T
    denominator = prob.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1.0 - (numerator + eps) / (denominator + eps)


def sigmoid_bce_loss(pred_logits: Tensor, targets: Tensor, avg_factor: float) -> Tensor:
    """Sum of point-wise BCE-with-logits over ``[M, P]`` divided by ``avg_factor·P``."""
    total = F.binary_cross_entropy_with_logits(pred_logits, targets, reduction="sum")
    return total / (avg_factor * pred_logits.shape[1])


def dice_loss(pred_logits: Tensor, targets: Tensor, avg_factor: float, eps: float = 1.0) -> Tensor:
    """Sum over masks ``[M, P]`` of the naive dice loss (sigmoid activation), divided by ``avg_factor``."""
    prob = pred_logits.sigmoid()
    numerator = 2.0 * (prob * targets).sum(-1) + eps
    denominator = prob.sum(-1) + targets.sum(-1) + eps
    return (1.0 - numerator / denominator).sum() / avg_factor


class HungarianMatcher:
    """One-to-one query ↔ target matching minimising the Mask2Former cost.

    ``cost = cost_class·(−softmax(class_logits)[target class])
    + cost_mask·(pairwise sigmoid BCE, mean over points)
    + cost_dice·(pairwise naive dice, eps 1)``, the mask terms evaluated on ``num_points``
    uniformly random points shared by all predictions and targets of one image.
    """

    def __init__(
        self,
        cost_class: float = 2.0,
        cost_mask: float = 5.0,
        cost_dice: float = 5.0,
        num_points: int = 12544,
    ) -> None:
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def cost_matrix(
        self,
        class_logits: Tensor,
        mask_logits: Tensor,
        tgt_classes: Tensor,
        tgt_masks: Tensor,
        point_coords: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Cost ``[Q, K]`` for one image.

        ``class_logits [Q, C+1]``, ``mask_logits [Q, h, w]``, ``tgt_classes [K]``,
        ``tgt_masks [K, H, W]``; ``point_coords [P, 2]`` overrides the random points.
        """
        with torch.autocast(mask_logits.device.type, enabled=False):  # fp32 costs under AMP
            return self._cost_matrix(
                class_logits, mask_logits, tgt_classes, tgt_masks, point_coords, generator
            )

    def _cost_matrix(
        self, class_logits, mask_logits, tgt_classes, tgt_masks, point_coords, generator
    ):
        if point_coords is None:
            point_coords = _rand((self.num_points, 2), mask_logits.device, generator)
        coords = point_coords.to(mask_logits.device, torch.float32).unsqueeze(0)
        q, k = mask_logits.shape[0], tgt_masks.shape[0]
        pred = point_sample(mask_logits.unsqueeze(1).float(), coords.expand(q, -1, -1))[:, 0]
        tgt = point_sample(tgt_masks.unsqueeze(1).float(), coords.expand(k, -1, -1))[:, 0]
        prob = class_logits.float().softmax(-1)
        cost = -self.cost_class * prob[:, tgt_classes]
        cost = cost + self.cost_mask * pairwise_sigmoid_bce_cost(pred, tgt)
        return cost + self.cost_dice * pairwise_dice_cost(pred, tgt, eps=1.0)

    @torch.no_grad()
    def match_single(
        self,
        class_logits: Tensor,
        mask_logits: Tensor,
        tgt_classes: Tensor,
        tgt_masks: Tensor,
        point_coords: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(query indices, target indices)`` (int64, on the logits' device) for one image."""
        device = class_logits.device
        if tgt_classes.numel() == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty.clone()
        cost = self.cost_matrix(
            class_logits, mask_logits, tgt_classes, tgt_masks, point_coords, generator
        )
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        return (
            torch.as_tensor(np.asarray(rows), dtype=torch.long, device=device),
            torch.as_tensor(np.asarray(cols), dtype=torch.long, device=device),
        )

    @torch.no_grad()
    def __call__(
        self,
        class_logits: Tensor,
        mask_logits: Tensor,
        targets: Sequence[tuple[Tensor, Tensor]],
        generator: torch.Generator | None = None,
        *,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        """Match a batch: ``class_logits [B, Q, C+1]``, ``mask_logits [B, Q, h, w]``,
        ``targets`` = per image ``(classes [K], masks [K, H, W])``.

        Random points come from ``generators[i]`` for image ``i`` when given, otherwise every
        image draws from ``generator`` in turn (global RNG when both are ``None``)."""
        gens = _per_image(generator, generators, len(targets))
        return [
            self.match_single(class_logits[i], mask_logits[i], cls, masks, generator=gens[i])
            for i, (cls, masks) in enumerate(targets)
        ]


def _per_image(
    generator: torch.Generator | None,
    generators: Sequence[torch.Generator | None] | None,
    batch: int,
) -> list[torch.Generator | None]:
    if generators is None:
        return [generator] * batch
    if generator is not None:
        raise ValueError("pass either generator or generators, not both")
    if len(generators) != batch:
        raise ValueError(f"{len(generators)} generators for a batch of {batch}")
    return list(generators)


def _num_masks_across_processes(num: int, device: torch.device) -> float:
    """Mean over processes of the number of matched masks (mmdet's ``reduce_mean``), ≥ 1."""
    return _mean_across_processes(torch.tensor(float(num), device=device), floor=1.0)


def _mean_across_processes(value: Tensor, floor: float) -> float:
    """Mean of a scalar over the processes of a distributed run (itself otherwise), ≥ floor."""
    value = value.detach().float().clone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(value)
        value = value / torch.distributed.get_world_size()
    return max(float(value), floor)


class Mask2FormerLoss(nn.Module):
    """Deep-supervised Mask2Former criterion for semantic segmentation.

    ``forward(class_logits_per_stage, mask_logits_per_stage, labels)`` returns a dict with the
    unweighted terms ``s{i}.loss_cls``, ``s{i}.loss_mask`` and ``s{i}.loss_dice`` for every stage
    ``i`` and ``loss`` = Σ_i (class_weight·cls + mask_weight·mask + dice_weight·dice).
    """

    def __init__(
        self,
        num_classes: int,
        class_weight: float = 2.0,
        mask_weight: float = 5.0,
        dice_weight: float = 5.0,
        no_object_weight: float = 0.1,
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
        ignore_index: int = 255,
        matcher: HungarianMatcher | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_weight = class_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.ignore_index = ignore_index
        self.matcher = matcher or HungarianMatcher(
            class_weight, mask_weight, dice_weight, num_points=num_points
        )
        weights = torch.ones(num_classes + 1)
        weights[num_classes] = no_object_weight
        self.register_buffer("ce_class_weight", weights, persistent=False)

    def sample_points(self, mask_logits: Tensor, generator: torch.Generator | None) -> Tensor:
        """Point coordinates ``[M, P, 2]`` at which the matched masks ``[M, h, w]`` are scored."""
        return sample_uncertain_points(
            mask_logits,
            self.num_points,
            self.oversample_ratio,
            self.importance_sample_ratio,
            generator,
        )

    def targets_from_labels(self, labels: Tensor) -> list[tuple[Tensor, Tensor]]:
        return [semantic_to_instances(lab, self.num_classes, self.ignore_index) for lab in labels]

    def stage_losses(
        self,
        class_logits: Tensor,
        mask_logits: Tensor,
        targets: Sequence[tuple[Tensor, Tensor]],
        generator: torch.Generator | None = None,
        *,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Unweighted ``(loss_cls, loss_mask, loss_dice)`` of one stage.

        Image ``i`` draws its matching and loss points from ``generators[i]`` when given (so its
        terms do not depend on the rest of the batch), else from the shared ``generator``."""
        b, q, c1 = class_logits.shape
        if c1 != self.num_classes + 1:
            raise ValueError(f"class_logits has {c1} classes, expected {self.num_classes + 1}")
        gens = _per_image(generator, generators, b)
        matches = self.matcher(class_logits, mask_logits, targets, generators=gens)

        cls_target = torch.full(
            (b, q), self.num_classes, dtype=torch.long, device=class_logits.device
        )
        pred_masks, tgt_masks = [], []
        for i, ((q_idx, t_idx), (classes, masks)) in enumerate(zip(matches, targets, strict=True)):
            cls_target[i, q_idx] = classes.to(class_logits.device)[t_idx]
            pred_masks.append(mask_logits[i, q_idx])
            tgt_masks.append(masks[t_idx])

        weight = self.ce_class_weight.to(class_logits.device)
        ce = F.cross_entropy(
            class_logits.reshape(b * q, c1).float(),
            cls_target.reshape(-1),
            weight=weight,
            reduction="sum",
        )
        loss_cls = ce / _mean_across_processes(weight[cls_target].sum().detach(), floor=1e-6)

        num_matched = sum(int(t.shape[0]) for t in tgt_masks)
        # Every process must take part in the reduction, even one without any target.
        avg = _num_masks_across_processes(num_matched, class_logits.device)
        if num_matched == 0:
            zero = mask_logits[:0].sum().float()  # zero, but still connected to the graph
            return loss_cls, zero, zero.clone()
        preds = torch.cat(pred_masks).float()  # [M, h, w]
        tgts = torch.cat(tgt_masks).float().to(preds.device)  # [M, H, W]
        detached = preds.detach()
        coords, start = [], 0
        for gen, masks in zip(gens, pred_masks, strict=True):  # points per image, own generator
            n = masks.shape[0]
            if n:
                coords.append(self.sample_points(detached[start : start + n], gen))
            start += n
        coords = torch.cat(coords)
        with torch.no_grad():
            tgt_points = point_sample(tgts.unsqueeze(1), coords)[:, 0]
        pred_points = point_sample(preds.unsqueeze(1), coords)[:, 0]
        loss_mask = sigmoid_bce_loss(pred_points, tgt_points, avg)
        loss_dice = dice_loss(pred_points, tgt_points, avg, eps=1.0)
        return loss_cls, loss_mask, loss_dice

    def forward(
        self,
        class_logits_per_stage: Sequence[Tensor],
        mask_logits_per_stage: Sequence[Tensor],
        labels: Tensor,
        generator: torch.Generator | None = None,
        *,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> dict[str, Tensor]:
        """Losses for ``labels [B, H, W]`` (``ignore_index`` pixels excluded).

        Randomness: ``generators`` (one per image, any device) or one shared ``generator``;
        both ``None`` uses the global RNG. Each generator is consumed stage after stage."""
        if len(class_logits_per_stage) != len(mask_logits_per_stage):
            raise ValueError("class and mask logits must have the same number of stages")
        if labels.ndim != 3:
            raise ValueError(f"labels must be [B, H, W], got shape {tuple(labels.shape)}")
        targets = self.targets_from_labels(labels)
        out: dict[str, Tensor] = {}
        total = None
        for s, (cls_logits, msk_logits) in enumerate(
            zip(class_logits_per_stage, mask_logits_per_stage, strict=True)
        ):
            with torch.autocast(labels.device.type, enabled=False):  # losses in fp32 under AMP
                loss_cls, loss_mask, loss_dice = self.stage_losses(
                    cls_logits, msk_logits, targets, generator, generators=generators
                )
            out[f"s{s}.loss_cls"] = loss_cls
            out[f"s{s}.loss_mask"] = loss_mask
            out[f"s{s}.loss_dice"] = loss_dice
            stage = (
                self.class_weight * loss_cls
                + self.mask_weight * loss_mask
                + self.dice_weight * loss_dice
            )
            total = stage if total is None else total + stage
        if total is None:
            raise ValueError("no stages given")
        out["loss"] = total
        return out

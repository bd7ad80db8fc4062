"""Mask2Former criterion: hand-computed values on tiny cases."""

import itertools
import math

import pytest
import torch

from crossearth.train.losses import (
    HungarianMatcher,
    Mask2FormerLoss,
    point_sample,
    sample_uncertain_points,
    semantic_to_instances,
)


def pixel_centres(h: int, w: int) -> torch.Tensor:
    """All pixel centres of an h x w grid as (x, y) in [0, 1], row-major, shape [h*w, 2]."""
    ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)


class DenseLoss(Mask2FormerLoss):
    """Scores the masks at every pixel centre instead of importance-sampled points."""

    def sample_points(self, mask_logits, generator):
        h, w = mask_logits.shape[-2:]
        return pixel_centres(h, w).expand(mask_logits.shape[0], -1, -1)


def dense_matcher(num_points: int = 16) -> HungarianMatcher:
    return HungarianMatcher(num_points=num_points)


def bce(x: float, t: float) -> float:
    s = 1 / (1 + math.exp(-x))
    return -(t * math.log(s) + (1 - t) * math.log(1 - s))


def ref_mask_terms(logits: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    """Mean BCE and naive dice (eps 1) of one mask, computed densely in plain Python."""
    xs, ts = logits.flatten().tolist(), target.flatten().tolist()
    mean_bce = sum(bce(x, t) for x, t in zip(xs, ts, strict=True)) / len(xs)
    ps = [1 / (1 + math.exp(-x)) for x in xs]
    inter = sum(p * t for p, t in zip(ps, ts, strict=True))
    dice = 1 - (2 * inter + 1) / (sum(ps) + sum(ts) + 1)
    return mean_bce, dice


def ref_cost(class_logits, mask_logits, classes, masks) -> list[list[float]]:
    """Matching cost computed pair by pair, independently of the implementation."""
    q, k = class_logits.shape[0], classes.shape[0]
    cost = [[0.0] * k for _ in range(q)]
    for i in range(q):
        row = class_logits[i].tolist()
        z = sum(math.exp(v) for v in row)
        for j in range(k):
            prob = math.exp(row[int(classes[j])]) / z
            mean_bce, dice = ref_mask_terms(mask_logits[i], masks[j])
            cost[i][j] = -2.0 * prob + 5.0 * mean_bce + 5.0 * dice
    return cost


def brute_force(cost: list[list[float]]) -> tuple[float, dict[int, int]]:
    """Minimum-cost injective map targets -> queries, by enumeration."""
    q, k = len(cost), len(cost[0])
    best = (math.inf, {})
    for perm in itertools.permutations(range(q), k):
        total = sum(cost[perm[j]][j] for j in range(k))
        if total < best[0]:
            best = (total, {j: perm[j] for j in range(k)})
    return best


# -- targets and sampling ------------------------------------------------------------------------


def test_semantic_to_instances_with_ignore():
    label = torch.tensor(
        [[0, 0, 3, 3], [0, 255, 3, 3], [2, 2, 255, 255], [2, 2, 0, 255]], dtype=torch.long
    )
    classes, masks = semantic_to_instances(label, num_classes=5)
    assert classes.tolist() == [0, 2, 3]
    assert masks.dtype == torch.float32 and masks.shape == (3, 4, 4)
    assert masks[0].tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]]
    assert masks[1].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]]
    assert masks[2].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert masks.sum(0)[label == 255].eq(0).all()

    classes, masks = semantic_to_instances(torch.full((4, 4), 255), num_classes=5)
    assert classes.shape == (0,) and masks.shape == (0, 4, 4)
    with pytest.raises(ValueError, match="outside"):
        semantic_to_instances(torch.tensor([[0, 5]]), num_classes=5)


def test_point_sample_pixel_centres_and_bilinear():
    img = torch.arange(12.0).reshape(1, 1, 3, 4)
    out = point_sample(img, pixel_centres(3, 4).unsqueeze(0))
    assert out.shape == (1, 1, 12)
    assert torch.allclose(out[0, 0], torch.arange(12.0), atol=1e-5)
    # halfway between the centres of pixels (0, 0) and (0, 1), and of (0, 0) and (1, 0)
    mid = torch.tensor([[[1.0 / 4, 0.5 / 3], [0.5 / 4, 1.0 / 3]]])
    assert torch.allclose(point_sample(img, mid)[0, 0], torch.tensor([0.5, 2.0]), atol=1e-5)


def test_importance_sampling_picks_the_uncertain_region():
    logits = torch.full((2, 16, 16), 10.0)
    logits[0, :, :8] = 0.0  # left half of mask 0 is maximally uncertain
    logits[1, :, :8] = -10.0
    logits[1, 8:, :] = 0.0  # bottom half of mask 1
    g = torch.Generator().manual_seed(0)
    pts = sample_uncertain_points(logits, 64, 3.0, 0.75, generator=g)
    assert pts.shape == (2, 64, 2)
    assert ((pts >= 0) & (pts < 1)).all()
    # the 48 importance-sampled points lie where bilinear logits are exactly 0
    assert (pts[0, :48, 0] < 7.5 / 16).all()
    assert (pts[1, :48, 1] > 8.5 / 16).all()
    # the 16 others are uniform: some land outside the uncertain region
    assert (pts[0, 48:, 0] > 0.5).any() and (pts[1, 48:, 1] < 0.5).any()
    again = sample_uncertain_points(
        logits, 64, 3.0, 0.75, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(pts, again)


# -- matcher ------------------------------------------------------------------------------------


def test_matcher_cost_matrix_and_known_assignment():
    num_classes = 3
    label = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    classes, masks = semantic_to_instances(label, num_classes)
    # query q predicts target owner[q] (by construction): mask and class agree with it
    owner = [2, 0, 1]
    mask_logits = torch.stack([masks[j] * 6.0 - 3.0 for j in owner]) + 0.3 * torch.randn(
        3, 4, 4, generator=torch.Generator().manual_seed(1)
    )
    class_logits = torch.zeros(3, num_classes + 1)
    for q, j in enumerate(owner):
        class_logits[q, int(classes[j])] = 2.0
    matcher = dense_matcher()
    coords = pixel_centres(4, 4)
    cost = matcher.cost_matrix(class_logits, mask_logits, classes, masks, point_coords=coords)
    expected = torch.tensor(ref_cost(class_logits, mask_logits, classes, masks))
    assert torch.allclose(cost, expected, atol=1e-5)

    q_idx, t_idx = matcher.match_single(
        class_logits, mask_logits, classes, masks, point_coords=coords
    )
    assert dict(zip(t_idx.tolist(), q_idx.tolist(), strict=True)) == {
        j: q for q, j in enumerate(owner)
    }
    best_cost, best_map = brute_force(expected.tolist())
    assert dict(zip(t_idx.tolist(), q_idx.tolist(), strict=True)) == best_map
    assert math.isclose(float(cost[q_idx, t_idx].sum()), best_cost, rel_tol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matcher_equals_brute_force_on_random_costs(seed):
    g = torch.Generator().manual_seed(seed)
    num_classes, q = 4, 4
    label = torch.randint(0, 3, (4, 4), generator=g)
    label[0, 0], label[0, 1], label[1, 0] = 0, 1, 2
    classes, masks = semantic_to_instances(label, num_classes)
    class_logits = torch.randn(q, num_classes + 1, generator=g)
    mask_logits = 2 * torch.randn(q, 4, 4, generator=g)
    matcher = dense_matcher()
    q_idx, t_idx = matcher.match_single(
        class_logits, mask_logits, classes, masks, point_coords=pixel_centres(4, 4)
    )
    assert len(q_idx) == len(classes) == 3 and len(set(q_idx.tolist())) == 3
    best_cost, _ = brute_force(ref_cost(class_logits, mask_logits, classes, masks))
    got = ref_cost(class_logits, mask_logits, classes, masks)
    got_cost = sum(got[i][j] for i, j in zip(q_idx.tolist(), t_idx.tolist(), strict=True))
    assert math.isclose(got_cost, best_cost, rel_tol=1e-6)


def test_matcher_batch_random_points_are_seeded_and_handle_no_targets():
    labels = torch.tensor([[[0, 1], [1, 1]], [[255, 255], [255, 255]]])
    targets = [semantic_to_instances(lab, 2) for lab in labels]
    class_logits = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0))
    mask_logits = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    matcher = HungarianMatcher(num_points=32)
    a = matcher(class_logits, mask_logits, targets, generator=torch.Generator().manual_seed(5))
    b = matcher(class_logits, mask_logits, targets, generator=torch.Generator().manual_seed(5))
    assert [x.tolist() for pair in a for x in pair] == [x.tolist() for pair in b for x in pair]
    assert len(a[0][0]) == 2 and len(a[1][0]) == 0 and a[1][0].dtype == torch.long


# -- losses -------------------------------------------------------------------------------------


def test_class_loss_with_no_object_weight_by_hand():
    # one target (class 1 everywhere); query 0 owns it by mask, query 1 gets "no object" (2)
    labels = torch.ones(1, 4, 4, dtype=torch.long)
    mask_logits = torch.stack([torch.full((4, 4), 4.0), torch.full((4, 4), -4.0)]).unsqueeze(0)
    class_logits = torch.tensor([[[0.5, 2.0, -1.0], [1.0, 0.0, 3.0]]])
    crit = DenseLoss(num_classes=2)
    out = crit([class_logits], [mask_logits], labels)

    def ce(row, t):
        return -row[t] + math.log(sum(math.exp(v) for v in row))

    expected = (1.0 * ce([0.5, 2.0, -1.0], 1) + 0.1 * ce([1.0, 0.0, 3.0], 2)) / (1.0 + 0.1)
    assert math.isclose(float(out["s0.loss_cls"]), expected, rel_tol=1e-6)
    # the matched mask is scored at all 16 pixels: logit 4 against target 1
    assert math.isclose(float(out["s0.loss_mask"]), bce(4.0, 1.0), rel_tol=1e-6)
    p = 1 / (1 + math.exp(-4.0))
    expected_dice = 1 - (2 * 16 * p + 1) / (16 * p + 16 + 1)
    assert math.isclose(float(out["s0.loss_dice"]), expected_dice, abs_tol=1e-6)


def test_mask_losses_match_dense_computation_over_the_batch():
    # image 0 has two classes, image 1 one class (+ ignore): 3 matched masks in the batch
    labels = torch.tensor(
        [
            [[0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]],
            [[2, 2, 2, 255], [2, 2, 255, 255], [2, 2, 2, 2], [255, 2, 2, 2]],
        ]
    )
    g = torch.Generator().manual_seed(3)
    num_classes, q = 3, 3
    mask_logits = torch.randn(2, q, 4, 4, generator=g)
    class_logits = torch.randn(2, q, num_classes + 1, generator=g)
    # make the assignment unambiguous: query 1 -> class 0, query 2 -> class 1 (image 0),
    # query 0 -> class 2 (image 1)
    targets = [semantic_to_instances(lab, num_classes) for lab in labels]
    mask_logits[0, 1] += 4 * (2 * targets[0][1][0] - 1)
    mask_logits[0, 2] += 4 * (2 * targets[0][1][1] - 1)
    mask_logits[1, 0] += 4 * (2 * targets[1][1][0] - 1)
    pairs = [(0, 1, 0), (0, 2, 1), (1, 0, 0)]  # (image, query, target)

    crit = DenseLoss(num_classes=num_classes, num_points=16)
    crit.matcher = dense_matcher(num_points=16)
    out = crit([class_logits], [mask_logits], labels, generator=torch.Generator().manual_seed(0))

    terms = [ref_mask_terms(mask_logits[b, qq], targets[b][1][t]) for b, qq, t in pairs]
    assert math.isclose(float(out["s0.loss_mask"]), sum(t[0] for t in terms) / 3, rel_tol=1e-5)
    assert math.isclose(float(out["s0.loss_dice"]), sum(t[1] for t in terms) / 3, rel_tol=1e-5)


def test_stride4_mask_logits_against_full_resolution_labels():
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, :, 16:] = 1
    labels[1, :8] = 255
    g = torch.Generator().manual_seed(0)
    class_logits = [torch.randn(2, 5, 3, generator=g) for _ in range(2)]
    mask_logits = [torch.randn(2, 5, 8, 8, generator=g) for _ in range(2)]
    crit = Mask2FormerLoss(num_classes=2, num_points=100)
    out = crit(class_logits, mask_logits, labels, generator=torch.Generator().manual_seed(1))
    again = crit(class_logits, mask_logits, labels, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(out[k], again[k]) for k in out)
    assert all(torch.isfinite(v) for v in out.values())


def test_total_is_weighted_sum_over_stages_and_gradients_flow():
    stages, b, q, c = 3, 2, 6, 4
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, c, (b, 16, 16), generator=g)
    labels[1, :4] = 255
    class_logits = [
        torch.randn(b, q, c + 1, generator=g, requires_grad=True) for _ in range(stages)
    ]
    mask_logits = [torch.randn(b, q, 4, 4, generator=g, requires_grad=True) for _ in range(stages)]
    crit = Mask2FormerLoss(num_classes=c, num_points=64)
    out = crit(class_logits, mask_logits, labels, generator=torch.Generator().manual_seed(0))
    expected_keys = {
        f"s{s}.{t}" for s in range(stages) for t in ("loss_cls", "loss_mask", "loss_dice")
    }
    assert set(out) == expected_keys | {"loss"}
    total = sum(
        2 * out[f"s{s}.loss_cls"] + 5 * out[f"s{s}.loss_mask"] + 5 * out[f"s{s}.loss_dice"]
        for s in range(stages)
    )
    assert torch.allclose(out["loss"], total)
    out["loss"].backward()
    for t in class_logits + mask_logits:
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_all_ignore_image_gives_finite_loss():
    c, q = 3, 4
    g = torch.Generator().manual_seed(0)
    class_logits = torch.randn(2, q, c + 1, generator=g, requires_grad=True)
    mask_logits = torch.randn(2, q, 4, 4, generator=g, requires_grad=True)
    crit = Mask2FormerLoss(num_classes=c, num_points=32)

    # whole batch ignored: every query is "no object", mask terms are zero
    labels = torch.full((2, 16, 16), 255)
    out = crit([class_logits], [mask_logits], labels)
    expected_cls = torch.nn.functional.cross_entropy(
        class_logits.detach().reshape(-1, c + 1), torch.full((2 * q,), c)
    )
    assert torch.allclose(out["s0.loss_cls"], expected_cls)
    assert out["s0.loss_mask"] == 0 and out["s0.loss_dice"] == 0
    out["loss"].backward()
    assert torch.isfinite(class_logits.grad).all() and torch.isfinite(mask_logits.grad).all()

    # one image ignored, the other labelled: its queries all target "no object"
    labels[0, :8] = 1
    labels[0, 8:] = 0
    out = crit([class_logits], [mask_logits], labels, generator=torch.Generator().manual_seed(0))
    assert all(torch.isfinite(v) for v in out.values())
    assert out["s0.loss_mask"] > 0 and out["s0.loss_dice"] > 0


def test_per_image_generators_make_terms_independent_of_the_batch():
    c, q = 3, 5
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, c, (1, 16, 16), generator=g)
    class_logits = torch.randn(1, q, c + 1, generator=g)
    mask_logits = torch.randn(1, q, 4, 4, generator=g)
    crit = Mask2FormerLoss(num_classes=c, num_points=48)

    def gen():
        return torch.Generator().manual_seed(7)

    single = crit([class_logits] * 2, [mask_logits] * 2, labels, generators=[gen()])
    # the same image twice, each with an identically seeded generator: same means
    double = crit(
        [class_logits.repeat(2, 1, 1)] * 2,
        [mask_logits.repeat(2, 1, 1, 1)] * 2,
        labels.repeat(2, 1, 1),
        generators=[gen(), gen()],
    )
    for k in single:
        assert torch.allclose(single[k], double[k], atol=1e-6), k
    with pytest.raises(ValueError, match="either"):
        crit([class_logits], [mask_logits], labels, generator=gen(), generators=[gen()])
    with pytest.raises(ValueError, match="generators for a batch"):
        crit([class_logits], [mask_logits], labels, generators=[gen(), gen()])

import numpy as np
import pytest
import torch

from crossearth.train.transforms import (
    MEAN_PAD,
    SCALES_512,
    SCALES_1024,
    PhotoMetricDistortion,
    PhotoMetricParams,
    RandomCropCatMax,
    RandomHorizontalFlip,
    RandomShortestEdgeResize,
    TrainPipeline,
    hsv_to_rgb_cv2,
    pipeline_512,
    pipeline_1024,
    rgb_to_hsv_cv2,
    shortest_edge_size,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_pair(h: int, w: int, classes=(0, 1, 2, 3), seed: int = 0):
    g = gen(seed)
    image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    values = torch.tensor(classes, dtype=torch.uint8)
    label = values[torch.randint(0, len(classes), (h, w), generator=g)]
    return image, label


def test_official_scale_lists():
    assert SCALES_512 == (256, 307, 358, 409, 460, 512, 563, 614, 665, 716, 768, 819, 870, 921, 972, 1024)  # fmt: skip
    assert SCALES_1024[:3] == (512, 614, 716) and SCALES_1024[-1] == 2048 and len(SCALES_1024) == 16
    p512, p1024 = pipeline_512(), pipeline_1024()
    assert (p512.crop, p512.steps[0].scales, p512.steps[0].max_size) == (
        (512, 512),
        SCALES_512,
        2048,
    )
    assert (p1024.crop, p1024.steps[0].scales, p1024.steps[0].max_size) == ((1024, 1024), SCALES_1024, 4096)  # fmt: skip


def test_resize_uses_only_listed_scales():
    image, label = random_pair(100, 150)
    resize = RandomShortestEdgeResize((64, 80, 96), max_size=1000)
    seen = set()
    for seed in range(30):
        out, out_label = resize(image, label, gen(seed))
        h, w = out.shape[1:]
        assert out.dtype == torch.uint8 and out_label.shape == (h, w)
        assert h in (64, 80, 96)
        assert w == int(h * 1.5 + 0.5)
        seen.add(h)
    assert seen == {64, 80, 96}


def test_resize_respects_max_size():
    assert shortest_edge_size(50, 400, 64, 256) == (32, 256)  # short edge 64 would make 512
    assert shortest_edge_size(400, 50, 64, 256) == (256, 32)
    assert shortest_edge_size(512, 512, 1024, 2048) == (1024, 1024)
    assert shortest_edge_size(3000, 4000, 256, 2048) == (256, 341)
    image, label = random_pair(50, 400)
    out, out_label = RandomShortestEdgeResize((64,), max_size=256)(image, label, gen())
    assert out.shape == (3, 32, 256) and out_label.shape == (32, 256)


def test_resize_label_is_nearest():
    image, label = random_pair(37, 53, classes=(0, 3, 7, 255))
    _, out_label = RandomShortestEdgeResize((80, 23), max_size=1000)(image, label, gen(1))
    assert set(out_label.unique().tolist()) <= {0, 3, 7, 255}
    # an exact 2x upscale repeats every label pixel (cv2 INTER_NEAREST picks floor(x / 2))
    small_image, small_label = random_pair(20, 30, classes=(1, 2, 5))
    _, up = RandomShortestEdgeResize((40,), max_size=1000)(small_image, small_label, gen())
    expected = small_label.repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(up, expected)


def _replay_crop(label, crop, seed, ratio=0.75, tries=10):
    """mmseg RandomCrop.crop_bbox, drawing from the same generator sequence."""
    g = gen(seed)
    h, w = label.shape

    def window():
        y = int(torch.randint(0, max(h - crop, 0) + 1, (1,), generator=g))
        x = int(torch.randint(0, max(w - crop, 0) + 1, (1,), generator=g))
        return y, x

    def ok(y, x):
        values, counts = np.unique(label[y : y + crop, x : x + crop].numpy(), return_counts=True)
        counts = counts[values != 255]
        return len(counts) > 1 and counts.max() / counts.sum() < ratio

    y, x = window()
    for _ in range(tries):
        if ok(y, x):
            break
        y, x = window()
    return (y, x), ok(y, x), g


def test_crop_follows_cat_max_rule():
    # left half class 1, right half class 2: a single random 64 crop is acceptable ~25% of the time
    h, w, crop = 120, 200, 64
    label = torch.ones(h, w, dtype=torch.uint8)
    label[:, 100:] = 2
    label[:10] = 255  # ignored pixels do not count
    image = torch.randint(0, 256, (3, h, w), generator=gen(99), dtype=torch.uint8)
    transform = RandomCropCatMax(crop, cat_max_ratio=0.75)
    accepted = 0
    for seed in range(40):
        out, out_label = transform(image, label, gen(seed))
        assert out.shape == (3, crop, crop) and out_label.shape == (crop, crop)
        (y, x), ok, _ = _replay_crop(label, crop, seed)
        assert torch.equal(out, image[:, y : y + crop, x : x + crop])
        assert torch.equal(out_label, label[y : y + crop, x : x + crop])
        accepted += ok
        if ok:
            assert transform.acceptable(out_label)
    assert accepted >= 34  # 1 - 0.75**11 ~ 96% of samples find an acceptable crop


def test_crop_gives_up_after_ten_tries():
    image, _ = random_pair(100, 100)
    label = torch.full((100, 100), 3, dtype=torch.uint8)  # one class: no crop is acceptable
    for seed in range(3):
        g = gen(seed)
        out, _ = RandomCropCatMax(32)(image, label, g)
        (y, x), ok, replay = _replay_crop(label, 32, seed)
        assert not ok
        assert torch.equal(out, image[:, y : y + 32, x : x + 32])  # the 11th window, unchecked
        assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=replay))  # 22 draws
    # without the rule a single window is drawn
    g, reference = gen(5), gen(5)
    RandomCropCatMax(32, cat_max_ratio=1.0)(image, label, g)
    torch.randint(0, 69, (1,), generator=reference)
    torch.randint(0, 69, (1,), generator=reference)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=reference))


def test_crop_pads_small_images():
    image, label = random_pair(40, 50, classes=(0, 1))
    out, out_label = RandomCropCatMax(64)(image, label, gen())
    assert out.shape == (3, 64, 64) and out_label.shape == (64, 64)
    assert torch.equal(out[:, :40, :50], image) and torch.equal(out_label[:40, :50], label)
    assert (out[:, 40:] == 0).all() and (out[:, :, 50:] == 0).all()
    assert (out_label[40:] == 255).all() and (out_label[:, 50:] == 255).all()
    # one side large enough: cropped there, padded on the other
    image, label = random_pair(40, 100, classes=(0, 1))
    out, out_label = RandomCropCatMax((32, 64), pad=False)(image, label, gen())
    assert out.shape == (3, 32, 64)
    out, out_label = RandomCropCatMax(64, pad=False)(image, label, gen())
    assert out.shape == (3, 40, 64) and out_label.shape == (40, 64)


def test_pipeline_pads_last_with_mean_colour():
    image, label = random_pair(40, 40, classes=(0, 1, 2))
    pipeline = TrainPipeline(crop=64, scales=(40,), max_size=256)
    for seed in range(5):
        out, out_label = pipeline(image, label, gen(seed))
        assert out.shape == (3, 64, 64) and out_label.shape == (64, 64)
        assert (out_label[40:] == 255).all() and (out_label[:, 40:] == 255).all()
        assert (out_label[:40, :40] != 255).all()  # padding stays bottom/right, even after a flip
        for c, value in enumerate(MEAN_PAD):
            assert (out[c, 40:] == value).all()


def test_flip_moves_image_and_label_together():
    image, label = random_pair(16, 24)
    out, out_label = RandomHorizontalFlip(p=1.0)(image, label, gen())
    assert torch.equal(out, image.flip(-1)) and torch.equal(out_label, label.flip(-1))
    out, out_label = RandomHorizontalFlip(p=0.0)(image, label, gen())
    assert torch.equal(out, image) and torch.equal(out_label, label)
    flips = 0
    for seed in range(40):
        out, out_label = RandomHorizontalFlip()(image, label, gen(seed))
        flipped = torch.equal(out, image.flip(-1))
        assert flipped or torch.equal(out, image)
        assert torch.equal(out_label, label.flip(-1) if flipped else label)
        flips += flipped
    assert 8 <= flips <= 32


def test_photometric_distortion_range_label_reproducible():
    image, label = random_pair(32, 32)
    distort = PhotoMetricDistortion()
    changed = 0
    for seed in range(10):
        out, out_label = distort(image, label, gen(seed))
        assert out.dtype == torch.uint8 and out.shape == image.shape
        assert out_label is label
        again, _ = distort(image, label, gen(seed))
        assert torch.equal(out, again)
        changed += not torch.equal(out, image)
    assert changed >= 7  # each of the 4 steps is skipped with p = 0.5: all skipped 1/16
    params = [distort.sample(gen(seed)) for seed in range(400)]
    assert {p.hue for p in params if p.hue is not None} == set(range(-18, 18))  # numpy randint
    assert all(-32 <= p.brightness <= 32 for p in params if p.brightness is not None)
    assert all(0.5 <= p.contrast <= 1.5 for p in params if p.contrast is not None)
    assert 150 < sum(p.saturation is not None for p in params) < 250
    assert 150 < sum(p.contrast_first for p in params) < 250


def test_photometric_steps():
    image = torch.tensor([[[10, 250]], [[100, 128]], [[200, 0]]], dtype=torch.uint8)
    bright = PhotoMetricParams(brightness=10.7, contrast_first=True, contrast=None, saturation=None, hue=None)  # fmt: skip
    out = PhotoMetricDistortion.apply(image, bright)
    assert out[:, 0, 0].tolist() == [20, 110, 210] and out[:, 0, 1].tolist() == [255, 138, 10]
    contrast = PhotoMetricParams(None, False, 1.5, None, None)
    assert PhotoMetricDistortion.apply(image, contrast)[:, 0, 1].tolist() == [255, 192, 0]
    grey = torch.full((3, 2, 2), 77, dtype=torch.uint8)  # no saturation: hue and saturation inert
    assert torch.equal(PhotoMetricDistortion.apply(grey, PhotoMetricParams(None, True, None, 1.4, 9)), grey)  # fmt: skip


def test_hsv_conversions():
    colours = torch.tensor(
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 0, 0], [90, 90, 90]],
        dtype=torch.uint8,
    ).T[:, None, :]
    hsv = rgb_to_hsv_cv2(colours)
    assert hsv[:, 0].T.tolist() == [
        [0, 255, 255], [60, 255, 255], [120, 255, 255], [30, 255, 255], [0, 0, 0], [0, 0, 90]
    ]  # fmt: skip
    assert torch.equal(hsv_to_rgb_cv2(hsv), colours)
    image, _ = random_pair(64, 64)
    back = hsv_to_rgb_cv2(rgb_to_hsv_cv2(image))
    assert (back.int() - image.int()).abs().max() <= 6  # uint8 HSV loses a little


def test_hsv_matches_opencv():
    cv2 = pytest.importorskip(
        "cv2",
        reason="the OpenCV peer (as mmseg uses) is optional: pip install opencv-python-headless",
    )
    image, _ = random_pair(64, 96)
    rgb = image.permute(1, 2, 0).numpy().copy()
    assert np.array_equal(rgb_to_hsv_cv2(image).permute(1, 2, 0).numpy(), cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV))  # fmt: skip
    hsv = rgb_to_hsv_cv2(image)
    hsv[1] = (hsv[1].float() * 1.3).clamp(0, 255).to(torch.uint8)
    expected = cv2.cvtColor(hsv.permute(1, 2, 0).numpy().copy(), cv2.COLOR_HSV2RGB)
    assert np.array_equal(hsv_to_rgb_cv2(hsv).permute(1, 2, 0).numpy(), expected)


def test_small_pipeline_is_deterministic():
    image, label = random_pair(90, 120, classes=(0, 1, 2, 255))
    pipeline = TrainPipeline(crop=64, scales=(64, 80, 96), max_size=256)
    out, out_label = pipeline(image, label, gen(7))
    again, again_label = pipeline(image, label, gen(7))
    assert torch.equal(out, again) and torch.equal(out_label, again_label)
    assert out.shape == (3, 64, 64) and out.dtype == torch.uint8
    assert out_label.shape == (64, 64) and out_label.dtype == torch.uint8
    assert set(out_label.unique().tolist()) <= {0, 1, 2, 255}
    other = [pipeline(image, label, gen(seed))[0] for seed in range(8, 12)]
    assert any(not torch.equal(out, o) for o in other)
    with pytest.raises(ValueError, match="label"):
        pipeline(image, label[:-1], gen())


def test_official_pipeline_shapes():
    image, label = random_pair(300, 400, classes=(0, 1, 2, 3, 4, 5))
    out, out_label = pipeline_512()(image, label, gen(3))
    assert out.shape == (3, 512, 512) and out_label.shape == (512, 512)

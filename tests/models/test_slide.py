"""Slide-window geometry (official mmseg rule) and the test-time resize."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_dir

from crossearth.inference import rescale_size, slide_windows


def test_windows_of_reference_input_b():
    info = json.loads((reference_dir() / "small_ref2_run_info.json").read_text())
    expected = [tuple(w) for w in info["input_b"]["windows_y1y2x1x2"]]
    assert slide_windows(700, 1000, (256, 256), (171, 171)) == expected


@settings(max_examples=100, deadline=None)
@given(
    h=st.integers(1, 1500), w=st.integers(1, 1500),
    crop=st.integers(16, 1100), stride=st.integers(1, 1100),
)  # fmt: skip
def test_windows_cover_image_inside_bounds(h, w, crop, stride):
    stride = min(stride, crop)
    windows = slide_windows(h, w, (crop, crop), (stride, stride))
    count = np.zeros((h, w), dtype=np.int32)
    for y1, y2, x1, x2 in windows:
        assert 0 <= y1 < y2 <= h and 0 <= x1 < x2 <= w
        assert (y2 - y1, x2 - x1) == (min(crop, h), min(crop, w))  # all windows one size
        count[y1:y2, x1:x2] += 1
    assert count.min() >= 1
    rows = max(h - crop + stride - 1, 0) // stride + 1
    cols = max(w - crop + stride - 1, 0) // stride + 1
    assert len(windows) == rows * cols


def test_rejects_bad_geometry():
    with pytest.raises(ValueError):
        slide_windows(10, 10, (0, 0), (1, 1))
    with pytest.raises(ValueError, match="unpredicted"):
        slide_windows(100, 100, (32, 32), (40, 40))


@pytest.mark.parametrize(
    "size,long_edge,expected",
    [
        ((3000, 4000), 512, (384, 512)),  # RescueNet
        ((512, 512), 512, (512, 512)),  # Potsdam/Vaihingen tiles unchanged
        ((1500, 1500), 1500, (1500, 1500)),  # Massachusetts
        ((200, 100), 512, (512, 256)),  # upscaled so the long edge is S
    ],
)
def test_rescale_size(size, long_edge, expected):
    assert rescale_size(*size, long_edge) == expected


def test_test_resize_returns_original_size():
    import crossearth

    model = crossearth.create_model("vit-tiny-256", num_classes=4)
    model.config.inference.test_resize = 256
    image = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    result = model.predict(image)
    assert result.labels.shape == (300, 420) and result.scores.shape == (4, 300, 420)
    no_resize = model.predict(image, test_resize=False)
    assert not np.allclose(result.scores, no_resize.scores)


def test_stride_larger_than_crop_is_fine_for_a_single_window():
    # An image shorter than the crop has one window row whatever the stride (official behaviour).
    assert slide_windows(100, 600, (100, 256), (171, 171)) == [
        (0, 100, 0, 256), (0, 100, 171, 427), (0, 100, 342, 598), (0, 100, 344, 600)
    ]  # fmt: skip

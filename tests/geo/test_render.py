"""Decimated class-map previews and overlays written as PNG."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from crossearth.errors import InputError
from crossearth.geo.render import (
    decimated_shape,
    preview_from_class_map,
    write_overlay,
    write_preview,
)

PALETTE = [(10, 20, 30), (200, 100, 0), (0, 255, 128)]


def write_map(path, labels):
    profile = {
        "driver": "GTiff",
        "height": labels.shape[0],
        "width": labels.shape[1],
        "count": 1,
        "dtype": "uint8",
        "nodata": 255,
        "crs": "EPSG:32633",
        "transform": Affine(1, 0, 400000, 0, -1, 5000000),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels, 1)
    return path


def small_labels():
    return np.array([[0, 1, 2, 255], [2, 2, 1, 0], [255, 0, 0, 1]], dtype=np.uint8)


@pytest.fixture
def small_map(tmp_path):
    return write_map(tmp_path / "small.tif", small_labels())


def test_decimated_shape():
    assert decimated_shape(300, 200, 2048) == (300, 200)
    assert decimated_shape(512, 512, 512) == (512, 512)
    assert decimated_shape(5000, 3000, 512) == (512, 307)
    assert decimated_shape(3000, 5000, 512) == (307, 512)
    assert decimated_shape(4000, 4000, 100) == (100, 100)
    assert decimated_shape(10, 100000, 50) == (1, 50)  # the short side never vanishes


def test_decimated_shape_rejects_nonpositive_size():
    with pytest.raises(InputError, match="at least 1"):
        decimated_shape(10, 10, 0)


def test_preview_exact_colours(small_map):
    rgb = preview_from_class_map(small_map, PALETTE)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (3, 4, 3)
    labels = small_labels()
    for r in range(3):
        for c in range(4):
            want = (0, 0, 0) if labels[r, c] == 255 else PALETTE[labels[r, c]]
            assert tuple(rgb[r, c]) == want


def test_preview_shape_is_bounded(tmp_path):
    labels = np.zeros((5000, 3000), dtype=np.uint8)
    labels[:, 1500:] = 1
    path = write_map(tmp_path / "big.tif", labels)
    rgb = preview_from_class_map(path, PALETTE, max_size=512)
    assert rgb.shape == (512, 307, 3)
    # nearest neighbour keeps pure class colours, left half class 0, right half class 1
    assert tuple(rgb[100, 10]) == PALETTE[0]
    assert tuple(rgb[100, 300]) == PALETTE[1]
    assert {tuple(p) for p in rgb.reshape(-1, 3)} == {PALETTE[0], PALETTE[1]}


def test_write_preview_png_roundtrip(small_map, tmp_path):
    out = tmp_path / "sub" / "preview.png"
    assert write_preview(small_map, PALETTE, out) == out
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.mode == "RGB"
        back = np.asarray(img)
    np.testing.assert_array_equal(back, preview_from_class_map(small_map, PALETTE))
    assert sorted(p.name for p in out.parent.iterdir()) == ["preview.png"]  # no temp left


def image_like(shape):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def read_png(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_overlay_blends_and_keeps_image_at_nodata(small_map, tmp_path):
    labels = small_labels()
    rgb = image_like(labels.shape)
    out = write_overlay(rgb, small_map, PALETTE, tmp_path / "overlay.png", alpha=0.25)
    got = read_png(out).astype(int)
    for r in range(3):
        for c in range(4):
            if labels[r, c] == 255:
                assert tuple(got[r, c]) == tuple(rgb[r, c])
            else:
                want = 0.75 * rgb[r, c] + 0.25 * np.array(PALETTE[labels[r, c]])
                assert np.abs(got[r, c] - want).max() <= 0.5 + 1e-9


def test_overlay_alpha_extremes(small_map, tmp_path):
    labels = small_labels()
    rgb = image_like(labels.shape)
    clear = read_png(write_overlay(rgb, small_map, PALETTE, tmp_path / "a0.png", alpha=0.0))
    np.testing.assert_array_equal(clear, rgb)
    opaque = read_png(write_overlay(rgb, small_map, PALETTE, tmp_path / "a1.png", alpha=1.0))
    preview = preview_from_class_map(small_map, PALETTE)
    valid = labels != 255
    np.testing.assert_array_equal(opaque[valid], preview[valid])
    np.testing.assert_array_equal(opaque[~valid], rgb[~valid])


def test_overlay_on_decimated_map(tmp_path):
    labels = np.full((1000, 600), 255, dtype=np.uint8)
    labels[:500] = 2
    path = write_map(tmp_path / "big.tif", labels)
    shape = decimated_shape(1000, 600, 100)
    rgb = np.full((*shape, 3), 50, dtype=np.uint8)
    got = read_png(write_overlay(rgb, path, PALETTE, tmp_path / "o.png", alpha=1.0, max_size=100))
    assert got.shape == (100, 60, 3)
    assert tuple(got[10, 10]) == PALETTE[2]
    assert tuple(got[90, 10]) == (50, 50, 50)


def test_overlay_rejects_wrong_image_shape(small_map, tmp_path):
    out = tmp_path / "o.png"
    with pytest.raises(InputError, match="3 x 4 x 3"):
        write_overlay(np.zeros((4, 4, 3), np.uint8), small_map, PALETTE, out)
    assert not out.exists()


def test_overlay_rejects_bad_alpha(small_map, tmp_path):
    with pytest.raises(InputError, match="between 0 and 1"):
        write_overlay(image_like((3, 4)), small_map, PALETTE, tmp_path / "o.png", alpha=1.5)


def test_non_png_output_and_missing_map_are_input_errors(small_map, tmp_path):
    with pytest.raises(InputError, match=r"\.png"):
        write_preview(small_map, PALETTE, tmp_path / "p.jpg")
    with pytest.raises(InputError, match="not found"):
        preview_from_class_map(tmp_path / "missing.tif", PALETTE)


def test_failed_png_write_leaves_no_file(small_map, tmp_path, monkeypatch):
    real_save = Image.Image.save

    def save_then_fail(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", save_then_fail)
    out = tmp_path / "out" / "preview.png"
    with pytest.raises(OSError, match="disk full"):
        write_preview(small_map, PALETTE, out)
    assert list(out.parent.iterdir()) == []

"""SynthEarth: deterministic, and each domain shift is measurable."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import rasterio
from PIL import Image

from crossearth.data.synthetic import (
    BUILDING,
    DOMAINS,
    IMPERVIOUS,
    LOW_VEG,
    TREE,
    generate_domain,
    render_scene,
    with_overrides,
)  # fmt: skip

SEEDS = range(6)


def stack(name, size=192):
    pairs = [render_scene(DOMAINS[name], s, size) for s in SEEDS]
    return np.stack([p[0] for p in pairs]).astype(float), np.stack([p[1] for p in pairs])


def test_same_seed_same_bytes(tmp_path):
    a = render_scene(DOMAINS["urban-satellite-rgb"], 11, 128)
    b = render_scene(DOMAINS["urban-satellite-rgb"], 11, 128)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = render_scene(DOMAINS["urban-satellite-rgb"], 12, 128)
    assert not np.array_equal(a[0], c[0])
    digests = []
    for run in ("one", "two"):
        folder = generate_domain(
            tmp_path / run, DOMAINS["rural-aerial-rgb"], train=2, val=1, size=64, seed=3
        )
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in files])
    assert digests[0] == digests[1] and len(digests[0]) == 6


def test_all_classes_and_layout(tmp_path):
    _, labels = stack("urban-aerial-rgb")
    assert set(np.unique(labels)) == set(range(6))
    folder = generate_domain(tmp_path, DOMAINS["urban-aerial-rgb"], train=2, val=1, size=64)
    tif = next((folder / "img_dir/train").glob("*.tif"))
    with rasterio.open(tif) as src:
        assert src.crs.to_epsg() == 32632 and src.res == (0.25, 0.25) and src.count == 3
    label = np.asarray(Image.open(next((folder / "ann_dir/train").glob("*.png"))))
    assert label.min() >= 1 and label.max() <= 6  # ISPRS ids 1..6, 0 = ignore (unused)


def test_spectral_shift_vegetation_bright_in_nir():
    rgb, labels = stack("urban-aerial-rgb")
    irrg, labels2 = stack("urban-aerial-irrg")
    assert np.array_equal(labels, labels2)  # same scenes, other bands
    veg = (labels == LOW_VEG) | (labels == TREE)
    # channel 0 is red in RGB, near-infrared in IRRG: vegetation is dark in red, bright in NIR
    assert irrg[..., 0][veg].mean() > 2 * rgb[..., 0][veg].mean()
    road = labels == IMPERVIOUS
    assert abs(irrg[..., 0][road].mean() - rgb[..., 0][road].mean()) < 20


def test_region_shift_rural_is_greener_and_emptier():
    _, urban = stack("urban-aerial-rgb")
    _, rural = stack("rural-aerial-rgb")
    assert (rural == TREE).mean() > 1.5 * (urban == TREE).mean()
    assert (rural == BUILDING).mean() < 0.5 * (urban == BUILDING).mean()


def high_frequency(images):
    return np.abs(np.diff(images.mean(-1), axis=2)).mean()


def test_platform_shift_blur_noise_haze():
    aerial, _ = stack("urban-aerial-rgb")
    satellite, _ = stack("urban-satellite-rgb")
    # haze lifts dark pixels and lowers contrast
    assert np.percentile(satellite, 5) > np.percentile(aerial, 5)
    assert satellite.std() < aerial.std()
    # blur: the same scene rendered without noise, with and without the satellite blur
    spec = with_overrides(DOMAINS["urban-satellite-rgb"], noise=0.0)
    sharp = render_scene(with_overrides(spec, blur_sigma_px=0.0), 4, 192)[0][None].astype(float)
    blurred = render_scene(spec, 4, 192)[0][None].astype(float)
    assert high_frequency(blurred) < 0.6 * high_frequency(sharp)
    # noise: the residual between noisy and noise-free renders has the stated level
    noisy = render_scene(DOMAINS["urban-satellite-rgb"], 4, 192)[0].astype(float)
    assert 8 < (noisy - blurred[0]).std() < 16  # noise 0.03 in reflectance = 12 grey levels


def test_season_shift_vegetation_turns_brown():
    summer, labels = stack("urban-aerial-rgb")
    autumn, _ = stack("urban-autumn-rgb")
    veg = (labels == LOW_VEG) | (labels == TREE)
    ratio = lambda im: (im[..., 0][veg] / (im[..., 1][veg] + 1)).mean()  # red / green  # noqa: E731
    assert ratio(autumn) > 1.5 * ratio(summer)
    assert autumn.mean() < summer.mean()  # darker illumination


@pytest.mark.parametrize("name", list(DOMAINS))
def test_fast_enough(name):
    import time

    start = time.perf_counter()
    for s in range(5):
        render_scene(DOMAINS[name], s, 256)
    assert (time.perf_counter() - start) / 5 < 0.5

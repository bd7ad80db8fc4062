"""SynthEarth: procedural aerial-like scenes with ISPRS classes and controlled domain shifts.

Each scene is drawn in object space (metres) and rendered at a ground-sample distance: roads and
squares (impervious), buildings with roofs and cast shadows, low vegetation, tree crowns, cars on
roads, and clutter (bare soil, debris). Every class has a 4-band reflectance (B, G, R, NIR) with
per-object variation and texture; vegetation is bright in NIR, as in real imagery.

A `DomainSpec` controls the shifts the CrossEarth benchmark is about:
- spectral: the 3 bands fed to the model (RGB, or IRRG = NIR, R, G),
- region: urban vs rural layout (road spacing, building density, tree cover),
- ground sample distance,
- platform: sharp aerial vs blurred, noisier, hazier satellite,
- season and illumination: vegetation colour, brightness, sun direction (shadows).
The same seed gives the same bytes. Labels use ISPRS ids 1..6 with 0 unused (reduce_zero_label).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossearth.data.classes import ISPRS

IMPERVIOUS, BUILDING, LOW_VEG, TREE, CAR, CLUTTER = range(6)

# Mean reflectance (0..1) per class for bands B, G, R, NIR; objects vary around these.
REFLECTANCE = np.array(
    [
        [0.30, 0.31, 0.32, 0.30],  # impervious: grey asphalt / concrete
        [0.28, 0.26, 0.35, 0.32],  # building roofs (varied per building below)
        [0.10, 0.22, 0.14, 0.55],  # low vegetation: green, bright NIR
        [0.06, 0.13, 0.07, 0.45],  # trees: dark green, bright NIR
        [0.40, 0.20, 0.20, 0.25],  # cars (varied per car)
        [0.30, 0.28, 0.26, 0.28],  # clutter: bare soil / debris
    ]
)
ROOF_COLOURS = np.array([[0.15, 0.18, 0.45, 0.35], [0.45, 0.45, 0.46, 0.40], [0.18, 0.18, 0.20, 0.20],
                         [0.35, 0.30, 0.28, 0.30]])  # fmt: skip


@dataclass(frozen=True)
class Region:
    """Layout of a region, per 64 m x 64 m: road grid spacing and width (m), squares (at most
    `squares - 1`), and (low, high) counts of buildings, trees and cars."""

    road_spacing_m: float
    road_width_m: float
    squares: int
    buildings: tuple[int, int]
    trees: tuple[int, int]
    cars: tuple[int, int]


REGIONS = {
    "urban": Region(45.0, 7.0, 3, (5, 9), (12, 22), (4, 9)),
    "suburban": Region(75.0, 6.0, 2, (2, 5), (22, 38), (1, 4)),
    "rural": Region(110.0, 5.0, 1, (0, 2), (35, 60), (0, 2)),
}
# Band layouts: which of the B, G, R, NIR reflectances fill the three image bands.
BAND_LAYOUTS = {"RGB": (2, 1, 0), "IRRG": (3, 2, 1), "RGNIR": (2, 1, 3)}
# Seasons: multipliers of the B, G, R, NIR reflectance of vegetation (low vegetation and trees).
SEASONS = {
    "summer": (1.0, 1.0, 1.0, 1.0),
    "autumn": (0.9, 1.0, 2.0, 0.75),  # yellows and browns, NIR drops
    "spring": (1.0, 1.15, 0.85, 1.1),  # fresh green
    "dry": (1.3, 1.1, 1.6, 0.7),  # dry grass and parched crowns: greyish brown
}


@dataclass(frozen=True)
class DomainSpec:
    name: str
    bands: str = "RGB"  # a key of BAND_LAYOUTS: "RGB", "IRRG" (NIR, R, G) or "RGNIR"
    region: str = "urban"  # a key of REGIONS: "urban", "suburban" or "rural"
    gsd_m: float = 0.25
    blur_sigma_px: float = 0.0
    noise: float = 0.01
    haze: float = 0.0
    season: str = "summer"  # a key of SEASONS: "summer", "autumn", "spring" or "dry"
    brightness: float = 1.0
    sun_azimuth_deg: float = 135.0


DOMAINS = {
    "urban-aerial-rgb": DomainSpec("urban-aerial-rgb"),
    "urban-aerial-irrg": DomainSpec("urban-aerial-irrg", bands="IRRG"),
    "rural-aerial-rgb": DomainSpec("rural-aerial-rgb", region="rural"),
    "urban-satellite-rgb": DomainSpec(
        "urban-satellite-rgb", gsd_m=0.5, blur_sigma_px=1.5, noise=0.03, haze=0.15
    ),
    "urban-autumn-rgb": DomainSpec(
        "urban-autumn-rgb", season="autumn", brightness=0.8, sun_azimuth_deg=200
    ),
}


def render_scene(spec: DomainSpec, seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One scene: image H x W x 3 uint8 (the spec's bands) and label H x W (ISPRS ids 0..5)."""
    rng = np.random.default_rng(seed)
    px = spec.gsd_m
    label = np.full((size, size), LOW_VEG, dtype=np.uint8)
    refl = np.broadcast_to(REFLECTANCE[LOW_VEG], (size, size, 4)).copy()
    refl *= 1 + 0.15 * _smooth_noise(rng, size, 12)[..., None]
    shadow = np.zeros((size, size), dtype=bool)
    yy, xx = np.mgrid[0:size, 0:size]
    region = REGIONS[spec.region]
    area = (size * px / 64.0) ** 2  # object counts below are per 64 m x 64 m

    def count(low: int, high: int) -> int:
        return int(rng.integers(low, high + 1) * area)

    # roads: a jittered grid (dense in towns, sparse in the countryside), plus squares
    spacing = region.road_spacing_m / px
    width = max(2, round(region.road_width_m / px))
    roads = np.zeros((size, size), dtype=bool)
    for axis in (0, 1):
        pos = rng.uniform(0, spacing)
        while pos < size:
            p = int(pos)
            sl = (
                (slice(p, p + width), slice(None))
                if axis == 0
                else (slice(None), slice(p, p + width))
            )
            roads[sl] = True
            pos += spacing * rng.uniform(0.7, 1.3)
    for _ in range(rng.integers(0, region.squares)):
        h, w = rng.integers(int(10 / px), int(25 / px), 2)
        y, x = rng.integers(0, size, 2)
        roads[y : y + h, x : x + w] = True
    _paint(label, refl, roads, IMPERVIOUS, rng, 0.08)

    # clutter: bare soil / construction patches
    for _ in range(count(1, 2)):
        blob = _blob(rng, size, yy, xx, rng.uniform(4, 12) / px)
        _paint(label, refl, blob & ~roads, CLUTTER, rng, 0.15)

    # buildings with roofs and cast shadows
    n_buildings = count(*region.buildings)
    sun = np.deg2rad(spec.sun_azimuth_deg)
    for _ in range(n_buildings):
        h, w = (rng.uniform(7, 16, 2) / px).astype(int) + 2
        y, x = rng.integers(0, size - 2, 2)
        footprint = (yy >= y) & (yy < y + h) & (xx >= x) & (xx < x + w)
        if (footprint & roads).mean() > 0.002 * footprint.size:
            continue
        reach = rng.uniform(2, 6) / px
        dy, dx = round(np.cos(sun) * reach), round(-np.sin(sun) * reach)
        shadow |= np.roll(np.roll(footprint, dy, 0), dx, 1) & ~footprint
        roof = ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))] * rng.uniform(0.85, 1.15)
        label[footprint] = BUILDING
        refl[footprint] = roof
        half = (xx - x) < w / 2  # a ridge: one side of the roof darker
        refl[footprint & half] *= 0.85

    # trees: clustered crowns (more in the countryside), drawn over ground, not over roofs
    n_trees = count(*region.trees)
    centres = rng.integers(0, size, (n_trees, 2))
    for cy, cx in centres:
        r = rng.uniform(2.0, 5.0) / px
        crown = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (label != BUILDING)
        _paint(label, refl, crown, TREE, rng, 0.15)

    # cars on roads
    for _ in range(count(*region.cars)):
        ys, xs = np.nonzero(roads & (label == IMPERVIOUS))
        if ys.size == 0:
            break
        k = rng.integers(ys.size)
        lh, lw = (np.array([4.5, 2.0]) / px).astype(int) + 1
        if rng.random() < 0.5:
            lh, lw = lw, lh
        car = (yy >= ys[k]) & (yy < ys[k] + lh) & (xx >= xs[k]) & (xx < xs[k] + lw)
        label[car] = CAR
        refl[car] = rng.uniform(0.05, 0.6, 4) * np.array([1, 1, 1, 0.8])

    image = _render(refl, label, shadow, spec, rng)
    return image, label


def _paint(label, refl, mask, cls, rng, spread) -> None:
    label[mask] = cls
    refl[mask] = REFLECTANCE[cls] * rng.uniform(1 - spread, 1 + spread)


def _blob(rng, size, yy, xx, radius):
    cy, cx = rng.integers(0, size, 2)
    angle = np.arctan2(yy - cy, xx - cx)
    wobble = 1 + 0.3 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.2 * np.sin(5 * angle)
    return (yy - cy) ** 2 + (xx - cx) ** 2 < (radius * wobble) ** 2


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1] (bilinear upsampling of a coarse random grid)."""
    coarse = rng.uniform(-1, 1, (cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i, f = t.astype(int), t - t.astype(int)
    rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]
    return rows[:, i] * (1 - f) + rows[:, i + 1] * f


def _render(refl, label, shadow, spec: DomainSpec, rng) -> np.ndarray:
    refl = refl.copy()
    if spec.season != "summer":
        veg = (label == LOW_VEG) | (label == TREE)
        refl[veg] = refl[veg] * np.array(SEASONS[spec.season])
    refl[shadow] *= 0.45
    refl *= spec.brightness
    refl += rng.normal(0, 0.02, refl.shape)  # fine texture
    if spec.blur_sigma_px > 0:
        refl = _gaussian_blur(refl, spec.blur_sigma_px)
    refl = refl * (1 - spec.haze) + spec.haze * 0.6
    refl += rng.normal(0, spec.noise, refl.shape)
    bands = BAND_LAYOUTS[spec.bands]
    return np.clip(refl[..., list(bands)] * 400, 0, 255).round().astype(np.uint8)


def _gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = image
    for axis in (0, 1):
        padded = np.pad(
            out,
            [(radius, radius) if a == axis else (0, 0) for a in range(out.ndim)],
            mode="reflect",
        )
        out = sum(
            k[j] * np.take(padded, range(j, j + out.shape[axis]), axis=axis) for j in range(k.size)
        )
    return out


def generate_domain(
    root: str | Path, spec: DomainSpec, *, train: int, val: int, size: int = 256, seed: int = 0
) -> Path:
    """Write a domain as GeoTIFF images and PNG labels in the prepared layout:
    `root/synthearth/<name>/{img_dir,ann_dir}/{train,val}/<name>_<i>.{tif,png}` (labels 1..6)."""
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin

    folder = Path(root) / "synthearth" / spec.name
    base = 1000 * (seed + 1) + 97 * (sum(map(ord, spec.name)) % 1000)
    for split, count, offset in (("train", train, 0), ("val", val, 500_000)):
        img_dir, ann_dir = folder / "img_dir" / split, folder / "ann_dir" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, label = render_scene(spec, base + offset + i, size)
            stem = f"{spec.name}_{i:05d}"
            x0 = 500_000 + (i % 20) * size * spec.gsd_m
            y0 = 5_800_000 - (i // 20) * size * spec.gsd_m
            profile = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8", crs="EPSG:32632",
                           transform=from_origin(x0, y0, spec.gsd_m, spec.gsd_m))  # fmt: skip
            with rasterio.open(img_dir / f"{stem}.tif", "w", **profile) as dst:
                dst.write(np.moveaxis(image, -1, 0))
            Image.fromarray((label + 1).astype(np.uint8)).save(ann_dir / f"{stem}.png")
    return folder


ARCHIVE_SEED_BASE = 10_000_000  # scene seeds of the archive: far from every demo and synth seed


def archive_spec(rng: np.random.Generator, index: int) -> DomainSpec:
    """One draw of the broad pretraining archive (`generate_archive`): every region; band layout
    RGB (60 %), IRRG (20 %) or R-G-NIR (20 %); GSD 0.15-0.7 m; an aerial (blur 0-0.5 px, noise
    0.005-0.02, haze 0-0.05) or satellite platform (blur 0.8-2.2 px, noise 0.02-0.05, haze
    0.05-0.3), half each; every season; brightness 0.6-1.3; sun azimuth 0-360°. A draw equal to
    one of the `DOMAINS` (the demo's source and targets) is drawn again."""
    while True:
        satellite = rng.random() < 0.5
        spec = DomainSpec(
            name=f"archive-{index:06d}",
            bands=str(rng.choice(["RGB", "IRRG", "RGNIR"], p=[0.6, 0.2, 0.2])),
            region=str(rng.choice(list(REGIONS))),
            gsd_m=round(float(rng.uniform(0.15, 0.7)), 3),
            blur_sigma_px=round(float(rng.uniform(0.8, 2.2) if satellite else rng.uniform(0, 0.5)), 2),
            noise=round(float(rng.uniform(0.02, 0.05) if satellite else rng.uniform(0.005, 0.02)), 3),
            haze=round(float(rng.uniform(0.05, 0.3) if satellite else rng.uniform(0, 0.05)), 3),
            season=str(rng.choice(list(SEASONS))),
            brightness=round(float(rng.uniform(0.6, 1.3)), 3),
            sun_azimuth_deg=round(float(rng.uniform(0, 360)), 1),
        )  # fmt: skip
        fields = dataclasses.astuple(spec)[1:]
        if all(fields != dataclasses.astuple(d)[1:] for d in DOMAINS.values()):
            return spec


def generate_archive(root: str | Path, count: int, *, size: int = 256, seed: int = 0) -> Path:
    """Write `count` unlabelled scenes of random `archive_spec` draws as GeoTIFFs (deflate) in
    `root/archive_<i>.tif`, and `root/archive.json` listing each scene's spec and seed."""
    import json

    import rasterio
    from rasterio.transform import from_origin

    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    listing = []
    for i in range(count):
        spec = archive_spec(rng, i)
        scene_seed = ARCHIVE_SEED_BASE + seed * 1_000_000 + i
        image, _ = render_scene(spec, scene_seed, size)
        profile = dict(driver="GTiff", height=size, width=size, count=3, dtype="uint8",
                       crs="EPSG:32632", compress="deflate",
                       transform=from_origin(500_000 + 1000 * (i % 50), 5_900_000 - 1000 * (i // 50),
                                             spec.gsd_m, spec.gsd_m))  # fmt: skip
        with rasterio.open(folder / f"archive_{i:06d}.tif", "w", **profile) as dst:
            dst.write(np.moveaxis(image, -1, 0))
        listing.append(dataclasses.asdict(spec) | {"seed": scene_seed})
    (folder / "archive.json").write_text(json.dumps(listing, indent=1))
    return folder


def with_overrides(spec: DomainSpec, **changes: object) -> DomainSpec:
    return dataclasses.replace(spec, **changes)


CLASSES = ISPRS

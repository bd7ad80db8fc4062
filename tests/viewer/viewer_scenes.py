"""Generated `predict` outputs for the viewer tests: the files predict writes, in its formats.

The class map has one class per quadrant (top-left 0, top-right 1, bottom-left 2, bottom-right 3),
so where each colour must appear on the map is known without running a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from crossearth.geo.area import area_table, row_class_counts, row_pixel_areas_m2
from crossearth.predict.writer import ClassMapWriter

NAMES = ("water", "road", "tree", "roof", "grass")
PALETTE = ((0, 0, 255), (128, 128, 128), (0, 160, 0), (220, 0, 0), (250, 220, 60))
UTM = CRS.from_epsg(32633)  # Berlin: 13.4 E, 52.5 N
ORIGIN = (390_000.0, 5_820_000.0)


def quadrant_labels(height: int, width: int) -> np.ndarray:
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[: height // 2, width // 2 :] = 1
    labels[height // 2 :, : width // 2] = 2
    labels[height // 2 :, width // 2 :] = 3
    return labels


def make_outputs(
    folder: Path,
    height: int = 400,
    width: int = 600,
    gsd: float = 1.0,
    crs: CRS | None = UTM,
    stem: str = "scene",
    confidence: bool = True,
    summary: bool = True,
    patch: tuple[int, int] | None = None,
) -> Path:
    """Write STEM.tif (the input), STEM_classes.tif, STEM_confidence.tif, STEM_summary.json.

    Returns the class map's path. Confidence is 10 + 20 * class id (percent). `patch` (row,
    column): a 6 x 6 pixel square of class 4 there.
    """
    folder.mkdir(parents=True, exist_ok=True)
    transform = from_origin(*ORIGIN, gsd, gsd)
    labels = quadrant_labels(height, width)
    if patch is not None:
        labels[patch[0] : patch[0] + 6, patch[1] : patch[1] + 6] = 4
    image = np.stack([labels * 40 + 30, 200 - labels * 30, np.full_like(labels, 90)])
    image_path = folder / f"{stem}.tif"
    profile = dict(driver="GTiff", height=height, width=width, count=3, dtype="uint8")
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(image_path, "w", **profile) as dst:
        dst.write(image.astype(np.uint8))
    classes = folder / f"{stem}_classes.tif"
    writer = ClassMapWriter(
        classes,
        height=height,
        width=width,
        crs=crs,
        transform=transform if crs is not None else None,
        palette=PALETTE,
        class_names=NAMES,
        confidence_path=folder / f"{stem}_confidence.tif" if confidence else None,
    )
    writer.write_rows(0, labels, (10 + 20 * labels).astype(np.uint8))
    writer.commit()
    if summary:
        areas = row_pixel_areas_m2(transform, crs, height) if crs is not None else None
        doc = {
            "input": str(image_path),
            "class_map": str(classes),
            "size": [height, width],
            "crs": crs.to_string() if crs is not None else None,
            "bands": [1, 2, 3],
            "scaling": {"low": [0.0] * 3, "high": [255.0] * 3},
            "model": {"classes": list(NAMES)},
            "classes": area_table(row_class_counts(labels, len(NAMES)), areas, NAMES),
        }
        if confidence:
            doc["confidence"] = str(folder / f"{stem}_confidence.tif")
        (folder / f"{stem}_summary.json").write_text(json.dumps(doc))
    return classes

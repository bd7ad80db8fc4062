"""Make docs/viewer.png, the README's screenshot of `crossearth view` (needs `chromium`).

The scene is a SynthEarth urban aerial scene; its ground-truth label map stands in for a
prediction (no trained model can be downloaded here), written in predict's formats.
Run: PYTHONPATH=src python docs/make_viewer_screenshot.py
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from rasterio.warp import transform

from crossearth.data.classes import ISPRS
from crossearth.data.synthetic import DOMAINS, render_scene
from crossearth.geo.area import area_table, row_class_counts, row_pixel_areas_m2
from crossearth.predict.writer import ClassMapWriter
from crossearth.viewer import write_map

SIZE, GSD, ORIGIN, CRS = 640, 0.25, (390_000.0, 5_820_000.0), "EPSG:32633"


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="viewer-shot-"))
    image, label = render_scene(DOMAINS["urban-aerial-rgb"], seed=7, size=SIZE)
    geo = from_origin(*ORIGIN, GSD, GSD)
    profile = dict(driver="GTiff", height=SIZE, width=SIZE, count=3, dtype="uint8", crs=CRS,
                   transform=geo)  # fmt: skip
    with rasterio.open(out / "scene.tif", "w", **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    names, palette = ISPRS.names, ISPRS.palette
    writer = ClassMapWriter(out / "scene_classes.tif", height=SIZE, width=SIZE, crs=CRS,
                            transform=geo, palette=palette, class_names=names)  # fmt: skip
    writer.write_rows(0, label.astype(np.uint8), None)
    writer.commit()
    areas = row_pixel_areas_m2(geo, rasterio.crs.CRS.from_string(CRS), SIZE)
    summary = {
        "input": str(out / "scene.tif"),
        "bands": [1, 2, 3],
        "scaling": {"low": [0, 0, 0], "high": [255, 255, 255]},
        "classes": area_table(row_class_counts(label, len(names)), areas, names),
    }
    (out / "scene_summary.json").write_text(json.dumps(summary))
    page = write_map(out, opacity=0.55)[0]
    (lon,), (lat,) = transform(CRS, "EPSG:4326", [ORIGIN[0] + 100.0], [ORIGIN[1] - 60.0])
    shot = out / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={out / 'profile'}",
         "--window-size=1000,620", "--virtual-time-budget=4000", f"--screenshot={shot}",
         f"{page.as_uri()}#at={lat:.7f},{lon:.7f}"],
        check=True, capture_output=True,
    )  # fmt: skip
    target = Path(__file__).with_name("viewer.png")
    Image.open(shot).convert("RGB").quantize(colors=128).save(target, optimize=True)
    print(target, target.stat().st_size // 1024, "KB")


if __name__ == "__main__":
    main()

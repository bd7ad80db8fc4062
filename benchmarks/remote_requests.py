"""HTTP requests per remote scene: what finding sidecar files and identifying the object cost.

Files served by the tests' range-capable server on 127.0.0.1 (`tests/geo/remote_server.py`):
a 512² GeoTIFF with no sidecars (the usual COG) and a PNG with a `.pgw` world file. Each is
opened and one 256² window read, in a fresh process per setting (GDAL caches answers per
process), under three GDAL settings:

- `EMPTY_DIR`: GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR (crossearth before: no sidecar is seen);
- `crossearth`: `crossearth.geo.remote.remote_env` (probe only the sidecars that matter);
- `TRUE`: GDAL_DISABLE_READDIR_ON_OPEN=TRUE alone (probe every name GDAL knows).

Also the requests of `crossearth.geo.remote.object_identity` (the resume fingerprint).

    .venv/bin/python benchmarks/remote_requests.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "geo"))  # the tests' range-capable server

from crossearth.runtime import cpu_description  # noqa: E402

OPEN = """
import sys, warnings
import rasterio
from rasterio.windows import Window
from crossearth.geo.remote import REMOTE_ENV, gdal_path, remote_env, object_identity
warnings.simplefilter("ignore")
url, setting = sys.argv[1], sys.argv[2]
if setting == "identity":
    object_identity(url)
    sys.exit()
env = {"EMPTY_DIR": REMOTE_ENV, "crossearth": remote_env(url),
       "TRUE": {**REMOTE_ENV, "GDAL_DISABLE_READDIR_ON_OPEN": "TRUE"}}[setting]
with rasterio.Env(**env), rasterio.open(gdal_path(url)) as ds:
    ds.read(window=Window(0, 0, 256, 256)); ds.dataset_mask(window=Window(0, 0, 256, 256))
    print(ds.transform.c, ds.descriptions, flush=True)
"""


def make_files(folder: Path) -> None:
    import warnings

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    data = np.random.default_rng(0).integers(0, 256, (3, 512, 512), dtype=np.uint8)
    profile = {"height": 512, "width": 512, "count": 3, "dtype": "uint8"}
    with rasterio.open(folder / "cog.tif", "w", driver="GTiff", tiled=True, crs="EPSG:32632",
                       transform=from_origin(5e5, 5.8e6, 1, 1), **profile) as dst:  # fmt: skip
        dst.write(data)
    with warnings.catch_warnings(), rasterio.open(folder / "scene.png", "w", driver="PNG",
                                                   **profile) as dst:  # fmt: skip
        warnings.simplefilter("ignore")
        dst.write(data)
    (folder / "scene.pgw").write_text("1\n0\n0\n-1\n500000.5\n5800000.5\n")


def main() -> None:
    from remote_server import RangeServer

    print(cpu_description())
    folder = Path(tempfile.mkdtemp(prefix="ce-requests-"))
    make_files(folder)
    for name in ("cog.tif", "scene.png"):
        for setting in ("EMPTY_DIR", "crossearth", "TRUE", "identity"):
            with RangeServer(folder) as server:
                result = subprocess.run(
                    [sys.executable, "-c", OPEN, server.url(name), setting],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
            requests = server.requests
            absent = [p for _, p, _ in requests if not (folder / p.lstrip("/")).exists()]
            placed = result.stdout.split(" ", 1)[0] if result.stdout else "-"
            print(f"{name:10s} {setting:10s}: {len(requests):2d} requests, {len(absent):2d} for "
                  f"absent files; x origin {placed}")  # fmt: skip


if __name__ == "__main__":
    main()

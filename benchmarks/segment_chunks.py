"""`crossearth.segment` on a chunked DataArray against `predict_raster` on the same file.

    PYTHONPATH=src .venv/bin/python benchmarks/segment_chunks.py [--size 1536] [--chunks 256 512 1024]

A vit-tiny-256 model (crop 256, stride 171, batch 4, fp32, one torch thread) segments a
SIZE x SIZE RGB GeoTIFF once through `predict_raster` (the baseline, one stream) and once per
output chunk size through `segment(..., chunks=SIZE)` on `rioxarray.open_rasterio(path,
chunks=SIZE)` (default output chunks group input chunks to span 4 windows: 1024 here), computed
with Dask's synchronous scheduler (one task at a time, so the ratio is the work, not the
parallelism). Printed per chunk size: the windows the chunks run in all / the whole run's
windows (a window touching k chunks runs k times, with the rest of its batch), the wall time
/ the baseline's in the same run, and whether the class maps are equal byte for byte.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from crossearth.runtime import cpu_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1536)
    parser.add_argument("--chunks", type=int, nargs="+", default=[256, 512, 1024])
    args = parser.parse_args()

    import dask
    import numpy as np
    import rasterio
    import rioxarray
    import torch
    from rasterio.transform import from_origin

    import crossearth
    from crossearth.dataarray.plan import WindowGrid
    from crossearth.predict import PredictOptions, predict_raster

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256", num_classes=6)
    rng = np.random.default_rng(0)
    size = args.size
    data = np.kron(rng.integers(0, 256, (3, size // 32 + 1, size // 32 + 1)),
                   np.ones((1, 32, 32), np.int64))[:, :size, :size].astype(np.uint8)  # fmt: skip
    print(f"cpu: {cpu_description()}; torch {torch.__version__}, 1 thread; a shared machine")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.tif"
        profile = {"driver": "GTiff", "height": size, "width": size, "count": 3,
                   "dtype": "uint8", "crs": "EPSG:32632",
                   "transform": from_origin(5e5, 58e5, 0.5, 0.5), "tiled": True}  # fmt: skip
        with rasterio.open(path, "w", **profile) as f:
            f.write(data)
        options = PredictOptions(preview=False, overlay=False)
        start = time.perf_counter()
        predict_raster(model, path, Path(tmp) / "out.tif", options)
        baseline = time.perf_counter() - start
        with rasterio.open(Path(tmp) / "out.tif") as f:
            reference = f.read(1)
        cfg = model.config.inference
        grid = WindowGrid(size, size, cfg.crop_size, cfg.stride, options.batch_size)
        print(f"{size} x {size} px, {len(grid.windows)} windows; predict_raster {baseline:.2f} s")
        print("chunk px | windows run / whole run | time / predict_raster | equal")
        for chunk in args.chunks:
            runs = sum(
                grid.plan(y, min(y + chunk, size), x, min(x + chunk, size)).windows
                for y in range(0, size, chunk)
                for x in range(0, size, chunk)
            )
            array = rioxarray.open_rasterio(path, chunks={"y": chunk, "x": chunk})
            start = time.perf_counter()
            with dask.config.set(scheduler="synchronous"):
                labels = crossearth.segment(array, model, chunks=chunk).values
            seconds = time.perf_counter() - start
            print(f"{chunk:8d} | {runs / len(grid.windows):23.2f} | {seconds / baseline:21.2f} "
                  f"| {bool((labels == reference).all())}")  # fmt: skip


if __name__ == "__main__":
    main()

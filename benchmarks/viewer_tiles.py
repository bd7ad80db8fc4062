"""Time and peak memory of `crossearth view` on large scenes (tile pyramid), in one run.

Each scene is generated row block by row block (class map through predict's writer, a 3-band
uint8 image, a summary), then mapped in a fresh process so its peak RSS (ru_maxrss) is its own.
Prints the CPU model and flags like the other benchmarks.

    .venv/bin/python benchmarks/viewer_tiles.py [--sizes 4000x2000 16000x2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from crossearth.viewer import write_map
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
page = write_map(sys.argv[1], tiles=True)[0]
seconds = time.perf_counter() - start
files = page.parent / (page.stem + "_files")
tiles = [p for p in files.rglob("*") if p.suffix in (".png", ".js")]
print(json.dumps({"seconds": seconds, "tiles": len(tiles),
                  "tile_mb": sum(t.stat().st_size for t in tiles) / 2**20,
                  "page_kb": page.stat().st_size / 1024,
                  "rss_import_mb": rss_import, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cpu() -> str:
    model, flags = "unknown", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    wanted = [f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni") if f in flags]
    return f"{model}; flags: {', '.join(wanted) or 'none of amx/avx512_bf16/avx512_vnni'}"


def make_scene(folder: Path, width: int, height: int) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from crossearth.data.classes import ISPRS
    from crossearth.predict.writer import ClassMapWriter

    geo = from_origin(390_000.0, 5_820_000.0, 0.3, 0.3)
    writer = ClassMapWriter(folder / "big_classes.tif", height=height, width=width,
                            crs="EPSG:32633", transform=geo, palette=ISPRS.palette,
                            class_names=ISPRS.names)  # fmt: skip
    profile = dict(driver="GTiff", height=height, width=width, count=3, dtype="uint8",
                   crs="EPSG:32633", transform=geo, tiled=True, compress="deflate")  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(folder / "big.tif", "w", **profile) as image:
        for y0 in range(0, height, 512):
            rows = min(512, height - y0)
            blocks = rng.integers(0, 6, (rows // 32 + 1, width // 32 + 1), dtype=np.uint8)
            labels = np.kron(blocks, np.ones((32, 32), np.uint8))[:rows, :width]
            writer.write_rows(y0, labels, None)
            rgb = np.stack([labels * 40, 200 - labels * 30, labels * 10 + 50]).astype(np.uint8)
            image.write(rgb, window=rasterio.windows.Window(0, y0, width, rows))
    writer.commit()
    summary = {"input": str(folder / "big.tif"), "bands": [1, 2, 3],
               "scaling": {"low": [0, 0, 0], "high": [255, 255, 255]}}  # fmt: skip
    (folder / "big_summary.json").write_text(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["4000x2000", "16000x2000"])
    args = parser.parse_args()
    print(cpu())
    for size in args.sizes:
        width, height = (int(v) for v in size.split("x"))
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            make_scene(Path(tmp), width, height)
            made = time.perf_counter() - start
            out = subprocess.run([sys.executable, "-c", CHILD, tmp], capture_output=True,
                                 text=True, check=True)  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{width} x {height} px ({width * height / 1e6:.0f} MP, made in {made:.0f} s): "
                  f"{result['seconds']:.1f} s, {result['tiles']} tile files ({result['tile_mb']:.1f} MB), "
                  f"page {result['page_kb']:.0f} KB, peak RSS {result['peak_rss_mb']:.0f} MB "
              f"({result['rss_import_mb']:.0f} MB after importing crossearth)")  # fmt: skip


if __name__ == "__main__":
    main()

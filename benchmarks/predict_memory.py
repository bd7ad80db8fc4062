"""Peak memory and speed of streamed `predict` on a 2,000² and a 12,000² GeoTIFF, in one run.

Each prediction runs in a fresh process so its peak RSS (ru_maxrss) is its own. The scenes are
generated tile by tile (3-band uint8, UTM, tiled + deflate). The model is a small random-weight
config (memory behaviour does not depend on the weights); `--preset vit-tiny-256` measures the
smallest named preset instead (slower).

    .venv/bin/python benchmarks/predict_memory.py [--sizes 2000 12000] [--preset nano]
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
import crossearth
from crossearth.predict import PredictOptions, predict_raster
model = crossearth.load_model(sys.argv[1], precision=sys.argv[4])
rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
summary = predict_raster(model, sys.argv[2], sys.argv[3], PredictOptions(overlay=True, preview=True))
seconds = time.perf_counter() - start
print(json.dumps({"rss_after_load_mb": rss_model / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": seconds, "windows": summary["windows"],
                  "model_s": summary["seconds"]["model"], "read_s": summary["seconds"]["read"],
                  "write_s": summary["seconds"]["write"]}))
"""


def nano_config():
    """A deliberately small CrossEarth (same module types) so a 144-Mpx scene runs in minutes."""
    from crossearth.config import (
        BackboneConfig,
        HeadConfig,
        InferenceConfig,
        ModelConfig,
        ReinConfig,
    )

    return ModelConfig(
        backbone=BackboneConfig(
            embed_dim=64, depth=4, num_heads=1, img_size=256, out_indices=(0, 1, 2, 3)
        ),
        rein=ReinConfig(token_length=20, lora_dim=4, query_dims=64),
        head=HeadConfig(
            num_classes=6,
            num_queries=20,
            feat_channels=64,
            out_channels=64,
            pos_num_feats=32,
            norm_groups=8,
            encoder_layers=1,
            encoder_ffn_dim=128,
            decoder_layers=1,
            decoder_ffn_dim=128,
        ),
        inference=InferenceConfig(crop_size=(256, 256), stride=(171, 171)),
    )


def make_scene(path: Path, size: int, width: int | None = None) -> None:
    """A `size` x `width` (default square) 3-band uint8 tiled GeoTIFF of blocks plus noise."""
    import rasterio
    from rasterio.transform import from_origin

    height, width = size, width or size
    profile = dict(
        driver="GTiff", height=height, width=width, count=3, dtype="uint8", crs="EPSG:32632",
        transform=from_origin(500000, 5800000, 0.3, 0.3), tiled=True, blockxsize=512,
        blockysize=512, compress="deflate",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for y0 in range(0, height, 512):
            rows = min(512, height - y0)
            yy, xx = np.mgrid[y0 : y0 + rows, 0:width]
            base = ((xx // 97 + yy // 131) % 5 * 40 + 40).astype(np.uint8)
            noise = rng.integers(0, 20, (3, rows, width), dtype=np.uint8)
            dst.write(base[None] + noise, window=rasterio.windows.Window(0, y0, width, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 12000])
    parser.add_argument("--preset", default="nano", help="nano (default) or a named preset")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    import torch

    import crossearth
    from crossearth.models import CrossEarth

    work = Path(tempfile.mkdtemp(prefix="ce-bench-"))
    torch.manual_seed(0)
    model = (
        CrossEarth(nano_config()) if args.preset == "nano" else crossearth.create_model(args.preset)
    )
    model_path = work / "model.safetensors"
    crossearth.save_model(model, model_path)
    results = {"preset": args.preset, "precision": args.precision, "runs": {}}
    for size in args.sizes:
        scene = work / f"scene_{size}.tif"
        start = time.perf_counter()
        make_scene(scene, size)
        out = work / f"out_{size}"
        out.mkdir()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(model_path), str(scene), str(out), args.precision],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode:
            sys.exit(proc.stderr)
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        run["megapixels"] = size * size / 1e6
        run["seconds_per_megapixel"] = run["seconds"] / run["megapixels"]
        results["runs"][size] = run
        print(
            f"{size}x{size} ({run['megapixels']:.0f} Mpx, {run['windows']} windows): peak RSS "
            f"{run['peak_rss_mb']:.0f} MB (after model load {run['rss_after_load_mb']:.0f} MB), "
            f"{run['seconds']:.1f} s = {run['seconds_per_megapixel']:.2f} s/Mpx "
            f"(model {run['model_s']:.1f} s, read {run['read_s']:.1f} s, write {run['write_s']:.1f} s; "
            f"scene generated in {time.perf_counter() - start - run['seconds']:.0f} s)"
        )
    if len(args.sizes) >= 2:
        small, large = (results["runs"][s] for s in (min(args.sizes), max(args.sizes)))
        diff = large["peak_rss_mb"] - small["peak_rss_mb"]
        results["peak_rss_difference_mb"] = diff
        print(f"peak RSS difference {max(args.sizes)}² vs {min(args.sizes)}²: {diff:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

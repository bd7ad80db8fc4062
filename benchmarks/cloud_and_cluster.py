"""Scenes per hour with 1 and 2 `predict` processes sharing scenes, and HTTP bytes of a window.

1. `--scenes` scenes (`--size`² px, 3-band uint8 GeoTIFFs) run by one process, then by two
   processes (RANK/WORLD_SIZE, claiming scenes through the manifest), each with
   `--threads` torch threads; scenes per hour from the wall time of each run (model load
   included), measured in this one run.
2. One huge scene (`--huge-height` x `--huge-width` px) run whole by one process, then split
   in two parts (`--parts 2`) run by two processes and assembled: wall times, the windows
   the parts ran beyond the whole run's (the overlap at the cut), the assembly's seconds, and
   whether the class maps are byte-identical.
3. A `--cog-size`² noise COG (incompressible, the worst case) served by a range-capable
   server on 127.0.0.1: bytes served for one 256² window read through `/vsicurl/` vs the size of
   the file.

The model is the small random-weight "nano" config of `predict_memory.py` (speed ratios, not
absolute model speed).

    .venv/bin/python benchmarks/cloud_and_cluster.py [--scenes 8 --size 512 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "geo"))  # the tests' range-capable server

from predict_memory import make_scene, nano_config  # noqa: E402

from crossearth.runtime import cpu_description  # noqa: E402


def run_processes(files, model, out: Path, world: int, threads: int, *extra: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in {"RANK", "WORLD_SIZE", "SLURM_PROCID"}}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "crossearth", "predict", *map(str, files), "-m", str(model)]
    cmd += ["-o", str(out), "-q", "--precision", "fp32", "--device", "cpu", "--no-overlay"]
    cmd += list(extra)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, env={**env, "RANK": str(r), "WORLD_SIZE": str(world)})
        for r in range(world)
    ]
    if any(p.wait() for p in procs):
        sys.exit("a predict process failed")
    return time.perf_counter() - start


def http_window_bytes(work: Path, size: int) -> tuple[int, int]:
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    from remote_server import RangeServer

    from crossearth.geo.raster import open_raster

    served = work / "served"
    served.mkdir()
    plain = work / "plain.tif"
    noise = np.random.default_rng(0).integers(0, 256, (3, size, size), dtype=np.uint8)
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 3, "dtype": "uint8"}
    with rasterio.open(
        plain, "w", crs="EPSG:32632", transform=from_origin(5e5, 5.8e6, 1, 1), **profile
    ) as dst:
        dst.write(noise)
    cog = served / "cog.tif"
    rasterio.shutil.copy(plain, cog, driver="COG", BLOCKSIZE=256, COMPRESS="DEFLATE")
    with RangeServer(served) as server, open_raster(server.url("cog.tif")) as ds:
        ds.read(window=Window(size // 2, size // 2, 256, 256))
    return server.sent["/cog.tif"], cog.stat().st_size


def huge_scene(work: Path, model: Path, args) -> dict:
    """One scene whole in one process vs split in two parts over two processes."""
    scene = work / "huge.tif"
    make_scene(scene, args.huge_height, args.huge_width)
    whole = run_processes([scene], model, work / "huge_1", 1, args.threads)
    split = run_processes([scene], model, work / "huge_2", 2, args.threads, "--parts", "2")
    summary = json.loads((work / "huge_2" / "huge_summary.json").read_text())
    same = (work / "huge_1" / "huge_classes.tif").read_bytes() == (
        work / "huge_2" / "huge_classes.tif"
    ).read_bytes()
    extra = summary["windows_run"] / summary["windows"] - 1
    print(f"one {args.huge_height} x {args.huge_width} scene: 1 process {whole:.1f} s, "
          f"2 processes x 1 part {split:.1f} s ({whole / split:.2f}x); the parts ran "
          f"{summary['windows_run']} windows for the whole run's {summary['windows']} "
          f"(+{100 * extra:.1f} %); assembly {summary['seconds']['assemble']:.2f} s; "
          f"class maps identical: {same}")  # fmt: skip
    return {"huge_seconds_1": whole, "huge_seconds_2": split, "huge_extra_windows": extra,
            "huge_assemble_seconds": summary["seconds"]["assemble"], "huge_identical": same}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--huge-height", type=int, default=6144)
    parser.add_argument("--huge-width", type=int, default=2048)
    parser.add_argument("--cog-size", type=int, default=4096)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    import torch

    import crossearth
    from crossearth.models import CrossEarth

    print(cpu_description())
    work = Path(tempfile.mkdtemp(prefix="ce-cloud-"))
    torch.manual_seed(0)
    model = work / "model.safetensors"
    crossearth.save_model(CrossEarth(nano_config()), model)
    files = []
    for i in range(args.scenes):
        files.append(work / f"scene_{i}.tif")
        make_scene(files[-1], args.size)
    results = {"cpu": cpu_description(), "scenes": args.scenes, "size": args.size}
    for world in (1, 2):
        seconds = run_processes(files, model, work / f"out_{world}", world, args.threads)
        results[f"scenes_per_hour_{world}"] = args.scenes / seconds * 3600
        print(f"{world} process(es): {args.scenes} scenes of {args.size}² in {seconds:.1f} s = "
              f"{results[f'scenes_per_hour_{world}']:.0f} scenes/h")  # fmt: skip
    same = all(
        (work / "out_1" / f"scene_{i}_classes.tif").read_bytes()
        == (work / "out_2" / f"scene_{i}_classes.tif").read_bytes()
        for i in range(args.scenes)
    )
    ratio = results["scenes_per_hour_2"] / results["scenes_per_hour_1"]
    print(f"2 / 1 processes: {ratio:.2f}x; class maps identical: {same}")
    results.update(huge_scene(work, model, args))
    sent, size = http_window_bytes(work, args.cog_size)
    results.update(ratio_2_to_1=ratio, identical=same, http_bytes=sent, cog_bytes=size)
    print(f"one 256² window of a {args.cog_size}² COG over HTTP: {sent:,} of {size:,} bytes "
          f"({100 * sent / size:.2f} %)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Scenes per hour on Dask with 1 and 2 workers against one process, the scheduler's overhead
per task, one huge scene over 2 workers, and HTTP bytes of a window.

1. `--scenes` scenes (`--size`² px, 3-band uint8 GeoTIFFs) run by one `predict` process (no
   Dask), then with `--cluster local --workers 1` and `--workers 2`, every process (the single
   one, each worker) with `--threads` torch threads; scenes per hour from the wall time of each
   command (model load and cluster start included), measured in this one run.
2. The scheduler's overhead per task: a LocalCluster of one worker process runs `--tasks`
   tasks that do nothing, one after the other (submit, wait: a round trip each) and all at
   once (throughput).
3. One huge scene (`--huge-height` x `--huge-width` px) run whole by one process, then with
   `--cluster local --workers 2` (auto: split in two parts, one per worker, and assembled):
   wall times, the windows the parts ran beyond the whole run's (the overlap at the cut), the
   assembly's seconds, and whether the class maps are byte-identical.
4. A `--cog-size`² noise COG (incompressible, the worst case) served by a range-capable
   server on 127.0.0.1: bytes served for one 256² window read through `/vsicurl/` vs the size of
   the file.

The model is the small random-weight "nano" config of `predict_memory.py` (speed ratios, not
absolute model speed).

    .venv/bin/python benchmarks/cloud_and_cluster.py [--scenes 8 --size 512 --threads 1]
    (needs pip install 'crossearth[dask]')
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


def run_predict(files, model, out: Path, threads: int, *extra: str) -> float:
    """Wall seconds of one `predict` command (a fresh process: imports, model load, and with
    `--cluster local` the cluster's start and stop, all included)."""
    env = {**os.environ, "CROSSEARTH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    env["PYTHONWARNINGS"] = "ignore"
    cmd = [sys.executable, "-m", "crossearth", "predict", *map(str, files), "-m", str(model)]
    cmd += ["-o", str(out), "-q", "--precision", "fp32", "--device", "cpu", "--no-overlay"]
    cmd += list(extra)
    start = time.perf_counter()
    if subprocess.run(cmd, env=env).returncode:
        sys.exit("a predict run failed")
    return time.perf_counter() - start


def _nothing(i: int) -> int:
    return i


def scheduler_overhead(tasks: int) -> dict:
    """Seconds per task of tasks that do nothing on a LocalCluster of one worker process."""
    import logging

    from distributed import Client, LocalCluster, wait

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:  # fmt: skip
        client.submit(_nothing, -1, pure=False).result()  # warm: the worker has connected
        start = time.perf_counter()
        for i in range(tasks):
            client.submit(_nothing, i, pure=False).result()
        round_trip = (time.perf_counter() - start) / tasks
        start = time.perf_counter()
        wait([client.submit(_nothing, i, pure=False) for i in range(tasks)])
        throughput = (time.perf_counter() - start) / tasks
    print(f"scheduler overhead per task (LocalCluster, 1 worker, {tasks} no-op tasks): "
          f"{1000 * round_trip:.1f} ms one at a time (submit + result), "
          f"{1000 * throughput:.2f} ms each submitted together")  # fmt: skip
    return {"task_round_trip_ms": 1000 * round_trip, "task_throughput_ms": 1000 * throughput}


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
    """One scene whole in one process vs split in two parts over two Dask workers."""
    scene = work / "huge.tif"
    make_scene(scene, args.huge_height, args.huge_width)
    whole = run_predict([scene], model, work / "huge_1", args.threads)
    split = run_predict([scene], model, work / "huge_2", args.threads, "--cluster", "local",
                        "--workers", "2")  # fmt: skip
    summary = json.loads((work / "huge_2" / "huge_summary.json").read_text())
    same = (work / "huge_1" / "huge_classes.tif").read_bytes() == (
        work / "huge_2" / "huge_classes.tif"
    ).read_bytes()
    extra = summary["windows_run"] / summary["windows"] - 1
    print(f"one {args.huge_height} x {args.huge_width} scene: 1 process {whole:.1f} s, "
          f"2 workers x 1 part {split:.1f} s ({whole / split:.2f}x); the parts ran "
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
    parser.add_argument("--tasks", type=int, default=200, help="no-op tasks for the overhead")
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
    runs = {"single": (), "workers_1": ("--cluster", "local", "--workers", "1"),
            "workers_2": ("--cluster", "local", "--workers", "2")}  # fmt: skip
    for name, extra in runs.items():
        seconds = run_predict(files, model, work / f"out_{name}", args.threads, *extra)
        results[f"scenes_per_hour_{name}"] = args.scenes / seconds * 3600
        print(f"{name.replace('_', ' ')}: {args.scenes} scenes of {args.size}² in {seconds:.1f} s "
              f"= {results[f'scenes_per_hour_{name}']:.0f} scenes/h")  # fmt: skip
    same = all(
        (work / "out_single" / f"scene_{i}_classes.tif").read_bytes()
        == (work / f"out_{name}" / f"scene_{i}_classes.tif").read_bytes()
        for i in range(args.scenes)
        for name in runs
    )
    base = results["scenes_per_hour_single"]
    ratios = {n: results[f"scenes_per_hour_{n}"] / base for n in ("workers_1", "workers_2")}
    print(f"against one process: 1 worker {ratios['workers_1']:.2f}x, 2 workers "
          f"{ratios['workers_2']:.2f}x; class maps identical: {same}")  # fmt: skip
    results.update(scheduler_overhead(args.tasks))
    results.update(huge_scene(work, model, args))
    sent, size = http_window_bytes(work, args.cog_size)
    results.update(ratios=ratios, identical=same, http_bytes=sent, cog_bytes=size)
    print(f"one 256² window of a {args.cog_size}² COG over HTTP: {sent:,} of {size:,} bytes "
          f"({100 * sent / size:.2f} %)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

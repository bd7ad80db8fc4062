"""Sharing a machine: one process alone vs two side by side, `predict` windows/s and `train` steps/s.

    .venv/bin/python benchmarks/sharing.py [--seconds 12] [--jobs predict train]

For each OpenMP wait policy (ACTIVE: threads spin between parallel regions, as before;
PASSIVE: they sleep, crossearth's default), each job runs once alone and then as two processes at
the same time, each with crossearth's default thread count (the CPUs the process may use). A
process's *share* is its rate side by side divided by its rate alone in the same run: on 2 cores,
a fair share is 50 %. "passive alone / active alone" is what passive waiting costs a process alone.

Jobs (fp32, so that no bf16 emulation is involved): `predict` streams a 1200 x 1200 RGB GeoTIFF
through `predict_raster` with a vit-tiny-256 model (batch 4); `train` runs Rein PEFT training
steps of vit-tiny-256 (batch 2, crop 256, Mask2Former loss, AdamW). Workers start their measured
loop at the same wall-clock time, after their warm-up.
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


def worker(job: str, start_at: float, seconds: float, work: Path) -> dict:
    """Warm up, wait for `start_at`, then repeat the job for `seconds`; returns its rate."""
    import torch

    import crossearth

    crossearth.configure_threads()
    torch.manual_seed(0)
    model = crossearth.create_model("vit-tiny-256", num_classes=6)
    if job == "predict":
        from crossearth.predict import PredictOptions, predict_raster

        scene = work / "scene.tif"
        options = PredictOptions(batch_size=4, preview=False, overlay=False)
        model.eval()
        counter = iter(range(10**6))

        def once() -> int:
            out = work / f"out-{os.getpid()}-{next(counter)}"
            out.mkdir()
            return int(predict_raster(model, scene, out, options)["windows"])

    else:
        from crossearth.inference import normalize
        from crossearth.train.config import TrainConfig
        from crossearth.train.losses import Mask2FormerLoss
        from crossearth.train.module import CrossEarthModule

        module = CrossEarthModule(model, TrainConfig(preset="vit-tiny-256", freeze_backbone=True))
        module.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-4)
        criterion = Mask2FormerLoss(6)
        images = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8)
        labels = torch.randint(0, 6, (2, 256, 256))
        cfg = model.config.inference

        def once() -> int:
            out = model.forward_head(normalize(images, cfg.mean, cfg.std), all_stages=True)
            criterion(out.class_logits, out.mask_logits, labels)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return 1

    once()  # warm-up
    time.sleep(max(0.0, start_at - time.time()))
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        done += once()
    return {"rate": done / (time.perf_counter() - began), "threads": torch.get_num_threads()}


def write_scene(path: Path) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    fields = rng.integers(0, 256, (3, 12, 12), dtype=np.uint8)
    data = np.repeat(np.repeat(fields, 100, axis=1), 100, axis=2)
    profile = {"driver": "GTiff", "width": 1200, "height": 1200, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32632", "transform": from_origin(500000, 5000000, 0.5, 0.5)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def run(job: str, processes: int, policy: str, seconds: float, work: Path) -> list[dict]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    env.pop("OMP_NUM_THREADS", None)
    start_at = time.time() + 25  # after every worker's imports and warm-up
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", job, str(start_at), str(seconds), str(work)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"worker failed ({job}, {policy})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--jobs", nargs="+", default=["predict", "train"])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job, start_at, seconds, work = args.worker
        print(json.dumps(worker(job, float(start_at), float(seconds), Path(work))))
        return
    from crossearth.runtime import cpu_description  # this process never runs a job

    print(cpu_description())
    print(f"{args.seconds:.0f} s measured per run; rates per process\n")
    print(
        "| job | wait policy | alone | 2 side by side (each) | share of alone | passive/active alone |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="sharing-") as tmp:
        work = Path(tmp)
        write_scene(work / "scene.tif")
        for job in args.jobs:
            unit = "windows/s" if job == "predict" else "steps/s"
            alone_rates = {}
            for policy in ("ACTIVE", "PASSIVE"):
                alone = run(job, 1, policy, args.seconds, work)[0]["rate"]
                pair = [r["rate"] for r in run(job, 2, policy, args.seconds, work)]
                alone_rates[policy] = alone
                share = min(pair) / alone
                cost = (
                    f"x{alone_rates['PASSIVE'] / alone_rates['ACTIVE']:.2f}"
                    if policy == "PASSIVE"
                    else "-"
                )
                print(
                    f"| {job} | {policy} | {alone:.2f} {unit} | "
                    f"{' / '.join(f'{r:.2f}' for r in pair)} | {100 * share:.0f} % (lower) | {cost} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

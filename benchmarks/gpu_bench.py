"""The GPU table: CUDA parity, windows/s and memory, a large-raster `predict`, a training step.

One short run on a CUDA machine (`benchmarks/gpu.sh`), or a pipeline check on the CPU with tiny
presets and sizes (`--dry-run`), so that GPU minutes are never spent on a typo:

    python benchmarks/gpu_bench.py [--budget-s 420] [--out DIR] [--reference DIR]
    python benchmarks/gpu_bench.py --dry-run

Sections, each printed as it finishes (markdown rows) and saved to `OUT/gpu_results.json`:

1. parity: the official reference (`crossearth.reference.find_reference`) on CUDA in fp32 with TF32 off: scores
   within 1e-4 of the official ones outside fp64-confirmed attention ties (`crossearth.parity`),
   argmax identical where the official top-2 margin exceeds twice that; bf16's argmax agreement
   with fp32.
2. throughput: ViT-L 512 and 1024 (random weights: the cost does not depend on them), fp32 and
   bf16, batch 1 / 4 / 16, eager: windows/s and peak memory.
3. predict: a generated RGB GeoTIFF (20,000 x 20,000 px by default), ViT-L 512 in bf16, through
   `predict_raster` as `crossearth predict` runs it: pixels/s, the time split of the summary and
   the GPU's busy share (nvidia-smi sampled every 100 ms), at batch 4 (the default) and 16.
4. train: Rein PEFT steps of ViT-L 512 (frozen backbone), batch 8, bf16 autocast, AdamW:
   s/step and peak memory, with and without activation checkpointing.
5. compile: the throughput rows again through `torch.compile` (one graph per batch size; the
   compile time is shown), as far as the budget allows: the slowest section, so it runs last.

Sections past the time budget are skipped and say so. Figures are single runs on a shared
machine; compare rows of one run with each other.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import crossearth
from crossearth.weights import to_runtime

BF16_PEAK_TFLOPS = 790.0  # H200 dense bf16 matrix work, measured on this workplace's machines
WINDOW_GFLOP_512 = 762.0  # one 512² ViT-L window (forward), see the performance issue


@dataclass
class Plan:
    device: str
    presets: dict[str, str]  # label -> preset
    batches: tuple[int, ...]
    repeats: int
    raster_px: int
    predict_batches: tuple[int, ...]
    train_preset: str
    train_batch: int
    train_crop: int
    compile_rows: tuple[tuple[str, str], ...]  # (label, precision) pairs to compile


GPU_PLAN = Plan(
    device="cuda",
    presets={"vitl-512": "vitl-512", "vitl-1024": "vitl-1024"},
    batches=(1, 4, 16),
    repeats=5,
    raster_px=20000,
    predict_batches=(4, 16),
    train_preset="vitl-512",
    train_batch=8,
    train_crop=512,
    compile_rows=(("vitl-512", "bf16"), ("vitl-512", "fp32"), ("vitl-1024", "bf16")),
)
DRY_PLAN = Plan(
    device="cpu",
    presets={"vitl-512": "vit-tiny-256", "vitl-1024": "vit-tiny-256"},
    batches=(1, 2),
    repeats=1,
    raster_px=600,
    predict_batches=(2,),
    train_preset="vit-tiny-256",
    train_batch=2,
    train_crop=128,
    compile_rows=(("vitl-512", "fp32"),),
)


@dataclass
class Report:
    out: Path
    started: float
    budget_s: float
    results: dict = field(default_factory=dict)

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def save(self) -> None:
        (self.out / "gpu_results.json").write_text(json.dumps(self.results, indent=1))

    def add(self, section: str, row: dict) -> None:
        self.results.setdefault(section, []).append(row)
        self.save()


def say(line: str) -> None:
    print(line, flush=True)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None


def fmt_gib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} GiB"


def environment(plan: Plan) -> dict:
    info = {
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "device": plan.device,
    }
    if plan.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            info["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout.strip()
    return info


# 1. parity ---------------------------------------------------------------------------------


def parity(plan: Plan, report: Report, reference: Path | None) -> None:
    from PIL import Image

    from crossearth.parity import compare_with_official
    from crossearth.reference import CHECKPOINT, NAME, find_reference

    folder = find_reference(reference)
    if folder is None:
        say("parity: skipped (no reference found; pass --reference)")
        return
    say(f"\n## Parity ({plan.device}, fp32, TF32 off; reference {folder})\n")
    say(
        "| input | max abs diff | outside ties | tied windows | argmax equal (decided) | bf16 vs fp32 |"
    )
    say("| --- | --- | --- | --- | --- | --- |")
    config = folder / f"{NAME}_config.json"
    fp32 = crossearth.load_model(folder / CHECKPOINT, config=config, device=plan.device)
    bf16 = crossearth.load_model(
        folder / CHECKPOINT, config=config, device=plan.device, precision="bf16"
    )
    tol = 1e-4
    for tag in ("a", "b"):
        image = np.asarray(Image.open(folder / f"{NAME}_input_{tag}.png").convert("RGB"))
        ours = fp32.predict(image)
        scores_path = folder / f"{NAME}_{tag}_seg_logits.npy"
        row: dict = {"input": tag}
        if scores_path.is_file():
            expected = np.load(scores_path)
            result = compare_with_official(fp32, image, ours.scores, expected, tol=tol)
            top2 = np.sort(expected, axis=0)[-2:]
            decided = (top2[1] - top2[0]) > 2 * tol
            official = expected.argmax(0)
            row |= {
                "max_abs_diff": result.max_abs_diff,
                "max_abs_diff_outside_ties": result.max_abs_diff_outside_ties,
                "tied_windows": len(result.tied_windows),
                "unexplained_pixels": result.unexplained_pixels,
            }
        else:  # argmax only: our scores decide which pixels a 1e-4 error cannot flip
            official = np.asarray(Image.open(folder / f"{NAME}_{tag}_pred.png"))
            top2 = np.sort(ours.scores, axis=0)[-2:]
            decided = (top2[1] - top2[0]) > 2 * tol
        same = ours.labels[decided] == official[decided]
        low = bf16.predict(image)
        row |= {
            "argmax_equal_decided": float(same.mean()),
            "decided_pixels": int(decided.sum()),
            "pixels": int(decided.size),
            "bf16_argmax_agreement": float((low.labels == ours.labels).mean()),
        }
        report.add("parity", row)
        diff = f"{row['max_abs_diff']:.2e}" if "max_abs_diff" in row else "(argmax only)"
        outside = f"{row['max_abs_diff_outside_ties']:.2e}" if "max_abs_diff" in row else "-"
        say(
            f"| {tag} | {diff} | {outside} | {row.get('tied_windows', '-')} "
            f"| {100 * row['argmax_equal_decided']:.3f} % of {row['decided_pixels']} "
            f"| {100 * row['bf16_argmax_agreement']:.2f} % |"
        )


# 2. throughput -----------------------------------------------------------------------------


def windows_per_second(model, x: torch.Tensor, repeats: int, device: str) -> float:
    with torch.inference_mode():
        model(x)  # warm-up (and compilation)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        sync(device)
    return x.shape[0] * repeats / (time.perf_counter() - start)


def throughput(plan: Plan, report: Report, compiled_rows: bool = False) -> None:
    title = "torch.compile" if compiled_rows else "eager"
    say(f"\n## Windows per second, {title} (random weights, inference_mode)\n")
    say(
        "| model | precision | compile | batch | windows/s | ms/window | vs eager fp32 | peak memory |"
    )
    say("| --- | --- | --- | --- | --- | --- | --- | --- |")
    base_rate = {
        (r["model"], r["batch"]): r["windows_per_s"]
        for r in report.results.get("throughput", [])
        if r["precision"] == "fp32" and not r["compile"]
    }
    bases = {}
    if compiled_rows:
        rows = [(label, prec, True) for label, prec in plan.compile_rows]
    else:
        rows = [(label, prec, False) for label in plan.presets for prec in ("fp32", "bf16")]
    for label, precision, compiled in rows:
        if label not in bases:
            torch.manual_seed(0)
            bases[label] = crossearth.create_model(plan.presets[label], 6).eval()
        if report.left() < (150 if compiled else 20):
            say(f"| {label} | {precision} | {'yes' if compiled else 'no'} | - | skipped (budget) |")
            continue
        model = to_runtime(copy.deepcopy(bases[label]), plan.device, precision)
        run = model
        compile_s = None
        if compiled:
            torch._dynamo.reset()
            run = torch.compile(model, dynamic=False)  # one graph per batch size
        size = model.config.inference.crop_size
        # compiled: the largest batch first, where compilation pays most
        for batch in sorted(plan.batches, reverse=compiled):
            if report.left() < (100 if compiled else 10):
                break
            reset_peak(plan.device)
            x = torch.randn(batch, 3, *size, device=plan.device)
            try:
                start = time.perf_counter()
                if compiled:
                    with torch.inference_mode():
                        run(x)
                    sync(plan.device)
                    compile_s = time.perf_counter() - start
                rate = windows_per_second(run, x, plan.repeats, plan.device)
            except torch.OutOfMemoryError:
                say(f"| {label} | {precision} | {compiled} | {batch} | out of memory |")
                continue
            if not compiled and precision == "fp32":
                base_rate[(label, batch)] = rate
            ratio = rate / base_rate[(label, batch)] if (label, batch) in base_rate else None
            row = {
                "model": label,
                "preset": plan.presets[label],
                "precision": precision,
                "compile": compiled,
                "compile_s": compile_s if compiled else None,
                "batch": batch,
                "windows_per_s": rate,
                "ms_per_window": 1000 / rate,
                "vs_eager_fp32": ratio,
                "peak_gib": peak_gib(plan.device),
            }
            report.add("throughput", row)
            mode = f"yes ({compile_s:.0f} s)" if compiled else "no"
            say(
                f"| {label} | {precision} | {mode} | {batch} | {rate:.1f} "
                f"| {1000 / rate:.1f} | {'-' if ratio is None else f'x{ratio:.2f}'} "
                f"| {fmt_gib(row['peak_gib'])} |"
            )
        del model, run
        if compiled:
            torch._dynamo.reset()


# 3. predict on a large raster --------------------------------------------------------------


def write_scene(path: Path, size: int) -> None:
    """A size x size RGB uint8 GeoTIFF (EPSG:4326, 512-px tiles): blocky fields with texture."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": from_origin(10.0, 50.0, 1e-5, 1e-5),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "YES",
    }
    palette = np.random.default_rng(0).integers(0, 256, (64, 3), dtype=np.uint8)
    rows = 2048
    with rasterio.open(path, "w", **profile) as dst:
        for y in range(0, size, rows):
            h = min(rows, size - y)
            yy, xx = np.arange(y, y + h)[:, None], np.arange(size)[None, :]
            field_id = ((yy // 300) * 7 + (xx // 300) * 13) % 64
            noise = ((yy * 31 + xx * 17) % 23).astype(np.uint8)
            block = palette[field_id] + noise[..., None]
            dst.write(np.moveaxis(block, -1, 0), window=Window(0, y, size, h))


class GpuSampler:
    """GPU utilisation (%) sampled by `nvidia-smi` every 100 ms while the block runs."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.samples: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if self.enabled:
            try:
                self._proc = subprocess.Popen(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                     "-lms", "100"],
                    stdout=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            except OSError:
                self._proc = None
            if self._proc is not None:
                self._thread = threading.Thread(target=self._read, daemon=True)
                self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append(float(line.strip()))

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)

    @property
    def busy_share(self) -> float | None:
        return statistics.fmean(self.samples) / 100 if self.samples else None


def predict_large(plan: Plan, report: Report, workdir: Path) -> None:
    from crossearth.predict import PredictOptions, predict_raster

    if report.left() < 60:
        say("\npredict: skipped (budget)")
        return
    scene = workdir / "large_scene.tif"
    start = time.perf_counter()
    write_scene(scene, plan.raster_px)
    made = time.perf_counter() - start
    say(
        f"\n## predict: {plan.raster_px} x {plan.raster_px} px RGB GeoTIFF (written in {made:.0f} s)"
    )
    say("ViT-L 512, bf16, default outputs (class map, preview, overlay)\n")
    say(
        "| batch | windows | wall s | Mpx/s | windows/s | read s | model s | finish s | write s | GPU busy |"
    )
    say("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    torch.manual_seed(0)
    model = to_runtime(
        crossearth.create_model(plan.presets["vitl-512"], 6).eval(), plan.device, "bf16"
    )
    for batch in plan.predict_batches:
        if report.left() < 30:
            say(f"| {batch} | skipped (budget) |")
            continue
        out = workdir / f"predict_b{batch}"
        out.mkdir()
        with GpuSampler(plan.device == "cuda") as sampler:
            start = time.perf_counter()
            summary = predict_raster(
                model, scene, out, PredictOptions(batch_size=batch), stem=f"scene_b{batch}"
            )
            wall = time.perf_counter() - start
        windows = summary.get("windows") or summary.get("windows_total")
        sec = summary.get("seconds", {})
        busy = sampler.busy_share
        row = {
            "batch": batch,
            "windows": windows,
            "wall_s": wall,
            "megapixels_per_s": plan.raster_px**2 / 1e6 / wall,
            "windows_per_s": (windows / wall) if isinstance(windows, int) else None,
            "seconds": sec,
            "gpu_busy_share": busy,
        }
        report.add("predict", row)
        say(
            f"| {batch} | {windows} | {wall:.1f} | {row['megapixels_per_s']:.1f} "
            f"| {row['windows_per_s'] or 0:.1f} | {sec.get('read', '-')} | {sec.get('model', '-')} "
            f"| {sec.get('finish', '-')} | {sec.get('write', '-')} "
            f"| {'-' if busy is None else f'{100 * busy:.0f} %'} |"
        )
    scene.unlink()


# 4. training step --------------------------------------------------------------------------


def train_steps(plan: Plan, report: Report, steps: int = 3) -> None:
    from crossearth.inference import normalize
    from crossearth.train.config import TrainConfig
    from crossearth.train.losses import Mask2FormerLoss
    from crossearth.train.module import CrossEarthModule

    say(
        f"\n## Training step: {plan.train_preset}, Rein PEFT, batch {plan.train_batch}, bf16 autocast\n"
    )
    say("| activation checkpointing | s/step | peak memory |")
    say("| --- | --- | --- |")
    for checkpointing in (False, True):
        if report.left() < 40:
            say(f"| {checkpointing} | skipped (budget) |")
            continue
        torch.manual_seed(0)
        model = crossearth.create_model(plan.train_preset, num_classes=6)
        cfg = TrainConfig(
            preset=plan.train_preset, freeze_backbone=True, gradient_checkpointing=checkpointing
        )
        module = CrossEarthModule(model, cfg).to(plan.device)
        module.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        criterion = Mask2FormerLoss(6)
        crop, batch = plan.train_crop, plan.train_batch
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8, generator=gen)
        labels = torch.randint(0, 6, (batch, crop, crop), generator=gen)
        images, labels = images.to(plan.device), labels.to(plan.device)
        inf = model.config.inference
        reset_peak(plan.device)
        times = []
        for i in range(steps + 1):
            sync(plan.device)
            start = time.perf_counter()
            with torch.autocast(plan.device, dtype=torch.bfloat16):
                out = model.forward_head(normalize(images, inf.mean, inf.std), all_stages=True)
                loss = criterion(out.class_logits, out.mask_logits, labels)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sync(plan.device)
            if i:  # the first step is a warm-up
                times.append(time.perf_counter() - start)
        row = {
            "checkpointing": checkpointing,
            "s_per_step": statistics.median(times),
            "peak_gib": peak_gib(plan.device),
            "trainable_params": sum(p.numel() for p in params),
        }
        report.add("train", row)
        say(
            f"| {'yes' if checkpointing else 'no'} | {row['s_per_step']:.3f} | {fmt_gib(row['peak_gib'])} |"
        )
        del module, model, optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny presets on the CPU")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip sections past this")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_results.json")
    parser.add_argument("--reference", type=Path, default=None, help="reference folder override")
    parser.add_argument(
        "--sections",
        default="parity,throughput,predict,train,compile",
        help="comma-separated subset",
    )
    args = parser.parse_args()
    plan = DRY_PLAN if args.dry_run else GPU_PLAN
    if plan.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA GPU (use --dry-run to check the script on the CPU)")
    out = args.out or Path(os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu_bench_"))
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, time.perf_counter(), args.budget_s)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (the parity path)
    torch.backends.cudnn.allow_tf32 = False
    report.results["environment"] = env = environment(plan)
    report.save()
    say(" ".join(f"{k}={v}" for k, v in env.items()))
    sections = set(args.sections.split(","))
    if "parity" in sections:
        parity(plan, report, args.reference)
    if "throughput" in sections:
        throughput(plan, report)
    if "predict" in sections:
        with tempfile.TemporaryDirectory(dir=os.environ.get("GPU_BENCH_TMP")) as tmp:
            predict_large(plan, report, Path(tmp))
    if "train" in sections:
        train_steps(plan, report)
    if "compile" in sections:  # last: compilation is the slowest part, the budget cuts it first
        throughput(plan, report, compiled_rows=True)
    rows = [r for r in report.results.get("throughput", []) if r["model"] == "vitl-512"]
    if rows and plan.device == "cuda":
        best = max(rows, key=lambda r: r["windows_per_s"])
        achieved = best["windows_per_s"] * WINDOW_GFLOP_512 / 1000
        say(
            f"\nbest vitl-512: {best['windows_per_s']:.1f} windows/s ({best['precision']}, batch "
            f"{best['batch']}, compile {best['compile']}) = {achieved:.0f} TFLOP/s, "
            f"{100 * achieved / BF16_PEAK_TFLOPS:.0f} % of the bf16 limit"
        )
    say(
        f"\ntotal {time.perf_counter() - report.started:.0f} s; results in {out / 'gpu_results.json'}"
    )


if __name__ == "__main__":
    main()

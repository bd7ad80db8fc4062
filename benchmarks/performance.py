"""Where the time goes: FLOPs per tile, achieved FLOP/s against a measured GEMM peak, time per part,
and the end-to-end `predict` overhead over pure model time. One run, ratios within the run.

    .venv/bin/python benchmarks/performance.py [--preset vitl-512] [--repeats 2] [--profile DIR]

Parts: backbone (ViT blocks + Rein), pixel decoder (MSDeformAttn encoder + FPN), transformer decoder
and mask/class heads ("decoder"), and the rest (normalisation, score einsum, upsampling).
FLOPs are counted with torch.utils.flop_counter (matmuls, convolutions, attention; grid_sample and
element-wise work are not counted) and reported as 2 x multiply-accumulates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import crossearth
from crossearth.models.backbone import PYRAMID_SCALES
from crossearth.models.mask2former import semantic_scores
from crossearth.weights import to_runtime


def gemm_peak(
    dtype: torch.dtype, m: int = 4096, k: int = 1024, n: int = 4096, repeats: int = 5
) -> float:
    """FLOP/s of a ViT-L-shaped GEMM (tokens x 1024 @ 1024 x 4096) in this dtype."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * m * k * n * repeats / (time.perf_counter() - start)


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parts(model, x):
    """Closures running each part on the outputs of the previous one (inputs precomputed), in the
    order `model.forward` runs them (stride-16 maps, resized inside the head)."""
    with torch.inference_mode():
        feats, queries = model.backbone(x.to(model.dtype), resize=False)
        head = model.decode_head
        queries = queries.to(head.querys2feat.weight.dtype)
        pix = head.pixel_decoder(feats, PYRAMID_SCALES)
        out = head(feats, queries, scales=PYRAMID_SCALES)
    return {
        "backbone": lambda: model.backbone(x.to(model.dtype), resize=False),
        "pixel decoder": lambda: head.pixel_decoder(feats, PYRAMID_SCALES),
        "decoder": lambda: _decoder_only(head, feats, queries, pix),
        "rest": lambda: semantic_scores(
            out.final_class_logits, out.final_mask_logits, tuple(x.shape[-2:])
        ),
    }


def _decoder_only(head, feats, queries, pix):
    # Re-run the head with the pixel decoder replaced by its cached output.
    original = head.pixel_decoder.forward
    head.pixel_decoder.forward = lambda *args, **kwargs: pix
    try:
        return head(feats, queries, scales=PYRAMID_SCALES)
    finally:
        head.pixel_decoder.forward = original


def measure_model(preset: str, precision: str, repeats: int) -> dict:
    torch.manual_seed(0)
    model = to_runtime(crossearth.create_model(preset, 6), "cpu", precision)
    size = model.config.inference.crop_size
    x = torch.randn(1, 3, *size)
    fns = parts(model, x)
    result = {}
    with torch.inference_mode():
        for name, fn in fns.items():
            result[name] = {"seconds": timed(fn, repeats), "flops": count_flops(fn)}
        total = timed(lambda: model(x), repeats)
    result["total"] = {"seconds": total, "flops": sum(v["flops"] for v in result.values())}
    return result


def predict_overhead(preset: str, precision: str, size: int) -> dict:
    """`predict_raster` on a GeoTIFF against the model time of the same windows."""
    sys.path.insert(0, str(Path(__file__).parent))
    from predict_memory import make_scene

    from crossearth.predict import PredictOptions, predict_raster

    work = Path(tempfile.mkdtemp(prefix="ce-perf-"))
    make_scene(work / "scene.tif", size)
    torch.manual_seed(0)
    model = to_runtime(crossearth.create_model(preset, 6), "cpu", precision)
    (work / "out").mkdir()
    options = PredictOptions(preview=False, overlay=False)
    predict_raster(model, work / "scene.tif", work / "out", options)  # warm-up (and file cache)
    (work / "out2").mkdir()
    summary = predict_raster(model, work / "scene.tif", work / "out2", options)
    seconds = summary["seconds"]
    return {"megapixels": size * size / 1e6, "windows": summary["windows"], **seconds,
            "overhead": seconds["total"] / seconds["model"] - 1}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vitl-512")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--predict-preset", default="vit-tiny-256")
    parser.add_argument("--predict-size", type=int, default=2000)
    parser.add_argument(
        "--profile", help="write a torch.profiler trace (bf16 tile) into this folder"
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    peaks = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16)}
    print(f"GEMM peak (4096x1024 @ 1024x4096): fp32 {peaks['fp32'] / 1e12:.3f} TFLOP/s, "
          f"bf16 {peaks['bf16'] / 1e12:.3f} TFLOP/s")  # fmt: skip
    results = {"preset": args.preset, "gemm_peak": peaks}
    for precision in ("fp32", "bf16"):
        r = measure_model(args.preset, precision, args.repeats)
        results[precision] = r
        print(f"\n{args.preset} one tile, {precision}: {r['total']['seconds']:.2f} s, "
              f"{r['total']['flops'] / 1e9:.0f} GFLOP")  # fmt: skip
        for name, v in r.items():
            rate = v["flops"] / v["seconds"]
            # bf16 runs the backbone and the pixel decoder in bf16 (see to_runtime); the total
            # mixes dtypes and is compared with the fp32 peak.
            in_bf16 = precision == "bf16" and name in ("backbone", "pixel decoder")
            peak = peaks["bf16" if in_bf16 else "fp32"]
            print(f"  {name:14s} {v['seconds']:6.2f} s  {100 * v['seconds'] / r['total']['seconds']:5.1f} %  "
                  f"{v['flops'] / 1e9:7.1f} GFLOP  {rate / 1e12:.3f} TFLOP/s = {100 * rate / peak:5.1f} % of "
                  f"its dtype's GEMM peak")  # fmt: skip
    speedup = results["fp32"]["total"]["seconds"] / results["bf16"]["total"]["seconds"]
    print(f"\nbf16 speed-up over fp32: x{speedup:.2f}")
    over = predict_overhead(args.predict_preset, "fp32", args.predict_size)
    results["predict"] = over
    print(f"predict {args.predict_size}² GeoTIFF with {args.predict_preset} ({over['windows']} windows): "
          f"total {over['total']:.1f} s, model {over['model']:.1f} s, read {over['read']:.1f} s (overlapped), "
          f"write {over['write']:.1f} s: overhead {100 * over['overhead']:.1f} % over pure model time")  # fmt: skip
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        out = Path(args.profile)
        out.mkdir(parents=True, exist_ok=True)
        model = to_runtime(crossearth.create_model(args.preset, 6), "cpu", "bf16")
        x = torch.randn(1, 3, *model.config.inference.crop_size)
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            model(x)
        prof.export_chrome_trace(str(out / f"profile_{args.preset}_bf16.json"))
        (out / f"profile_{args.preset}_bf16.txt").write_text(
            prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        )
        print(f"profile written to {out} (open the .json in chrome://tracing or ui.perfetto.dev)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()

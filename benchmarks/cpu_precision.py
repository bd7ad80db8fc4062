"""Seconds per 512² ViT-L window on this CPU for every precision path, with argmax agreement.

    .venv/bin/python benchmarks/cpu_precision.py [--windows 2] [--json out.json]

Paths: PyTorch fp32 (the parity path, the baseline), PyTorch bf16 (backbone + pixel decoder),
PyTorch int8 (`torch.ao` dynamic quantisation of the backbone's Linear layers), ONNX Runtime
fp32 and ONNX Runtime int8 (the file `export --quantize int8` / `--precision int8` make).

1. Agreement: the official reference model (`crossearth.reference.find_reference()`, small) on
   the reference inputs a (256x256) and b (700x1000) by the official slide protocol: share of
   pixels whose class equals PyTorch fp32's, per path.
2. Speed: the full-size ViT-L 512 layout with random weights, one normalised window (batch 1),
   `--windows` timed rounds after one warm-up, the paths taking turns within a round so that load
   from other processes hits them alike; seconds per round and the ratio to PyTorch fp32 of the
   same round.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import crossearth
from crossearth.export.onnx import export_onnx
from crossearth.export.runner import OnnxSegmenter
from crossearth.inference import normalize, predict_array
from crossearth.reference import find_reference
from crossearth.runtime import cpu_description
from crossearth.weights import to_runtime


def pytorch_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose backbone Linear layers run PyTorch's dynamic int8 kernels (fbgemm/x86)."""
    quantized = copy.deepcopy(model)
    quantized.backbone = torch.ao.quantization.quantize_dynamic(
        quantized.backbone, {torch.nn.Linear}, dtype=torch.qint8
    )
    return quantized


def paths_for(model: torch.nn.Module, work: Path, name: str) -> dict:
    """The five runners of one model: callables taking a normalised [B, C, S, S] batch."""
    fp32_file = export_onnx(model, work / f"{name}.onnx")
    int8_file = export_onnx(model, work / f"{name}_int8.onnx", quantize="int8")
    return {
        "pytorch_fp32": model,
        "pytorch_bf16": to_runtime(copy.deepcopy(model), "cpu", "bf16"),
        "pytorch_int8": pytorch_int8(model),
        "onnxruntime_fp32": OnnxSegmenter(fp32_file),
        "onnxruntime_int8": OnnxSegmenter(int8_file),
    }


def reference_agreement(work: Path) -> dict:
    from PIL import Image

    ref = find_reference()
    model = crossearth.load_model(ref / "small_ref2.pth", config=ref / "small_ref2_config.json")
    runners = paths_for(model, work, "ref")
    out: dict[str, dict[str, float]] = {name: {} for name in runners}
    for key in ("a", "b"):
        image = np.asarray(Image.open(ref / f"small_ref2_input_{key}.png").convert("RGB"))
        with torch.inference_mode():
            base = model.predict(image).labels
            for name, run in runners.items():
                labels = predict_array(run, image).labels
                out[name][f"input_{key}"] = float((labels == base).mean())
    return out


def vitl_seconds(work: Path, windows: int) -> dict:
    torch.manual_seed(0)
    model = crossearth.create_model("vitl-512", num_classes=6).eval()
    start = time.perf_counter()
    runners = paths_for(model, work, "vitl")
    export_s = time.perf_counter() - start
    tile = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    cfg = model.config.inference
    x = normalize(torch.from_numpy(tile).permute(2, 0, 1)[None].float(), cfg.mean, cfg.std)
    times: dict[str, list[float]] = {name: [] for name in runners}
    with torch.inference_mode():
        for run in runners.values():
            run(x)  # warm-up
        for _ in range(windows):
            for name, run in runners.items():
                start = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"export_and_quantize_s": export_s, "median_s": medians, "runs_s": times}


def print_table(result: dict) -> None:
    """Seconds per window and the ratio to PyTorch fp32 *of the same round* (load from other
    processes comes and goes between rounds), with each path's agreement."""
    runs = result["vitl"]["runs_s"]
    rounds = len(runs["pytorch_fp32"])
    heads = " | ".join(f"round {r + 1}: s / window | ×fp32" for r in range(rounds))
    print(f"| path | {heads} | agreement a / b |")
    print("| --- " * (2 * rounds + 2) + "|")
    for name, seconds in runs.items():
        a, b = (result["agreement"][name][f"input_{k}"] for k in "ab")
        cells = " | ".join(
            f"{s:.2f} | ×{runs['pytorch_fp32'][r] / s:.2f}" for r, s in enumerate(seconds)
        )
        print(f"| {name} | {cells} | {a:.2%} / {b:.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {
        "cpu": cpu_description(),
        "date": datetime.date.today().isoformat(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    print(f"{result['cpu']} | {result['threads']} threads | torch {torch.__version__} | "
          f"onnxruntime {ort.__version__} | {result['date']}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cpu-precision-") as tmp:
        result["agreement"] = reference_agreement(Path(tmp))
        print("agreement:", json.dumps(result["agreement"]), flush=True)
        result["vitl"] = vitl_seconds(Path(tmp), args.windows)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

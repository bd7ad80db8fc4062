"""Time per tile: ONNX Runtime (fp32, int8) against PyTorch (fp32, bf16), in one run; int8 agreement.

    .venv/bin/python benchmarks/onnx_runtime.py [--repeats 3] [--size 512] [--json out.json]

1. The official reference model (tests/data/reference, small_ref2: official structure at 256, official
   random init, varied labels) on the reference inputs a (256x256) and b (700x1000), by the
   official slide protocol: argmax agreement of the int8 export with the fp32 export and with
   PyTorch fp32.
2. Full-size ViT-L 512 layout, random weights: exported to fp32 and int8 ONNX; the median time of
   one tile (batch 1, normalised window in, scores out) for each path, the four paths taking turns
   so that load from other processes hits them alike; int8 argmax agreement and probability
   difference against fp32 on a few tiles. (With random weights the full-size model predicts
   nearly one class everywhere: its agreement is a weak check, the reference figures the telling
   ones; both are printed.)
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

import crossearth
from crossearth.export.onnx import export_onnx, quantize_file
from crossearth.export.runner import OnnxSegmenter
from crossearth.inference import normalize, predict_array
from crossearth.reference import find_reference
from crossearth.weights import to_runtime

REFERENCE = find_reference() or Path("tests/data/reference")  # expanded (crossearth.reference)


def cpu_description() -> str:
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("amx_bf16", "avx512_bf16", "avx512_vnni")
    return f"{model}; " + ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in wanted)


def reference_agreement(work: Path) -> dict:
    from PIL import Image

    model = crossearth.load_model(
        REFERENCE / "small_ref2.pth", config=REFERENCE / "small_ref2_config.json"
    )
    fp32 = OnnxSegmenter(export_onnx(model, work / "ref.onnx"))
    int8 = OnnxSegmenter(export_onnx(model, work / "ref_int8.onnx", quantize="int8"))
    out = {}
    for name in ("a", "b"):
        image = np.asarray(Image.open(REFERENCE / f"small_ref2_input_{name}.png").convert("RGB"))
        torch_labels = model.predict(image).labels
        onnx_labels = predict_array(fp32, image).labels
        int8_labels = predict_array(int8, image).labels
        out[f"input_{name}"] = {
            "pixels": int(image.shape[0] * image.shape[1]),
            "classes_present": len(np.unique(torch_labels)),
            "onnx_fp32_vs_pytorch_fp32": float((onnx_labels == torch_labels).mean()),
            "int8_vs_onnx_fp32": float((int8_labels == onnx_labels).mean()),
            "int8_vs_pytorch_fp32": float((int8_labels == torch_labels).mean()),
        }
    return out


def vitl_timings(work: Path, size: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = crossearth.create_model(f"vitl-{size}", num_classes=6)
    start = time.perf_counter()
    fp32_path = export_onnx(model, work / "vitl.onnx")
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    int8_path = quantize_file(fp32_path, work / "vitl_int8.onnx")
    quantize_s = time.perf_counter() - start
    sessions = {
        name: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        for name, p in (("onnxruntime_fp32", fp32_path), ("onnxruntime_int8", int8_path))
    }
    rng = np.random.default_rng(0)
    tiles = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(2)]
    cfg = model.config.inference

    def norm(tile):
        t = torch.from_numpy(tile).permute(2, 0, 1)[None].float()
        return normalize(t, cfg.mean, cfg.std)

    # agreement of int8 with fp32 (ONNX Runtime), before the bf16 cast of the PyTorch model
    agree, diffs = [], []
    for tile in tiles:
        x = norm(tile).numpy()
        p32 = sessions["onnxruntime_fp32"].run(["probabilities"], {"input": x})[0]
        p8 = sessions["onnxruntime_int8"].run(["probabilities"], {"input": x})[0]
        agree.append(float((p8.argmax(1) == p32.argmax(1)).mean()))
        diffs.append(float(np.abs(p8 - p32).max()))
        classes = len(np.unique(p32.argmax(1)))
    bf16 = to_runtime(copy.deepcopy(model), "cpu", "bf16")  # backbone + pixel decoder in bf16
    paths = {
        "pytorch_fp32": lambda x: model(x),
        "pytorch_bf16": lambda x: bf16(x),
        "onnxruntime_fp32": lambda x: sessions["onnxruntime_fp32"].run(None, {"input": x.numpy()}),
        "onnxruntime_int8": lambda x: sessions["onnxruntime_int8"].run(None, {"input": x.numpy()}),
    }
    x = norm(tiles[0])
    times: dict[str, list[float]] = {name: [] for name in paths}
    with torch.inference_mode():
        for run in paths.values():
            run(x)  # warm-up
        for _ in range(repeats):
            for name, run in paths.items():
                start = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["pytorch_fp32"]
    return {
        "tile": size,
        "export_s": export_s,
        "quantize_s": quantize_s,
        "file_mb": {"fp32": fp32_path.stat().st_size / 1e6, "int8": int8_path.stat().st_size / 1e6},
        "median_s_per_tile": medians,
        "speedup_vs_pytorch_fp32": {name: base / m for name, m in medians.items()},
        "runs_s": times,
        "int8_vs_fp32_argmax_agreement": agree,
        "int8_vs_fp32_max_abs_prob_diff": diffs,
        "fp32_classes_present": classes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, choices=(512, 1024))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {
        "cpu": cpu_description(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    print(result["cpu"], f"| torch {torch.__version__} | onnxruntime {ort.__version__}")
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as tmp:
        work = Path(tmp)
        if (REFERENCE / "small_ref2.pth").is_file():
            result["reference"] = reference_agreement(work)
            for name, row in result["reference"].items():
                print(name, json.dumps(row))
        else:
            print(
                f"reference model not found at {REFERENCE}: skipping its agreement", file=sys.stderr
            )
        result["vitl"] = vitl_timings(work, args.size, args.repeats)
    v = result["vitl"]
    print(f"ViT-L {v['tile']}: export {v['export_s']:.0f} s, int8 quantisation {v['quantize_s']:.0f} s, "
          f"files {v['file_mb']['fp32']:.0f} / {v['file_mb']['int8']:.0f} MB")  # fmt: skip
    for name, seconds in v["median_s_per_tile"].items():
        print(f"  {name:17s} {seconds:6.2f} s/tile  x{v['speedup_vs_pytorch_fp32'][name]:.2f}")
    print(f"  int8 vs fp32: argmax agreement {v['int8_vs_fp32_argmax_agreement']}, max |prob diff| "
          f"{v['int8_vs_fp32_max_abs_prob_diff']}, classes in the fp32 map {v['fp32_classes_present']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The README's first fine-tune, timed: `crossearth train --data DATA --init MODEL --out DIR`
with nothing else, from a small model (the demo's architecture, vit-tiny-256), on this CPU.

    .venv/bin/python benchmarks/first_fine_tune.py [--precisions auto 32-true] [--tiles 12]

The data set: SynthEarth source tiles (`crossearth synth`, 512 px, `--tiles` for training and a
quarter as many for validation) described by a data set file. The model: a random vit-tiny-256
file (the demo's model has the same architecture, so the same cost). Each precision is one run
of the training defaults (`crossearth.train.defaults`); `32-true` is what an AVX2-only CPU
chooses by itself. Prints the CPU, each run's wall time, its defaults line and its last lines.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sharing import cpu_description

CLASSES = ("impervious_surface", "building", "low_vegetation", "tree", "car", "clutter")


def prepare(work: Path, tiles: int) -> tuple[Path, Path]:
    """A data set description over SynthEarth tiles, and a vit-tiny-256 model file."""
    import crossearth

    subprocess.run([sys.executable, "-m", "crossearth", "synth", "--out", str(work / "synth"),
                    "--domain", "urban-aerial-rgb", "--train", str(tiles),
                    "--val", str(max(1, tiles // 4)), "--size", "512"], check=True,
                   capture_output=True)  # fmt: skip
    folder = "synth/synthearth/urban-aerial-rgb"
    codes = ", ".join(f"{i + 1}: {name}" for i, name in enumerate(CLASSES))
    data = work / "data.yaml"
    data.write_text(
        f"classes: [{', '.join(CLASSES)}]\nlabel_values: {{{codes}, 0: null}}\n"
        f"train: {{images: {folder}/img_dir/train, labels: {folder}/ann_dir/train}}\n"
        f"val: {{images: {folder}/img_dir/val, labels: {folder}/ann_dir/val}}\n"
    )
    model = crossearth.create_model("vit-tiny-256", class_names=CLASSES)
    return data, crossearth.save_model(model, work / "model.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["auto", "32-true"])
    parser.add_argument("--tiles", type=int, default=12)
    args = parser.parse_args()
    print(f"cpu: {cpu_description()}; CROSSEARTH_THREADS={os.environ.get('CROSSEARTH_THREADS')}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data, model = prepare(work, args.tiles)
        for precision in args.precisions:
            extra = [] if precision == "auto" else ["--precision", precision]
            cmd = [sys.executable, "-m", "crossearth", "train", "--data", str(data), "--init",
                   str(model), "--out", str(work / f"try-{precision}"), *extra]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - start
            lines = (done.stdout + done.stderr).splitlines()
            said = [line for line in lines if line.startswith(("defaults:", "warning:"))]
            print(f"\n--precision {precision}: exit {done.returncode}, {seconds:.0f} s wall")
            for line in said + [ln for ln in lines if ln.startswith(("step ", "["))][-3:]:
                print(f"  {line}")


if __name__ == "__main__":
    main()

"""`crossearth demo`: prove parity with the official code, then run the pipeline on a generated scene.

No pretrained weights can be downloaded here, so the demo uses the official reference model (random
weights, official architecture) when `shared/reference` is present, else a seeded random tiny model.
The predictions show the pipeline and its speed, not accuracy.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from crossearth.imageio import colorize, write_label_map

REFERENCE_NAME = "small_ref2"


def find_reference(explicit: Path | None = None) -> Path | None:
    """The official reference folder: explicit, $CROSSEARTH_REFERENCE, or ../shared/reference."""
    candidates = [explicit] if explicit else []
    if os.environ.get("CROSSEARTH_REFERENCE"):
        candidates.append(Path(os.environ["CROSSEARTH_REFERENCE"]))
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "reference", Path.cwd().parent / "shared" / "reference"]
    for path in candidates:
        if path and (path / f"{REFERENCE_NAME}.pth").is_file():
            return path
    return None


def reference_parity(reference: Path) -> dict[str, dict[str, float]]:
    """Max abs score difference and argmax agreement against the official outputs of inputs a, b."""
    from PIL import Image

    from crossearth.weights import load_model

    model = load_model(
        reference / f"{REFERENCE_NAME}.pth", config=reference / f"{REFERENCE_NAME}_config.json"
    )
    results = {}
    for tag in ("a", "b"):
        image = np.asarray(
            Image.open(reference / f"{REFERENCE_NAME}_input_{tag}.png").convert("RGB")
        )
        expected = np.load(reference / f"{REFERENCE_NAME}_{tag}_seg_logits.npy")
        official_pred = np.asarray(Image.open(reference / f"{REFERENCE_NAME}_{tag}_pred.png"))
        start = time.perf_counter()
        ours = model.predict(image)
        seconds = time.perf_counter() - start
        top2 = np.sort(expected, axis=0)[-2:]
        decided = (top2[1] - top2[0]) > 1e-4
        results[tag] = {
            "pixels": float(image.shape[0] * image.shape[1]),
            "max_abs_diff": float(np.abs(ours.scores - expected).max()),
            "argmax_agreement": float((ours.labels == official_pred)[decided].mean()),
            "seconds": seconds,
        }
    return results


def synthetic_scene(height: int = 700, width: int = 1000, seed: int = 0) -> np.ndarray:
    """A procedural aerial-like RGB scene: fields, a road grid, roofs and tree crowns."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), dtype=np.float32)
    img[:] = (96, 128, 70)  # grass
    for _ in range(12):  # fields of varying crops
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        h, w = rng.integers(80, 260), rng.integers(80, 260)
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform((90, 100, 50), (170, 160, 90))
    for pos in range(60, width, 230):  # roads
        img[:, pos : pos + 14] = (120, 120, 125)
    for pos in range(90, height, 210):
        img[pos : pos + 14, :] = (120, 120, 125)
    for _ in range(40):  # roofs
        y0, x0 = rng.integers(0, height - 40), rng.integers(0, width - 40)
        h, w = rng.integers(15, 40), rng.integers(15, 40)
        img[y0 : y0 + h, x0 : x0 + w] = rng.choice([(180, 70, 60), (200, 200, 205), (90, 90, 110)])
    for _ in range(150):  # tree crowns
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(5, 14)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (40, 85, 35)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _scene_model(reference: Path | None):
    from crossearth import create_model
    from crossearth.weights import load_model

    if reference is not None:
        return load_model(
            reference / f"{REFERENCE_NAME}.pth", config=reference / f"{REFERENCE_NAME}_config.json"
        )
    torch.manual_seed(0)
    return create_model("vit-tiny-256", num_classes=5)


def run_demo(output: Path, reference: Path | None = None, console: Console | None = None) -> dict:
    console = console or Console()
    output.mkdir(parents=True, exist_ok=True)
    reference = find_reference(reference)
    summary: dict = {}
    if reference is None:
        console.print("[yellow]official reference tensors not found[/]: skipping the parity check")
    else:
        console.print(f"[bold]1. Parity with the official implementation[/] ({reference})")
        parity = reference_parity(reference)
        table = Table("input", "size", "max |Δscore|", "argmax agreement", "time")
        for tag, r in parity.items():
            table.add_row(
                tag, f"{int(r['pixels']):,} px", f"{r['max_abs_diff']:.2e}",
                f"{100 * r['argmax_agreement']:.3f} %", f"{r['seconds']:.2f} s",
            )  # fmt: skip
        console.print(table)
        ok = all(r["max_abs_diff"] <= 1e-4 for r in parity.values())
        console.print("parity " + ("[green]OK[/] (tolerance 1e-4)" if ok else "[red]FAILED[/]"))
        summary["parity"] = parity
    console.print(
        "[bold]2. Segmenting a generated 700 x 1000 scene[/] (random weights: pipeline, not accuracy)"
    )
    model = _scene_model(reference)
    scene = synthetic_scene()
    start = time.perf_counter()
    result = model.predict(scene)
    seconds = time.perf_counter() - start
    palette = model.config.palette or [
        (i * 50 % 256, i * 90 % 256, i * 130 % 256) for i in range(model.num_classes)
    ]
    from PIL import Image

    Image.fromarray(scene).save(output / "scene.png")
    write_label_map(output / "scene_classes.png", result.labels, palette)
    Image.fromarray(colorize(result.labels, palette)).save(output / "scene_preview.png")
    counts = np.bincount(result.labels.ravel(), minlength=model.num_classes)
    summary["scene"] = {"seconds": seconds, "class_pixels": counts.tolist()}
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"segmented in {seconds:.2f} s; class pixel counts {counts.tolist()}")
    console.print(f"wrote {output}/scene.png, scene_classes.png, scene_preview.png, summary.json")
    return summary

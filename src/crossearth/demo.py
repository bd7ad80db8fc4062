"""`crossearth demo`: the whole domain-generalization loop on SynthEarth, on a laptop CPU, in the
paper's regime: a pretrained backbone, frozen; Rein and the head learn.

1. Parity with the official implementation (the reference in `tests/data/reference` of a clone;
   see `crossearth.reference`).
2. SynthEarth: a source domain (urban, aerial, RGB) and four unseen targets (IRRG bands, a rural
   region, a blurred hazy satellite platform, autumn light).
3. The shipped `synthearth-backbone` (a vit-tiny-256 pretrained self-supervised on a broad
   SynthEarth archive that holds none of these five domains' generators; docs/method.md) is
   frozen; per seed, the Rein baseline (plain segmentation training) and CrossEarth's method
   (Earth-Style Injection + Multi-Task Training) train Rein and the head under the same budget.
4. Every model is evaluated on the source and every target with the official protocol. Per
   domain: each method's mean over seeds, the mean seed-paired difference with its 95 % t
   interval (`crossearth.intervals`) and a verdict ("ahead", "behind", "not separable") read from
   the interval, whatever it shows; a figure, a GeoTIFF prediction with its preview, a Markdown
   report and `summary.json` with every per-seed number.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import signal
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from crossearth.intervals import PairedInterval, paired_interval
from crossearth.numbers import seconds as to_seconds
from crossearth.reference import NAME as REFERENCE_NAME
from crossearth.reference import find_reference
from crossearth.stopping import Interrupted, RunFolder
from crossearth.tables import print_table
from crossearth.wording import count

SOURCE = "urban-aerial-rgb"
TARGETS = ("urban-aerial-irrg", "rural-aerial-rgb", "urban-satellite-rgb", "urban-autumn-rgb")
FULL_OUTPUT = Path("demo_output")
QUICK_OUTPUT = (
    FULL_OUTPUT / "quick"
)  # its own folder: a quick check never mixes into the full demo's
MODEL_FILE = "model.safetensors"  # the demo's CrossEarth model, ready for `crossearth predict`


BACKBONE = (
    "synthearth-backbone"  # the shipped pretrained backbone (crossearth.weights.backbone_file)
)


@dataclasses.dataclass
class DemoBudget:
    # Measured on a 2-core EPYC (benchmarks/README: demo budget): a step's cost is mostly fixed
    # (the Mask2Former head's 100 queries), so small crops and batches buy steps, and the frozen
    # backbone's Rein + head need ~150 steps before the masks take shape.
    tile: int = 96
    train_tiles: int = 48
    val_tiles: int = 12
    steps: int = 160
    batch: int = 2
    crop: int = 64
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    lr: float = 1.5e-3
    warmup: int = 20
    backbone: str | None = BACKBONE  # None: a random backbone that trains (the old regime)
    freeze: bool = True  # the backbone stays frozen (Rein PEFT); False: it is fine-tuned too
    precision: str = "auto"  # auto: bf16-mixed where the CPU multiplies bf16 natively, else fp32
    pipeline_check: bool = False  # a budget too small to learn: the numbers mean nothing


QUICK = DemoBudget(tile=96, train_tiles=8, val_tiles=3, steps=6, batch=2, crop=64, seeds=(0,),
                   pipeline_check=True)  # fmt: skip

#: What a pipeline check (`demo --quick`) says, in its output, summary.json and report.md.
PIPELINE_CHECK = (
    "pipeline check (--quick): every step runs, on a budget far too small to learn, so its mIoU "
    "numbers and its model mean nothing; `crossearth demo` gives real ones"
)


def train_precision(precision: str) -> str:
    """Lightning's precision for the demo's runs, chosen as `train --precision auto` does
    (`crossearth.runtime.training_precision`: bf16-mixed only where the CPU multiplies bf16
    natively, else 32-true)."""
    from crossearth.runtime import training_precision

    return training_precision(precision, torch.device("cpu"))[0]


def reference_parity(reference: Path) -> dict[str, dict[str, float]]:
    """Score differences and argmax agreement against the official outputs of inputs a, b (see
    `crossearth.parity`: differences above 1e-4 must come from an fp64-confirmed attention tie)."""
    from PIL import Image

    from crossearth.parity import compare_with_official
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
        ours = model.predict(image)
        report = compare_with_official(model, image, ours.scores, expected)
        results[tag] = {
            "max_abs_diff": report.max_abs_diff,
            "max_abs_diff_outside_ties": report.max_abs_diff_outside_ties,
            "tied_windows": len(report.tied_windows),
            "unexplained_pixels": report.unexplained_pixels,
            "argmax_agreement": float((ours.labels == official_pred).mean()),
        }
    return results


def _parity_line(tag: str, result: dict) -> str:
    line = f"{tag} {result['max_abs_diff_outside_ties']:.1e}"
    if result["tied_windows"]:
        line += (
            f" (outside {count(result['tied_windows'], 'window')} holding an fp64-confirmed"
            " attention-mask"
            f" tie, where fp32 may flip one mask bit: {result['max_abs_diff']:.1e} there)"
        )
    return line


def domain_arrays(name: str, count: int, size: int, offset: int) -> tuple[list, list]:
    from crossearth.data.synthetic import DOMAINS, render_scene

    pairs = [render_scene(DOMAINS[name], offset + i, size) for i in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _earth_style(budget: DemoBudget, seed: int):
    """The 'Earth' style distribution: embeddings of a diverse pool of RGB scenes with random light,
    haze, blur, season and resolution (a stand-in for Million-AID, which is also RGB only). No
    target-domain image is used."""
    from crossearth.data.synthetic import DOMAINS, render_scene, with_overrides
    from crossearth.train.style import EarthStyle, SpectralStylizer

    rng = np.random.default_rng(10_000 + seed)
    stylizer = SpectralStylizer()
    images = []
    for i in range(48):
        spec = with_overrides(
            DOMAINS[SOURCE], region=str(rng.choice(["urban", "rural"])), gsd_m=float(rng.uniform(0.2, 0.6)),
            blur_sigma_px=float(rng.uniform(0, 2)), noise=float(rng.uniform(0.005, 0.04)),
            haze=float(rng.uniform(0, 0.3)), season=str(rng.choice(["summer", "autumn"])),
            brightness=float(rng.uniform(0.6, 1.3)),
        )  # fmt: skip
        images.append(render_scene(spec, 90_000 + i, budget.tile)[0])
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return EarthStyle.fit([stylizer.embed(batch)]), stylizer


def train_one(
    esi: bool, mtt: bool, seed: int, budget: DemoBudget, data: dict, out: Path, earth=None,
    label: str = "", name: str | None = None,
):  # fmt: skip
    """Train one model on the source's training tiles: Rein (+ Earth-Style Injection with the
    `earth` style, + Multi-Task Training) on `budget.backbone` (frozen when `budget.freeze`), or
    a randomly initialised backbone that trains. Its run folder is `out/<name>_seed<seed>`."""
    from crossearth.train.config import TrainConfig
    from crossearth.train.data import ArraySource, StreamDataset
    from crossearth.train.run import build_model, fit
    from crossearth.train.transforms import TrainPipeline

    name = name or ("crossearth" if esi and mtt else "baseline")
    cfg = TrainConfig(
        preset="vit-tiny-256", max_steps=budget.steps, schedule_steps=budget.steps, batch_size=budget.batch,
        crop=budget.crop, scales=(budget.crop, budget.tile, int(budget.tile * 1.25)), max_size=4 * budget.tile,
        num_workers=0, precision=train_precision(budget.precision), accelerator="cpu",
        val_every=budget.steps, log_every=10, checkpoint_every=budget.steps, num_points=1024,
        lr=budget.lr, warmup_steps=budget.warmup, backbone=budget.backbone, freeze_backbone=bool(budget.backbone and budget.freeze),
        seed=seed, out_dir=str(out / f"{name}_seed{seed}"), esi=esi, esi_block=32, mtt=mtt,
        mim_block=32, mim_channels=64,
    )  # fmt: skip
    images, labels = data[SOURCE]["train"]
    pipeline = TrainPipeline(crop=cfg.crop, scales=cfg.scales, max_size=cfg.max_size)
    stream = StreamDataset(ArraySource(images, labels), pipeline, seed)
    torch.manual_seed(seed)
    model = build_model(cfg, 6, source_metadata(), report=None)
    fit(
        cfg,
        stream,
        [],  # no validation inside the run: `evaluate` scores every domain after it
        [],
        model,
        enable_progress_bar=False,
        earth_style=earth if esi else None,
        verbose=False,
        progress_lines=True,  # on a terminal too: the demo draws no bar between its lines
        progress_label=f"   {label} " if label else "   ",
    )
    return model.eval()


def source_metadata() -> dict:
    """What a demo model file records about its data: SynthEarth's ISPRS classes and palette,
    the source domain's bands and GSD."""
    from crossearth.data.classes import ISPRS
    from crossearth.data.synthetic import DOMAINS

    return {
        "class_names": ISPRS.names,
        "palette": ISPRS.palette,
        "bands": "RGB",
        "gsd_m": DOMAINS[SOURCE].gsd_m,
    }


def evaluate(model, data: dict, batch: int = 12) -> dict[str, float]:
    """mIoU % per domain with the official protocol. Tiles no larger than the model's crop are
    one slide window each, so they are scored in batches of `batch` (the same windows
    `model.predict` runs one by one, several times faster on a CPU); larger ones go through
    `model.predict`."""
    from crossearth.inference import normalize, window_scores
    from crossearth.metrics import ConfusionMatrix, scores

    cfg = model.config.inference
    out = {}
    for name in (SOURCE, *TARGETS):
        cm = ConfusionMatrix(model.num_classes)
        images, labels = data[name]["val"]
        small = [i for i, im in enumerate(images)
                 if im.shape[0] <= cfg.crop_size[0] and im.shape[1] <= cfg.crop_size[1]]  # fmt: skip
        by_size: dict[tuple, list[int]] = {}
        for i in small:
            by_size.setdefault(images[i].shape, []).append(i)
        with torch.inference_mode():
            for group in by_size.values():
                for start in range(0, len(group), batch):
                    chunk = group[start : start + batch]
                    pixels = torch.from_numpy(np.stack([images[i] for i in chunk]))
                    x = normalize(pixels.permute(0, 3, 1, 2).float(), cfg.mean, cfg.std)
                    x = x.to(model.device)
                    pred = window_scores(model, x, model.config.backbone.patch_size).argmax(1)
                    for i, p in zip(chunk, pred.cpu().numpy(), strict=True):
                        cm.update(p.astype(np.uint8), labels[i])
        for i in sorted(set(range(len(images))) - set(small)):
            cm.update(model.predict(images[i]).labels, labels[i])
        out[name] = scores(cm.matrix).miou
    return out


def run_demo(output: Path, reference: Path | None = None, console: Console | None = None,
             budget: DemoBudget | None = None) -> dict:  # fmt: skip
    """Run the demo into `output` (see the module); returns its summary (also summary.json).

    Raises:
        Interrupted: (a `KeyboardInterrupt`) Ctrl-C: its `kept` names the runs that finished,
            or says that `output`, without one, was removed (what this demo created of it).
    """
    import logging
    import warnings

    console = console or Console()
    budget = budget or DemoBudget()
    import lightning  # noqa: F401  (it sets its loggers to INFO when imported: quiet them after)

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*tensor.detach.*")
    folder = RunFolder(output)
    output.mkdir(parents=True, exist_ok=True)
    finished: list[Path] = []
    try:
        return _run_demo(output, reference, console, budget, finished)
    except KeyboardInterrupt as exc:
        if finished:
            kept = (f"kept the finished runs {', '.join(str(f) for f in finished)} (each with "
                    "last.safetensors); the demo starts over when run again")  # fmt: skip
        else:
            kept = f"no run finished, so nothing kept: {folder.remove_created()}"
        raise Interrupted(kept, getattr(exc, "signum", signal.SIGINT)) from exc


def _run_demo(
    output: Path, reference: Path | None, console: Console, budget: DemoBudget, finished: list
) -> dict:
    started = time.perf_counter()
    summary: dict = {"budget": dataclasses.asdict(budget)}
    if budget.pipeline_check:
        summary["pipeline_check"] = PIPELINE_CHECK
        console.print(f"[bold yellow]This is a {PIPELINE_CHECK}.[/]")
    reference = find_reference(reference)
    steps = itertools.count(1)  # the printed steps, numbered from 1 whichever run
    if reference is None:
        console.print(
            "[yellow]official reference not found[/] (it is in tests/data/reference of a clone of "
            "the repository, or pass --reference): skipping the parity check"
        )
    else:
        parity = reference_parity(reference)
        ok = all(
            r["unexplained_pixels"] == 0 and r["max_abs_diff_outside_ties"] <= 1e-4
            for r in parity.values()
        )
        console.print(
            f"[bold]{next(steps)}. Parity with the official implementation:[/] max |Δscore| "
            + ", ".join(_parity_line(k, v) for k, v in parity.items())
            + (" [green]OK[/] (≤ 1e-4)" if ok else " [red]FAILED[/]")
        )
        summary["parity"] = parity
    console.print(
        f"[bold]{next(steps)}. SynthEarth:[/] source {SOURCE}, targets {', '.join(TARGETS)}"
    )
    precision = train_precision(budget.precision)
    regime = (
        f"backbone {budget.backbone}, " + ("frozen (Rein and the head train)" if budget.freeze
                                           else "fine-tuned with Rein and the head")
        if budget.backbone
        else "backbone from random init, trained"
    )  # fmt: skip
    console.print(
        f"[bold]{next(steps)}. Training[/] {count(len(budget.seeds), 'seed')} x (Rein baseline, "
        f"Rein + ESI + MTT): {regime}; {budget.steps} steps of {budget.batch} crops of "
        f"{budget.crop} px, {precision}"
    )
    summary["precision"] = precision
    data = {}
    for k, name in enumerate((SOURCE, *TARGETS)):
        data[name] = {"val": domain_arrays(name, budget.val_tiles, budget.tile, 500_000 + 1000 * k)}
    data[SOURCE]["train"] = domain_arrays(SOURCE, budget.train_tiles, budget.tile, 0)
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "crossearth": []}
    models = {}
    runs = 2 * len(budget.seeds)
    for i, seed in enumerate(budget.seeds):
        earth = _earth_style(budget, seed)
        for method in (False, True):
            key = "crossearth" if method else "baseline"
            t0 = time.perf_counter()
            label = f"run {2 * i + method + 1}/{runs} ({key}, seed {seed})"
            model = train_one(method, method, seed, budget, data, output / "runs", earth, label)
            finished.append(output / "runs" / f"{key}_seed{seed}")
            results[key].append(evaluate(model, data))
            models[key] = model
            console.print(f"   trained {key} (seed {seed}) in {time.perf_counter() - t0:.0f} s: "
                          + ", ".join(f"{d} {v:.1f}" for d, v in results[key][-1].items()))  # fmt: skip
    intervals = domain_intervals(results)
    print_table(console, _table(results, intervals))
    for name in (SOURCE, *TARGETS):
        console.print(verdict_line(name, intervals.get(name), len(budget.seeds)), highlight=False)
    if budget.pipeline_check:
        console.print(f"[yellow]These numbers mean nothing: {PIPELINE_CHECK}.[/]")
    summary["seeds"] = list(budget.seeds)
    summary["mIoU"] = results
    summary["paired"] = {
        name: dataclasses.asdict(iv) | {"verdict": iv.verdict} for name, iv in intervals.items()
    }
    _write_outputs(output, models, data, results, summary, budget)
    summary["seconds"] = to_seconds(time.perf_counter() - started)
    summary["model"] = str(output / MODEL_FILE)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"wrote {output}/report.md, figure.png, scene.tif, scene_classes.tif, scene_preview.png, "
                  f"scene_overlay.png ({summary['seconds']:.0f} s in all)")  # fmt: skip
    console.print(f"model: {output / MODEL_FILE} (CrossEarth, seed {budget.seeds[-1]}; try "
                  f"crossearth predict {output / 'scene.tif'} --model {output / MODEL_FILE} -o predictions/)")  # fmt: skip
    return summary


def domain_intervals(results: dict[str, list[dict[str, float]]]) -> dict[str, PairedInterval]:
    """Per domain, the 95 % t interval of CrossEarth minus baseline over seed-paired runs (empty
    with fewer than two seeds)."""
    base, method = results["baseline"], results["crossearth"]
    if len(base) < 2:
        return {}
    return {
        name: paired_interval([r[name] for r in base], [r[name] for r in method])
        for name in base[0]
    }


def verdict_line(name: str, interval: PairedInterval | None, seeds: int) -> str:
    """One line per domain: CrossEarth is ahead / behind / not separable from the baseline."""
    if interval is None:
        return f"{name}: no interval from {count(seeds, 'seed')} (it needs two or more)"
    iv = interval
    span = f"{iv.diff:+.1f} points, 95 % CI [{iv.low:+.1f}, {iv.high:+.1f}] over {iv.n} seeds"
    if iv.verdict == "ahead":
        return f"{name}: CrossEarth ahead ({span})"
    if iv.verdict == "behind":
        return f"{name}: CrossEarth behind ({span})"
    return f"{name}: not separable ({span}: the interval holds 0)"


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def _table(results: dict, intervals: dict[str, PairedInterval]) -> Table:
    n = len(results["baseline"])
    table = Table(title=f"mIoU % on SynthEarth (mean over {count(n, 'seed')})")
    table.add_column("domain")
    table.add_column("baseline (Rein)")
    table.add_column("CrossEarth (ESI + MTT)")
    table.add_column("Δ [95 % CI]")
    table.add_column("verdict")
    for name, row in _rows(results, intervals):
        table.add_row(name, *row)
    return table


def _rows(results: dict, intervals: dict[str, PairedInterval]) -> list[tuple[str, list[str]]]:
    rows = []
    for name in (SOURCE, *TARGETS):
        b = _mean([r[name] for r in results["baseline"]])
        c = _mean([r[name] for r in results["crossearth"]])
        iv = intervals.get(name)
        delta = f"{c - b:+.1f}" + (f" [{iv.low:+.1f}, {iv.high:+.1f}]" if iv else "")
        label = name + (" (source)" if name == SOURCE else "")
        rows.append((label, [f"{b:.1f}", f"{c:.1f}", delta, iv.verdict if iv else "–"]))
    return rows


def _write_outputs(
    output: Path, models: dict, data: dict, results: dict, summary: dict, budget
) -> None:
    from PIL import Image

    from crossearth.data.classes import ISPRS
    from crossearth.data.synthetic import DOMAINS, render_scene
    from crossearth.imageio import colorize
    from crossearth.predict import PredictOptions, predict_raster

    palette = ISPRS.palette
    from crossearth.figure import labelled_grid

    rows = []
    for name in (SOURCE, *TARGETS):
        image, label = data[name]["val"][0][0], data[name]["val"][1][0]
        rows.append([image, colorize(label, palette)] + [colorize(models[k].predict(image).labels, palette)
                                                         for k in ("baseline", "crossearth")])  # fmt: skip
    figure = labelled_grid(
        rows, [n + (" (source)" if n == SOURCE else "") for n in (SOURCE, *TARGETS)],
        ["image", "truth", "baseline (Rein)", "CrossEarth"], ISPRS.names, palette,
    )  # fmt: skip
    Image.fromarray(figure).save(output / "figure.png")
    # a georeferenced scene of the hardest target, predicted by the method's model
    import rasterio
    from rasterio.transform import from_origin

    spec = DOMAINS["urban-satellite-rgb"]
    scene, _ = render_scene(spec, 777, 2 * budget.tile)
    profile = dict(driver="GTiff", height=scene.shape[0], width=scene.shape[1], count=3, dtype="uint8",
                   crs="EPSG:32632", transform=from_origin(500000, 5800000, spec.gsd_m, spec.gsd_m))  # fmt: skip
    with rasterio.open(output / "scene.tif", "w", **profile) as dst:
        dst.write(np.moveaxis(scene, -1, 0))
    model = models["crossearth"]
    from crossearth.weights import save_model

    save_model(model, output / MODEL_FILE)
    predict_raster(model, output / "scene.tif", output, PredictOptions(overlay=True))
    regime = (
        f"the shipped `{budget.backbone}` backbone (vit-tiny-256, pretrained self-supervised on a "
        "broad SynthEarth archive), "
        + (
            "frozen: Rein and the head train"
            if budget.freeze
            else "fine-tuned with Rein and the head"
        )
        if budget.backbone
        else "vit-tiny-256 from random init, all weights trained"
    )
    lines = [
        "# CrossEarth demo on SynthEarth", "",
        *([f"**This is a {PIPELINE_CHECK}.**", ""] if budget.pipeline_check else []),
        f"Source domain: `{SOURCE}`; unseen targets: {', '.join(f'`{t}`' for t in TARGETS)}.",
        f"Model: {regime}; {budget.steps} steps of batch {budget.batch} on {budget.train_tiles} "
        f"source tiles of {budget.tile} px, seeds {list(budget.seeds)}, {summary['precision']}.",
        "Baseline = plain Rein/Mask2Former training; CrossEarth = the same plus Earth-Style Injection "
        "(spectral stylizer, Earth distribution fitted on a diverse RGB pool without target images) "
        "and Multi-Task Training (masked image modelling). Δ is the mean of the seed-paired "
        "differences (CrossEarth − baseline) with its 95 % t interval; the verdict reads the "
        "interval: ahead (all above 0), behind (all below 0), not separable (it holds 0).", "",
        "| domain | baseline (Rein) | CrossEarth (ESI + MTT) | Δ [95 % CI] | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    intervals = domain_intervals(results)
    for name, row in _rows(results, intervals):
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines += ["", "Per seed (mIoU %, baseline / CrossEarth):", ""]
    for name in (SOURCE, *TARGETS):
        pairs = ", ".join(
            f"{b[name]:.1f} / {c[name]:.1f}"
            for b, c in zip(results["baseline"], results["crossearth"], strict=True)
        )
        lines.append(f"- {name}: {pairs}")
    lines += ["", "![image / truth / baseline / CrossEarth](figure.png)", "",
              "`scene_classes.tif` is a georeferenced prediction of a satellite-domain scene "
              "(`scene.tif`), with `scene_preview.png` and `scene_overlay.png`.", "",
              f"`{MODEL_FILE}` is the CrossEarth model of seed {budget.seeds[-1]} (ISPRS class names and "
              f"palette, RGB input, GSD {DOMAINS[SOURCE].gsd_m} m): "
              f"`crossearth predict scene.tif --model {MODEL_FILE} -o predictions/`."]  # fmt: skip
    (output / "report.md").write_text("\n".join(lines) + "\n")

"""`crossearth eval`: score a checkpoint on a benchmark setting with the official protocol.

For every target domain of the setting: read each image and label of the split, predict with the
official test protocol (test resize S, slide, resize back, argmax), accumulate one confusion matrix
per domain (pooled pixels), and report per-class IoU/F1, mIoU, mF1, OA (and the foreground IoU for
binary sets) next to the paper's number. Progress is saved every few images, so an interrupted
evaluation continues where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.benchmark import Setting
from crossearth.data.catalog import DOMAINS
from crossearth.data.classes import class_names_problem, differing_class_names
from crossearth.data.domains import DomainDataset, Pair
from crossearth.errors import ConfigError, InputError
from crossearth.fileio import atomic_path
from crossearth.metrics import ConfusionMatrix, scores
from crossearth.numbers import seconds as to_seconds

SAVE_EVERY = 10


def check_model_fits(model: Any, setting: Setting, ignore_class_names: bool = False) -> None:
    """Refuse a model of another class count than `setting`, or (unless `ignore_class_names`)
    whose recorded class names differ from the setting's (`differing_class_names`).

    Raises:
        ConfigError: naming the counts, or every class id whose names differ.
    """
    if model.num_classes != setting.num_classes:
        names = ", ".join(setting.source_domain.classes.names)
        raise ConfigError(
            f"the checkpoint predicts {model.num_classes} classes but setting {setting.name} has "
            f"{setting.num_classes} ({names}): wrong checkpoint for this setting?"
        )
    check_class_names(model, setting.source_domain.classes.names, f"setting {setting.name}",
                      ignore_class_names)  # fmt: skip


def check_class_names(model: Any, names: Sequence[str], data: str, ignore: bool = False) -> None:
    """Refuse a model whose recorded class names differ from the data's `names` (same count);
    models or data without names, and `ignore`, pass.

    Raises:
        ConfigError: listing every class id whose names differ.
    """
    differences = differing_class_names(model.config.class_names, names)
    if differences and not ignore:
        raise ConfigError(class_names_problem(differences, data, "pass --ignore-class-names"))


def evaluate_setting(
    model: Any,
    setting: Setting,
    data_root: Path,
    out_dir: Path,
    *,
    limit: int | None = None,
    overrides: dict[str, Path] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    ignore_class_names: bool = False,
) -> dict[str, Any]:
    """Evaluate on every target of `setting`; writes JSON, Markdown and confusion PNGs to out_dir.

    Raises:
        ConfigError: a model of other classes than the setting's (`check_model_fits`).
    """
    check_model_fits(model, setting, ignore_class_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = list(setting.source_domain.classes.names)
    report: dict[str, Any] = {
        "setting": setting.name,
        "source": setting.source,
        "paper_mIoU": setting.paper_miou,
        "paper_source": setting.paper_source,
        "rein_mIoU": setting.rein_miou,
        "limit": limit,
        "targets": {},
    }
    for target in setting.targets:
        domain = DOMAINS[target.domain]
        data = DomainDataset(domain, target.split, data_root, overrides, limit)
        pairs, one_based = data.pairs, data.one_based
        state = out_dir / f".state_{_slug(setting.name)}_{domain.key}.npz"
        cm, done = _resume(state, pairs, len(class_names))
        started = time.perf_counter()
        for i in range(done, len(pairs)):
            image, label = data.load_arrays(i)
            pred = model.predict(
                image, test_resize=domain.test_resize, keep_ratio=domain.keep_ratio
            )
            cm.update(pred.labels, label)
            if (i + 1) % SAVE_EVERY == 0:
                _save_state(state, cm, i + 1, pairs)
            if progress is not None:
                progress(domain.key, i + 1, len(pairs))
        result = scores(cm.matrix)
        entry = {"domain": domain.key, "split": target.split, "images": len(pairs),
                 "seconds": to_seconds(time.perf_counter() - started), **result.as_dict(class_names)}  # fmt: skip
        if domain.labels.binary:
            entry["foreground_IoU"] = entry["per_class"][class_names[1]]["IoU"]
        if one_based:
            entry["note"] = "labels were 1..5 and were shifted to 0..4"
        report["targets"][domain.key] = entry
        write_confusion_png(
            cm.matrix, class_names, out_dir / f"confusion_{_slug(setting.name)}_{domain.key}.png"
        )
        np.save(out_dir / f"confusion_{_slug(setting.name)}_{domain.key}.npy", cm.matrix)
        state.unlink(missing_ok=True)
    mious = [t["mIoU"] for t in report["targets"].values() if t["mIoU"] is not None]
    report["mIoU"] = float(np.mean(mious)) if mious else None
    if report["mIoU"] is not None and setting.paper_miou is not None:
        report["delta_vs_paper"] = round(report["mIoU"] - setting.paper_miou, 2)
    with atomic_path(out_dir / f"eval_{_slug(setting.name)}.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_path(out_dir / f"eval_{_slug(setting.name)}.md") as tmp:
        tmp.write_text(markdown_report(report, class_names))
    return report


def _slug(name: str) -> str:
    return name.replace("(", "").replace(")", "").replace("/", "-")


def _fingerprint(pairs: list[Pair]) -> str:
    return hashlib.sha256("\n".join(p.image.name for p in pairs).encode()).hexdigest()


def _resume(state: Path, pairs: list[Pair], num_classes: int) -> tuple[ConfusionMatrix, int]:
    cm = ConfusionMatrix(num_classes)
    if state.is_file():
        data = np.load(state)
        if (
            str(data["fingerprint"]) == _fingerprint(pairs)
            and data["matrix"].shape == cm.matrix.shape
        ):
            cm.matrix[:] = data["matrix"]
            return cm, int(data["done"])
    return cm, 0


def _save_state(state: Path, cm: ConfusionMatrix, done: int, pairs: list[Pair]) -> None:
    with atomic_path(state.with_suffix(".npz")) as tmp, open(tmp, "wb") as f:
        np.savez(f, matrix=cm.matrix, done=done, fingerprint=_fingerprint(pairs))


def markdown_report(report: dict[str, Any], class_names: list[str]) -> str:
    lines = [f"# {report['setting']}", ""]
    if report.get("limit"):
        lines += [f"Quick look: first {report['limit']} images per target only.", ""]
    header = "| target | images | mIoU | mF1 | OA | " + " | ".join(class_names) + " |"
    lines += [header, "|" + " --- |" * (5 + len(class_names))]
    for key, t in report["targets"].items():
        per_class = " | ".join(_fmt(t["per_class"][n]["IoU"]) for n in class_names)
        lines.append(
            f"| {key} | {t['images']} | {_fmt(t['mIoU'])} | {_fmt(t['mF1'])} | {_fmt(t['OA'])} | {per_class} |"
        )
    paper = report.get("paper_mIoU")
    if "data" in report:  # a user's data set: no paper number to compare with
        lines += ["", f"mIoU {_fmt(report.get('mIoU'))} on {report['data']} ({report['split']})"]
    else:
        lines += [
            "",
            f"mIoU {_fmt(report.get('mIoU'))}; paper (CrossEarth) {_fmt(paper)}"
            + (f" from the {report['paper_source']}" if paper is not None else " (not published)"),
        ]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def write_confusion_png(
    matrix: np.ndarray, class_names: list[str], path: Path, cell: int = 48
) -> Path:
    """A row-normalised confusion matrix (rows: true class, columns: predicted) as a PNG."""
    from PIL import Image, ImageDraw

    n = len(class_names)
    margin = 150
    img = Image.new("RGB", (margin + n * cell + 10, margin + n * cell + 10), "white")
    draw = ImageDraw.Draw(img)
    rows = matrix.sum(1, keepdims=True)
    norm = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    for i in range(n):
        draw.text((5, margin + i * cell + cell // 3), class_names[i][:22], fill="black")
        draw.text(
            (margin + i * cell + 2, margin - 20 - (i % 2) * 14), class_names[i][:8], fill="black"
        )
        for j in range(n):
            v = norm[i, j]
            shade = int(255 * (1 - v))
            x, y = margin + j * cell, margin + i * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(shade, shade, 255))
            draw.text(
                (x + 6, y + cell // 3), f"{100 * v:.0f}", fill="black" if v < 0.6 else "white"
            )
    draw.text((5, 5), "rows: true class, columns: predicted (% of row)", fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def _bands_for_model(spec: Any, model: Any) -> Any:
    """`spec` reading the bands the model takes: without `bands:` those the model records (a
    model of other than three bands); a `bands:` list of another count is refused."""
    import dataclasses

    n = model.config.in_chans
    if spec.bands is None:
        if n != 3 and model.config.band_indices:
            return dataclasses.replace(spec, bands=tuple(model.config.band_indices))
        return spec
    if len(spec.bands) != n:
        raise ConfigError(
            f"the model takes {n} band(s) but {spec.path.name} lists {len(spec.bands)} "
            f"(bands: {list(spec.bands)}): wrong model for this data?"
        )
    return spec


def evaluate_data(
    model: Any,
    spec: Any,
    split: str,
    out_dir: Path,
    *,
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    ignore_class_names: bool = False,
) -> dict[str, Any]:
    """Score a model on one split of a data set description (`crossearth.data.spec.DataSpec`).

    The same report as `evaluate_setting` (per-class IoU/F1/precision/recall, mIoU, mF1, OA, a
    confusion matrix over all labelled pixels of the split), read through `SceneDataset` and
    predicted with the official slide inference on blocks of at most 2048 px a side.

    Blocks without a labelled pixel are not predicted (they add nothing to the matrix).

    Raises:
        ConfigError: the model's class count differs from the data set's, its class names
            (unless `ignore_class_names`; compared by `crossearth.data.classes.class_key`), or
            its band count from the description's `bands:`.
        InputError: the split does not exist, a file does not fit the description, or the split
            (its first `limit` blocks) holds no labelled pixel: nothing is written then.
    """
    from crossearth.data.labels import IGNORE
    from crossearth.data.scenes import SceneDataset, ValidationBlocks

    chosen = spec.split(split)
    class_names = list(spec.classes)
    if model.num_classes != spec.num_classes:
        raise ConfigError(
            f"the model predicts {model.num_classes} classes but {spec.path.name} has "
            f"{spec.num_classes} ({', '.join(class_names)}): wrong model for this data?"
        )
    check_class_names(model, class_names, spec.path.name, ignore_class_names)
    spec = _bands_for_model(spec, model)
    blocks = ValidationBlocks(
        SceneDataset(spec, chosen), max(2048, model.config.inference.crop_size[0])
    )
    total = min(len(blocks), limit) if limit else len(blocks)
    cm = ConfusionMatrix(len(class_names))
    started = time.perf_counter()
    for k in range(total):
        label = blocks.read_labels(k)
        if not (label == IGNORE).all():
            image, label = blocks.load(k, labels=label)
            cm.update(model.predict(image).labels, label)
        if progress is not None:
            progress(split, k + 1, total)
    images = len({blocks.items[k][0] for k in range(total)})
    from crossearth.data.check import nodata_warnings

    warnings = nodata_warnings(spec, blocks.dataset.label_sources().items())
    if cm.matrix.sum() == 0:
        raise InputError(nothing_to_score(spec, split, images, limit))
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{spec.path.stem} {split}"
    entry = {"domain": split, "split": split, "images": images,
             "blocks": total, "seconds": to_seconds(time.perf_counter() - started),
             **scores(cm.matrix).as_dict(class_names)}  # fmt: skip
    report: dict[str, Any] = {"setting": name, "data": str(spec.path), "split": split,
                              "limit": limit, "paper_mIoU": None, "targets": {split: entry},
                              "mIoU": entry["mIoU"], "warnings": warnings}  # fmt: skip
    slug = _slug(f"{spec.path.stem}_{split}")
    write_confusion_png(cm.matrix, class_names, out_dir / f"confusion_{slug}.png")
    np.save(out_dir / f"confusion_{slug}.npy", cm.matrix)
    with atomic_path(out_dir / f"eval_{slug}.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_path(out_dir / f"eval_{slug}.md") as tmp:
        tmp.write_text(markdown_report(report, class_names))
    return report


def nothing_to_score(spec: Any, split: str, images: int, limit: int | None = None) -> str:
    """Why a split of a data set description cannot be scored: it holds no labelled pixel."""
    where = f"its first {limit} block(s) (--limit)" if limit else f"its {images} image(s)"
    return (
        f"{spec.path}: nothing to score in split {split!r}: {where} hold no labelled pixel "
        f"(every pixel is unlabelled: ignore_index {spec.ignore_index}, under no polygon, or "
        "image nodata); label some of it, or evaluate another split (--split)"
    )

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.benchmark import Setting
from crossearth.data.catalog import DOMAINS, Domain, LabelSpec
from crossearth.errors import ConfigError, InputError
from crossearth.fileio import atomic_path
from crossearth.metrics import IGNORE_INDEX, ConfusionMatrix, scores

SAVE_EVERY = 10


@dataclass(frozen=True)
class Pair:
    image: Path
    label: Path


def domain_root(domain: Domain, data_root: Path, overrides: dict[str, Path] | None = None) -> Path:
    if overrides and domain.key in overrides:
        return overrides[domain.key]
    return data_root / domain.folder


def find_pairs(domain: Domain, split: str, root: Path) -> list[Pair]:
    """Image/label pairs of one split, sorted by name; errors say what is missing and how to fix it."""
    if split not in domain.splits:
        raise InputError(
            f"{domain.title} has no {split!r} split (it has {', '.join(domain.splits)})"
        )
    layout = domain.splits[split]
    images_dir = root / layout.images
    if not images_dir.is_dir():
        raise InputError(
            f"{domain.title} {split} images not found at {images_dir}. Prepare the data with "
            f"`crossearth data prepare` or point --data-root (or --domain-dir {domain.key}=PATH) at it"
        )
    label_dirs = [root / layout.labels] + [
        images_dir.parent / d for d in layout.label_dirs_fallback
    ]
    label_dir = next((d for d in label_dirs if d.is_dir()), None)
    if label_dir is None:
        raise InputError(
            f"{domain.title} {split} labels not found (looked for {', '.join(map(str, label_dirs))})"
        )
    images = sorted(p for p in images_dir.iterdir() if p.name.endswith(layout.image_suffix))
    if not images:
        raise InputError(f"no {layout.image_suffix} images in {images_dir}")
    pairs, missing = [], []
    for image in images:
        stem = image.name[: -len(layout.image_suffix)]
        label = label_dir / f"{stem}{layout.label_suffix}"
        (pairs.append(Pair(image, label)) if label.is_file() else missing.append(label.name))
    if missing:
        raise InputError(f"{len(missing)} labels missing in {label_dir}, e.g. {missing[0]}")
    return pairs


def read_image(path: Path) -> np.ndarray:
    """H x W x 3 uint8 (PNG/JPEG via PIL, TIFF via rasterio), channels in file order."""
    array = _read_array(path, rgb=True)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.shape[-1] > 3:
        array = array[..., :3]
    if array.dtype != np.uint8:
        raise InputError(f"{path}: benchmark images must be 8-bit, got {array.dtype}")
    return np.ascontiguousarray(array)


def read_label(
    path: Path, spec: LabelSpec, num_classes: int, one_based: bool = False
) -> np.ndarray:
    """Class ids 0..C-1 and 255 (ignore) from a label file, following the domain's convention."""
    raw = _read_array(path)
    if raw.ndim == 3:
        raw = raw[..., 0]
    raw = raw.astype(np.int64)
    if spec.binary:
        label = (raw > 0).astype(np.int64)
    elif spec.reduce_zero_label or one_based:
        label = np.where((raw == 0) | (raw == IGNORE_INDEX), IGNORE_INDEX, raw - 1)
    else:
        label = raw
    bad = (label != IGNORE_INDEX) & ((label < 0) | (label >= num_classes))
    if bad.any():
        values = sorted(set(np.unique(raw[bad]).tolist()))
        raise InputError(
            f"{path}: label values {values} are out of range for {num_classes} classes"
        )
    return label.astype(np.uint8)


def detect_one_based(pairs: list[Pair], sample: int = 8) -> bool:
    """CASID labels: True if the first label files hold the value 5 and never 0 (ids 1..5)."""
    seen: set[int] = set()
    for pair in pairs[:sample]:
        seen |= set(np.unique(_read_array(pair.label)).tolist())
    return 5 in seen and 0 not in seen


def _read_array(path: Path, rgb: bool = False) -> np.ndarray:
    """Pixels as stored (labels: palette PNGs give their indices); `rgb` converts PNG/JPEG to RGB."""
    if path.suffix.lower() in {".tif", ".tiff"}:
        import rasterio

        with rasterio.open(path) as src:
            data = src.read()
        return data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB") if rgb and img.mode != "RGB" else img)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def check_model_fits(model: Any, setting: Setting) -> None:
    if model.num_classes != setting.num_classes:
        names = ", ".join(setting.source_domain.classes.names)
        raise ConfigError(
            f"the checkpoint predicts {model.num_classes} classes but setting {setting.name} has "
            f"{setting.num_classes} ({names}): wrong checkpoint for this setting?"
        )


def evaluate_setting(
    model: Any,
    setting: Setting,
    data_root: Path,
    out_dir: Path,
    *,
    limit: int | None = None,
    overrides: dict[str, Path] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate on every target of `setting`; writes JSON, Markdown and confusion PNGs to out_dir."""
    check_model_fits(model, setting)
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
        pairs = find_pairs(domain, target.split, domain_root(domain, data_root, overrides))
        if limit:
            pairs = pairs[:limit]
        one_based = domain.labels.detect_one_based and detect_one_based(pairs)
        state = out_dir / f".state_{_slug(setting.name)}_{domain.key}.npz"
        cm, done = _resume(state, pairs, len(class_names))
        started = time.perf_counter()
        for i in range(done, len(pairs)):
            pair = pairs[i]
            label = read_label(pair.label, domain.labels, len(class_names), one_based)
            image = read_image(pair.image)
            if image.shape[:2] != label.shape:
                raise InputError(
                    f"{pair.image.name}: image {image.shape[:2]} and label {label.shape} differ"
                )
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
                 "seconds": time.perf_counter() - started, **result.as_dict(class_names)}  # fmt: skip
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

"""DeepGlobe Road Extraction: the Kaggle mirror (balraj98/deepglobe-road-extraction-dataset).

Input: the Kaggle zip or its folder: `train/<id>_sat.jpg` + `train/<id>_mask.png` (and `valid/`,
`test/` with images only, ignored, and `metadata.csv`, optional: when present its train rows are
compared with the pairs found). The CodaLab original uses the same names.

Output: `DATA_ROOT/deepglobe/train/<id>_sat.jpg` (copied byte for byte) + `<id>_mask.png`, 0/1.
Masks follow the one binary-mask rule of all converters (`pairs.binarize`): 0/1 masks (re-shared
copies) are kept, 0/255 masks are thresholded at 128 (the challenge warns that masks "may not be
pure 0 and 255"; up to 1 % other values are tolerated), anything else is refused naming the file.
Colour masks (channels that differ) are rejected: those are the DeepGlobe land-cover dataset,
which uses the same file names.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import PrepareOptions, PrepareReport, Source, basename
from crossearth.data.prepare.pairs import (
    Pair,
    binarize,
    convert_pairs,
    fill_found,
    index,
    limited,
    members,
    new_report,
)
from crossearth.errors import InputError

_SPLITS = ("train", "valid", "test")
_KINDS = (("_sat.jpg", "image"), ("_mask.png", "label"))


def _classify(ps: tuple[str, ...]) -> tuple | None:
    if len(ps) < 2 or ps[-2].lower() not in _SPLITS:
        return None
    for suffix, kind in _KINDS:
        if ps[-1].endswith(suffix):
            return ps[-2].lower(), kind, ps[-1][: -len(suffix)]
    return None


def _label(mask: np.ndarray, name: str) -> np.ndarray:
    if mask.ndim == 3:
        rgb = mask[..., :3].astype(np.int16)
        spread = rgb.max(axis=2) - rgb.min(axis=2)
        if (spread > 64).mean() > 0.01:
            raise InputError(
                f"{name} is a colour mask: this looks like the DeepGlobe land-cover dataset, not "
                "road extraction (grey road masks)"
            )
    return binarize(mask, name, "DeepGlobe")


def _metadata_note(source: Source, found: int) -> str | None:
    names = [n for n in source.names() if basename(n) == "metadata.csv"]
    if not names:
        return None
    try:
        rows = list(csv.DictReader(io.StringIO(source.read_bytes(names[0]).decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return "metadata.csv is unreadable; ignored"
    train = sum(1 for r in rows if (r.get("split") or "").strip().lower() == "train")
    if train == found:
        return f"metadata.csv lists {train} train images, as found"
    return f"metadata.csv lists {train} train images but {found} train pairs were found"


def prepare_deepglobe(raw: Path, out: Path, options: PrepareOptions) -> PrepareReport:
    source = Source(raw)
    found, duplicates = index(members(source), _classify)
    splits = {s for s, _, _ in found}
    if "train" not in splits:
        extra = f" (found only {', '.join(sorted(splits))}/, which have no masks)" if splits else ""
        raise InputError(
            f"no DeepGlobe road train/ folder (<id>_sat.jpg + <id>_mask.png) found in {raw}{extra}"
        )
    domain = get_domain("deepglobe")
    report = new_report(domain, out)
    base = out / domain.folder / "train"
    ids = sorted({i for s, _, i in found if s == "train"})
    pairs = [
        Pair(
            key=f"train/{i}",
            image=found.get(("train", "image", i)),
            label=found.get(("train", "label", i)),
            image_out=base / f"{i}_sat.jpg",
            label_out=base / f"{i}_mask.png",
            split="train",
        )
        for i in ids
    ]
    convert_pairs(source, limited(pairs, options), report, options, "DeepGlobe", _label)
    for split in ("valid", "test"):
        n = sum(1 for s, k, _ in found if s == split and k == "image")
        if n:
            report.notes.append(f"{split}/ ignored ({n} images, no masks published)")
    note = _metadata_note(source, sum(1 for p in pairs if p.image and p.label))
    if note:
        report.notes.append(note)
    if duplicates:
        report.notes.append(f"{duplicates} duplicate files ignored (archive and unpacked copy)")
    return fill_found(report, domain, out)

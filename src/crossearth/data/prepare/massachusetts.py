"""Massachusetts Roads (Mnih 2013): the Kaggle mirror or the original per-file download.

Input, either layout (zipped or not):
- Kaggle mirror (balraj98/massachusetts-roads-dataset): `tiff/{train,val,test}/<stem>.tiff` with
  labels `tiff/{train,val,test}_labels/<stem>.tif`;
- the original `mass_roads/{train,valid,test}/{sat,map}/`: `sat/<stem>.tiff`, `map/<stem>.tif`.

Output: `DATA_ROOT/massachusetts/{train,test}/<stem>.tiff` (copied byte for byte) and
`{train,test}_labels_new/<stem>.tif`, 0/1 single-band uint8 TIFFs (road = 1; masks by the one
binary-mask rule of all converters, `pairs.binarize`: 0/1 or 0/255), the
folders the official `MassRoadDataset` reads. The 14 validation tiles are not part of the
benchmark and are ignored.

Some tiles have large areas of missing imagery. Tiles with more than 25 % of black (all bands 0)
pixels are counted in a note, and so are tiles with more than 25 % pure-white pixels, as sources
disagree on the colour of the gaps; nothing is dropped (CrossEarth tests on all 49 test tiles).
Only tiles written in this run are inspected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import PrepareOptions, PrepareReport, Source
from crossearth.data.prepare.pairs import (
    Pair,
    binarize,
    convert_pairs,
    fill_found,
    index,
    limited,
    members,
    new_report,
    require_splits,
)

_SPLIT = {"train": "train", "val": "val", "valid": "val", "test": "test"}
_TIF = (".tif", ".tiff")
BLANK_FRACTION = 0.25


def _classify(ps: tuple[str, ...]) -> tuple | None:
    if len(ps) < 2 or not ps[-1].lower().endswith(_TIF):
        return None
    stem = Path(ps[-1]).stem
    folder = ps[-2].lower()
    if folder in _SPLIT:  # Kaggle images
        return _SPLIT[folder], "image", stem
    if folder.endswith("_labels") and folder[: -len("_labels")] in _SPLIT:  # Kaggle labels
        return _SPLIT[folder[: -len("_labels")]], "label", stem
    if len(ps) >= 3 and ps[-3].lower() in _SPLIT and folder in ("sat", "map"):  # original
        return _SPLIT[ps[-3].lower()], "image" if folder == "sat" else "label", stem
    return None


def _label(label: np.ndarray, name: str) -> np.ndarray:
    return binarize(label, name, "Massachusetts")


def prepare_massachusetts(raw: Path, out: Path, options: PrepareOptions) -> PrepareReport:
    source = Source(raw)
    found, duplicates = index(members(source), _classify)
    require_splits(
        found, ("train", "test"), raw,
        f"no Massachusetts roads data found in {raw}: expected the Kaggle mirror's "
        "tiff/{train,train_labels,test,test_labels} or the original "
        "mass_roads/{train,valid,test}/{sat,map}",
        lambda split: f"Massachusetts {split} split",
    )  # fmt: skip
    domain = get_domain("massachusetts")
    report = new_report(domain, out)
    pairs = []
    for split in ("train", "test"):
        base = out / domain.folder
        for stem in sorted({s for sp, _, s in found if sp == split}):
            pairs.append(
                Pair(
                    key=f"{split}/{stem}",
                    image=found.get((split, "image", stem)),
                    label=found.get((split, "label", stem)),
                    image_out=base / split / f"{stem}.tiff",
                    label_out=base / f"{split}_labels_new" / f"{stem}.tif",
                    split=split,
                )
            )

    inspected, black, white = [0], [], []

    def inspect(name: str) -> None:
        pixels = source.read_image(name)
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        inspected[0] += 1
        if (pixels == 0).all(axis=2).mean() > BLANK_FRACTION:
            black.append(name)
        if (pixels == 255).all(axis=2).mean() > BLANK_FRACTION:
            white.append(name)

    convert_pairs(
        source, limited(pairs, options), report, options, "Massachusetts", _label, inspect
    )
    if inspected[0]:
        report.notes.append(
            f"blank tiles (> 25 % missing imagery) among the {inspected[0]} written in this run: "
            f"{len(black)} with zero-valued (black) pixels, {len(white)} with white pixels; kept"
        )
    n_val = sum(1 for s, k, _ in found if s == "val" and k == "image")
    if n_val:
        report.notes.append(f"validation split ignored ({n_val} tiles; not in the benchmark)")
    if duplicates:
        report.notes.append(f"{duplicates} duplicate files ignored (archive and unpacked copy)")
    return fill_found(report, domain, out)

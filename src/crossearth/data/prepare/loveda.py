"""LoveDA (Zenodo record 5706578): `Train.zip` and `Val.zip` -> `loveda/{Train,Val}/{Urban,Rural}`.

Input: the zips as published (each holds `Train/...` or `Val/...`), or the folders they unpack to,
`{Train,Val}/{Urban,Rural}/{images_png,masks_png}/<id>.png`, anywhere below the raw folder.
`Test.zip` has no masks and is ignored.

Output: `DATA_ROOT/loveda/{Train,Val}/{Urban,Rural}/{images_png,masks_png}/<id>.png`, the raw
layout that the official Rural<->Urban configs read. Domains stay apart: mmseg's `loveda.py`
converter merges Urban and Rural into `img_dir/ann_dir`, which makes domain generalization
impossible. Images and masks are copied byte for byte; masks keep their encoding (0 = no-data,
1..7 = background, building, road, water, barren, forest, agricultural; read with
reduce_zero_label). A mask value above 7 is an InputError.

One report per domain (`loveda-urban`, `loveda-rural`) with the train and val splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import PrepareOptions, PrepareReport, Source
from crossearth.data.prepare.pairs import (
    Pair,
    check_range,
    convert_pairs,
    fill_found,
    index,
    limited,
    members,
    new_report,
    single_band,
)
from crossearth.errors import InputError

SPLITS = {"train": "Train", "val": "Val", "test": "Test"}
DOMAINS = {"urban": "Urban", "rural": "Rural"}
KINDS = ("images_png", "masks_png")


def _classify(ps: tuple[str, ...]) -> tuple | None:
    if len(ps) < 4 or not ps[-1].lower().endswith(".png"):
        return None
    split, domain, kind = ps[-4].lower(), ps[-3].lower(), ps[-2].lower()
    if split in SPLITS and domain in DOMAINS and kind in KINDS:
        return SPLITS[split], DOMAINS[domain], kind, ps[-1]
    return None


def _check_mask(mask: np.ndarray, name: str) -> None:
    mask = single_band(mask, name, "LoveDA")
    check_range(mask, name, "LoveDA", "0 = no-data, 1..7 = classes", 7)
    return None  # copy the mask as it is


def prepare_loveda(raw: Path, out: Path, options: PrepareOptions) -> list[PrepareReport]:
    source = Source(raw)
    found, duplicates = index(members(source), _classify)
    present = {(split, domain) for split, domain, _, _ in found}
    if not present & {(s, d) for s in ("Train", "Val") for d in DOMAINS.values()}:
        raise InputError(f"no LoveDA Train.zip/Val.zip or Train/ folder found in {raw}")
    for split in ("Train", "Val"):
        for domain in DOMAINS.values():
            if (split, domain) not in present:
                have = sorted({f"{s}/{d}" for s, d in present if s != "Test"})
                raise InputError(
                    f"LoveDA {split}/{domain} not found in {raw} (found {', '.join(have)}); "
                    f"download {split}.zip from Zenodo record 5706578"
                )

    reports: dict[str, PrepareReport] = {}
    domains = {name: get_domain(f"loveda-{name.lower()}") for name in DOMAINS.values()}
    for name, dom in domains.items():
        reports[name] = new_report(dom, out)
    pairs: list[Pair] = []
    for split in ("Train", "Val"):
        for domain in DOMAINS.values():
            stems = sorted(
                {f for s, d, _, f in found if (s, d) == (split, domain)},
                key=lambda f: (len(f), f),
            )
            base = out / "loveda" / split / domain
            pairs.extend(
                Pair(
                    key=f"{split}/{domain}/{f}",
                    image=found.get((split, domain, "images_png", f)),
                    label=found.get((split, domain, "masks_png", f)),
                    image_out=base / "images_png" / f,
                    label_out=base / "masks_png" / f,
                    split=f"{split}/{domain}",
                )
                for f in stems
            )
    convert_pairs(
        source,
        limited(pairs, options),
        lambda pair: reports[pair.split.split("/")[1]],
        options,
        "LoveDA",
        _check_mask,
    )

    for name, rep in reports.items():
        fill_found(rep, domains[name], out)
        if any(s == "Test" for s, _ in present):
            rep.notes.append("Test split ignored (its masks are not published)")
        if duplicates:
            rep.notes.append(f"{duplicates} duplicate files ignored (archive and unpacked copy)")
    reports["Urban"].notes.append(
        "Val Urban: 677 expected (1833 labelled Urban - 1156 Train); the CrossEarth table's 667 "
        "looks like a typo"
    )
    return [reports["Urban"], reports["Rural"]]

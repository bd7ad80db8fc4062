"""CASID through CrossEarth's repack (`CAISD.zip`, HF `Cusyoung/CrossEarth-Benchmark` / Baidu).

Only the repack is supported. The raw archives of Linwei-Chen/CASID (Baidu Pan, one per climate
zone, 5000x5000 scenes) have an undocumented layout and no published train/test split.

Input: `CAISD.zip` or its folder, `<Domain>/all_train/{image,label}` and
`<Domain>/all_test/{image,label}` (`all_test/label_id` for TroMs), images `<stem>.png`, labels
`<stem>-label.png`. Domain folders are matched case-insensitively, with common variants: SubMs (Sub,
subtropical_monsoon), TemMs (Tem, temperate_monsoon), TroMs (Tms, tropical_monsoon), TroRf (Trf,
tropical_rainforest).

Output: `DATA_ROOT/casid/<Domain>/all_train/{image,label}` and `all_test/{image,label}` (TroMs:
`all_test/label_id`), per the catalog. Files are copied byte for byte. Where a split has both
`label_id/` and `label/`, `label_id/` (class ids) is used. Colour labels (RGB with distinct
channels) are decoded with the CrossEarth CASID palette, unknown colours -> 255 (ignore).

Label ids: the benchmark README says 1..5 while the configs need 0..4. The labels read are checked
(0..5, and 255 = ignore, are allowed) and the report says which numbering was seen; the catalog's
`detect_one_based` subtracts 1 at read time when a domain holds 5 and no 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crossearth.data.catalog import get_domain
from crossearth.data.classes import CASID
from crossearth.data.prepare.common import (
    PrepareOptions,
    PrepareReport,
    Source,
    colours_to_ids,
)
from crossearth.data.prepare.pairs import (
    Pair,
    convert_pairs,
    fill_found,
    index,
    limited,
    members,
    new_report,
    parts,
)
from crossearth.errors import InputError

DOMAINS = ("SubMs", "TemMs", "TroMs", "TroRf")
_ALIASES = {
    "SubMs": ("subms", "sub", "subtropicalmonsoon", "subtropical"),
    "TemMs": ("temms", "tem", "temperatemonsoon", "temperate"),
    "TroMs": ("troms", "tms", "tropicalmonsoon"),
    "TroRf": ("trorf", "trf", "tropicalrainforest", "rainforest"),
}
_DOMAIN_OF = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
_SPLITS = {"all_train": "train", "all_test": "test"}
_LABEL_DIRS = ("label_id", "label")  # in order of preference


def domain_name(folder: str) -> str | None:
    return _DOMAIN_OF.get(re.sub(r"[^a-z]", "", folder.lower()))


def _classify(ps: tuple[str, ...]) -> tuple | None:
    if len(ps) < 4 or not ps[-1].lower().endswith(".png"):
        return None
    domain, split, role = domain_name(ps[-4]), _SPLITS.get(ps[-3].lower()), ps[-2].lower()
    if domain is None or split is None:
        return None
    file = ps[-1]
    if role == "image" and not file.endswith("-label.png"):
        return domain, split, role, file[: -len(".png")]
    if role in _LABEL_DIRS and file.endswith("-label.png"):
        return domain, split, role, file[: -len("-label.png")]
    return None


class _Values:
    """Which label numbering a domain's labels use."""

    def __init__(self) -> None:
        self.read = 0
        self.zero = self.five = False
        self.unknown_colours = None

    def check(self, label: np.ndarray, name: str) -> np.ndarray | None:
        converted = None
        if label.dtype == bool:
            label = label.astype(np.uint8)
        if label.ndim == 3:
            rgb = label[..., :3]
            if (rgb == rgb[..., :1]).all():
                label = converted = rgb[..., 0]
            else:
                palette = {c: i for i, c in enumerate(CASID.palette)}
                label, colours = colours_to_ids(np.ascontiguousarray(rgb), palette, default=255)
                self.unknown_colours.update(colours)
                converted = label
        values = np.unique(label)
        bad = [int(v) for v in values if v > 5 and v != 255]
        if bad:
            raise InputError(
                f"{name}: label value {bad[0]} is out of range for CASID (0..4 or 1..5, 255 = "
                "ignore); is this the right dataset?"
            )
        self.read += 1
        self.zero |= bool((values == 0).any())
        self.five |= bool((values == 5).any())
        return converted

    def note(self) -> str:
        if not self.read:
            return "no labels read in this run (all outputs existed): label numbering not checked"
        if self.zero and self.five:
            return (
                f"labels hold both 0 and 5 ({self.read} read): the numbering is ambiguous; "
                "check these labels"
            )
        if self.five:
            return (
                f"labels are one-based, 1..5 ({self.read} read); detect_one_based subtracts 1 "
                "when they are read"
            )
        return f"labels are zero-based, 0..4 ({self.read} read)"


def prepare_casid(raw: Path, out: Path, options: PrepareOptions) -> list[PrepareReport]:
    source = Source(raw)
    found, duplicates = index(members(source), _classify)
    if not found:
        raise InputError(
            f"no CrossEarth CASID repack found in {raw}: expected <Domain>/all_train/{{image,label}}"
            " and <Domain>/all_test/{image,label or label_id} with <stem>.png / <stem>-label.png "
            "(Domain = SubMs, TemMs, TroMs, TroRf), as in CrossEarth's CAISD.zip. The raw Baidu "
            "archives of Linwei-Chen/CASID have an undocumented layout and are not supported."
        )
    reports, pairs, values = {}, [], {}
    for name in DOMAINS:
        domain = get_domain(f"casid-{name.lower()}")
        reports[name] = report = new_report(domain, out)
        values[name] = _Values()
        values[name].unknown_colours = report.unknown_colours
        if not any(d == name for d, _, _, _ in found):
            report.notes.append(f"{name} not found in {raw}")
            continue
        for split in ("train", "test"):
            stems = sorted({s for d, sp, _, s in found if (d, sp) == (name, split)})
            if not stems:
                report.notes.append(_absent_note(name, split, raw))
                continue
            layout = domain.splits[split]
            base = out / domain.folder
            for stem in stems:
                label = next(
                    (found[k] for r in _LABEL_DIRS if (k := (name, split, r, stem)) in found), None
                )
                pairs.append(
                    Pair(
                        key=f"{name}/all_{split}/{stem}",
                        image=found.get((name, split, "image", stem)),
                        label=label,
                        image_out=base / layout.images / f"{stem}{layout.image_suffix}",
                        label_out=base / layout.labels / f"{stem}{layout.label_suffix}",
                        split=f"{name}/{split}",
                    )
                )
    convert_pairs(
        source,
        limited(pairs, options),
        lambda pair: reports[pair.split.split("/")[0]],
        options,
        "CASID",
        lambda label, name: values[_domain_of_member(name)].check(label, name),
    )
    for name, report in reports.items():
        fill_found(report, get_domain(f"casid-{name.lower()}"), out)
        if any(d == name for d, _, _, _ in found):
            report.notes.append(values[name].note())
        if duplicates:
            report.notes.append(f"{duplicates} duplicate files ignored (archive and unpacked copy)")
    return [reports[name] for name in DOMAINS]


def _domain_of_member(name: str) -> str:
    return domain_name(parts(name)[-4]) or DOMAINS[0]


def _absent_note(domain: str, split: str, raw: Path) -> str:
    note = f"{domain}/all_{split} not found in {raw}"
    if domain == "TemMs" and split == "test":
        note += " (the first CAISD release lacked the TemMs test images: VisionXLab/CrossEarth#15)"
    return note

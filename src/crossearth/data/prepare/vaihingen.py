"""ISPRS Vaihingen: see `isprs` for the shared tiling and label rules."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import PrepareOptions, PrepareReport, basename
from crossearth.data.prepare.isprs import (
    _VAIHINGEN_FILE,
    VAIHINGEN_SPLITS,
    _convert,
    _finish,
    _first,
    _limit_note,
    _open_source,
    _ordered,
    _split_of,
    _Target,
    _Tile,
)
from crossearth.errors import InputError


def _in_ground_truth(name: str) -> bool:
    """Whether a folder or zip on the member's path is a ground-truth one."""
    containers = [part.lower() for part in re.split(r"[/!]", name)[:-1]]
    return any("ground_truth" in part or part.startswith("gts") for part in containers)


def _in_top_folder(name: str) -> bool:
    return PurePosixPath(name.split("!")[-1]).parent.name == "top"


def prepare_vaihingen(raw: Path, out: Path, options: PrepareOptions) -> PrepareReport:
    """ISPRS Vaihingen -> `out/vaihingen` (domain `vaihingen`). See the module docs."""
    raw, out = Path(raw), Path(out)
    source = _open_source(raw)
    domain = get_domain("vaihingen")
    report = PrepareReport(domain.key, out / domain.folder, expected=dict(domain.expected))

    labels: dict[str, list[str]] = {}
    top: dict[str, list[str]] = {}
    loose: dict[str, list[str]] = {}
    full: dict[str, list[str]] = {}  # non-eroded ground truth: files named like the images
    for name in sorted(source.names()):
        m = _VAIHINGEN_FILE.fullmatch(basename(name))
        if not m:
            continue
        key = f"area{int(m[1])}"
        if m[2]:
            labels.setdefault(key, []).append(name)
        elif _in_top_folder(name):
            top.setdefault(key, []).append(name)
        elif _in_ground_truth(name):
            full.setdefault(key, []).append(name)
        else:
            loose.setdefault(key, []).append(name)
    if not labels and not top and not loose:
        raise InputError(
            f"no ISPRS Vaihingen archives found in {raw}: expected "
            "ISPRS_semantic_labeling_Vaihingen.zip (top/top_mosaic_09cm_area<N>.tif) and "
            "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip "
            "(top_mosaic_09cm_area<N>_noBoundary.tif), or their unpacked folders; "
            "is this another dataset?"
        )
    gt_named = sum(len(v) for v in full.values())
    if options.boundary_labels:
        if not full:
            raise InputError(
                f"--boundary-labels: no non-eroded Vaihingen ground truth found in {raw}: "
                "expected ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE.zip "
                "(top_mosaic_09cm_area<N>.tif) or its unpacked folder"
            )
        labels, gt_named = full, 0
        report.notes.append(
            "non-eroded labels (ground_truth_COMPLETE, with boundaries) used as asked: boundary "
            "pixels are labelled instead of ignored; the paper's numbers use the eroded labels"
        )
    if not labels:
        raise InputError(
            f"no eroded Vaihingen labels found in {raw}: expected "
            "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip "
            "(top_mosaic_09cm_area<N>_noBoundary.tif); the paper's numbers use them. "
            + (
                "The non-eroded ground truth found is used only with --boundary-labels"
                if full
                else "The non-eroded ground truth is used only with --boundary-labels"
            )
        )
    images = {**_first(loose), **_first(top)}  # a `top/` file wins over a loose one
    if not images:
        raise InputError(
            f"no Vaihingen images found in {raw}: expected ISPRS_semantic_labeling_Vaihingen.zip "
            "(top/top_mosaic_09cm_area<N>.tif)"
        )
    if gt_named:
        report.notes.append(
            f"{gt_named} non-eroded ground-truth files named like images were recognised and "
            "not used"
        )
    known = set(VAIHINGEN_SPLITS["train"]) | set(VAIHINGEN_SPLITS["val"])
    for key in sorted(set(labels) - set(images), key=lambda k: int(k[4:])):
        report.notes.append(f"label {key} has no image: ignored")
    strays = sorted(set(images) - known, key=lambda k: int(k[4:]))
    if strays:
        report.notes.append(f"areas outside the standard split ignored: {', '.join(strays)}")
    if options.nearest_colour:
        report.notes.append(
            "nearest_colour: labels decoded by nearest palette colour (differs from the "
            "standard converter where label files hold colours outside the palette)"
        )
    for key in VAIHINGEN_SPLITS["train"] + VAIHINGEN_SPLITS["val"]:
        if key not in images:
            report.missing.append(f"{key} image")
        if key not in labels:
            report.missing.append(f"{key} label")

    tiles = [
        _Tile(key, split, labels[key][0], {"top": images[key]})
        for key in _ordered(set(labels) & set(images), VAIHINGEN_SPLITS)
        if (split := _split_of(key, VAIHINGEN_SPLITS))
    ]
    tiles, limit_note = _limit_note(options, tiles)
    if limit_note:
        report.notes.append(limit_note)
    target = _Target(report, "top")
    _convert(source, tiles, [target], options, "Vaihingen areas")
    _finish([target])
    return report

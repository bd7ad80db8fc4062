"""ISPRS Potsdam (RGB, IRRG) and Potsdam with RescueNet classes: see `isprs` for the shared rules."""

from __future__ import annotations

from pathlib import Path

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import PrepareOptions, PrepareReport, Source, basename
from crossearth.data.prepare.isprs import (
    _POTSDAM_BANDS,
    _POTSDAM_IMAGE,
    _POTSDAM_LABEL,
    POTSDAM_SPLITS,
    RESCUE_FROM_ISPRS,
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


def _potsdam_key(r: str, c: str) -> str:
    return f"{int(r)}_{int(c)}"


def _potsdam_sources(source: Source, raw: Path) -> tuple[dict, dict, list[str]]:
    """Images per band (tile -> member), labels (tile -> member), notes."""
    notes: list[str] = []
    images: dict[str, dict[str, list[str]]] = {band: {} for band in _POTSDAM_BANDS}
    eroded: dict[str, list[str]] = {}
    full: dict[str, list[str]] = {}
    for name in sorted(source.names()):
        base = basename(name)
        if m := _POTSDAM_IMAGE.fullmatch(base):
            images[m[3]].setdefault(_potsdam_key(m[1], m[2]), []).append(name)
        elif m := _POTSDAM_LABEL.fullmatch(base):
            (eroded if m[3] else full).setdefault(_potsdam_key(m[1], m[2]), []).append(name)
    if not any(images.values()) and not eroded and not full:
        raise InputError(
            f"no ISPRS Potsdam archives found in {raw}: expected 2_Ortho_RGB.zip and/or "
            "3_Ortho_IRRG.zip (top_potsdam_<r>_<c>_RGB.tif / _IRRG.tif) and "
            "5_Labels_all_noBoundary.zip (top_potsdam_<r>_<c>_label_noBoundary.tif), their "
            "unpacked folders, or a Potsdam.zip holding them; is this another dataset?"
        )
    if eroded:
        labels = eroded
    else:
        labels = full
        if full:
            notes.append(
                "no eroded labels (5_Labels_all_noBoundary.zip, *_label_noBoundary.tif) found: "
                "using the full labels (*_label.tif); the benchmark and the standard converter "
                "use the eroded ones, so boundary pixels are labelled instead of ignored"
            )
    if not labels:
        raise InputError(
            f"no Potsdam labels found in {raw}: expected 5_Labels_all_noBoundary.zip "
            "(top_potsdam_<r>_<c>_label_noBoundary.tif) or its unpacked folder"
        )
    if not any(images.values()):
        raise InputError(
            f"no Potsdam image tiles found in {raw}: expected 2_Ortho_RGB.zip "
            "(top_potsdam_<r>_<c>_RGB.tif) and/or 3_Ortho_IRRG.zip (top_potsdam_<r>_<c>_IRRG.tif)"
        )
    known = set(POTSDAM_SPLITS["train"]) | set(POTSDAM_SPLITS["val"])
    strays = sorted(
        {k for k in labels if k not in known}
        | {k for band in images.values() for k in band if k not in known}
    )
    if strays:
        notes.append(f"tiles outside the standard split ignored: {', '.join(strays)}")
    return {b: _first(v) for b, v in images.items()}, _first(labels), notes


def _prepare_potsdam(
    raw: Path, out: Path, options: PrepareOptions, rescue: bool
) -> list[PrepareReport]:
    raw, out = Path(raw), Path(out)
    source = _open_source(raw)
    images, labels, notes = _potsdam_sources(source, raw)
    bands = [band for band in _POTSDAM_BANDS if images[band]]
    targets = []
    for band in bands:
        domain = get_domain(f"potsdam-{'rescue-' if rescue else ''}{band.lower()}")
        report = PrepareReport(domain.key, out / domain.folder, expected=dict(domain.expected))
        report.notes.extend(notes)
        for other in _POTSDAM_BANDS:
            if other not in bands:
                zip_name = "2_Ortho_RGB.zip" if other == "RGB" else "3_Ortho_IRRG.zip"
                report.notes.append(f"no {other} images ({zip_name}) found: {other} not written")
        if options.nearest_colour:
            report.notes.append(
                "nearest_colour: labels decoded by nearest palette colour (differs from the "
                "standard converter where label files hold colours outside the palette)"
            )
        targets.append(_Target(report, band, RESCUE_FROM_ISPRS if rescue else None))

    all_keys = _ordered(set(labels) | {k for b in bands for k in images[b]}, POTSDAM_SPLITS)
    for target in targets:
        for key in POTSDAM_SPLITS["train"] + POTSDAM_SPLITS["val"]:
            if key not in labels:
                target.report.missing.append(f"{key} label")
            if key not in images[target.band]:
                target.report.missing.append(f"{key} {target.band} image")
    tiles = [
        _Tile(key, split, labels[key], {b: images[b][key] for b in bands if key in images[b]})
        for key in all_keys
        if (split := _split_of(key, POTSDAM_SPLITS)) and key in labels
    ]
    tiles = [t for t in tiles if t.images]
    tiles, limit_note = _limit_note(options, tiles)
    for target in targets:
        if limit_note:
            target.report.notes.append(limit_note)
    _convert(source, tiles, targets, options, "Potsdam tiles")
    _finish(targets)
    return [t.report for t in targets]


def prepare_potsdam(raw: Path, out: Path, options: PrepareOptions) -> list[PrepareReport]:
    """ISPRS Potsdam -> `out/potsdam/{IRRG,RGB}` (domains `potsdam-irrg`, `potsdam-rgb`).

    One report per image band found in `raw` (IRRG first). See the module docs for the layout,
    tiling, names and label decoding.
    """
    return _prepare_potsdam(raw, out, options, rescue=False)


def prepare_potsdam_rescue(raw: Path, out: Path, options: PrepareOptions) -> list[PrepareReport]:
    """ISPRS Potsdam with RescueNet's 5 classes -> `out/potsdam_rescue/{IRRG,RGB}` (domains
    `potsdam-rescue-irrg`, `potsdam-rescue-rgb`): the crops of `prepare_potsdam`, labels relabelled
    impervious 1, building 2, low vegetation + tree 3 (vegetation), car 4, clutter 5, ignore 0.
    """
    return _prepare_potsdam(raw, out, options, rescue=True)


# --------------------------------------------------------------------------------------------
# Vaihingen

"""ISPRS Potsdam (RGB, IRRG) and Potsdam with RescueNet classes: see `isprs` for the shared rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import PrepareOptions, PrepareReport, Source, basename
from crossearth.data.prepare.isprs import (
    _POTSDAM_BANDS,
    _POTSDAM_IMAGE,
    _POTSDAM_LABEL,
    _POTSDAM_RGBIR,
    POTSDAM_SPLITS,
    RESCUE_FROM_ISPRS,
    RGBIR_BANDS,
    BandsOf,
    _convert,
    _finish,
    _first,
    _limit_note,
    _open_source,
    _ordered,
    _read_rgb,
    _split_of,
    _Target,
    _Tile,
)
from crossearth.errors import InputError
from crossearth.wording import count


def _potsdam_key(r: str, c: str) -> str:
    return f"{int(r)}_{int(c)}"


def _potsdam_sources(
    source: Source, raw: Path, options: PrepareOptions
) -> tuple[dict, dict, list[str]]:
    """Images per band (tile -> member), labels (tile -> member), notes."""
    notes: list[str] = []
    images: dict[str, dict[str, list[str]]] = {band: {} for band in _POTSDAM_BANDS}
    rgbir: dict[str, list[str]] = {}
    eroded: dict[str, list[str]] = {}
    full: dict[str, list[str]] = {}
    for name in sorted(source.names()):
        base = basename(name)
        if m := _POTSDAM_IMAGE.fullmatch(base):
            images[m[3]].setdefault(_potsdam_key(m[1], m[2]), []).append(name)
        elif m := _POTSDAM_RGBIR.fullmatch(base):
            rgbir.setdefault(_potsdam_key(m[1], m[2]), []).append(name)
        elif m := _POTSDAM_LABEL.fullmatch(base):
            (eroded if m[3] else full).setdefault(_potsdam_key(m[1], m[2]), []).append(name)
    if not any(images.values()) and not rgbir and not eroded and not full:
        raise InputError(
            f"no ISPRS Potsdam archives found in {raw}: expected 2_Ortho_RGB.zip and/or "
            "3_Ortho_IRRG.zip (top_potsdam_<r>_<c>_RGB.tif / _IRRG.tif) or 4_Ortho_RGBIR.zip "
            "(top_potsdam_<r>_<c>_RGBIR.tif), and 5_Labels_all_noBoundary.zip "
            "(top_potsdam_<r>_<c>_label_noBoundary.tif), their unpacked folders, or a "
            "Potsdam.zip holding them; is this another dataset?"
        )
    if options.boundary_labels:
        if not full:
            raise InputError(
                f"--boundary-labels: no non-eroded Potsdam labels found in {raw}: expected "
                "5_Labels_all.zip (top_potsdam_<r>_<c>_label.tif) or its unpacked folder"
            )
        labels = full
        notes.append(
            "non-eroded labels (5_Labels_all.zip, with boundaries) used as asked: boundary "
            "pixels are labelled instead of ignored; the paper's numbers use the eroded labels "
            "(5_Labels_all_noBoundary.zip)"
        )
    elif eroded:
        labels = eroded
    elif full:
        raise InputError(
            f"only the non-eroded Potsdam labels (5_Labels_all.zip, *_label.tif) were found in "
            f"{raw}; the benchmark and the paper's numbers use the eroded ones "
            "(5_Labels_all_noBoundary.zip). Add that archive, or pass --boundary-labels to "
            "use the non-eroded labels anyway"
        )
    else:
        raise InputError(
            f"no Potsdam labels found in {raw}: expected 5_Labels_all_noBoundary.zip "
            "(top_potsdam_<r>_<c>_label_noBoundary.tif) or its unpacked folder"
        )
    if not any(images.values()) and not rgbir:
        raise InputError(
            f"no Potsdam image tiles found in {raw}: expected 2_Ortho_RGB.zip "
            "(top_potsdam_<r>_<c>_RGB.tif), 3_Ortho_IRRG.zip (top_potsdam_<r>_<c>_IRRG.tif) "
            "or 4_Ortho_RGBIR.zip (top_potsdam_<r>_<c>_RGBIR.tif)"
        )
    chosen = {b: _first(v) for b, v in images.items()}
    if rgbir:
        notes.extend(_add_rgbir(source, chosen, _first(rgbir)))
    known = set(POTSDAM_SPLITS["train"]) | set(POTSDAM_SPLITS["val"])
    strays = sorted(
        {k for k in labels if k not in known}
        | {k for band in images.values() for k in band if k not in known}
    )
    if strays:
        notes.append(f"tiles outside the standard split ignored: {', '.join(strays)}")
    return chosen, _first(labels), notes


def _add_rgbir(source: Source, images: dict[str, dict[str, str]], rgbir: dict[str, str]) -> list:
    """Give tiles without a 3-band image the bands of their 4-band RGBIR tile; say whether
    they equal the 3-band files where a tile is in both archives (first such tile)."""
    notes = []
    derived = {band: 0 for band in images}
    for key, member in rgbir.items():
        for band, order in RGBIR_BANDS.items():
            if key not in images[band]:
                images[band][key] = BandsOf(member, order)
                derived[band] += 1
    made = [f"{band} for {count(n, 'tile')}" for band, n in derived.items() if n]
    if made:
        notes.append(
            f"images derived from 4_Ortho_RGBIR.zip (R,G,B,IR): {', '.join(made)}; RGB = bands "
            "1,2,3, IRRG = bands 4,1,2, same tiling and names"
        )
    both = [
        (band, key)
        for band in images
        for key in sorted(rgbir)
        if not isinstance(images[band].get(key), BandsOf) and key in images[band]
    ]
    if not both:
        if made:
            notes.append(
                "whether these equal the crops of the 3-band archives (2_Ortho_RGB.zip, "
                "3_Ortho_IRRG.zip) was not checked: those archives are not here (the ISPRS notes "
                "say they hold the same bands)"
            )
        return notes
    checked = set()
    for band, key in both:
        if band in checked:
            continue
        checked.add(band)
        three = _read_rgb(source, images[band][key])
        four = _read_rgb(source, BandsOf(rgbir[key], RGBIR_BANDS[band]))
        if three.shape == four.shape and np.array_equal(three, four):
            verdict = "equal (pixel for pixel)"
        else:
            differ = int((three != four).any(axis=-1).sum()) if three.shape == four.shape else -1
            verdict = f"differ ({differ} px)" if differ >= 0 else f"differ in size {three.shape}"
        notes.append(
            f"tile {key}: the {band} image derived from 4_Ortho_RGBIR.zip and the 3-band "
            f"archive's are {verdict}"
        )
    return notes


def _prepare_potsdam(
    raw: Path, out: Path, options: PrepareOptions, rescue: bool
) -> list[PrepareReport]:
    raw, out = Path(raw), Path(out)
    source = _open_source(raw)
    images, labels, notes = _potsdam_sources(source, raw, options)
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

"""ISPRS Potsdam and Vaihingen: raw archives -> 512² PNG crops identical to the standard converters.

The published CrossEarth numbers were measured on folders made by the standard (mmseg) converters
and many users already have such folders, so these converters reproduce them file for file: same
names, same crops, same label ids. This is a reimplementation from the behaviour described in the
project spec (`datasets.md` §1-2, `official-code.md` §4.3), not a copy.

Functions (in the sibling modules `potsdam` and `vaihingen`; this one holds the shared rules)
---------
- `potsdam.prepare_potsdam(raw, out, options)` -> reports for `potsdam-irrg` and/or `potsdam-rgb`
  (`out/potsdam/IRRG`, `out/potsdam/RGB`): one per image band found.
- `potsdam.prepare_potsdam_rescue(raw, out, options)` -> the same crops with RescueNet classes
  (`potsdam-rescue-irrg` / `-rgb`: `out/potsdam_rescue/IRRG`, `out/potsdam_rescue/RGB`).
- `vaihingen.prepare_vaihingen(raw, out, options)` -> report for `vaihingen` (`out/vaihingen`).

Each domain folder holds `img_dir/{train,val}` (RGB PNG: the three bands in file order, so IR-R-G
for IRRG and Vaihingen) and `ann_dir/{train,val}` (single-channel PNG of label ids) with the same
file names.

Raw input
---------
`raw` is a folder holding the archives as distributed, their unpacked folders, or one outer zip
holding the inner zips (`Potsdam.zip` -> `Potsdam/2_Ortho_RGB.zip` ...); files are matched by name:

- Potsdam images `top_potsdam_<r>_<c>_RGB.tif` (`2_Ortho_RGB.zip`) and
  `top_potsdam_<r>_<c>_IRRG.tif` (`3_Ortho_IRRG.zip`); either band alone is fine. The 4-band
  `top_potsdam_<r>_<c>_RGBIR.tif` (`4_Ortho_RGBIR.zip`, bands R, G, B, IR; the archive TorchGeo
  uses) also works: a tile without a 3-band file gets its RGB image from bands 1,2,3 and its IRRG
  image from bands 4,1,2, with the same tiling and names. When a tile is in both archives the
  report says whether the derived image equals the 3-band file (checked on the first such tile);
  without the 3-band archives it says that this was not checked. DSM files are not used.
- Potsdam labels `top_potsdam_<r>_<c>_label_noBoundary.tif` (`5_Labels_all_noBoundary.zip`: the
  eroded labels the benchmark and the paper's numbers use). The non-eroded labels
  `top_potsdam_<r>_<c>_label.tif` (`5_Labels_all.zip`, with boundaries) are used only with
  `boundary_labels=True` (`--boundary-labels`), with a note; without it, a folder holding only
  them is refused.
- Vaihingen images `top/top_mosaic_09cm_area<N>.tif` (`ISPRS_semantic_labeling_Vaihingen.zip`) and
  labels `top_mosaic_09cm_area<N>_noBoundary.tif`
  (`ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE.zip`). Only eroded labels are
  used, unless `boundary_labels=True`: then the non-eroded ground truth
  (`..._ground_truth_COMPLETE.zip`, files named like the images) is used instead. The non-eroded `..._ground_truth_COMPLETE.zip` and the data zip's `gts_for_participants/`
  hold label files with the *same base name as the images*; the mmseg converter takes every
  non-`noBoundary` file for an image, so with such a zip in the folder it writes label colours as
  images. Here an image is a `top_mosaic_09cm_area<N>.tif` in a folder named `top`; only for an area
  with no such file, one outside any ground-truth archive or folder (a path part containing
  `ground_truth` or starting with `gts`) is accepted. The eroded zip also holds an `area9` label
  with no image; it is ignored with a note (the standard converter drops it too).

Splits (tile ids parsed from the names: `top_potsdam_2_10_RGB.tif` -> `2_10`): Potsdam 24 train /
14 val tiles, Vaihingen 16 train / 17 val areas (lists below). Tiles outside the lists are ignored
with a note. A tile is converted only when it has both its label and its image.

Tiling
------
Crop size 512. Per image side of `size` pixels the standard converter makes
`n = ceil((size - 512) / 256) + 1` boxes (256 is its "stride", used only for this count); box `k`
starts at `k * 512`, and a box that would cross the border is shifted to end at it:
`start = min(k * 512, size - 512)`, `end = start + 512`. Boxes repeated by the shift are written
once (the standard converter overwrites them). So the crops are the non-overlapping 512-pixel grid
plus one last row/column flush with the border, i.e. `ceil(size / 512)` per side: a 6000² Potsdam
tile gives starts 0, 512, ..., 5120 and 5488, 12 x 12 = 144 crops (24 x 144 = 3456 train,
14 x 144 = 2016 val); a Vaihingen side of 2555 gives 0, 512, 1024, 1536 and 2043. A side shorter
than 512 (no ISPRS tile has one) gives one crop of the whole side.

Names: `{r}_{c}_{x1}_{y1}_{x2}_{y2}.png` (Potsdam) and `area{N}_{x1}_{y1}_{x2}_{y2}.png`
(Vaihingen), where x is the column and y the row, (x1, y1) the top-left pixel of the crop and
(x2, y2) = (x1 + 512, y1 + 512) the **exclusive** end: the crop is `array[y1:y2, x1:x2]`, and the
last crop of a 6000² tile is `..._5488_5488_6000_6000.png` (the names in existing mmseg folders,
e.g. `7_8_5488_512_6000_1024.png`, `area33_0_2043_512_2555.png`).

Labels
------
Colour -> id: black (0,0,0) 0 = ignore (eroded boundaries), white 1 impervious surface, blue
(0,0,255) 2 building, cyan (0,255,255) 3 low vegetation, green (0,255,0) 4 tree, yellow (255,255,0)
5 car, red (255,0,0) 6 clutter; the domains use reduce_zero_label (0 -> ignore, k -> k - 1).
Pixels of other colours get 0 (ignore) and are counted in `report.unknown_colours`.

For identical output the standard converter's matching is reproduced exactly: it compares the
weighted sum `4 R + 3 G + 2 B` of each pixel (its (2, 3, 4) coefficients on BGR) with that of the
palette colours, so the rare off-palette colour with the same sum as a class colour (e.g. (0,170,0),
sum 510 like blue) gets that class instead of ignore. Clean label files contain palette colours only
and are unaffected; when it happens, the report says how many pixels (they are not in
`unknown_colours`, which lists only pixels written as ignore).

Known broken Potsdam labels (`datasets.md` §1): `4_12` is a lossy re-encode (thousands of colours
near the palette) and most cars of `6_7` are (252,255,0). By default they decode as the standard
converter decodes them: mostly ignore, listed in `unknown_colours` and in a note naming the tile.
`options.nearest_colour=True` decodes every label pixel by its nearest palette colour (Euclidean in
RGB; black included): it recovers 4_12 and the 6_7 cars, but also turns anti-aliased or noisy
pixels, which the standard converter ignores, into a class, so the labels then differ from the
published setup.

RescueNet classes (`prepare_potsdam_rescue`): the Potsdam ids are relabelled to the 5 classes of
RescueNet (`crossearth.data.classes.RESCUE`): impervious 1 -> 1 impervious surface, building 2 -> 2
building, low vegetation 3 and tree 4 -> 3 vegetation, car 5 -> 4 car, clutter 6 -> 5 clutter,
ignore/boundary 0 -> 0. Ids are 0..5 with 0 = ignore (reduce_zero_label). Images and crops are the
same as for `prepare_potsdam`.

Re-runs and reports
-------------------
Outputs that exist are kept and counted in `skipped_existing` (writes are atomic, so an existing
file is complete); a re-run after an interruption writes the rest. For a tile with outputs already
present the size comes from the file headers, so a tile whose crops all exist is not decoded.
Image and label sizes are checked before anything of a tile is written. Each report compares the
image/label pairs now present per split with the full dataset (Potsdam 3456 / 2016, Vaihingen
344 / 398) and lists the source tiles that lack an image or a label. `options.limit` converts only
the first N tiles (train list first, in list order).
"""

from __future__ import annotations

import io
import math
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from crossearth.data.prepare.common import (
    PrepareOptions,
    PrepareReport,
    Source,
    nearest_colours_to_ids,
    track,
    write_png,
)
from crossearth.errors import InputError

__all__ = [
    "ISPRS_COLOURS",
    "POTSDAM_SPLITS",
    "RESCUE_FROM_ISPRS",
    "VAIHINGEN_SPLITS",
    "crop_boxes",
    "decode_isprs_label",
]

CLIP = 512  # crop size of the standard converters
STRIDE = 256  # their `stride_size`: only used to count boxes

POTSDAM_SPLITS: dict[str, tuple[str, ...]] = {
    "train": (
        "2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11",
        "5_12", "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9", "7_10", "7_11",
        "7_12",
    ),
    "val": (
        "2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13",
        "6_14", "6_15", "7_13",
    ),
}  # fmt: skip
VAIHINGEN_SPLITS: dict[str, tuple[str, ...]] = {
    "train": tuple(
        f"area{n}" for n in (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)
    ),
    "val": tuple(
        f"area{n}" for n in (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)
    ),
}

# Label colours in id order (0 = ignore / eroded boundary, 1..6 the ISPRS classes).
ISPRS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (255, 255, 255),  # 1 impervious surface
    (0, 0, 255),  # 2 building
    (0, 255, 255),  # 3 low vegetation
    (0, 255, 0),  # 4 tree
    (255, 255, 0),  # 5 car
    (255, 0, 0),  # 6 clutter
)
# ISPRS id -> RescueNet id (0 ignore, 1 impervious, 2 building, 3 vegetation, 4 car, 5 clutter).
RESCUE_FROM_ISPRS = np.array([0, 1, 2, 3, 3, 4, 5], dtype=np.uint8)

_PALETTE = {colour: idx for idx, colour in enumerate(ISPRS_COLOURS)}
_PALETTE_KEYS = np.array([(r << 16) | (g << 8) | b for r, g, b in ISPRS_COLOURS], dtype=np.int32)
_WEIGHTS = (4, 3, 2)  # the standard converter's (2, 3, 4) on B, G, R, written for R, G, B
_SUM_TO_ID = np.zeros(255 * sum(_WEIGHTS) + 1, dtype=np.uint8)
for _idx, _colour in enumerate(ISPRS_COLOURS):
    _SUM_TO_ID[sum(w * v for w, v in zip(_WEIGHTS, _colour, strict=True))] = _idx

_KNOWN_DEFECTS = {
    "4_12": "known defect: this label file is a lossy re-encode",
    "6_7": "known defect: most cars of this label file are (252, 255, 0)",
}
_NOTE_FRACTION = 1e-4  # note a tile whose off-palette pixels reach this share (or a known tile)

_POTSDAM_BANDS = ("IRRG", "RGB")
_POTSDAM_IMAGE = re.compile(r"top_potsdam_(\d+)_(\d+)_(RGB|IRRG)\.tif")
_POTSDAM_RGBIR = re.compile(r"top_potsdam_(\d+)_(\d+)_RGBIR\.tif")
#: 0-based bands of a 4-band R,G,B,IR tile (`4_Ortho_RGBIR.zip`) that make each 3-band image
#: (ISPRS: "4_Ortho_RGBIR bands 4,1,2 = IR,R,G").
RGBIR_BANDS = {"RGB": (0, 1, 2), "IRRG": (3, 0, 1)}
_POTSDAM_LABEL = re.compile(r"top_potsdam_(\d+)_(\d+)_label(_noBoundary)?\.tif")
_VAIHINGEN_FILE = re.compile(r"top_mosaic_09cm_area(\d+)(_noBoundary)?\.tif")

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError)


# --------------------------------------------------------------------------------------------
# Tiling and label decoding


def _starts(size: int) -> list[int]:
    if size <= CLIP:
        return [0]
    count = math.ceil((size - CLIP) / STRIDE) + 1  # boxes per side in the standard converter
    return sorted({min(k * CLIP, size - CLIP) for k in range(count)})


def crop_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The standard converters' crops of a `width` x `height` image as (x1, y1, x2, y2), x2/y2
    exclusive, row by row; duplicates removed. 144 for 6000 x 6000."""
    return [
        (x, y, min(x + CLIP, width), min(y + CLIP, height))
        for y in _starts(height)
        for x in _starts(width)
    ]


def decode_isprs_label(rgb: np.ndarray, nearest: bool = False) -> tuple[np.ndarray, Counter, int]:
    """RGB label colours -> ids 0..6 as the standard converter decodes them (see module docs).

    Returns (ids, unknown, collided): `unknown` counts the off-palette colours written as ignore,
    `collided` the off-palette pixels that got a class (through the standard converter's colour
    sums, or by nearest colour when `nearest`).
    """
    r, g, b = (rgb[..., k].astype(np.int32) for k in range(3))
    ids = _SUM_TO_ID[r * _WEIGHTS[0] + g * _WEIGHTS[1] + b * _WEIGHTS[2]]
    keys = (r << 16) | (g << 8) | b
    del r, g, b
    off = keys != _PALETTE_KEYS[ids]  # the colour is not exactly the colour of its id
    if not off.any():
        return ids, Counter(), 0
    if nearest:  # decide once per distinct colour, then look the pixels up
        off_keys = keys[off]
        colours = np.flatnonzero(np.bincount(off_keys, minlength=1 << 24))
        rgb_of = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1)
        lookup = np.zeros(1 << 24, dtype=np.uint8)
        lookup[colours] = nearest_colours_to_ids(rgb_of[None], _PALETTE)[0]
        ids[off] = lookup[off_keys]
        return ids, Counter(), int(off.sum())
    to_ignore = off & (ids == 0)
    collided = int(off.sum() - to_ignore.sum())
    unknown: Counter = Counter()
    if to_ignore.any():
        counts = np.bincount(keys[to_ignore], minlength=1 << 24)
        for v in np.flatnonzero(counts).tolist():
            unknown[((v >> 16) & 255, (v >> 8) & 255, v & 255)] = int(counts[v])
    return ids, unknown, collided


# --------------------------------------------------------------------------------------------
# The conversion engine shared by Potsdam and Vaihingen


@dataclass
class _Tile:
    key: str  # "2_10" / "area1": split lists and name prefix
    split: str
    label: str  # Source member names
    images: dict[str, str]  # band -> member


@dataclass
class _Target:
    report: PrepareReport
    band: str  # which of the tile's images goes here
    lut: np.ndarray | None = None  # ISPRS id -> output id
    tiles_with_notes: set[str] = field(default_factory=set)


def _open_source(raw: Path) -> Source:
    try:
        return Source(raw)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        bad = [p.name for p in sorted(raw.rglob("*.zip")) if not zipfile.is_zipfile(p)]
        which = f" ({', '.join(bad)} is not a readable zip file)" if bad else ""
        raise InputError(f"cannot read the archives in {raw}{which}: {exc}") from None


def _peek_size(source: Source, name: str) -> tuple[int, int] | None:
    """(width, height) from the image header, without decoding the pixels; None if unknown."""
    try:
        with source.open(name) as fh, Image.open(fh) as img:
            return img.size
    except Exception:
        return None


class BandsOf(str):
    """A member name standing for three bands of a 4-band R,G,B,IR tile (`order`, 0-based)."""

    order: tuple[int, int, int]

    def __new__(cls, member: str, order: tuple[int, int, int]) -> BandsOf:
        obj = super().__new__(cls, member)
        obj.order = order
        return obj


def read_rgbir(source: Source, name: str) -> np.ndarray:
    """A 4-band uint8 R,G,B,IR tile as H x W x 4."""
    try:
        arr = source.read_image(name)
    except _READ_ERRORS as exc:
        raise InputError(f"cannot read {name} from its archive ({exc})") from None
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 4:
        raise InputError(
            f"{name}: expected a 4-band (R,G,B,IR) 8-bit image, got shape {arr.shape} of {arr.dtype}"
        )
    return arr


def _read_rgb(source: Source, name: str) -> np.ndarray:
    """A 3-band uint8 image as H x W x 3, bands in file order (as the standard converters read);
    for a `BandsOf` name, its three bands of the 4-band tile."""
    if isinstance(name, BandsOf):
        return np.ascontiguousarray(read_rgbir(source, name)[..., list(name.order)])
    try:
        data = source.read_bytes(name)
    except _READ_ERRORS as exc:
        raise InputError(f"cannot read {name} from its archive ({exc})") from None
    arr = None
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.mode in ("P", "L", "1", "LA", "RGBA", "RGBX"):
                img = img.convert("RGB")
            if img.mode == "RGB":
                arr = np.asarray(img)
    except Exception:
        arr = None
    if arr is None:
        arr = source.read_image(name)  # PIL or rasterio; raises InputError if neither reads it
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise InputError(
            f"{name}: expected a 3-band 8-bit image, got shape {arr.shape} of {arr.dtype}"
        )
    return arr[..., :3]


def _has_outputs(root: Path, tile: _Tile) -> bool:
    return any(
        next((root / sub / tile.split).glob(f"{tile.key}_*.png"), None) is not None
        for sub in ("img_dir", "ann_dir")
    )


def _pairs_present(root: Path, split: str) -> int:
    img_dir, ann_dir = root / "img_dir" / split, root / "ann_dir" / split
    if not img_dir.is_dir() or not ann_dir.is_dir():
        return 0
    labels = {p.name for p in ann_dir.glob("*.png")}
    return sum(1 for p in img_dir.glob("*.png") if p.name in labels)


def _label_note(
    tile: str, shape: tuple[int, ...], unknown: Counter, collided: int, nearest: bool
) -> str | None:
    total = shape[0] * shape[1]
    ignored = sum(unknown.values())
    defect = _KNOWN_DEFECTS.get(tile)
    if nearest:
        if not collided:
            return None
        return (
            f"label {tile}: {collided} px ({100 * collided / total:.2f} %) of colours outside the "
            "palette decoded by nearest colour" + (f" ({defect})" if defect else "")
        )
    if not ignored and not collided:
        return None
    if defect is None and (ignored + collided) < _NOTE_FRACTION * total:
        return None
    parts = []
    if ignored:
        parts.append(
            f"{ignored} px ({100 * ignored / total:.2f} %) have colours outside the palette and "
            "were written as ignore"
        )
    if collided:
        parts.append(
            f"{collided} px of colours outside the palette got a class through the standard "
            "converter's colour sums (reproduced)"
        )
    text = f"label {tile}: " + "; ".join(parts)
    if defect:
        text += f" ({defect}; nearest_colour=True recovers it)"
    return text


def _convert(
    source: Source,
    tiles: list[_Tile],
    targets: list[_Target],
    options: PrepareOptions,
    description: str,
) -> None:
    """Crop every tile into every target whose band the tile has; skip existing outputs."""
    for tile in track(tiles, len(tiles), description, options.quiet):
        wanted = [t for t in targets if t.band in tile.images]
        if not wanted:
            continue
        label = None
        # The crops follow from the size. With outputs of this tile present, take it from the
        # headers (a tile with all its crops is then not decoded); otherwise decode right away.
        fresh = not any(_has_outputs(t.report.out_dir, tile) for t in wanted)
        size = None if fresh else _peek_size(source, tile.label)
        if size is None:
            label = _read_rgb(source, tile.label)
            size = (label.shape[1], label.shape[0])
        if not fresh:
            for band in {t.band for t in wanted}:
                image_size = _peek_size(source, tile.images[band])
                if image_size is not None and image_size != size:
                    raise _size_error(tile, band, image_size, size)
        boxes = crop_boxes(*size)
        names = [f"{tile.key}_{x1}_{y1}_{x2}_{y2}.png" for x1, y1, x2, y2 in boxes]

        # what is missing, per target
        todo: list[tuple[_Target, list[int], list[int]]] = []
        for target in wanted:
            root = target.report.out_dir
            img_dir = root / "img_dir" / tile.split
            ann_dir = root / "ann_dir" / tile.split
            need_img = [i for i, n in enumerate(names) if not (img_dir / n).exists()]
            need_ann = [i for i, n in enumerate(names) if not (ann_dir / n).exists()]
            target.report.skipped_existing += 2 * len(names) - len(need_img) - len(need_ann)
            if need_img or need_ann:
                todo.append((target, need_img, need_ann))
        if not todo:
            continue

        ids = None
        if any(need_ann for _, _, need_ann in todo):
            if label is None:
                label = _read_rgb(source, tile.label)
            if (label.shape[1], label.shape[0]) != size:
                raise InputError(f"{tile.label}: header and pixels disagree on the size")
            ids, unknown, collided = decode_isprs_label(label, options.nearest_colour)
            note = _label_note(tile.key, label.shape, unknown, collided, options.nearest_colour)
            for target, _, need_ann in todo:
                if need_ann:
                    target.report.unknown_colours.update(unknown)
                    if note and tile.key not in target.tiles_with_notes:
                        target.report.notes.append(note)
                        target.tiles_with_notes.add(tile.key)
        label = None

        images: dict[str, np.ndarray] = {}  # read (and size-checked) before writing anything
        for band in dict.fromkeys(target.band for target, need_img, _ in todo if need_img):
            images[band] = _read_rgb(source, tile.images[band])
            height, width = images[band].shape[:2]
            if (width, height) != size:
                raise _size_error(tile, band, (width, height), size)

        for target, need_img, need_ann in todo:
            root = target.report.out_dir
            if need_img:
                for i in need_img:
                    x1, y1, x2, y2 = boxes[i]
                    crop = np.ascontiguousarray(images[target.band][y1:y2, x1:x2])
                    write_png(root / "img_dir" / tile.split / names[i], crop)
                    target.report.written += 1
            if need_ann:
                out_ids = ids if target.lut is None else target.lut[ids]
                for i in need_ann:
                    x1, y1, x2, y2 = boxes[i]
                    crop = np.ascontiguousarray(out_ids[y1:y2, x1:x2])
                    write_png(root / "ann_dir" / tile.split / names[i], crop)
                    target.report.written += 1
                    target.report.count_labels(crop)


def _size_error(
    tile: _Tile, band: str, image: tuple[int, int], label: tuple[int, int]
) -> InputError:
    return InputError(
        f"{tile.images[band]} is {image[0]} x {image[1]} pixels but its label {tile.label} is "
        f"{label[0]} x {label[1]}: image and label must have the same size"
    )


def _finish(targets: Iterable[_Target]) -> None:
    from crossearth.data.catalog import get_domain

    for target in targets:
        report = target.report
        report.found = {split: _pairs_present(report.out_dir, split) for split in report.expected}
        report.note_empty_classes(get_domain(report.dataset).classes.names, 1)  # 0 = ignore


def _split_of(key: str, splits: dict[str, tuple[str, ...]]) -> str | None:
    return next((split for split, keys in splits.items() if key in keys), None)


def _ordered(keys: Iterable[str], splits: dict[str, tuple[str, ...]]) -> list[str]:
    order = [k for keys_ in splits.values() for k in keys_]
    present = set(keys)
    return [k for k in order if k in present]


def _limit_note(options: PrepareOptions, tiles: list[_Tile]) -> tuple[list[_Tile], str | None]:
    if options.limit is None or options.limit >= len(tiles):
        return tiles, None
    kept = tiles[: max(options.limit, 0)]
    return kept, f"limit={options.limit}: converted {len(kept)} of {len(tiles)} available tiles"


# --------------------------------------------------------------------------------------------
# Potsdam


def _first(found: dict[str, list[str]]) -> dict[str, str]:
    return {key: names[0] for key, names in found.items()}

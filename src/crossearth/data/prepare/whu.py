"""WHU Building (gpcv.whu.edu.cn/data/building_dataset.html): the aerial tiles and satellite II.

Aerial (`prepare_whu_aerial`): the zip `3. The cropped aerial image tiles and raster labels.zip`,
which unpacks to `3. The cropped image tiles and raster labels/{train,val,test}/{image,label}/*.tif`
(or that folder) -> `DATA_ROOT/whu/aerial/{train,val,test}/{image,label2}/<name>.tif`.

Satellite II (`prepare_whu_satellite`): the folder `Satellite dataset Ⅱ (East Asia)/1. The cropped
image data and raster labels/{train,train_no,test,test_no}/{image,label}` (zipped or not) ->
`DATA_ROOT/whu/satellite/{train_all,test_all}/{image,label}/<name>.tif`, each the union of a split
and its `_no` split (mostly building-free tiles): 3135 + 10527 = 13662 and 903 + 2823 = 3726, the
CrossEarth counts. A file name present in both a split and its `_no` split gets the prefix `no_`
in the `_no` copy (noted in the report).

Trees are recognised by their split folders, not by the top folder names (which vary with the
unzip tool, e.g. the "Ⅱ"): a tree with `train_no`/`test_no` splits is satellite II, one without
them (and without "satellite" in its path) is the aerial set. The names of the two sub-folders of a
split are not documented for satellite II, so both trees accept `image`/`label` and variants:
a folder named image(s)/img(s) or containing "im" holds images, one named label(s)/lab(s)/gt/
mask(s) or containing "lab", "gt" or "mask" holds labels.

Images are copied byte for byte (georeferencing kept). Labels {0, 255} become 0/1 (>= 128 -> 1,
building) single-band uint8 TIFFs (deflate) with the same file names; they lose any georeferencing.
A label that already holds 0/1 is an InputError (it was converted before).
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
    limited,
    members,
    new_report,
)
from crossearth.errors import InputError

_TIF = (".tif", ".tiff")
_SPLITS = ("train", "val", "test", "train_no", "test_no")
_IMAGE_NAMES = ("image", "images", "img", "imgs", "im")
_LABEL_NAMES = ("label", "labels", "lab", "labs", "gt", "mask", "masks")

# prefix -> split -> sub-folder -> file name -> member
Tree = dict[str, dict[str, dict[str, dict[str, str]]]]


def _trees(source: Source) -> Tree:
    trees: Tree = {}
    for name, ps in members(source):
        if len(ps) < 3 or not ps[-1].lower().endswith(_TIF):
            continue
        split = ps[-3].lower()
        if split in _SPLITS:
            prefix = "/".join(ps[:-3])
            folder = trees.setdefault(prefix, {}).setdefault(split, {}).setdefault(ps[-2], {})
            folder.setdefault(ps[-1], name)
    return trees


def _roles(folders: list[str], where: str) -> tuple[str, str]:
    """(image folder, label folder) among the sub-folders of a split."""

    def pick(exact: tuple[str, ...], parts: tuple[str, ...]) -> list[str]:
        hits = [f for f in folders if f.lower() in exact]
        return hits or [f for f in folders if any(p in f.lower() for p in parts)]

    labels = pick(_LABEL_NAMES, ("lab", "gt", "mask"))
    images = [f for f in pick(_IMAGE_NAMES, ("im",)) if f not in labels]
    if len(images) != 1 or len(labels) != 1:
        raise InputError(
            f"cannot tell the image and label folders apart in {where} (found: "
            f"{', '.join(sorted(folders)) or 'nothing'}); expected e.g. image/ and label/"
        )
    return images[0], labels[0]


def _merge(trees: Tree, prefixes: list[str], raw: Path) -> dict[str, tuple[dict, dict]]:
    """split -> (image files, label files), merged over copies of the same tree."""
    merged: dict[str, tuple[dict, dict]] = {}
    for prefix in prefixes:
        for split, folders in trees[prefix].items():
            image_dir, label_dir = _roles(
                list(folders), f"{raw}/{prefix}/{split}".replace("//", "/")
            )
            images, labels = merged.setdefault(split, ({}, {}))
            for f, m in folders[image_dir].items():
                images.setdefault(f, m)
            for f, m in folders[label_dir].items():
                labels.setdefault(f, m)
    return merged


def _tif_name(name: str) -> str:
    return f"{Path(name).stem}.tif"


def _label(label: np.ndarray, name: str) -> np.ndarray:
    return binarize(label, name, "WHU")


def _pairs(
    images: dict,
    labels: dict,
    base: Path,
    label_dir: str,
    split: str,
    source_split: str,
    rename=lambda f: f,
) -> list[Pair]:
    return [
        Pair(
            key=f"{source_split}/{f}",
            image=images.get(f),
            label=labels.get(f),
            image_out=base / "image" / rename(_tif_name(f)),
            label_out=base / label_dir / rename(_tif_name(f)),
            split=split,
        )
        for f in sorted(set(images) | set(labels))
    ]


def prepare_whu_aerial(raw: Path, out: Path, options: PrepareOptions) -> PrepareReport:
    source = Source(raw)
    trees = _trees(source)
    prefixes = [
        p
        for p, splits in trees.items()
        if "satellite" not in p.lower() and not any(s.endswith("_no") for s in splits)
    ]
    if not prefixes:
        raise InputError(
            f"no WHU aerial tiles found in {raw}: expected the zip '3. The cropped aerial image tiles"
            " and raster labels.zip' or its folder with {train,val,test}/{image,label}/*.tif"
        )
    merged = _merge(trees, prefixes, raw)
    for split in ("train", "val", "test"):
        if split not in merged:
            raise InputError(
                f"WHU aerial split {split}/ not found in {raw} (found {sorted(merged)})"
            )
    domain = get_domain("whu-aerial")
    report = new_report(domain, out)
    pairs = []
    for split in ("train", "val", "test"):
        images, labels = merged[split]
        pairs += _pairs(images, labels, out / domain.folder / split, "label2", split, split)
    convert_pairs(source, limited(pairs, options), report, options, "WHU aerial", _label)
    report.notes.append(
        "CrossEarth's S2A table tests on 1036 tiles (the val count) while its config reads test/ "
        "(2416 tiles)"
    )
    return fill_found(report, domain, out)


def prepare_whu_satellite(raw: Path, out: Path, options: PrepareOptions) -> PrepareReport:
    source = Source(raw)
    trees = _trees(source)
    prefixes = [p for p, splits in trees.items() if any(s.endswith("_no") for s in splits)]
    if not prefixes:
        raise InputError(
            f"no WHU satellite dataset II tiles found in {raw}: expected the folder 'Satellite "
            "dataset Ⅱ (East Asia)/1. The cropped image data and raster labels' with "
            "{train,train_no,test,test_no}/{image,label}/*.tif"
        )
    merged = _merge(trees, prefixes, raw)
    for split in ("train", "train_no", "test", "test_no"):
        if split not in merged:
            raise InputError(
                f"WHU satellite II split {split}/ not found in {raw} (found {sorted(merged)})"
            )
    domain = get_domain("whu-satellite")
    report = new_report(domain, out)
    pairs = []
    for split in ("train", "test"):
        base = out / domain.folder / f"{split}_all"
        images, labels = merged[split]
        pairs += _pairs(images, labels, base, "label", f"{split}_all", split)
        no_images, no_labels = merged[f"{split}_no"]
        clashes = {_tif_name(f) for f in {*images, *labels}} & {
            _tif_name(f) for f in {*no_images, *no_labels}
        }
        if clashes:
            report.notes.append(
                f"{len(clashes)} file names occur in both {split}/ and {split}_no/; the "
                f"{split}_no/ copies are written with the prefix no_"
            )
        pairs += _pairs(
            no_images,
            no_labels,
            base,
            "label",
            f"{split}_all",
            f"{split}_no",
            lambda f, c=clashes: f"no_{f}" if f in c else f,
        )
    convert_pairs(source, limited(pairs, options), report, options, "WHU satellite II", _label)
    return fill_found(report, domain, out)

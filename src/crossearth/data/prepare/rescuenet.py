"""RescueNet (BinaLab, post-Hurricane Michael UAV imagery) -> CrossEarth's 5-class test set.

Input: the official layout (Dropbox/figshare zip or folder), `{train,val,test}/<split>-org-img/*.jpg`
with labels `{train,val,test}/<split>-label-img/<stem>_lab.png` holding the 11 class ids of the
official loader (v2). Labels stored as colours (RGB) are decoded with the loader's palette.

Output: `DATA_ROOT/rescuenet/test-org-img/<stem>.jpg` (copied byte for byte) and
`test-label-img/<stem>_lab.png` with CrossEarth's classes as 1..5 and 0 = ignore (read with
reduce_zero_label, like the official `RescueDataset`). Only the test split is converted by default
(the benchmark tests on it); `splits=("train", "val", "test")` also writes `<split>-org-img` and
`<split>-label-img` beside it.

CrossEarth never released its 11 -> 5 mapping; this is ours:

| RescueNet id | RescueNet class             | written | CrossEarth class        |
|--------------|-----------------------------|---------|-------------------------|
| 0            | background / unlabelled     | 0       | ignore                  |
| 1            | water                       | 5       | clutter                 |
| 2            | building, no damage         | 2       | building                |
| 3            | building, minor damage      | 2       | building                |
| 4            | building, major damage      | 2       | building                |
| 5            | building, total destruction | 2       | building                |
| 6            | vehicle                     | 4       | car                     |
| 7            | road, clear                 | 1       | impervious_surface      |
| 8            | road, blocked               | 1       | impervious_surface      |
| 9            | tree                        | 3       | vegetation              |
| 10           | pool                        | 5       | clutter                 |

A label id of 11 or more is an InputError (not RescueNet v2; v1 had 12 classes).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crossearth.data.catalog import get_domain
from crossearth.data.prepare.common import (
    PrepareOptions,
    PrepareReport,
    Source,
    colours_to_ids,
)
from crossearth.data.prepare.pairs import (
    Pair,
    check_range,
    convert_pairs,
    fill_found,
    index,
    limited,
    members,
    new_report,
    require_splits,
)

# RESCUENET_TO_CROSSEARTH[raw id] = written id (0 ignore, 1..5 = RESCUE classes + 1)
RESCUENET_TO_CROSSEARTH = (0, 5, 2, 2, 2, 2, 4, 1, 1, 3, 5)
RESCUENET_CLASSES = (
    "background",
    "water",
    "building-no-damage",
    "building-minor-damage",
    "building-major-damage",
    "building-total-destruction",
    "vehicle",
    "road-clear",
    "road-blocked",
    "tree",
    "pool",
)
# the official loader's colour_encoding, in id order
RESCUENET_PALETTE = (
    (0, 0, 0),
    (61, 230, 250),
    (180, 120, 120),
    (235, 255, 7),
    (255, 184, 6),
    (255, 0, 0),
    (255, 0, 245),
    (140, 140, 140),
    (160, 150, 20),
    (4, 250, 7),
    (255, 235, 0),
)

_LUT = np.zeros(256, dtype=np.uint8)
_LUT[: len(RESCUENET_TO_CROSSEARTH)] = RESCUENET_TO_CROSSEARTH
_IMAGE_DIR = re.compile(r"^(train|val|test)-org-img$", re.IGNORECASE)
_LABEL_DIR = re.compile(r"^(train|val|test)-label-img$", re.IGNORECASE)


def _classify(ps: tuple[str, ...]) -> tuple | None:
    if len(ps) < 2:
        return None
    file = ps[-1]
    if (m := _IMAGE_DIR.match(ps[-2])) and file.lower().endswith((".jpg", ".jpeg")):
        return m.group(1).lower(), "image", Path(file).stem
    if (m := _LABEL_DIR.match(ps[-2])) and file.endswith("_lab.png"):
        return m.group(1).lower(), "label", file[: -len("_lab.png")]
    return None


def map_label(label: np.ndarray, name: str, unknown=None) -> np.ndarray:
    """RescueNet ids (or colours) -> CrossEarth ids, 0 = ignore."""
    if label.dtype == bool:
        label = label.astype(np.uint8)
    if label.ndim == 3:
        rgb = label[..., :3]
        if (rgb == rgb[..., :1]).all():
            label = rgb[..., 0]
        else:
            palette = {c: i for i, c in enumerate(RESCUENET_PALETTE)}
            label, colours = colours_to_ids(np.ascontiguousarray(rgb), palette, default=0)
            if unknown is not None:
                unknown.update(colours)
    check_range(label, name, "RescueNet", "class ids 0..10", 10)
    return _LUT[label]


def prepare_rescuenet(
    raw: Path, out: Path, options: PrepareOptions, splits: tuple[str, ...] = ("test",)
) -> PrepareReport:
    source = Source(raw)
    found, duplicates = index(members(source), _classify)
    require_splits(
        found, splits, raw,
        f"no RescueNet data found in {raw}: expected <split>/<split>-org-img/*.jpg and "
        "<split>/<split>-label-img/*_lab.png (split = train, val, test)",
        lambda split: f"RescueNet {split} split ({split}-org-img, {split}-label-img)",
    )  # fmt: skip
    domain = get_domain("rescuenet")
    report = new_report(domain, out)
    base = out / domain.folder
    pairs = []
    for split in splits:
        for stem in sorted({s for sp, _, s in found if sp == split}):
            pairs.append(
                Pair(
                    key=f"{split}/{stem}",
                    image=found.get((split, "image", stem)),
                    label=found.get((split, "label", stem)),
                    image_out=base / f"{split}-org-img" / f"{stem}.jpg",
                    label_out=base / f"{split}-label-img" / f"{stem}_lab.png",
                    split=split,
                )
            )
    convert_pairs(
        source,
        limited(pairs, options),
        report,
        options,
        "RescueNet",
        lambda label, name: map_label(label, name, report.unknown_colours),
    )
    fill_found(report, domain, out)
    for split in splits:
        if split != "test":
            report.found[split] = _count(base, split)
    report.notes.append(
        "classes mapped 11 -> 5 with our mapping (CrossEarth's was never released): roads -> "
        "impervious_surface, buildings (any damage) -> building, tree -> vegetation, vehicle -> "
        "car, water and pool -> clutter, background -> ignore"
    )
    if report.found.get("test") == 450:
        report.notes.append(
            "450 test pairs found; CrossEarth's table lists 449 (unresolved: one image dropped, "
            "or a count of the 449-image val split)"
        )
    if duplicates:
        report.notes.append(f"{duplicates} duplicate files ignored (archive and unpacked copy)")
    return report


def _count(base: Path, split: str) -> int:
    images = base / f"{split}-org-img"
    labels = base / f"{split}-label-img"
    if not images.is_dir():
        return 0
    return sum(
        1
        for p in images.glob("*.jpg")
        if not p.name.startswith(".") and (labels / f"{p.stem}_lab.png").exists()
    )

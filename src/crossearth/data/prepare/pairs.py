"""Image/label pair conversion shared by the tile-dataset converters (LoveDA, WHU, DeepGlobe,
Massachusetts, RescueNet, CASID).

Members of a `Source` are located by the trailing parts of their path (zip members and plain files
alike, whatever folder the user points at), paired, validated and written atomically; outputs that
already exist are skipped. Images are copied byte for byte when their format already matches the
layout; labels are either copied (after validation) or re-encoded.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from crossearth.data.catalog import Domain
from crossearth.data.prepare.common import (
    PrepareOptions,
    PrepareReport,
    Source,
    track,
    write_png,
)
from crossearth.errors import InputError
from crossearth.fileio import atomic_path
from crossearth.wording import with_article

# A label hook gets the decoded label and its member name; it raises InputError on bad values and
# returns the array to write, or None to copy the label file as it is.
LabelFn = Callable[[np.ndarray, str], "np.ndarray | None"]

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def parts(name: str) -> tuple[str, ...]:
    """Path components of a member, zip boundaries included (`a.zip!b/c.png` -> a.zip, b, c.png)."""
    return tuple(p for p in name.replace("!", "/").split("/") if p)


def is_junk(ps: tuple[str, ...]) -> bool:
    return "__MACOSX" in ps or ps[-1].startswith(".") or ps[-1] == "Thumbs.db"


def members(source: Source) -> list[tuple[str, tuple[str, ...]]]:
    """(member name, path parts) of every member except OS junk (macOS resource forks, dot files)."""
    out = []
    for name in source.names():
        ps = parts(name)
        if ps and not is_junk(ps):
            out.append((name, ps))
    return out


def index(
    items: Iterable[tuple[str, tuple[str, ...]]],
    classify: Callable[[tuple[str, ...]], tuple | None],
) -> tuple[dict[tuple, str], int]:
    """Members keyed by `classify(parts)` (None: not wanted). The first member of a key wins (an
    archive and the folder it was unpacked to may both be present); returns (index, duplicates)."""
    found: dict[tuple, str] = {}
    duplicates = 0
    for name, ps in items:
        key = classify(ps)
        if key is None:
            continue
        if key in found:
            duplicates += 1
        else:
            found[key] = name
    return found, duplicates


@dataclass
class Pair:
    key: str  # shown in reports and errors
    image: str | None  # Source member names; None when absent
    label: str | None
    image_out: Path
    label_out: Path
    split: str = ""


def require_splits(
    found: Iterable[tuple[str, str, str]],
    wanted: Iterable[str],
    raw: Path,
    nothing_found: str,
    missing: Callable[[str], str],
) -> set[str]:
    """The splits present in `found` (split, kind, stem) triples; an InputError when there are none
    (`nothing_found`) or when a wanted split is absent (`missing(split)` names it)."""
    present = {split for split, _, _ in found}
    if not present:
        raise InputError(nothing_found)
    for split in wanted:
        if split not in present:
            raise InputError(
                f"{missing(split)} not found in {raw} (found {', '.join(sorted(present))})"
            )
    return present


def limited(pairs: list[Pair], options: PrepareOptions) -> list[Pair]:
    """`options.limit` applies per output split, so a quick look still has every split."""
    if options.limit is None:
        return pairs
    out, per_split = [], {}
    for pair in pairs:
        n = per_split.get(pair.split, 0)
        if n < options.limit:
            out.append(pair)
        per_split[pair.split] = n + 1
    return out


def image_hw(data: bytes, name: str) -> tuple[int, int]:
    """(height, width) from an image header, without decoding the pixels where possible."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.height, img.width
    except Exception:
        from rasterio.io import MemoryFile

        try:
            with MemoryFile(data) as mem, mem.open() as src:
                return src.height, src.width
        except Exception as exc:
            raise InputError(f"cannot read {name} as an image ({exc})") from None


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_tif(path: Path, array: np.ndarray) -> None:
    """A single-band uint8 TIFF (deflate), atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="TIFF", compression="tiff_adobe_deflate")


def write_label(path: Path, array: np.ndarray) -> None:
    if _FORMATS.get(path.suffix.lower()) == "TIFF":
        write_tif(path, array)
    else:
        write_png(path, array)


def write_image(source: Source, name: str, data: bytes, path: Path) -> None:
    """Copy the bytes when the source format is the output's, otherwise re-encode."""
    src_format = _FORMATS.get(Path(name).suffix.lower())
    dst_format = _FORMATS.get(path.suffix.lower())
    if src_format == dst_format:
        write_bytes(path, data)
        return
    pixels = source.read_image(name)
    with atomic_path(path) as tmp:
        kwargs = {"quality": 95} if dst_format == "JPEG" else {}
        Image.fromarray(pixels).save(tmp, format=dst_format, **kwargs)


def convert_pairs(
    source: Source,
    pairs: list[Pair],
    report: PrepareReport | Callable[[Pair], PrepareReport],
    options: PrepareOptions,
    description: str,
    label_fn: LabelFn,
    on_image: Callable[[str], None] | None = None,
) -> None:
    """Write every complete pair; skip existing outputs; list incomplete and mismatched pairs under
    `missing`. `report` may be a function of the pair (converters that fill several reports)."""
    report_of = report if callable(report) else (lambda _pair: report)
    mismatched: dict[int, list] = {}  # id(report) -> [report, pairs skipped]
    for pair in track(pairs, len(pairs), description, options.quiet):
        rep = report_of(pair)
        if pair.image is None or pair.label is None:
            rep.missing.append(f"{pair.key} (no {'image' if pair.image is None else 'label'})")
            continue
        have_image, have_label = pair.image_out.exists(), pair.label_out.exists()
        if have_image and have_label:
            rep.skipped_existing += 2
            continue
        data = source.read_bytes(pair.image)
        label = source.read_image(pair.label)
        hw = image_hw(data, pair.image)
        if hw != label.shape[:2]:
            rep.missing.append(
                f"{pair.key} (image {hw[1]}x{hw[0]} but label {label.shape[1]}x{label.shape[0]})"
            )
            mismatched.setdefault(id(rep), [rep, 0])[1] += 1
            continue
        converted = label_fn(label, pair.label)
        if have_image:
            rep.skipped_existing += 1
        else:
            write_image(source, pair.image, data, pair.image_out)
            rep.written += 1
            if on_image is not None:
                on_image(pair.image)
        if have_label:
            rep.skipped_existing += 1
        else:
            if converted is None:
                write_bytes(pair.label_out, source.read_bytes(pair.label))
            else:
                write_label(pair.label_out, converted)
            rep.written += 1
            written = label if converted is None else converted
            if written.ndim == 2:
                rep.count_labels(written)
    for rep, n in mismatched.values():
        rep.notes.append(f"{n} pairs skipped: image and label sizes differ (see missing)")


def count_present(out: Path, domain: Domain, split: str) -> int:
    """Images of a catalog split whose label is present under the data root `out`."""
    layout = domain.splits[split]
    images = out / domain.folder / layout.images
    labels = out / domain.folder / layout.labels
    if not images.is_dir():
        return 0
    n = 0
    for path in images.iterdir():
        name = path.name
        if name.startswith(".") or not name.endswith(layout.image_suffix):
            continue
        stem = name[: -len(layout.image_suffix)]
        if (labels / f"{stem}{layout.label_suffix}").exists():
            n += 1
    return n


def new_report(domain: Domain, out: Path) -> PrepareReport:
    return PrepareReport(
        dataset=domain.key, out_dir=out / domain.folder, expected=dict(domain.expected)
    )


def fill_found(report: PrepareReport, domain: Domain, out: Path) -> PrepareReport:
    """Count the pairs now present; note classes left empty by the labels written."""
    report.found = {split: count_present(out, domain, split) for split in domain.splits}
    if not domain.labels.detect_one_based:  # (CASID: the offset is decided when reading)
        report.note_empty_classes(domain.classes.names, 1 if domain.labels.reduce_zero_label else 0)
    return report


def single_band(label: np.ndarray, name: str, dataset: str) -> np.ndarray:
    """A 2-D label; a 3-channel label whose channels are equal is reduced to one channel."""
    if label.dtype == bool:
        label = label.astype(np.uint8)
    if label.ndim == 2:
        return label
    if label.ndim == 3 and label.shape[2] in (3, 4):
        rgb = label[..., :3]
        if (rgb == rgb[..., :1]).all():
            return rgb[..., 0]
    raise InputError(
        f"{name}: {with_article(dataset)} label must be single-band (class ids), got shape {label.shape}"
    )


def check_range(label: np.ndarray, name: str, dataset: str, allowed: str, top: int) -> None:
    """InputError when a label holds a value above `top` (`allowed` describes the legal values)."""
    high = int(label.max()) if label.size else 0
    if high > top:
        raise InputError(
            f"{name}: label value {high} is out of range for {dataset} ({allowed}); "
            "is this the right dataset?"
        )


#: Share of pixels of a 0/255 mask that may hold other values (lossy re-encoding noise; the
#: DeepGlobe challenge warns its masks "may not be pure 0 and 255").
BINARY_NOISE = 0.01


def binarize(label: np.ndarray, name: str, dataset: str) -> np.ndarray:
    """The one rule for binary object masks (roads, buildings), in every converter -> 0/1 uint8.

    Channel 0 of a grey colour mask is used. A mask whose values are all 0 or 1 is already 0/1
    (re-shared, converted copies) and is kept as it is; otherwise it is a 0/255 mask, thresholded
    at 128, in which values other than 0 and 255 may appear on at most 1 % of the pixels
    (compression noise). Anything else (class ids 0..k, palettes) is an InputError naming the
    file and the values found.
    """
    if label.dtype == bool:
        label = label.astype(np.uint8)
    if label.ndim == 3:
        label = label[..., 0]
    if not label.size:
        return label.astype(np.uint8)
    high = int(label.max())
    if high <= 1 and int(label.min()) >= 0:
        return label.astype(np.uint8)
    odd = (label != 0) & (label != 255)
    if odd.mean() > BINARY_NOISE:
        values = np.unique(label)
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if values.size > 8 else "")
        raise InputError(
            f"{name}: not a binary {dataset} mask (0/1 or 0/255): {100 * odd.mean():.1f} % of its "
            f"pixels hold other values (values found: {shown})"
        )
    return (label >= 128).astype(np.uint8)

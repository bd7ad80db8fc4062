"""Shared pieces of the dataset converters: archive access, atomic idempotent writes, reports.

Every converter reads the archives as their publishers distribute them (zip files, or the folders
they unpack to), writes the layout of `crossearth.data.catalog`, skips outputs that already exist
(re-running continues an interrupted conversion), and returns a `PrepareReport` that compares what
it found with what the dataset should contain.
"""

from __future__ import annotations

import fnmatch
import io
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image

from crossearth.errors import InputError
from crossearth.fileio import atomic_path


@dataclass
class PrepareOptions:
    quiet: bool = False
    nearest_colour: bool = False  # ISPRS: decode labels by nearest palette colour (see docs)
    limit: int | None = None  # convert at most this many source tiles (for quick looks and tests)
    # ISPRS: use the non-eroded labels (with boundaries); the paper's numbers use the eroded ones
    boundary_labels: bool = False


@dataclass
class PrepareReport:
    dataset: str
    out_dir: Path
    written: int = 0
    skipped_existing: int = 0
    found: dict[str, int] = field(default_factory=dict)  # split -> files now present
    expected: dict[str, int] = field(default_factory=dict)  # split -> files the full dataset has
    missing: list[str] = field(default_factory=list)  # source items that were not found
    unknown_colours: Counter = field(
        default_factory=Counter
    )  # (r, g, b) -> pixels mapped to ignore
    notes: list[str] = field(default_factory=list)
    # stored label value -> pixels in the labels written in this run (for empty-class notes)
    label_pixels: Counter = field(default_factory=Counter)

    def count_labels(self, labels: np.ndarray) -> None:
        """Add a written label array's values to `label_pixels`."""
        values, counts = np.unique(np.asarray(labels), return_counts=True)
        self.label_pixels.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))

    def note_empty_classes(self, class_names: list[str] | tuple[str, ...], offset: int) -> None:
        """A note for every class with no pixel in the labels written in this run (class `c` is
        stored as `c + offset`): a converter never writes a class empty without saying so."""
        if not self.label_pixels:
            return
        empty = [
            name for c, name in enumerate(class_names) if not self.label_pixels.get(c + offset)
        ]
        if empty:
            files = "the labels written in this run"
            self.notes.append(
                f"class{'es' if len(empty) > 1 else ''} {', '.join(empty)} "
                f"{'are' if len(empty) > 1 else 'is'} empty in {files}"
            )

    @property
    def complete(self) -> bool:
        return not self.missing and all(self.found.get(s, 0) >= n for s, n in self.expected.items())

    def lines(self) -> list[str]:
        out = [
            f"{self.dataset}: {self.written} files written, {self.skipped_existing} already present"
        ]
        for split, n in self.expected.items():
            have = self.found.get(split, 0)
            flag = "ok" if have >= n else f"MISSING {n - have}"
            out.append(f"  {split}: {have} / {n} ({flag})")
        if self.missing:
            shown = ", ".join(self.missing[:10]) + (" ..." if len(self.missing) > 10 else "")
            out.append(f"  missing source items ({len(self.missing)}): {shown}")
        if self.unknown_colours:
            top = ", ".join(f"{c}: {n} px" for c, n in self.unknown_colours.most_common(5))
            out.append(f"  colours that map to no class (written as ignore): {top}")
        out.extend(f"  note: {n}" for n in self.notes)
        return out


class Source:
    """Files inside a raw folder: regular files and the members of every zip found in it (nested
    zips included). Paths are POSIX-style, relative to the folder or the zip root."""

    def __init__(self, root: Path) -> None:
        if not root.exists():
            raise InputError(f"raw data folder {root} does not exist")
        if not root.is_dir():
            raise InputError(f"{root} is not a folder (give the folder that holds the archives)")
        self.root = root
        self._spills: list = []
        self._members: dict[str, tuple[Path | None, zipfile.ZipFile | None, str]] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file():
                rel = path.relative_to(root).as_posix()
                if path.suffix.lower() == ".zip":
                    self._add_zip(zipfile.ZipFile(path), prefix=f"{rel}!")
                else:
                    self._members[rel] = (path, None, rel)

    def _add_zip(self, archive: zipfile.ZipFile, prefix: str) -> None:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            if name.lower().endswith(".zip"):
                # inner archives (e.g. Potsdam.zip holding 2_Ortho_RGB.zip) can be many GB: spill
                # them to a temporary file instead of holding them in memory
                spill = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the Source)
                with archive.open(name) as src:
                    shutil.copyfileobj(src, spill, 16 << 20)
                spill.seek(0)
                self._spills.append(spill)
                self._add_zip(zipfile.ZipFile(spill), prefix=f"{prefix}{name}!")
            else:
                self._members[f"{prefix}{name}"] = (None, archive, name)

    def names(self) -> list[str]:
        return list(self._members)

    def find(self, pattern: str) -> list[str]:
        """Members whose base name matches a glob pattern (case-sensitive), sorted."""
        return sorted(n for n in self._members if fnmatch.fnmatchcase(basename(n), pattern))

    def read_bytes(self, name: str) -> bytes:
        path, archive, inner = self._members[name]
        return path.read_bytes() if path is not None else archive.read(inner)

    def open(self, name: str) -> BinaryIO:
        """A binary file object for a member, read lazily (e.g. to peek at an image header)."""
        path, archive, inner = self._members[name]
        return path.open("rb") if path is not None else archive.open(inner)

    def read_image(self, name: str) -> np.ndarray:
        """Pixels of an image member (PNG/JPEG/TIFF) as a NumPy array (H x W or H x W x C)."""
        data = self.read_bytes(name)
        try:
            with Image.open(io.BytesIO(data)) as img:
                return np.asarray(img)
        except Exception:
            return _read_with_rasterio(data, name)


def _read_with_rasterio(data: bytes, name: str) -> np.ndarray:
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(data) as mem, mem.open() as src:
            arr = src.read()
    except Exception as exc:
        raise InputError(f"cannot read {name} as an image ({exc})") from None
    return arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)


def basename(name: str) -> str:
    return PurePosixPath(name.split("!")[-1]).name


def write_png(path: Path, array: np.ndarray) -> None:
    """Write a PNG atomically (no half-written file if interrupted)."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def track(items: Iterable, total: int, description: str, quiet: bool) -> Iterator:
    """Iterate with a rich progress bar (unless quiet)."""
    from rich.progress import Progress

    if quiet:
        yield from items
        return
    with Progress(transient=True) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def colours_to_ids(
    rgb: np.ndarray, palette: dict[tuple[int, int, int], int], default: int = 0
) -> tuple[np.ndarray, Counter]:
    """Exact colour -> id lookup; unmatched pixels get `default` and are counted by colour."""
    flat = rgb.reshape(-1, 3).astype(np.int64)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    ids = np.full(keys.shape, default, dtype=np.uint8)
    matched = np.zeros(keys.shape, dtype=bool)
    for colour, idx in palette.items():
        key = (colour[0] << 16) | (colour[1] << 8) | colour[2]
        hit = keys == key
        ids[hit] = idx
        matched |= hit
    unknown = Counter()
    if not matched.all():
        values, counts = np.unique(keys[~matched], return_counts=True)
        for v, n in zip(values.tolist(), counts.tolist(), strict=True):
            unknown[((v >> 16) & 255, (v >> 8) & 255, v & 255)] += n
    return ids.reshape(rgb.shape[:2]), unknown


def nearest_colours_to_ids(rgb: np.ndarray, palette: dict[tuple[int, int, int], int]) -> np.ndarray:
    """Each pixel gets the id of the nearest palette colour (Euclidean in RGB)."""
    colours = np.array(list(palette), dtype=np.int32)
    ids = np.array(list(palette.values()), dtype=np.uint8)
    flat = rgb.reshape(-1, 3).astype(np.int32)
    best = np.zeros(flat.shape[0], dtype=np.int64)
    best_d = np.full(flat.shape[0], np.iinfo(np.int64).max)
    for k, c in enumerate(colours):
        d = ((flat - c) ** 2).sum(1)
        closer = d < best_d
        best[closer], best_d[closer] = k, d[closer]
    return ids[best].reshape(rgb.shape[:2])

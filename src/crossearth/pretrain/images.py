"""Unlabelled imagery for pretraining: which files, and random square windows from them.

Inputs may be image files, folders (searched recursively for GeoTIFF, PNG, JPEG), globs, scene
lists (`.txt`, `crossearth.geo.scenelist`) and data set description files (`.yaml`: the images of
its training split, read with its bands and scaling). Every window is read through
`crossearth.geo.raster.RasterSource`, the reader `predict` and training use (band choice, nodata,
`--scale auto`), so scenes of any size are read window by window, never whole.
"""

from __future__ import annotations

import glob
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crossearth.errors import InputError
from crossearth.train.style.fit import IMAGE_SUFFIXES
from crossearth.wording import count

log = logging.getLogger(__name__)

DATA_SET_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ReadRule:
    """How the files of one input are read: the model's band layout, the bands, the scaling."""

    band_layout: str = "RGB"
    bands: tuple[int | str, ...] | None = None
    scale: str = "auto"


@dataclass(frozen=True)
class ImageFile:
    path: Path | str
    rule: ReadRule
    height: int
    width: int


def expand_inputs(inputs: list[str | Path]) -> list[tuple[Path | str, ReadRule]]:
    """The image files the inputs name, in input order (each folder and glob sorted), once each.

    Raises:
        InputError: an input does not exist, a folder or glob holds no image, a data set file
            is invalid or picks other than three bands.
    """
    from crossearth.geo.scenelist import is_scene_list, read_scene_list
    from crossearth.train.style.fit import find_images

    found: list[tuple[Path | str, ReadRule]] = []
    plain = ReadRule()
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if path.suffix.lower() in DATA_SET_SUFFIXES:
            found += _data_set_images(path)
        elif is_scene_list(text):
            for _, entry in read_scene_list(path):
                if isinstance(entry, Path) and entry.is_dir():
                    found += [(p, plain) for p in find_images(entry)]
                else:
                    found.append((entry, plain))
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True))
            matches = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not matches:
                raise InputError(f"no image matches {text}")
            found += [(p, plain) for p in matches]
        elif path.is_dir():
            found += [(p, plain) for p in find_images(path)]
        elif path.is_file():
            found.append((path, plain))
        else:
            raise InputError(f"input not found: {text}")
    return list(dict.fromkeys(found))


def _data_set_images(path: Path) -> list[tuple[Path | str, ReadRule]]:
    from crossearth.data.spec import load_data_spec

    spec = load_data_spec(path)
    if spec.train is None or not spec.train.images:
        raise InputError(f"{path}: the data set has no training images")
    if spec.bands is not None and len(spec.bands) != 3:
        raise InputError(
            f"{path}: picks {count(len(spec.bands), 'band')}; pretraining takes three-band "
            "images (RGB or another layout of three)"
        )
    rule = ReadRule(spec.band_layout, spec.bands, spec.scale)
    return [(image, rule) for image in spec.train.images]


def open_images(
    entries: list[tuple[Path | str, ReadRule]], crop: int
) -> tuple[list[ImageFile], list[str]]:
    """Check every file: readable, three bands to read, at least `crop` pixels a side.

    Unreadable files are skipped and returned as problems (one line each).

    Raises:
        InputError: no file is readable, or a readable one is smaller than `crop`.
    """
    from crossearth.geo.raster import RasterSource

    files, problems, small = [], [], []
    for path, rule in entries:
        try:
            with RasterSource.open(path, rule.band_layout, _bands(path, rule), rule.scale) as src:
                height, width = src.height, src.width
        except (InputError, OSError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        if min(height, width) < crop:
            small.append(f"{path} ({height} x {width})")
        files.append(ImageFile(path, rule, height, width))
    if not files:
        first = f" (first problem: {problems[0]})" if problems else ""
        raise InputError(f"no readable image among {count(len(entries), 'input file')}{first}")
    if small:
        raise InputError(
            f"{count(len(small), 'image')} smaller than the crop of {crop} px, e.g. {small[0]}: "
            "give a smaller --crop or leave them out"
        )
    return files, problems


def _bands(path: Path | str, rule: ReadRule) -> tuple[int | str, ...] | None:
    """The rule's bands, or band 1 three times for a one-band file (grey)."""
    if rule.bands is not None:
        return rule.bands
    from crossearth.geo.raster import open_raster

    with open_raster(path) as ds:
        return (1, 1, 1) if ds.count == 1 else None


class ImageWindows:
    """Random square windows of `crop` px: a pure function of (slot, generator).

    A scale factor f is drawn from `scale_range`; a window of crop/f source pixels (at most the
    scene's short side) at a random position is read and resized to crop x crop (bilinear,
    antialiased when shrinking); up to `tries` positions are drawn until at least half of the
    window is valid (not nodata). Scenes are drawn in proportion to their area (one slot per
    crop-sized tile), as `crossearth.data.scenes.RandomWindows` does for training.
    """

    def __init__(
        self,
        files: list[ImageFile],
        crop: int,
        scale_range: tuple[float, float] = (0.5, 2.0),
        tries: int = 5,
    ) -> None:
        self.files, self.crop, self.scale_range, self.tries = files, crop, scale_range, tries
        slots = [max(1, math.ceil(f.height / crop) * math.ceil(f.width / crop)) for f in files]
        self._ends = np.cumsum(slots)
        self._sources: dict[int, object] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:  # open files stay in the process that opened them
        return self.__dict__ | {"_sources": {}}

    def __len__(self) -> int:
        return int(self._ends[-1])

    def source(self, i: int):
        if self._pid != os.getpid():
            self._sources, self._pid = {}, os.getpid()
        if i not in self._sources:
            from crossearth.geo.raster import RasterSource

            f = self.files[i]
            self._sources[i] = RasterSource.open(
                f.path, f.rule.band_layout, _bands(f.path, f.rule), f.rule.scale
            )
        return self._sources[i]

    def sample(self, slot: int, generator: torch.Generator) -> torch.Tensor:
        """uint8 [3, crop, crop] of the scene that `slot` falls in."""
        i = int(np.searchsorted(self._ends, slot, side="right"))
        f = self.files[i]
        lo, hi = self.scale_range
        factor = lo + (hi - lo) * float(torch.rand((), generator=generator))
        side = min(max(1, round(self.crop / factor)), f.height, f.width)
        src = self.source(i)
        for _ in range(self.tries):
            y = int(torch.randint(0, f.height - side + 1, (), generator=generator))
            x = int(torch.randint(0, f.width - side + 1, (), generator=generator))
            pixels, valid = src.read(y, y + side, x, x + side)
            if valid.mean() >= 0.5:
                break
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
        if side != self.crop:
            image = torch.nn.functional.interpolate(
                image[None].float(), size=(self.crop, self.crop), mode="bilinear",
                align_corners=False, antialias=side > self.crop,
            )[0].round().clamp(0, 255).to(torch.uint8)  # fmt: skip
        return image

    def describe(self) -> str:
        """'N images (H MPx)' for logs and the backbone file's record."""
        pixels = sum(f.height * f.width for f in self.files)
        return f"{count(len(self.files), 'image')} ({pixels / 1e6:.1f} MPx)"

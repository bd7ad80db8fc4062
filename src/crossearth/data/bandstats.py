"""What the input bands of a data set are, and their per-band statistics for normalisation.

For a model of N bands (a data set's `bands:` list of other than three bands):

- `describe_bands`: per chosen band, what it is (`red`, `green`, `blue`, `nir`, or the file's
  own name for it, else `band<k>`) and which input slots are red, green and blue. Roles are
  read as `crossearth.geo.bands` reads them (description and other names first, then the colour
  interpretation). When no chosen band records a role at all and there are at least three, the
  first three are taken as red, green, blue (the order of an RGB+NIR file); a band set without
  red, green and blue (e.g. SAR VV, VH) has no RGB slots.
- `band_statistics`: mean and standard deviation of every chosen band *after* scaling to 0..255
  (the values the model sees), over the valid pixels (image nodata and masks left out) of the
  training scenes' rows, read in windows of at most `block` x `block` pixels: memory never
  follows the scene size. Sums are float64 (exact for 8-bit values up to 2^44 pixels).
- `normalisation`: the model's per-band mean and std: the backbone's own ImageNet values for the
  red, green and blue slots, the training data's statistics for every other band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio.io

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD
from crossearth.errors import InputError
from crossearth.geo.bands import (
    COLORINTERP_ROLES,
    DESCRIPTION_ROLES,
    _colorinterp,
    _normalise,
    band_names,
)

ROLE_NAMES = {"R": "red", "G": "green", "B": "blue", "NIR": "nir"}
MIN_STD = 1e-3  # a constant band (std 0) is divided by this floor's replacement, 1.0


@dataclass(frozen=True)
class BandInfo:
    """The chosen bands of a data set: 1-based numbers, names, and the input slots (0-based)
    of red, green and blue (None where the set has no such band)."""

    indices: tuple[int, ...]
    names: tuple[str, ...]
    rgb_slots: tuple[int | None, int | None, int | None]


def describe_bands(dataset: rasterio.io.DatasetReader, bands: tuple[int, ...]) -> BandInfo:
    """Names and RGB slots of the chosen (1-based) `bands` of `dataset` (module docstring)."""
    names = band_names(dataset)
    by_name = {v: k for k, v in ROLE_NAMES.items()}
    roles = [by_name.get(r) if r else None for r in recorded_roles(dataset, bands)]
    labels = [ROLE_NAMES[r] if r else (names[b - 1][0] if names[b - 1] else f"band{b}")
              for r, b in zip(roles, bands, strict=True)]  # fmt: skip
    slots: list[int | None] = []
    for role in ("R", "G", "B"):
        found = [i for i, r in enumerate(roles) if r == role]
        slots.append(found[0] if len(found) == 1 else None)
    if all(r is None for r in roles) and len(bands) >= 3:  # nothing recorded: file order R, G, B
        slots = [0, 1, 2]
        for i, role in enumerate(("R", "G", "B")):
            if labels[i] == f"band{bands[i]}":
                labels[i] = ROLE_NAMES[role]
    return BandInfo(tuple(bands), tuple(labels), (slots[0], slots[1], slots[2]))


def recorded_roles(dataset: rasterio.io.DatasetReader, bands: tuple[int, ...]) -> list[str | None]:
    """Per chosen band, the role name its file records (red, green, blue, nir) or None."""
    names = band_names(dataset)
    colorinterp = _colorinterp(dataset)
    out: list[str | None] = []
    for b in bands:
        role = next((DESCRIPTION_ROLES[k] for k in map(_normalise, names[b - 1])
                     if k in DESCRIPTION_ROLES), None)  # fmt: skip
        role = role or COLORINTERP_ROLES.get(colorinterp[b - 1])
        out.append(ROLE_NAMES[role] if role else None)
    return out


def check_band_names(
    dataset: rasterio.io.DatasetReader, bands: tuple[int, ...], model_names: tuple[str, ...]
) -> None:
    """Refuse input bands whose recorded role (red, green, blue, nir) differs from the role the
    model's band name in that slot says; bands without a recorded role, and model bands named
    otherwise, are not compared.

    Raises:
        InputError: naming every slot that differs.
    """
    roles = set(ROLE_NAMES.values())
    wrong = [
        f"band {b} is {found}, the model's input {i + 1} is {expected}"
        for i, (b, found, expected) in enumerate(
            zip(bands, recorded_roles(dataset, bands), model_names, strict=False)
        )
        if found is not None and expected in roles and found != expected
    ]
    if wrong:
        from crossearth.geo.bands import dataset_label

        raise InputError(
            f"{dataset_label(dataset)} does not hold the model's bands ({'; '.join(wrong)}); "
            f"pass --bands with the file's bands in the model's order "
            f"({', '.join(model_names)})"
        )


def band_statistics(scenes, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(mean [N] float64, std [N] float64) of the scaled (0..255) chosen bands over the valid
    pixels of every scene of `scenes` (a `crossearth.data.scenes.SceneDataset`), streamed in
    windows of at most `block` pixels a side.

    Raises:
        InputError: an unreadable image (from the reader); ValueError: no valid pixel at all.
    """
    count = 0
    total: np.ndarray | None = None
    squares: np.ndarray | None = None
    for i in range(len(scenes)):
        y0, y1 = scenes.row_range(i)
        width = scenes.shape(i)[1]
        source = scenes.source(i)
        for ya in range(y0, y1, block):
            for xa in range(0, width, block):
                pixels, valid = source.read(ya, min(ya + block, y1), xa, min(xa + block, width))
                values = pixels[valid].astype(np.float64)  # [n, N]
                if total is None:
                    total = np.zeros(pixels.shape[-1])
                    squares = np.zeros(pixels.shape[-1])
                count += values.shape[0]
                total += values.sum(axis=0)
                squares += np.square(values).sum(axis=0)
    if total is None or squares is None or count == 0:
        raise ValueError("no valid pixel in the training images to compute band statistics from")
    mean = total / count
    var = np.maximum(squares / count - np.square(mean), 0.0)
    return mean, np.sqrt(var)


def normalisation(
    info: BandInfo, mean: np.ndarray, std: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band (mean, std) for the model: ImageNet's for the RGB slots, `mean`/`std` (the
    training data's, 0..255 units) for the others; a constant band gets std 1."""
    out_mean = [float(m) for m in mean]
    out_std = [float(s) if s > MIN_STD else 1.0 for s in std]
    for c, slot in enumerate(info.rgb_slots):
        if slot is not None:
            out_mean[slot], out_std[slot] = IMAGENET_MEAN[c], IMAGENET_STD[c]
    return tuple(out_mean), tuple(out_std)

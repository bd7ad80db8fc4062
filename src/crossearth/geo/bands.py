"""Which three bands of a raster feed the model, and why.

The models take three bands: R, G, B for "RGB" models and NIR, R, G for "IRRG" models
(`ZooEntry.bands`, `ModelConfig.bands`). `choose_bands` picks them by these rules:

Alpha bands (colour interpretation "alpha", or the description "alpha") are never data: they
are always a validity mask (pixels where any alpha band is 0 are nodata), whatever the band
count (GDAL itself takes alpha as the mask only in 2- and 4-band files). The other bands are
the data bands. One rule for every band count:

1. `--bands` given (or, without it, the file bands a fine-tuned model records it was trained on,
   `ModelConfig.band_indices`; the reason and any error then say "from the model"): exactly
   three 1-based band numbers, each at most the file's band count, used
   in that order; or three band names, matched to the band descriptions (e.g. `red,green,blue`
   for a STAC item, whose bands are described by their common names). Repeating a band is allowed (e.g. `--bands 1,1,1` for a panchromatic image).
2. Otherwise each data band's role (R, G, B or NIR) is read from its description
   (case-insensitive, `_`/`-` read as spaces), by the table below, or else from its colour
   interpretation (red, green, blue, nir). A description outranks a colour interpretation.
   When every role the model needs belongs to exactly one band, those bands are used, for any
   band count (a 3-band file recorded as blue, green, red is fed as bands 3, 2, 1).
3. Otherwise, exactly 3 data bands that record no roles, or only red, green, blue in file order
   (the default of any 3-band RGB TIFF, also of false-colour IRRG tiles such as ISPRS
   Vaihingen's): used in file order, assumed to be in the model's order (R,G,B or NIR,R,G).
4. Otherwise (a needed role missing or claimed by several bands, fewer than 3 data bands): an
   error listing the bands; pass `--bands` (e.g. `--bands 1,1,1` for one band).

Band descriptions recognised (B-numbers follow Sentinel-2, which agrees with Landsat 8/9 for
B2-B4; for Landsat NIR, B5, or Landsat 5/7 numbering, pass `--bands`):

    R:   red, r, b04, b4, red band
    G:   green, g, b03, b3, green band
    B:   blue, b, b02, b2, blue band
    NIR: nir, nir08, near infrared, near ir, ir, b08, b8, nir band
"""

from __future__ import annotations

from dataclasses import dataclass

import rasterio
import rasterio.io
from rasterio.enums import ColorInterp

from crossearth.errors import ConfigError, InputError
from crossearth.wording import count as counted
from crossearth.wording import with_article

#: Band description (normalised: lower case, `_`/`-` as spaces, single spaces) -> role.
DESCRIPTION_ROLES: dict[str, str] = {
    **dict.fromkeys(("red", "r", "b04", "b4", "red band"), "R"),
    **dict.fromkeys(("green", "g", "b03", "b3", "green band"), "G"),
    **dict.fromkeys(("blue", "b", "b02", "b2", "blue band"), "B"),
    **dict.fromkeys(
        ("nir", "nir08", "near infrared", "near ir", "ir", "b08", "b8", "nir band"), "NIR"
    ),
}

#: Colour interpretation -> role.
COLORINTERP_ROLES: dict[ColorInterp, str] = {
    ColorInterp.red: "R",
    ColorInterp.green: "G",
    ColorInterp.blue: "B",
    ColorInterp.nir: "NIR",
}

#: Roles each model layout needs, in input-slot order.
MODEL_ROLES: dict[str, tuple[str, str, str]] = {"RGB": ("R", "G", "B"), "IRRG": ("NIR", "R", "G")}

_EXAMPLE = {"RGB": "--bands 3,2,1", "IRRG": "--bands 4,3,2"}
_MAX_LISTED = 20


@dataclass(frozen=True)
class BandChoice:
    """The three 1-based band numbers fed to the model, in input order, and a readable reason."""

    bands: tuple[int, int, int]
    reason: str


def choose_bands(
    dataset: rasterio.io.DatasetReader,
    model_bands: str,
    requested: tuple[int, ...] | None,
    from_model: bool = False,
) -> BandChoice:
    """Pick the model's three input bands from `dataset` by the module's rules.

    `model_bands` is the model's layout ("RGB" or "IRRG"); `requested` is `--bands` or None, or
    with `from_model` the file bands the model was trained on (its `band_indices`): the reason
    and errors then name the model, not `--bands`.
    Raises InputError when the choice is invalid or cannot be made without `--bands`.
    """
    layout = model_bands.strip().upper()
    if layout not in MODEL_ROLES:
        raise ConfigError(
            f"unknown model band layout {model_bands!r}; expected one of {sorted(MODEL_ROLES)}"
        )
    roles = MODEL_ROLES[layout]
    expects = ",".join(roles)
    name = dataset.name
    count = dataset.count

    origin = "bands from the model" if from_model else "--bands"
    if requested is not None and any(isinstance(b, str) for b in requested):
        requested = _bands_by_name(dataset, requested, origin)
    if requested is not None:
        chosen = _validate_requested(requested, count, name, origin)
        alpha = alpha_bands(dataset)
        alpha_words = "alpha band" if len(alpha) == 1 else "alpha bands"
        mask = f"; {alpha_words} {_join(alpha)} used as the validity mask" if alpha else ""
        where = "from the model, the file bands it was trained on" if from_model else "from --bands"
        return BandChoice(
            chosen, f"bands {_join(chosen)} ({where}; the model expects {expects}{mask})"
        )

    colorinterp = _colorinterp(dataset)
    descriptions = list(dataset.descriptions or (None,) * count)
    alpha = alpha_bands(dataset)
    mask_note = (
        f"; alpha band{'s' if len(alpha) > 1 else ''} {_join(alpha)} used as the validity mask"
        if alpha
        else ""
    )
    data_bands = [i for i in range(1, count + 1) if i not in alpha]
    if len(data_bands) < 3:
        extra = f" (plus {counted(len(alpha), 'alpha band')})" if alpha else ""
        raise InputError(
            f"{name} has {counted(len(data_bands), 'data band')}{extra}; the model needs 3 "
            f"({expects}). "
            f"Pass --bands with three band numbers, e.g. --bands 1,1,1 to repeat band 1"
        )

    by_description: dict[str, list[int]] = {}
    by_colorinterp: dict[str, list[int]] = {}
    described: set[int] = set()
    for i in data_bands:
        role = DESCRIPTION_ROLES.get(_normalise(descriptions[i - 1]))
        if role is not None:
            by_description.setdefault(role, []).append(i)
            described.add(i)
        role = COLORINTERP_ROLES.get(colorinterp[i - 1])
        if role is not None:
            by_colorinterp.setdefault(role, []).append(i)

    picks: list[int] = []
    sources: list[str] = []
    problem = ""
    for role in roles:
        candidates = by_description.get(role, [])
        source = "description"
        if not candidates:
            # A band whose description names another role is not taken on its colour alone.
            candidates = [i for i in by_colorinterp.get(role, []) if i not in described]
            source = "colour interpretation"
        if len(candidates) != 1:
            problem = (
                f"cannot tell which band of {name} is {_ROLE_NAMES[role]}"
                if not candidates
                else f"bands {_join(candidates)} of {name} all look like {_ROLE_NAMES[role]}"
            )
            break
        picks.append(candidates[0])
        sources.append(f"{role} = band {candidates[0]} by {source}")
    if not problem:
        chosen = (picks[0], picks[1], picks[2])
        return BandChoice(chosen, f"bands {_join(chosen)} ({'; '.join(sources)}{mask_note})")

    recorded = {i: r for r, bands in by_colorinterp.items() for i in bands}
    default_rgb = [recorded.get(i) for i in data_bands] == ["R", "G", "B"]
    if len(data_bands) == 3 and not described and (not recorded or default_rgb):
        chosen = (data_bands[0], data_bands[1], data_bands[2])
        why = "recorded as red, green, blue in file order" if recorded else "no band roles recorded"
        return BandChoice(
            chosen,
            f"bands {_join(chosen)} (file order, taken as {expects}: {why}; pass --bands if the "
            f"file is ordered differently{mask_note})",
        )
    raise InputError(
        f"{problem} ({with_article(layout)} model needs {expects}). Pass --bands with three band "
        f"numbers in the order {expects}, e.g. {_EXAMPLE[layout]}. The file's bands: "
        f"{_listing(dataset, colorinterp, descriptions)}"
    )


def alpha_bands(dataset: rasterio.io.DatasetReader) -> list[int]:
    """1-based numbers of the bands that are alpha (a mask, never data): colour interpretation
    alpha, or the description "alpha"."""
    colorinterp = _colorinterp(dataset)
    descriptions = list(dataset.descriptions or (None,) * dataset.count)
    return [
        i
        for i in range(1, dataset.count + 1)
        if colorinterp[i - 1] == ColorInterp.alpha or _normalise(descriptions[i - 1]) == "alpha"
    ]


_ROLE_NAMES = {"R": "red", "G": "green", "B": "blue", "NIR": "near infrared"}


def _validate_requested(
    requested: tuple[int, ...], count: int, name: str, origin: str = "--bands"
) -> tuple[int, int, int]:
    """The three band numbers of `requested`; `origin` ("--bands", or "bands from the model")
    starts each error, which then also says how to choose others."""
    hint = "" if origin == "--bands" else " (pass --bands to choose the file's bands)"
    if len(requested) != 3:
        raise InputError(
            f"{origin} needs exactly three band numbers (got {len(requested)}: "
            f"{_join(requested)}), e.g. --bands 1,2,3 or --bands 1,1,1"
        )
    for b in requested:
        if isinstance(b, bool) or int(b) != b:
            raise InputError(f"{origin}: {b!r} is not a band number{hint}")
        if not 1 <= b <= count:
            raise InputError(
                f"{origin}: band {b} does not exist; {name} has {counted(count, 'band')}, "
                f"numbered 1 to {count}{hint}"
            )
    return (int(requested[0]), int(requested[1]), int(requested[2]))


def _bands_by_name(
    dataset: rasterio.io.DatasetReader, names: tuple, origin: str = "--bands"
) -> tuple[int, ...]:
    """Band numbers of the bands whose descriptions are `names` (case-insensitive)."""
    descriptions = [_normalise(d) for d in (dataset.descriptions or ())]
    found = []
    for band in names:
        key = _normalise(str(band))
        if descriptions.count(key) != 1:
            known = ", ".join(d or "(none)" for d in descriptions) or "none"
            raise InputError(
                f"{origin}: no single band named {band!r} in {dataset.name} "
                f"(band descriptions: {known}); pass names from that list or band numbers"
            )
        found.append(descriptions.index(key) + 1)
    return tuple(found)


def _colorinterp(dataset: rasterio.io.DatasetReader) -> list[ColorInterp | None]:
    try:
        return list(dataset.colorinterp)
    except ValueError:  # a colour interpretation this rasterio does not know
        return [None] * dataset.count


def _normalise(description: str | None) -> str:
    if not description:
        return ""
    return " ".join(description.lower().replace("_", " ").replace("-", " ").split())


def _join(bands: tuple[int, ...] | list[int]) -> str:
    return ",".join(str(b) for b in bands)


def _listing(
    dataset: rasterio.io.DatasetReader,
    colorinterp: list[ColorInterp | None],
    descriptions: list[str | None],
) -> str:
    parts = []
    for i in range(1, min(dataset.count, _MAX_LISTED) + 1):
        ci = colorinterp[i - 1]
        ci_name = ci.name if ci is not None else "unknown"
        desc = descriptions[i - 1]
        parts.append(
            f"band {i}: colorinterp {ci_name}, description {desc!r}"
            if desc
            else f"band {i}: colorinterp {ci_name}, no description"
        )
    if dataset.count > _MAX_LISTED:
        parts.append(f"... ({dataset.count - _MAX_LISTED} more)")
    return "; ".join(parts)

"""Which three bands of a raster feed the model, and why.

The models take three bands: R, G, B for "RGB" models and NIR, R, G for "IRRG" models
(`ZooEntry.bands`, `ModelConfig.bands`). `choose_bands` picks them by these rules:

Alpha bands (colour interpretation "alpha", or the description "alpha") are never data: they
are always a validity mask (pixels where any alpha band is 0 are nodata), whatever the band
count (GDAL itself takes alpha as the mask only in 2- and 4-band files). The other bands are
the data bands. One rule for every band count:

1. `--bands` given (or, without it, the file bands a fine-tuned model records it was trained on,
   `ModelConfig.band_indices`: the reason and any error then say "bands from the model", not
   `--bands`): exactly three 1-based band numbers, each at most the file's band count, used
   in that order; or three band names, each matched (ignoring case, spaces, `_`, `-` and
   leading zeros of numbers: `B8` is `B08`, `SR_B5` is `sr-b5`) to the one band that goes by it: its
   description, or a name its metadata records (GDAL's `BANDNAME`; for a STAC item, the
   band's common name, `eo:bands` name and asset keys, e.g. `red`, `B04`). Repeating a band is
   allowed (e.g. `--bands 1,1,1` for a panchromatic image). A name no band goes by that
   stands for a role (`red`, `nir`, `B08`, ... as in the table below) picks the one band of
   that role (e.g. `red` for a band described as B04). A STAC band left out of the stack
   for being at another resolution is named as such.
2. Otherwise each data band's role (R, G, B or NIR) is read from its description
   (case-insensitive, `_`/`-` read as spaces) by the table below, else from another name
   it goes by (see 1., e.g. a STAC band's asset key `B04`), or else from its colour
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

import json
import re
from dataclasses import dataclass

import rasterio
import rasterio.io
from rasterio.enums import ColorInterp

from crossearth.advice import OPTIONS, Advice
from crossearth.errors import ConfigError, InputError
from crossearth.geo.remote import mask_text
from crossearth.geo.stac import NAMES_TAG, stack_info
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

_EXAMPLE = {"RGB": (3, 2, 1), "IRRG": (4, 3, 2)}
_MAX_LISTED = 20


@dataclass(frozen=True)
class BandChoice:
    """The 1-based band numbers fed to the model, in input order, and a readable reason."""

    bands: tuple[int, ...]
    reason: str


def choose_bands(
    dataset: rasterio.io.DatasetReader,
    model_bands: str,
    requested: tuple[int | str, ...] | None,
    advice: Advice = OPTIONS,
    nbands: int | None = 3,
    from_model: bool = False,
    model_band_names: tuple[str, ...] | None = None,
) -> BandChoice:
    """Pick the model's input bands from `dataset` by the module's rules.

    `model_bands` is the model's layout ("RGB" or "IRRG"); `requested` is `--bands` (or the data
    set file's `bands:`: numbers or names) or None. `advice` names the setting that chooses bands
    where the user is (`crossearth.advice`). `nbands` is how many bands the model takes (3 for
    RGB/IRRG models, N for a model trained on N bands; None: any number >= 1, as a data set's
    `bands:` list). Bands other than three are never guessed: they are always `requested` (or
    recorded in the model). `from_model`: `requested` are the file bands the model records it was
    trained on (not the user's choice): the reason and errors say "bands from the model" and how
    to choose others; `model_band_names` (the model's names of those bands) are then named in errors.

    Raises:
        InputError: the choice is invalid (a band the file lacks, a name no band goes by, the
            wrong number of bands, a band repeated in a list of other than three) or cannot be
            made without choosing bands.
    """
    layout = model_bands.strip().upper()
    if layout not in MODEL_ROLES:
        raise ConfigError(
            f"unknown model band layout {model_bands!r}; expected one of {sorted(MODEL_ROLES)}"
        )
    roles = MODEL_ROLES[layout]
    expects = ",".join(roles)
    name = dataset_label(dataset)
    if requested is None and nbands not in (None, 3):
        raise InputError(
            f"the model takes {nbands} bands and does not record which; pass --bands with "
            f"{nbands} band numbers or names"
        )
    count = dataset.count

    option = MODEL_ORIGIN if from_model else advice.bands or "bands"
    note = _left_out_note(dataset)
    if from_model:
        note += _choose_others(requested, model_band_names, advice)
    if requested is not None and any(isinstance(b, str) for b in requested):
        requested = _bands_by_name(dataset, requested, option)
    if requested is not None:
        chosen = _validate_requested(requested, dataset.count, name, advice, note,
                                     expected=nbands, option=option)  # fmt: skip
        alpha = alpha_bands(dataset)
        alpha_words = "alpha band" if len(alpha) == 1 else "alpha bands"
        mask = f"; {alpha_words} {_join(alpha)} used as the validity mask" if alpha else ""
        where = (
            "from the model, the file bands it was trained on" if from_model else f"from {option}"
        )
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
        how = advice.set_bands((1, 1, 1))
        raise InputError(
            f"{name} has {counted(len(data_bands), 'data band')}{extra}; the model needs 3 "
            f"({expects}). "
            + (
                f"Choose three band numbers with {how} (this repeats band 1)"
                if how
                else "Give images with at least 3 bands (bands cannot be chosen here)"
            )
            + _left_out_note(dataset)
        )

    by_description: dict[str, list[int]] = {}
    by_colorinterp: dict[str, list[int]] = {}
    described: set[int] = set()
    names = band_names(dataset)
    for i in data_bands:  # the description's role, else that of another name of the band
        role = next((DESCRIPTION_ROLES[k] for k in map(_normalise, names[i - 1])
                     if k in DESCRIPTION_ROLES), None)  # fmt: skip
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
        how = f"; choose with {advice.bands} if" if advice.bands else "; wrong if"
        return BandChoice(
            chosen,
            f"bands {_join(chosen)} (file order, taken as {expects}: {why}{how} the file is "
            f"ordered differently{mask_note})",
        )
    how = advice.set_bands(_EXAMPLE[layout])
    fix = (
        f"Choose three band numbers in the order {expects}, e.g. {how}"
        if how
        else "Bands cannot be chosen here: record their roles in the file (colour "
        "interpretation or description red, green, blue, nir; e.g. gdal_edit.py -colorinterp_1 "
        "red), or give it 3-band images in the model's order"
    )
    raise InputError(
        f"{problem} ({with_article(layout)} model needs {expects}). {fix}. The file's bands: "
        f"{_listing(dataset, colorinterp, descriptions)}{_left_out_note(dataset)}"
    )


def dataset_label(dataset: rasterio.io.DatasetReader) -> str:
    """How messages name a dataset: a STAC item by its href (never the in-memory VRT's
    `/vsimem/` path), anything else by its name with any URL's credentials masked."""
    info = stack_info(dataset)
    return info.item if info is not None else mask_text(str(dataset.name))


def band_names(dataset: rasterio.io.DatasetReader) -> list[tuple[str, ...]]:
    """Per band (in band order), every name it goes by: its description, then the names its
    metadata records (GDAL's `BANDNAME` item; a STAC stack's `STAC_NAMES`: common name,
    `eo:bands` name, asset keys). Empty names are left out."""
    descriptions = list(dataset.descriptions or (None,) * dataset.count)
    out = []
    for i in range(1, dataset.count + 1):
        names = [descriptions[i - 1]] if descriptions[i - 1] else []
        try:
            tags = dataset.tags(i)
        except (ValueError, IndexError, rasterio.errors.RasterioError):
            tags = {}
        if tags.get("BANDNAME"):
            names.append(tags["BANDNAME"])
        try:
            listed = json.loads(tags.get(NAMES_TAG) or "[]")
        except ValueError:
            listed = []
        names += [str(n) for n in listed if n] if isinstance(listed, list) else []
        out.append(tuple(dict.fromkeys(str(n) for n in names)))
    return out


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

#: How messages name bands a model file chose (its `band_indices`), where `--bands` names the user's.
MODEL_ORIGIN = "bands from the model"


def _choose_others(requested: tuple | None, names: tuple[str, ...] | None, advice: Advice) -> str:
    """The end of an error about bands from the model: which bands the model was trained on
    (with their names where known) and how to choose the file's bands here."""
    named = f" ({', '.join(names)})" if names else ""
    trained = f"; the model was trained on file bands {_join(requested or ())}{named}"
    return trained + (f"; pass {advice.bands} to choose this file's bands" if advice.bands else "")


def _validate_requested(
    requested: tuple[int, ...],
    count: int,
    name: str,
    advice: Advice = OPTIONS,
    note: str = "",
    expected: int | None = 3,
    option: str | None = None,
) -> tuple[int, ...]:
    """`requested` as band numbers of a file of `count` bands; errors start with `option` (the
    setting, or `MODEL_ORIGIN`) and end with `note`."""
    option = option or advice.bands or "bands"
    if expected == 3 and len(requested) != 3:
        raise InputError(
            f"{option.rstrip(':')} needs exactly three band numbers (got {len(requested)}: "
            f"{_join(requested)}), e.g. {advice.set_bands((1, 2, 3))} or "
            f"{advice.set_bands((1, 1, 1))}"
        )
    if expected is not None and len(requested) != expected:
        raise InputError(
            f"the model takes {expected} bands; {len(requested)} given ({_join(requested)}): "
            f"give {option.rstrip(':')} {expected} band numbers or names"
        )
    if not requested:
        raise InputError("bands: give at least one band")
    if len(requested) != 3 and len(set(requested)) != len(requested):
        repeated = sorted({b for b in requested if list(requested).count(b) > 1})
        raise InputError(f"bands: band {_join(repeated)} is given more than once")
    for b in requested:
        if isinstance(b, bool) or int(b) != b:
            raise InputError(f"{_lead(option)} {b!r} is not a band number")
        if not 1 <= b <= count:
            raise InputError(
                f"{_lead(option)} band {b} does not exist; {name} has {counted(count, 'band')}, "
                f"numbered 1 to {count}{note}"
            )
    return tuple(int(b) for b in requested)


def _bands_by_name(
    dataset: rasterio.io.DatasetReader, names: tuple, option: str = "--bands"
) -> tuple[int, ...]:
    """Band numbers of the bands that go by `names` (see `band_names`; compared by `_name_key`:
    case, spaces, `_`, `-` and leading zeros of numbers ignored)."""
    known = band_names(dataset)
    keys = [{_name_key(n) for n in band} for band in known]
    found = []
    for band in names:
        key = _name_key(str(band))
        matches = [i for i, k in enumerate(keys, start=1) if key in k]
        if len(matches) == 1:
            found.append(matches[0])
            continue
        listing = "; ".join(
            f"band {i}: {', '.join(n) if n else '(no name)'}" for i, n in enumerate(known, 1)
        )
        if matches:
            raise InputError(
                f"{_lead(option)} {band!r} names bands {_join(matches)} of "
                f"{dataset_label(dataset)}; pass band numbers instead ({listing})"
            )
        by_role = _bands_by_role(dataset, str(band))
        if len(by_role) == 1:  # e.g. `red` for the band described as B04, or colour-coded red
            found.append(by_role[0])
            continue
        other = _left_out(dataset, key)
        if other is not None:
            info = stack_info(dataset)
            assert info is not None
            width, height = other.size
            raise InputError(
                f"{_lead(option)} band {band!r} ({', '.join(other.names)}) of {info.item} is at "
                f"{other.resolution} ({width} x {height} px), another resolution than the "
                f"item's stack, which is on the {info.resolution} grid "
                f"({info.size[0]} x {info.size[1]} px): bands at another resolution are left "
                f"out of it. Choose three bands of the stack: {listing}"
            )
        raise InputError(
            f"{_lead(option)} no band named {band!r} in {dataset_label(dataset)} (its bands: "
            f"{listing or 'none'}); pass names from that list or band numbers"
        )
    return tuple(found)


def _bands_by_role(dataset: rasterio.io.DatasetReader, name: str) -> list[int]:
    """Bands whose role (R, G, B, NIR: from a name they go by, else their colour
    interpretation) is the role `name` stands for (`DESCRIPTION_ROLES`); [] for other names."""
    role = DESCRIPTION_ROLES.get(_normalise(name))
    if role is None:
        return []
    colorinterp = _colorinterp(dataset)
    out = []
    for i, names in enumerate(band_names(dataset), start=1):
        found = next((DESCRIPTION_ROLES[k] for k in map(_normalise, names)
                      if k in DESCRIPTION_ROLES), None)  # fmt: skip
        if (found or COLORINTERP_ROLES.get(colorinterp[i - 1])) == role:
            out.append(i)
    return out


def _name_key(name: str) -> str:
    """A band name as compared: lower case without spaces, `_` or `-`, numbers without leading
    zeros (`SR_B05`, `sr-b5` -> `srb5`; `swir_16` -> `swir16`)."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), _normalise(name).replace(" ", ""))


def _left_out(dataset: rasterio.io.DatasetReader, key: str):
    """The STAC band left out of `dataset`'s stack (another grid) that goes by `key`, or None."""
    info = stack_info(dataset)
    if info is None:
        return None
    return next((b for b in info.left_out if key in {_name_key(n) for n in b.names}), None)


def _left_out_note(dataset: rasterio.io.DatasetReader) -> str:
    """For a STAC stack with bands on other grids: a sentence naming them and their resolution."""
    info = stack_info(dataset)
    if info is None or not info.left_out:
        return ""
    listed = ", ".join(f"{'/'.join(b.names)} ({b.resolution})" for b in info.left_out)
    return (
        f". Not in the stack (on the {info.resolution} grid) for being at another resolution: "
        f"{listed}"
    )


def _lead(option: str) -> str:
    """`--bands` -> `--bands:`, `bands:` as it is: the start of a message about the setting."""
    return option if option.endswith(":") else f"{option}:"


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
    names = band_names(dataset)
    for i in range(1, min(dataset.count, _MAX_LISTED) + 1):
        ci = colorinterp[i - 1]
        ci_name = ci.name if ci is not None else "unknown"
        desc = descriptions[i - 1]
        others = [n for n in names[i - 1] if n != desc]
        aka = f" (also named {', '.join(others)})" if others else ""
        parts.append(
            f"band {i}: colorinterp {ci_name}, description {desc!r}{aka}"
            if desc
            else f"band {i}: colorinterp {ci_name}, no description{aka}"
        )
    if dataset.count > _MAX_LISTED:
        parts.append(f"... ({dataset.count - _MAX_LISTED} more)")
    return "; ".join(parts)

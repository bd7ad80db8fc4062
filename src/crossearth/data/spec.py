"""A data set description file (YAML): your classes, your images, your labels.

```yaml
classes: [water, forest, bare]        # class id = position; or a mapping {0: water, 1: forest, ...}
palette: [[30, 90, 200], [20, 130, 40], [200, 180, 140]]   # optional (default: distinct colours)
ignore_index: 255                     # optional: label value that marks unlabelled pixels
label_values: {10: water, 20: forest, 0: null}   # optional: label codes -> classes (null: unlabelled)
label_nodata: class                   # optional: a label raster's nodata that is a class: class / ignore
allow_empty_classes: [bare]           # optional: classes that may have no labelled pixel (or true)
bands: [1, 2, 3]                      # optional: 1-based band numbers or band names, any count
                                      # (e.g. [1, 2, 3, 4] for RGB+NIR), or RGB / IRRG (see predict)
scale: auto                           # optional: as `predict --scale`
gsd: 0.5                              # optional: metres; default read from the first image
train:
  images: scenes/train/*.tif          # files, folders or globs (a list of them too), relative to this file
  labels: labels.gpkg                 # raster masks (folder/glob, matched by name), one raster, or one vector file
  label_field: landcover              # vector attribute with class codes (see crossearth.data.codes)
val: {images: ..., labels: ...}       # optional: else a deterministic hold-out of train
targets:                              # optional: other domains, each validated and reported apart
  city_b: {images: ..., labels: ...}
```

Every path is resolved relative to the YAML file. `images` may also name GDAL subdatasets (a
variable of a NetCDF/HDF file: `NETCDF:"scene.nc":reflectance`; its file relative to the YAML
file too), paired with labels by `scene_reflectance` or else `scene`. Unknown keys are an error (a typo must not be
silently ignored); every mistake in the file's form (unknown keys, with a "did you mean" for a
near miss, and malformed values) is reported together in one error. Label rasters are paired with images by file name: the same stem, or the same
stem once a usual suffix is removed (`_label`, `_mask`, `_gt`, ... on labels; `_sat`, `_rgb`,
`_image`, ... on images), case-insensitively; one label raster may also cover every image.

Codes in label files (vector attributes, label raster values) become classes by one rule, the
same for text and numbers (`crossearth.data.codes`). A label raster's declared nodata value
never erases a class: when it is a class's code, its pixels are read as that class (and `data
check` warns) unless `label_nodata: ignore` says they are unlabelled.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crossearth.data.codes import BY_ID, CodeTable, parse_label_values
from crossearth.errors import ConfigError, InputError
from crossearth.geo.containers import (
    container_file,
    is_subdataset,
    resolve_subdataset,
    short_name,
)
from crossearth.geo.containers import naming_path as subdataset_naming
from crossearth.problems import Problems, near_misses, unknown_keys
from crossearth.wording import count, ordinal

IMAGE_SUFFIXES = (".tif", ".tiff", ".vrt", ".png", ".jpg", ".jpeg", ".jp2", ".img")
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".kml", ".sqlite")
TOP_KEYS = {"name", "classes", "palette", "ignore_index", "ignore_colours", "bands", "scale", "gsd",
            "holdout", "train", "val", "targets", "label_values", "label_nodata",
            "allow_empty_classes"}  # fmt: skip
LABEL_NODATA = ("class", "ignore")
SPLIT_KEYS = {"images", "labels", "label_field", "label_format"}
LABEL_FORMATS = ("auto", "ids", "colours")
# File-name endings that tell an image or a mask apart while naming the same place.
LABEL_ENDINGS = ("_labels", "_label", "_masks", "_mask", "_gt", "_lbl", "_annotation", "_seg",
                 "_classes", "_ann")  # fmt: skip
IMAGE_ENDINGS = ("_sat", "_image", "_img", "_rgb", "_rgbir", "_irrg", "_ortho", "_rgbi")
HOLDOUT_EVERY = 5  # without `val`: every 5th scene (by name) is held out, or the last 20 % of rows


@dataclass(frozen=True)
class SplitSpec:
    """One split: image files in name order, their label files (or one vector/raster for all)."""

    name: str
    images: tuple[Path | str, ...]  # str: a GDAL subdataset name, `NETCDF:"/abs/s.nc":var`
    labels: tuple[Path | None, ...]  # per image; None = no label found
    label_field: str | None = None
    label_format: str = "auto"
    rows: tuple[tuple[float, float], ...] | None = None  # per image: fraction of rows used

    @property
    def vector(self) -> bool:
        return any(p is not None and p.suffix.lower() in VECTOR_SUFFIXES for p in self.labels)


@dataclass(frozen=True)
class DataSpec:
    """A parsed data set description: classes, reading rules and splits."""

    path: Path
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = 255
    ignore_colours: tuple[tuple[int, int, int], ...] = ()
    bands: tuple[int | str, ...] | None = None
    band_layout: str = "RGB"
    scale: str = "auto"
    gsd_m: float | None = None
    train: SplitSpec | None = None
    val: SplitSpec | None = None
    targets: dict[str, SplitSpec] = field(default_factory=dict)
    holdout: str = ""  # how `val` was derived when the file has none
    label_values: dict[str, int] | None = None  # canonical code -> class id (255: unlabelled)
    label_nodata: str = "class"  # a label raster's nodata that is a class's code: class / ignore
    allow_empty_classes: tuple[str, ...] = ()  # classes that may have no labelled pixel in train
    codes: CodeTable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", CodeTable(self.classes, self.label_values))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> SplitSpec:
        """A split by name: train, val, or a target's name. Raises InputError if absent."""
        found = {"train": self.train, "val": self.val, **self.targets}.get(name)
        if found is None:
            names = ["train", "val", *self.targets]
            raise InputError(f"{self.path}: no split {name!r} (it has {', '.join(names)})")
        return found

    def validation_splits(self) -> dict[str, SplitSpec]:
        """`val` (if any) then every target, in file order."""
        out = {"val": self.val} if self.val is not None else {}
        return out | self.targets


def load_data_spec(path: str | Path) -> DataSpec:
    """Read and check a data set description file.

    Raises:
        ConfigError: unknown keys, malformed classes/palette/bands, a split without images.
        InputError: the file or a listed image/label path does not exist.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"data set description {path} not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping with at least `classes` and `train`")
    problems = Problems(str(path))  # every mistake of the file is reported in one error
    problems.extend(unknown_keys(raw, TOP_KEYS))
    base = path.parent
    misspelt = set(near_misses(raw, TOP_KEYS).values())  # already told: "did you mean"
    if "classes" in misspelt and "classes" not in raw:
        classes = None
    else:
        classes = problems.check(_classes, raw.get("classes"), path)
    # without readable classes the palette's colours are still checked (not its length)
    palette = problems.check(_palette, raw.get("palette"), len(classes) if classes else None, path)
    label_values = None
    if raw.get("label_values") is not None:
        label_values = problems.check(parse_label_values, raw["label_values"], classes, path)
    codes = CodeTable(classes, label_values) if classes else None
    ignore = problems.check(_ignore_index, raw.get("ignore_index", 255), codes, path)
    label_nodata = str(raw.get("label_nodata", "class")).strip().lower()
    if label_nodata not in LABEL_NODATA:
        problems.add(
            f"label_nodata must be one of {', '.join(LABEL_NODATA)}, got {raw['label_nodata']!r}"
        )
    allow_empty = problems.check(_allow_empty, raw.get("allow_empty_classes"), classes, path)
    ignore_colours = problems.check(_ignore_colours, raw.get("ignore_colours"), path)
    bands, layout = problems.check(_bands, raw.get("bands"), path) or (None, "RGB")
    scale = str(raw.get("scale", "auto")).strip()
    problems.check(_scale, scale, path)
    gsd = raw.get("gsd")
    if gsd is not None and (isinstance(gsd, bool) or not isinstance(gsd, int | float) or gsd <= 0):
        problems.add(f"gsd must be a positive number of metres, got {gsd!r}")
    if raw.get("val") is None:
        problems.check(_holdout_every, raw.get("holdout"), path)
    if "train" not in raw:
        if "train" not in misspelt:
            problems.add("a `train` split is required (images and labels)")
    else:
        problems.extend(_split_problems("train", raw["train"]))
    if raw.get("val") is not None:
        problems.extend(_split_problems("val", raw["val"]))
    targets_raw = raw.get("targets") or {}
    if not isinstance(targets_raw, dict):
        problems.add("targets must map names to {images, labels}")
        targets_raw = {}
    for name, value in targets_raw.items():
        if str(name) in ("train", "val"):
            problems.add(f"a target may not be called {name!r}")
        problems.extend(_split_problems(f"targets.{name}", value))
    problems.raise_if_any()
    # The file's form is right: now its paths (missing files are InputErrors).
    train = _split("train", raw["train"], base, path)
    val = _split("val", raw["val"], base, path) if raw.get("val") is not None else None
    targets = {str(n): _split(str(n), v, base, path) for n, v in targets_raw.items()}
    holdout = ""
    if val is None:
        train, val, holdout = hold_out(train, raw.get("holdout"), path)
    return DataSpec(
        path=path, classes=classes, palette=palette, ignore_index=ignore,
        ignore_colours=ignore_colours, bands=bands, band_layout=layout, scale=scale,
        gsd_m=None if gsd is None else float(gsd), train=train, val=val, targets=targets,
        holdout=holdout, label_values=label_values, label_nodata=label_nodata,
        allow_empty_classes=allow_empty or (),
    )  # fmt: skip


def hold_out(train: SplitSpec, every: Any, path: Path) -> tuple[SplitSpec, SplitSpec | None, str]:
    """Deterministic validation hold-out from `train` when the file names no `val`.

    With several scenes, every k-th scene in name order (k = `holdout`, default 5; the 5th, 10th,
    ...; at least one) is held out. With one scene, its last 1/k of rows validate and the rest
    train. `holdout: 0` turns validation off.
    """
    k = _holdout_every(every, path)
    if k == 0:
        return train, None, "no validation (holdout: 0)"
    n = len(train.images)
    if n == 1:
        cut = 1 - 1 / k
        keep = SplitSpec("train", train.images, train.labels, train.label_field,
                         train.label_format, ((0.0, cut),))  # fmt: skip
        val = SplitSpec("val", train.images, train.labels, train.label_field,
                        train.label_format, ((cut, 1.0),))  # fmt: skip
        return keep, val, f"one scene: rows {cut:.0%}-100% validate, the rest trains"
    held = [i for i in range(n) if i % k == k - 1] or [n - 1]
    kept = [i for i in range(n) if i not in held]

    def pick(idx: list[int], name: str) -> SplitSpec:
        return SplitSpec(name, tuple(train.images[i] for i in idx),
                         tuple(train.labels[i] for i in idx), train.label_field,
                         train.label_format)  # fmt: skip

    names = ", ".join(scene_name(train.images[i]) for i in held[:3])
    names += ", ..." if len(held) > 3 else ""
    rule = (
        f"every {ordinal(k)} training scene by name"
        if n >= k
        else f"fewer than {count(k, 'scene')}: the last"
    )
    return (
        pick(kept, "train"),
        pick(held, "val"),
        f"{rule} is held out for validation ({len(held)} of {n}: {names}; set `val` or "
        "`holdout` to choose)",
    )


def _holdout_every(every: Any, path: Path) -> int:
    k = HOLDOUT_EVERY if every is None else every
    if isinstance(k, bool) or not isinstance(k, int) or k < 0 or k == 1:
        raise ConfigError(f"{path}: holdout must be 0 (none) or an integer >= 2, got {every!r}")
    return k


def _ignore_index(value: Any, codes: CodeTable | None, path: Path) -> int:
    """The label raster value of unlabelled pixels; never a class's code (`codes`)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{path}: ignore_index must be an integer label value, got {value!r}")
    if codes is not None:
        class_id, how = codes.lookup(str(value))
        if how == BY_ID:
            raise ConfigError(
                f"{path}: ignore_index {value} is also a class id (0..{len(codes.classes) - 1})"
            )
        if 0 <= class_id < len(codes.classes):
            raise ConfigError(
                f"{path}: ignore_index {value} is also the code of class "
                f"{codes.classes[class_id]!r} ({how})"
            )
    return value


def _allow_empty(value: Any, classes: tuple[str, ...] | None, path: Path) -> tuple[str, ...]:
    """`allow_empty_classes`: true (every class), or the classes that may have no labelled pixel."""
    if value is None or value is False:
        return ()
    if value is True:
        return tuple(classes or ())
    if not isinstance(value, list):
        raise ConfigError(
            f"{path}: allow_empty_classes must be true or a list of class names, got {value!r}"
        )
    known = {n.lower(): n for n in classes or ()}
    unknown = [str(v) for v in value if str(v).strip().lower() not in known]
    if classes and unknown:
        raise ConfigError(
            f"{path}: allow_empty_classes names {', '.join(unknown)}, not in classes "
            f"[{', '.join(classes)}]"
        )
    return tuple(known[str(v).strip().lower()] for v in value if str(v).strip().lower() in known)


def _ignore_colours(value: Any, path: Path) -> tuple[tuple[int, int, int], ...]:
    if value is not None and not isinstance(value, list):
        raise ConfigError(f"{path}: ignore_colours must list [R, G, B] colours, got {value!r}")
    return tuple(_colour(c, path, "ignore_colours") for c in value or ())


def _scale(scale: str, path: Path) -> None:
    from crossearth.advice import DATA_SET
    from crossearth.geo.scaling import parse_scale

    try:
        parse_scale(scale, DATA_SET)
    except (InputError, ConfigError, ValueError) as exc:  # its message names `scale:`
        raise ConfigError(f"{path}: {exc}") from None


def _classes(value: Any, path: Path) -> tuple[str, ...]:
    if isinstance(value, list) and value:
        names = [str(v).strip() for v in value]
    elif isinstance(value, dict) and value:
        try:
            ids = {int(k): str(v).strip() for k, v in value.items()}
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: classes as a mapping needs integer ids as keys") from None
        if sorted(ids) != list(range(len(ids))):
            raise ConfigError(
                f"{path}: class ids must be 0..{len(ids) - 1} without gaps, got {sorted(ids)}"
            )
        names = [ids[i] for i in range(len(ids))]
    else:
        raise ConfigError(f"{path}: `classes` must list the class names (class id = position)")
    if len(set(n.lower() for n in names)) != len(names) or any(not n for n in names):
        raise ConfigError(f"{path}: class names must be unique and non-empty: {names}")
    if len(names) > 254:
        raise ConfigError(f"{path}: at most 254 classes are supported, got {len(names)}")
    return tuple(names)


def _colour(value: Any, path: Path, key: str) -> tuple[int, int, int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(c, int) and 0 <= c <= 255 for c in value)
    ):
        raise ConfigError(
            f"{path}: {key} entries must be [R, G, B] with 0-255 values, got {value!r}"
        )
    return (int(value[0]), int(value[1]), int(value[2]))


def _palette(value: Any, n: int | None, path: Path) -> tuple[tuple[int, int, int], ...]:
    """The palette, one [R, G, B] per class; with `n` None (the classes are unreadable) only
    the colours themselves are checked."""
    if value is None:
        from crossearth.data.classes import default_palette

        return default_palette(n or 0)
    if not isinstance(value, list) or (n is not None and len(value) != n):
        raise ConfigError(f"{path}: palette needs one [R, G, B] per class ({n}), got {value!r}")
    palette = tuple(_colour(c, path, "palette") for c in value)
    if len(set(palette)) != len(palette):
        raise ConfigError(f"{path}: palette colours must differ (colour masks are decoded by them)")
    return palette


def _bands(value: Any, path: Path) -> tuple[tuple[int | str, ...] | None, str]:
    """`bands:` as (band numbers or names, layout): a list of one or more distinct 1-based band
    numbers or band names (three may repeat one band, e.g. [1, 1, 1]), or RGB / IRRG."""
    if value is None:
        return None, "RGB"
    if isinstance(value, str) and value.strip().upper() in ("RGB", "IRRG"):
        return None, value.strip().upper()
    if (
        isinstance(value, list)
        and value
        and all(
            (isinstance(b, int) and not isinstance(b, bool) and b >= 1)
            or (isinstance(b, str) and b.strip())
            for b in value
        )
    ):
        keys = [b if isinstance(b, int) else b.strip().lower() for b in value]
        if len(value) != 3 and len(set(keys)) != len(keys):
            repeated = sorted({str(b) for b, k in zip(value, keys, strict=True)
                               if keys.count(k) > 1})  # fmt: skip
            raise ConfigError(f"{path}: bands: {', '.join(repeated)} given more than once")
        return tuple(b if isinstance(b, int) else b.strip() for b in value), "RGB"
    raise ConfigError(
        f"{path}: bands must be a list of 1-based band numbers or band names (e.g. [1, 2, 3, 4] "
        f"or [red, green, blue, nir]) or RGB / IRRG, got {value!r}"
    )


def _split_problems(name: str, value: Any) -> list[str]:
    """What is wrong with the form of one split's entry (`name` as the file spells it)."""
    if not isinstance(value, dict):
        return [f"{name} must be a mapping with images and labels, got {value!r}"]
    problems = unknown_keys(value, SPLIT_KEYS, where=f"{name}.")
    misspelt = set(near_misses(value, SPLIT_KEYS).values())  # already told: "did you mean"
    missing = [k for k in ("images", "labels") if k not in value and k not in misspelt]
    if missing:
        problems.append(f"{name} needs both `images` and `labels` (missing: {', '.join(missing)})")
    fmt = str(value.get("label_format", "auto"))
    if fmt not in LABEL_FORMATS:
        problems.append(
            f"{name}.label_format must be one of {', '.join(LABEL_FORMATS)}, got {fmt!r}"
        )
    return problems


def _split(name: str, value: Any, base: Path, path: Path) -> SplitSpec:
    """One split whose form `_split_problems` found right: its files, found and paired."""
    fmt = str(value.get("label_format", "auto"))
    images = _expand(value["images"], base, IMAGE_SUFFIXES, f"{name}.images", path)
    label_paths = _expand(value["labels"], base, IMAGE_SUFFIXES + VECTOR_SUFFIXES,
                          f"{name}.labels", path)  # fmt: skip
    # A glob such as *.tif may catch the masks beside the images: a label file is never an image.
    images = [p for p in images if p not in set(label_paths)] or images
    vectors = [p for p in label_paths if p.suffix.lower() in VECTOR_SUFFIXES]
    field_name = value.get("label_field")
    if vectors:
        if len(label_paths) != 1:
            raise ConfigError(
                f"{path}: {name}.labels: give one vector file, not {len(label_paths)}"
            )
        if not field_name:
            raise ConfigError(
                f"{path}: {name}.labels is a vector file ({vectors[0].name}): name the attribute "
                "holding class names or ids with label_field"
            )
        labels: tuple[Path | None, ...] = (vectors[0],) * len(images)
    elif _one_file(value["labels"], base):
        labels = (label_paths[0],) * len(images)  # one label raster for every scene
    else:
        labels = tuple(_match(images, label_paths))
    return SplitSpec(name, tuple(images), labels, None if field_name is None else str(field_name),
                     fmt)  # fmt: skip


def _one_file(value: Any, base: Path) -> bool:
    """True when `labels` names one file (not a folder, glob or list): it labels every image."""
    if isinstance(value, list) or glob.has_magic(str(value)):
        return False
    path = Path(str(value)).expanduser()
    return (path if path.is_absolute() else base / path).is_file()


def _expand(
    value: Any, base: Path, suffixes: tuple[str, ...], key: str, path: Path
) -> list[Path | str]:
    """The files an `images`/`labels` entry names (files, folders, globs, a list of them);
    `images` may also name GDAL subdatasets (`NETCDF:"scene.nc":var`), kept as text with
    their file made absolute."""
    items = value if isinstance(value, list) else [value]
    found: list[Path | str] = []
    for item in items:
        text = str(item)
        full = Path(text).expanduser()
        full = full if full.is_absolute() else base / full
        if key.endswith(".images") and is_subdataset(text, base):  # NETCDF:"s.nc":var, ...
            container = container_file(resolve_subdataset(text, base))
            if container is not None and not container.exists():
                raise InputError(f"{path}: {key}: {text}: {container} not found")
            found.append(resolve_subdataset(text, base))  # kept as text: GDAL opens it
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
            matches = [p for p in matches if p.is_file() and p.suffix.lower() in suffixes]
            if not matches:
                raise InputError(f"{path}: {key}: nothing matches {text}")
            found += matches
        elif full.is_dir():
            matches = sorted(
                p for p in full.iterdir() if p.is_file() and p.suffix.lower() in suffixes
            )
            if not matches:
                raise InputError(f"{path}: {key}: no {'/'.join(suffixes[:4])}... files in {full}")
            found += matches
        elif full.is_file():
            found.append(full)
        else:
            raise InputError(f"{path}: {key}: {text} not found (looked at {full})")
    # Our own outputs and sidecars are never inputs.
    found = [
        p for p in found if isinstance(p, str)
        or (not p.name.endswith((".aux.xml", ".ovr")) and not p.name.startswith("."))
    ]  # fmt: skip
    if not found:
        raise InputError(f"{path}: {key} lists no files")
    return list(dict.fromkeys(found))


def _stem_key(stem: str, endings: tuple[str, ...]) -> str:
    lower = stem.lower()
    for ending in endings:
        if lower.endswith(ending):
            return lower[: -len(ending)]
    return lower


def _match(images: list[Path | str], labels: list[Path]) -> list[Path | None]:
    """Each image's label: same stem first, then the same stem without the usual endings (a
    subdataset's stems: its file's with the raster's name, `s_ndvi`, then its file's, `s`)."""
    exact = {p.stem.lower(): p for p in labels}
    loose = {_stem_key(p.stem, LABEL_ENDINGS): p for p in labels}
    out: list[Path | None] = []
    for image in images:
        label = None
        for stem in _stems(image):
            key = stem.lower()
            label = exact.get(key)
            if label is None or label == image:
                label = loose.get(_stem_key(stem, IMAGE_ENDINGS)) or loose.get(key)
            if label is not None:
                break
        out.append(label if label != image else None)
    return out


def _stems(image: Path | str) -> list[str]:
    """The stems an image's label may have: a file's stem; for a subdataset name, its file's
    stem with the raster's name (`NETCDF:"s.nc":ndvi` -> `s_ndvi`), then its file's (`s`)."""
    if isinstance(image, Path):
        return [image.stem]
    return [subdataset_naming(image).stem, Path(container_file(image) or image).stem]


def scene_name(image: Path | str) -> str:
    """A short name of a scene's image for messages: a file's name, a subdataset's file name
    and raster (`s.nc:ndvi`)."""
    return image.name if isinstance(image, Path) else short_name(image) or image

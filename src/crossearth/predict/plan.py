"""Output names of `predict`: planned for all inputs before any work, never over an input.

For an input `scene.tif` and an output folder `OUT`, the outputs are `OUT/scene_classes.tif`
(or `.png`), `scene_confidence.tif`, `scene_preview.png`, `scene_overlay.png`, polygons
(`scene.gpkg` / `scene.geojson`) and `scene_summary.json`; with an explicit class-map file
`OUT/map.tif` they are `map.tif`, `map_confidence.tif`, `map_preview.png` and so on.

`plan_outputs` gives every input its output base name (a URL's is the last part of its path
without the query string: `https://host/cogs/scene.tif?sig=...` -> `scene`):

- inputs whose names would collide (`2020/tile_01.tif` and `2021/tile_01.tif`; names are
  compared case-insensitively, as on macOS and Windows file systems) are told apart by their
  folders: `2020_tile_01`, `2021_tile_01` (as many folder levels as needed; the extension is
  added when they share the folder, e.g. `a_tif`, `a_png`). Names still equal after that are an
  `InputError`, raised before anything is written;
- no output path (any companion, either class-map format) may be an input file: `InputError`;
- every derived name is made valid on Windows, SMB shares, macOS and Linux by
  `crossearth.geo.names.safe_name` (no `:` from a port or a STAC id, no `?`, no `CON`, ...),
  before names are compared, so names that become equal are told apart as above.

`is_own_output` recognises files that a `predict` run wrote (so a folder that holds earlier
outputs is not segmented again) and hidden files (our temporaries start with a dot).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossearth.errors import InputError
from crossearth.geo.containers import container_file, is_subdataset
from crossearth.geo.containers import naming_path as subdataset_naming
from crossearth.geo.names import safe_name
from crossearth.geo.remote import is_remote, naming_path
from crossearth.geo.stac import naming_name

VECTOR_FORMATS = {"gpkg": ".gpkg", "geojson": ".geojson"}
CLASS_MAP_SUFFIXES = {".tif", ".tiff", ".png"}
#: GeoTIFF tag written on every raster `predict` writes; its value is the file's role.
OUTPUT_TAG = "crossearth_output"
#: Name endings of the files `predict` writes beside a `*_summary.json`.
_COMPANION_ENDINGS = ("_classes.tif", "_classes.png", "_confidence.tif", "_preview.png")
_COMPANION_ENDINGS += ("_overlay.png",)


@dataclass
class OutputPaths:
    """Every path `predict_raster` may write for one input."""

    classes: Path
    confidence: Path
    preview: Path
    overlay: Path
    summary: Path
    vector: Path | None

    @classmethod
    def for_input(
        cls,
        image: Path,
        output: Path,
        vector: str | None,
        png: bool,
        stem: str | None = None,
    ) -> OutputPaths:
        """`output` is a folder (names derive from `stem`, default the input's stem, made safe
        by `safe_name`) or an explicit class-map file (.tif/.tiff/.png, used as given)."""
        suffix = ".png" if png else ".tif"
        if output.suffix.lower() in CLASS_MAP_SUFFIXES:
            classes, base = output, output.with_suffix("")
        else:
            base = output / safe_name(stem or image.stem)
            classes = Path(f"{base}_classes{suffix}")
        vector_path = None
        if vector:
            fmt = vector.lower()
            vector_path = (
                Path(f"{base}{VECTOR_FORMATS[fmt]}") if fmt in VECTOR_FORMATS else Path(vector)
            )
        return cls(
            classes=classes,
            confidence=Path(f"{base}_confidence.tif"),
            preview=Path(f"{base}_preview.png"),
            overlay=Path(f"{base}_overlay.png"),
            summary=Path(f"{base}_summary.json"),
            vector=vector_path,
        )

    def all(self) -> list[Path]:
        """Every path, with both class-map formats when `output` is a folder."""
        paths = [self.classes, self.confidence, self.preview, self.overlay, self.summary]
        if self.classes.name.endswith(("_classes.tif", "_classes.png")):
            other = ".png" if self.classes.suffix == ".tif" else ".tif"
            paths.append(self.classes.with_suffix(other))
        if self.vector is not None:
            paths.append(self.vector)
        return paths


def plan_outputs(
    images: Sequence[Path | str], output: Path | None, vector: str | None = None
) -> list[str]:
    """Output base names (stems) for `images` written to the folder `output`, one per image
    (`output` None: a folder on object storage, where no output can be an input).

    Raises:
        InputError: (a `ValueError`) two inputs would still share outputs after telling them
            apart by their folders, an output would be written over an input, or several
            inputs were given with an explicit class-map file as output.
    """
    local = [not is_remote(p) for p in images]
    # the files read, for the check that no output is written over one
    files = [container_file(p) or Path(p) if is_subdataset(p) else Path(p) for p in images]
    # URLs are named by /<host>/<path> (crossearth.geo.remote), a subdataset by its file and
    # raster (`NETCDF:"d/s.nc":ndvi` -> d/s_ndvi.nc), local files by their path
    images = [
        Path(subdataset_naming(str(p))) if is_subdataset(p)
        else Path(naming_name(str(p))) if is_local
        else Path(naming_path(naming_name(p)))
        for p, is_local in zip(images, local, strict=True)
    ]  # fmt: skip
    explicit = output is not None and output.suffix.lower() in CLASS_MAP_SUFFIXES
    if explicit and len(images) > 1:
        raise InputError("several inputs need an output folder (-o DIR), not a single file")
    stems = [safe_name(p.stem) for p in images]
    if not explicit:
        stems = _disambiguate(images)
    inputs = {_key(p): p for p, is_local in zip(files, local, strict=True) if is_local}
    for image, stem in zip(images, stems, strict=True) if output is not None else ():
        paths = OutputPaths.for_input(image, output, vector, png=False, stem=stem)
        for path in paths.all():
            if _key(path) in inputs:
                raise InputError(
                    f"{path} would be written over the input {inputs[_key(path)]}; "
                    "choose another output (-o) so the input is kept"
                )
    return stems


def _key(path: Path) -> str:
    """A path's identity for collision checks: absolute, case-folded."""
    return str(path.expanduser().resolve()).casefold()


def _disambiguate(images: list[Path]) -> list[str]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(images):
        groups[safe_name(p.stem).casefold()].append(i)
    stems = [safe_name(p.stem) for p in images]
    for members in groups.values():
        if len(members) < 2:
            continue
        paths = [images[i].expanduser().resolve() for i in members]
        depth = max(len(p.parent.parts) for p in paths)
        for k in range(1, depth + 1):
            names = [
                safe_name("_".join([*p.parent.parts[-k:], p.stem]).lstrip("/_")) for p in paths
            ]
            if len({n.casefold() for n in names}) == len(names):
                break
        else:
            names = [safe_name(f"{p.stem}_{p.suffix.lstrip('.')}") for p in paths]
        for i, name in zip(members, names, strict=True):
            stems[i] = name
    seen: dict[str, Path] = {}
    for image, stem in zip(images, stems, strict=True):
        other = seen.setdefault(stem.casefold(), image)
        if other is not image:
            raise InputError(
                f"{other} and {image} would both write outputs named {stem}_*; "
                "run them separately or rename one"
            )
    return stems


def is_own_output(path: Path) -> bool:
    """True for hidden files (our temporaries) and for files a `predict` run wrote.

    A raster is ours if it carries the `crossearth_output` tag (or, from earlier versions, the
    `class_names` + `nodata_meaning` tags of a class map); a PNG or JSON if its name has one of
    our endings and a `*_summary.json` written by `predict` lies beside it.
    """
    if path.name.startswith("."):
        return True
    name = path.name.lower()
    if name.endswith("_summary.json"):
        return _is_summary(path)
    for ending in _COMPANION_ENDINGS:
        if name.endswith(ending):
            base = path.name[: -len(ending)]
            if _is_summary(path.with_name(f"{base}_summary.json")):
                return True
    if path.suffix.lower() in {".tif", ".tiff"}:
        return _has_output_tag(path)
    return False


def _is_summary(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "class_map" in data and "input" in data


def _has_output_tag(path: Path) -> bool:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as ds:
            tags: dict[str, Any] = ds.tags()
    except (RasterioIOError, OSError):
        return False
    return OUTPUT_TAG in tags or ("class_names" in tags and "nodata_meaning" in tags)

"""What `crossearth view` shows: the files `predict` wrote for one input, found from a folder or
a class map, with the class names, palette and class areas they carry.

`predict` writes, for an input `scene.tif`: `scene_classes.tif` (or `.png`), optionally
`scene_confidence.tif`, `scene.gpkg` / `scene.geojson`, and `scene_summary.json` (class areas, the
input's path, bands and scaling). Only the class map is required; the rest is used when present.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.wording import count

CLASS_SUFFIX = "_classes"
CLASS_MAP_SUFFIXES = (".tif", ".tiff", ".png")
NODATA = 255


@dataclass
class Scene:
    """The outputs of one `predict` input, and what the viewer needs from them."""

    stem: Path  # folder / input stem: `stem_classes.tif`, `stem_summary.json`, ...
    classes: Path
    confidence: Path | None
    summary: dict[str, Any] | None
    vector: Path | None
    image: Path | None
    class_names: list[str]
    palette: list[tuple[int, int, int]]
    georeferenced: bool
    notes: list[str]

    @property
    def name(self) -> str:
        return self.stem.name

    def legend(self) -> list[dict[str, Any]]:
        """One row per class: id, name, colour, pixels, area_ha (None without a CRS), share (0..1).

        Areas come from the summary when `predict` wrote one, else from a pass over the class map.
        """
        table = (self.summary or {}).get("classes") or _area_table_of(
            self.classes, self.class_names
        )
        total = sum(int(row["pixels"]) for row in table) or 1
        rows = []
        for row in table:
            cid = int(row["class_id"])
            rows.append(
                {
                    "id": cid,
                    "name": str(row["class_name"]),
                    "color": list(self.palette[cid]) if cid < len(self.palette) else [0, 0, 0],
                    "pixels": int(row["pixels"]),
                    "area_ha": row.get("area_ha"),
                    "share": int(row["pixels"]) / total,
                }
            )
        return rows


def find_scenes(path: str | Path) -> list[Scene]:
    """The scenes under an output folder of `predict`, or the one scene of a class-map file.

    Raises InputError when the path does not exist, is not a readable single-band uint8 class map,
    or is a folder without any `*_classes.tif` / `*_classes.png`.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        maps = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in CLASS_MAP_SUFFIXES
            and p.stem.endswith(CLASS_SUFFIX)
            and not p.name.startswith(".")
        )
        if not maps:
            raise InputError(
                f"folder {path} holds no class maps (*_classes.tif or *_classes.png written by "
                "crossearth predict)"
            )
        return [load_scene(p) for p in maps]
    return [load_scene(path)]


def load_scene(class_map: str | Path) -> Scene:
    """Read a class map's metadata and find its companions (confidence, summary, polygons, image)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from crossearth.geo.raster import open_raster

    class_map = Path(class_map)
    if class_map.suffix.lower() not in CLASS_MAP_SUFFIXES:
        raise InputError(f"{class_map} is not a class map (.tif or .png written by predict)")
    stem_name = class_map.stem
    if stem_name.endswith(CLASS_SUFFIX):
        stem_name = stem_name[: -len(CLASS_SUFFIX)]
    stem = class_map.with_name(stem_name)
    notes: list[str] = []
    summary = _read_summary(Path(f"{stem}_summary.json"))
    try:
        with open_raster(class_map) as src:
            if src.count != 1 or src.dtypes[0] != "uint8":
                raise InputError(
                    f"{class_map} is not a class map: expected one uint8 band, got "
                    f"{count(src.count, 'band')} of {src.dtypes[0]}"
                )
            tags = src.tags()
            try:
                colormap = src.colormap(1)
            except ValueError:
                colormap = {}
            georeferenced = src.crs is not None
    except RasterioIOError as exc:
        raise InputError(f"cannot read class map {class_map}: {exc}") from None
    del rasterio
    names = _class_names(tags, summary)
    if names is None:
        names = _names_from_ids(class_map)
        notes.append("no class names in the class map or a summary: classes are numbered")
    palette = _palette(colormap, len(names))
    confidence = _companion(summary, "confidence", Path(f"{stem}_confidence.tif"))
    vector = _companion(summary, "vector", Path(f"{stem}.gpkg"), Path(f"{stem}.geojson"))
    image = None
    if summary and summary.get("input"):
        candidate = Path(summary["input"])
        if candidate.is_file():
            image = candidate
        else:
            notes.append(f"the input image {candidate} was not found: no image layer")
    elif summary is None:
        notes.append(f"no {stem.name}_summary.json beside the class map: no image layer")
    return Scene(
        stem=stem,
        classes=class_map,
        confidence=confidence,
        summary=summary,
        vector=vector,
        image=image,
        class_names=names,
        palette=palette,
        georeferenced=georeferenced,
        notes=notes,
    )


def _read_summary(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the summary {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"the summary {path} is not a JSON object")
    return data


def _class_names(tags: dict[str, str], summary: dict[str, Any] | None) -> list[str] | None:
    if "class_names" in tags:
        try:
            names = json.loads(tags["class_names"])
            if isinstance(names, list) and names:
                return [str(n) for n in names]
        except ValueError:
            pass
    if summary and summary.get("model", {}).get("classes"):
        return [str(n) for n in summary["model"]["classes"]]
    return None


def _names_from_ids(class_map: Path) -> list[str]:
    counts = class_counts(class_map)
    present = np.nonzero(counts[:NODATA])[0]
    n = int(present.max()) + 1 if present.size else 1
    return [f"class {i}" for i in range(n)]


def _palette(colormap: dict[int, tuple[int, ...]], n: int) -> list[tuple[int, int, int]]:
    from crossearth.data.classes import default_palette

    fallback = default_palette(n)
    return [
        tuple(int(v) for v in colormap[i][:3]) if i in colormap else tuple(fallback[i])
        for i in range(n)
    ]


def _companion(summary: dict[str, Any] | None, key: str, *defaults: Path) -> Path | None:
    if summary and summary.get(key) and Path(summary[key]).is_file():
        return Path(summary[key])
    return next((p for p in defaults if p.is_file()), None)


def class_counts(class_map: Path, block_rows: int = 1024) -> np.ndarray:
    """Pixels of each value 0..255 in band 1, read in row blocks (int64 [256])."""
    from rasterio.windows import Window

    from crossearth.geo.raster import open_raster

    counts = np.zeros(256, dtype=np.int64)
    with open_raster(class_map) as src:
        for y0 in range(0, src.height, block_rows):
            rows = min(block_rows, src.height - y0)
            block = src.read(1, window=Window(0, y0, src.width, rows))
            counts += np.bincount(block.ravel(), minlength=256)[:256]
    return counts


def _area_table_of(class_map: Path, names: list[str], block_rows: int = 128) -> list[dict]:
    """`area_table` for a class map without a summary (one pass over it, in row blocks)."""
    from rasterio.windows import Window

    from crossearth.geo.area import area_table, row_class_counts, row_pixel_areas_m2
    from crossearth.geo.raster import open_raster

    with open_raster(class_map) as src:
        counts = np.zeros((src.height, len(names)), dtype=np.int64)
        for y0 in range(0, src.height, block_rows):
            rows = min(block_rows, src.height - y0)
            block = src.read(1, window=Window(0, y0, src.width, rows))
            counts[y0 : y0 + rows] = row_class_counts(block, len(names))
        areas = row_pixel_areas_m2(src.transform, src.crs, src.height) if src.crs else None
    return area_table(counts, areas, names)

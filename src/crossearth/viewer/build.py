"""Build the viewer of one `predict` output: an HTML page, and a tile folder for large scenes."""

from __future__ import annotations

import base64
import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.fileio import atomic_path
from crossearth.viewer.layers import lookup_layers
from crossearth.viewer.page import GENERATOR, render_page
from crossearth.viewer.scene import Scene, find_scenes
from crossearth.viewer.tiles import MARKER, write_pyramid

INLINE_MAX = 2048  # long side (pixels) up to which a scene is shown from the page alone
MAX_POLYGONS = 20_000
EXTRA_ZOOM = 3
GDAL_CACHE_MB = 64  # zoom levels past the class map's own resolution


def map_paths(scene: Scene, output: Path | None = None) -> tuple[Path, Path]:
    """(HTML page, tile folder) for a scene: `STEM_map.html` and `STEM_map_files/` by default."""
    html = Path(output) if output is not None else Path(f"{scene.stem}_map.html")
    return html, html.with_name(f"{html.stem}_files")


def write_map(
    class_map_or_folder: str | Path,
    output: str | Path | None = None,
    *,
    tiles: bool | None = None,
    opacity: float = 0.7,
    inline_max: int = INLINE_MAX,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write the map of every scene in a `predict` output folder (or of one class map).

    Returns the HTML pages written (`STEM_map.html` beside each class map, or `output` for a
    single scene). `tiles`: None writes a tile pyramid (`STEM_map_files/`) when the class map's
    long side exceeds `inline_max` pixels, True always (needs a CRS), False never (the page then
    shows the scene decimated to `inline_max`). `opacity` (0..1) is the class layer's initial
    opacity; `progress(n)` is told the number of tiles written so far. Raises InputError for a missing or unreadable input, a bad option, or an output that
    exists and was not written by `crossearth view`.
    """
    if not 0.0 <= opacity <= 1.0:
        raise InputError(f"opacity must be between 0 and 1, got {opacity}")
    if inline_max < 16:
        raise InputError(f"inline_max must be at least 16 pixels, got {inline_max}")
    scenes = find_scenes(class_map_or_folder)
    if output is not None:
        output = Path(output)
        if len(scenes) > 1:
            raise InputError(
                f"{class_map_or_folder} holds {len(scenes)} class maps: -o works with one; "
                "leave it out to write one map beside each"
            )
        if output.suffix.lower() not in {".html", ".htm"}:
            raise InputError(f"the map output {output} must end in .html")
        if not output.parent.is_dir():
            raise InputError(f"output folder {output.parent} does not exist")
    import rasterio

    # a small GDAL block cache, as in predict: the class map and image are read once, in order
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return [
            write_scene_map(
                scene,
                output,
                tiles=tiles,
                opacity=opacity,
                inline_max=inline_max,
                progress=progress,
            )
            for scene in scenes
        ]


def write_scene_map(
    scene: Scene,
    output: Path | None = None,
    *,
    tiles: bool | None = None,
    opacity: float = 0.7,
    inline_max: int = INLINE_MAX,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write one scene's map (see `write_map`); returns the HTML path."""
    html, folder = map_paths(scene, output)
    _check_ours(html, folder)
    big = _long_side(scene) > inline_max
    use_tiles = big if tiles is None else tiles
    if use_tiles and not scene.georeferenced:
        if tiles:
            raise InputError(f"{scene.classes} has no CRS: tiles need a georeferenced class map")
        use_tiles = False
        scene.notes.append(f"shown decimated to {inline_max} px (no CRS for tiles)")
    elif big and not use_tiles:
        scene.notes.append(f"shown decimated to {inline_max} px")
    layers = lookup_layers(scene, inline_max)
    config: dict[str, Any] = {
        "name": scene.name,
        "pixel": not layers.grid.mercator,
        "bounds": layers.grid.latlng_bounds(),
        "grid": layers.grid.to_json(),
        "data": _png_uri(_lookup_rgba(layers)),
        "image": None,
        "tiles": None,
        "classes": scene.legend(),
        "confidence": scene.confidence is not None,
        "polygons": _polygons(scene) if scene.georeferenced else None,
        "opacity": opacity,
        "notes": scene.notes,
    }
    staging = None
    try:
        if use_tiles:
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            pyramid = write_pyramid(scene, staging, progress)
            base = folder.name
            config["tiles"] = {
                "classes": f"{base}/classes/{{z}}/{{x}}/{{y}}.png",
                "image": f"{base}/image/{{z}}/{{x}}/{{y}}.png" if pyramid.image else None,
                "lookup": f"{base}/lookup/{{z}}/{{x}}/{{y}}.js",
                "zmin": pyramid.zmin,
                "zmax": pyramid.zmax,
            }
            config["maxZoom"] = pyramid.zmax + EXTRA_ZOOM
        else:
            if layers.image is not None:
                config["image"] = _webp_uri(layers.image)
            config["maxZoom"] = _max_zoom(layers.grid)
        page = render_page(config)
        if staging is not None:
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
            staging = None
        elif folder.exists():  # a pyramid of an earlier run, no longer used by this page
            shutil.rmtree(folder)
        with atomic_path(html) as tmp:
            tmp.write_text(page, encoding="utf-8")
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return html


def _check_ours(html: Path, folder: Path) -> None:
    """Refuse to replace a page or folder that `crossearth view` did not write."""
    if html.exists():
        head = b""
        with contextlib.suppress(OSError), html.open("rb") as f:
            head = f.read(4096)
        if f'content="{GENERATOR}"'.encode() not in head:
            raise InputError(f"{html} exists and was not written by crossearth view: not replaced")
    if folder.exists() and not (folder / MARKER).is_file():
        raise InputError(f"{folder} exists and is not a crossearth tile folder: not replaced")


def _long_side(scene: Scene) -> int:
    from crossearth.geo.raster import open_raster

    with open_raster(scene.classes) as src:
        return max(src.height, src.width)


def _lookup_rgba(layers) -> np.ndarray:
    """Red: class id; green: confidence; blue 0; alpha 255 (opaque, so no premultiplication)."""
    zeros = np.zeros_like(layers.classes)
    return np.stack([layers.classes, layers.confidence, zeros, zeros + 255], axis=-1)


def _max_zoom(grid) -> int:
    import math

    from crossearth.viewer.tiles import HALF_WORLD, TILE

    if not grid.mercator:
        return 6  # CRS.Simple: zoom z shows a pixel of the grid at 2**z screen pixels
    return int(math.log2(2 * HALF_WORLD / (TILE * grid.dx))) + EXTRA_ZOOM + 1


def _png_uri(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _webp_uri(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buf, format="WEBP", quality=85)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _polygons(scene: Scene) -> dict | None:
    """The scene's polygons as GeoJSON in longitude/latitude, or None (absent or too many)."""
    if scene.vector is None:
        return None
    try:
        import pyogrio
        import pyogrio.raw
        import shapely
    except ImportError:
        scene.notes.append("polygons not shown: pip install 'crossearth[vector]'")
        return None
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    try:
        info = pyogrio.read_info(scene.vector)
        if info["features"] > MAX_POLYGONS:
            scene.notes.append(
                f"{info['features']} polygons: too many for the page (more than {MAX_POLYGONS}), "
                f"open {scene.vector.name} in a GIS"
            )
            return None
        meta, _, wkb, fields = pyogrio.raw.read(scene.vector)
    except Exception as exc:  # pyogrio raises its own DataSourceError/DataLayerError types
        raise InputError(f"cannot read the polygons {scene.vector}: {exc}") from None
    columns = {name: values for name, values in zip(meta["fields"], fields, strict=True)}
    geometries = [shapely.geometry.mapping(g) for g in shapely.from_wkb(wkb)]
    crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    if crs is not None and geometries:
        geometries = transform_geom(crs, "EPSG:4326", geometries)
    metric = crs is not None and crs.is_projected and crs.linear_units in {"metre", "meter"}
    features = []
    for i, geometry in enumerate(geometries):
        properties = {
            "class_id": int(columns["class_id"][i]) if "class_id" in columns else None,
            "class_name": str(columns["class_name"][i]) if "class_name" in columns else "",
            "area": float(columns["area"][i]) if metric and "area" in columns else None,
        }
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}

"""Turn a class-map GeoTIFF into polygons (GeoPackage or GeoJSON) for use in a GIS.

Needs the optional `vector` extra (shapely, pyogrio); imported only when vectorizing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.fileio import atomic_path

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON"}


def vectorize_class_map(
    class_map: str | Path,
    out_path: str | Path,
    class_names: Sequence[str],
    *,
    nodata: int = 255,
    block_rows: int | None = None,
) -> int:
    """Polygonize a uint8 class map into `out_path` and return the number of polygons.

    Each polygon is a 4-connected region of one class, with fields `class_id`, `class_name` and
    `area` (in the CRS's units squared), in the class map's CRS; pixels equal to `nodata` are
    left out. The output format follows the extension: .gpkg (GeoPackage) or .geojson (GeoJSON,
    which then carries a non-WGS84 CRS the legacy way). Memory: by default the whole class map
    is read at once, 1 byte per pixel; with `block_rows` it is read and polygonized that many
    rows at a time, and regions crossing a block boundary become several polygons. All
    polygons are held in memory until the single atomic write.
    """
    class_map, out_path = Path(class_map), Path(out_path)
    driver = DRIVERS.get(out_path.suffix.lower())
    if driver is None:
        raise InputError(f"vector output {out_path} must end in .gpkg or .geojson")
    if block_rows is not None and block_rows < 1:
        raise InputError(f"block_rows must be at least 1, got {block_rows}")
    shapely, pyogrio_raw = _import_vector_libs()

    geometries: list[Any] = []
    class_ids: list[int] = []
    with _open_class_map(class_map) as src:
        if src.crs is None:
            raise InputError(
                f"--vector needs a georeferenced input: {class_map} has no coordinate system"
            )
        crs_wkt = src.crs.to_wkt()
        for geometry, value in _polygons(src, nodata, block_rows):
            geometries.append(shapely.geometry.shape(geometry))
            class_ids.append(int(value))

    ids = np.asarray(class_ids, dtype=np.int32)
    if ids.size and int(ids.max()) >= len(class_names):
        raise InputError(
            f"{class_map} holds class id {int(ids.max())} but only {len(class_names)} class "
            f"names were given (nodata is {nodata})"
        )
    shapes = np.asarray(geometries, dtype=object)
    names = np.asarray([class_names[i] for i in ids], dtype=object)
    fields = [ids, names, shapely.area(shapes).astype(np.float64)]
    with atomic_path(out_path) as tmp:
        pyogrio_raw.write(
            str(tmp),
            np.asarray(shapely.to_wkb(shapes), dtype=object),
            fields,
            ["class_id", "class_name", "area"],
            layer=out_path.stem,
            driver=driver,
            geometry_type="Polygon",
            crs=crs_wkt,
        )
    return len(geometries)


def _import_vector_libs() -> tuple[Any, Any]:
    """shapely and pyogrio.raw, or an InputError saying how to install them."""
    try:
        import pyogrio.raw
        import shapely
        import shapely.geometry
    except ImportError as exc:
        raise InputError(
            f"vector output needs shapely and pyogrio ({exc.name} is missing): "
            "pip install 'crossearth[vector]'"
        ) from None
    return shapely, pyogrio.raw


def _open_class_map(path: Path) -> Any:
    """Open the class map with rasterio, turning unreadable files into InputError."""
    import rasterio
    from rasterio.errors import RasterioIOError

    if not path.is_file():
        raise InputError(f"class map not found: {path}")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"cannot read class map {path}: {exc}") from None


def _polygons(src: Any, nodata: int, block_rows: int | None) -> Iterator[tuple[dict, float]]:
    """(GeoJSON-like geometry, class value) of every 4-connected region, block by block."""
    from affine import Affine
    from rasterio.features import shapes
    from rasterio.windows import Window

    a, b, c, d, e, f = tuple(src.transform)[:6]
    step = src.height if block_rows is None else block_rows
    for row in range(0, src.height, step):
        labels = src.read(1, window=Window(0, row, src.width, min(step, src.height - row)))
        shifted = Affine(a, b, c + b * row, d, e, f + e * row)  # the block's top-left corner
        yield from shapes(labels, mask=labels != nodata, connectivity=4, transform=shifted)

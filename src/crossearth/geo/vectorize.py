"""Turn a class-map GeoTIFF into polygons (GeoPackage or GeoJSON) for use in a GIS.

Needs the optional `vector` extra (shapely, pyogrio); imported only when vectorizing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError, InputNotFoundError
from crossearth.fileio import atomic_path
from crossearth.numbers import AREA_M2_DECIMALS, MAP_AREA_SIGNIFICANT, round_sig

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON"}


def vectorize_class_map(
    class_map: str | Path,
    out_path: str | Path,
    class_names: Sequence[str],
    *,
    nodata: int = 255,
    block_rows: int | None = None,
    crs: Any = None,
    transform: Any = None,
) -> int:
    """Polygonize a uint8 class map into `out_path` and return the number of polygons.

    Each polygon is a 4-connected region of one class, with fields `class_id`, `class_name` and
    `area` (in the CRS's units squared) and `area_m2` (ground area in m² on the CRS's ellipsoid,
    for any CRS: the polygon's vertices in geographic coordinates, pyproj's geodesic area; empty
    without a CRS), in the class map's CRS; pixels equal to `nodata` are
    left out. The output format follows the extension: .gpkg (GeoPackage) or .geojson (GeoJSON,
    which then carries a non-WGS84 CRS the legacy way). Memory: by default the whole class map
    is read at once, 1 byte per pixel; with `block_rows` it is read and polygonized that many
    rows at a time, and regions crossing a block boundary become several polygons. All
    polygons are held in memory until the single atomic write.

    `crs` and `transform`, when given, place the polygons instead of the class map's own
    (for maps georeferenced by GCPs or RPCs: a fitted affine transform). A transform without a
    CRS (a world file) gives polygons in map units with no CRS.

    Raises:
        InputError: (a `ValueError`) the class map is unreadable or has no transform, the
            output is not .gpkg/.geojson, or it holds a class id without a name.
        InputNotFoundError: (a `FileNotFoundError`) the class map does not exist.
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
        crs = src.crs if crs is None and transform is None else crs
        transform = src.transform if transform is None else transform
        if crs is None and transform.is_identity:
            raise InputError(
                f"--vector needs a georeferenced input: {class_map} has no coordinate system"
            )
        crs_wkt = crs.to_wkt() if crs is not None else None
        for geometry, value in _polygons(src, nodata, block_rows, transform):
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
    # rounded as `crossearth.numbers` says: attribute tables are read by people
    map_areas = np.array(
        [round_sig(a, MAP_AREA_SIGNIFICANT) for a in shapely.area(shapes)], dtype=np.float64
    )
    ground = np.round(_ground_areas(shapes, crs_wkt), AREA_M2_DECIMALS)
    fields = [ids, names, map_areas, ground]
    with atomic_path(out_path) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'crs' was not provided")  # world-file maps: no CRS
        pyogrio_raw.write(
            str(tmp),
            np.asarray(shapely.to_wkb(shapes), dtype=object),
            fields,
            ["class_id", "class_name", "area", "area_m2"],
            layer=out_path.stem,
            driver=driver,
            geometry_type="Polygon",
            crs=crs_wkt,
        )
    return len(geometries)


def _ground_areas(shapes: np.ndarray, crs_wkt: str | None) -> np.ndarray:
    """Ground area in m² of each polygon (NaN without a CRS or for a CRS with no ellipsoid):
    vertices moved to the CRS's own geographic CRS, then the geodesic area on its ellipsoid
    (`pyproj.Geod.geometry_area_perimeter`, Karney's algorithm)."""
    out = np.full(len(shapes), np.nan)
    if crs_wkt is None or len(shapes) == 0:
        return out
    import shapely
    from pyproj import CRS, Transformer

    crs = CRS.from_wkt(crs_wkt)
    geographic = crs.geodetic_crs
    if geographic is None:
        return out
    geod = geographic.get_geod()
    if not crs.is_geographic:  # (geographic maps are already x = longitude, y = latitude)
        to_lonlat = Transformer.from_crs(crs, geographic, always_xy=True)
        shapes = shapely.transform(
            shapes, lambda xy: np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))
        )
    for i, shape in enumerate(shapes):
        out[i] = abs(geod.geometry_area_perimeter(shape)[0])
    return out


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
        raise InputNotFoundError(f"class map not found: {path}")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"cannot read class map {path}: {exc}") from None


def _polygons(
    src: Any, nodata: int, block_rows: int | None, transform: Any
) -> Iterator[tuple[dict, float]]:
    """(GeoJSON-like geometry, class value) of every 4-connected region, block by block."""
    from affine import Affine
    from rasterio.features import shapes
    from rasterio.windows import Window

    a, b, c, d, e, f = tuple(transform)[:6]
    step = src.height if block_rows is None else block_rows
    for row in range(0, src.height, step):
        labels = src.read(1, window=Window(0, row, src.width, min(step, src.height - row)))
        shifted = Affine(a, b, c + b * row, d, e, f + e * row)  # the block's top-left corner
        yield from shapes(labels, mask=labels != nodata, connectivity=4, transform=shifted)

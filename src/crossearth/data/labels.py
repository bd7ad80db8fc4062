"""Label sources: class ids for any window of an image's pixel grid, from rasters or polygons.

Every source answers the same question: "the labels of rows y1:y2, columns x1:x2 of *this image*",
as uint8 class ids with 255 = ignore. How the labels are stored does not matter:

- `RasterLabels`: a mask of class ids (PNG/TIFF, palette PNGs give their indices) or a colour-coded
  RGB mask decoded with the palette (as ISPRS ships them). A mask on the image's grid is read
  directly; one in another CRS, resolution or extent is reprojected onto the image grid with
  nearest neighbour (GDAL's warper through `WarpedVRT`); pixels it does not cover are ignored.
- `VectorLabels`: polygons (GeoPackage, GeoJSON, Shapefile, ... anything OGR reads) in any CRS,
  reprojected to the image CRS once and burnt into each window (`rasterio.features.rasterize`,
  pixel-centre rule); pixels under no polygon are ignored. Where polygons overlap, the later
  feature in the file wins.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from crossearth.errors import InputError
from crossearth.wording import count as plural

IGNORE = 255  # internal ignore value of every label array this package hands out


@dataclass(frozen=True)
class ImageGrid:
    """The pixel grid labels are read onto: the image's size, CRS and affine transform."""

    path: Path
    width: int
    height: int
    crs: Any  # rasterio CRS or None
    transform: Any  # affine.Affine

    @classmethod
    def of(cls, dataset: rasterio.io.DatasetReader) -> ImageGrid:
        crs = dataset.crs
        georef = crs is not None and not dataset.transform.is_identity
        return cls(Path(dataset.name), dataset.width, dataset.height, crs if georef else None,
                   dataset.transform)  # fmt: skip


class LabelProblem(InputError):
    """A label file does not fit the data set description (values, names, overlap)."""


class LabelSource(Protocol):
    path: Path

    def read(self, grid: ImageGrid, y1: int, y2: int, x1: int, x2: int) -> np.ndarray: ...

    def overlaps(self, grid: ImageGrid) -> bool: ...


class RasterLabels:
    """Class ids or colours from a label raster (see module docstring).

    Args:
        path: the label raster.
        num_classes: C; ids 0..C-1 are classes.
        ignore_index: the stored value meaning "unlabelled" (mapped to 255).
        palette: class colours, for colour-coded masks.
        label_format: "ids", "colours" or "auto" (3+ bands: colours, else ids).
        ignore_colours: colours meaning "unlabelled" (e.g. ISPRS's black boundaries).
        strict: raise `LabelProblem` on out-of-range ids / unknown colours (else they read as ignore
            and are counted in `problems`).
    """

    def __init__(self, path: Path, num_classes: int, ignore_index: int = 255,
                 palette: tuple[tuple[int, int, int], ...] = (), label_format: str = "auto",
                 ignore_colours: tuple[tuple[int, int, int], ...] = (), strict: bool = True) -> None:  # fmt: skip
        self.path, self.num_classes, self.ignore_index = Path(path), num_classes, ignore_index
        self.strict = strict
        self.problems: dict[Any, int] = {}  # unknown value or colour -> pixels
        with self._open() as ds:
            count = ds.count
        self.colours = label_format == "colours" or (label_format == "auto" and count >= 3)
        if self.colours and count < 3:
            raise LabelProblem(
                f"{self.path}: label_format colours needs an RGB mask, it has {plural(count, 'band')}"
            )
        self._lut: dict[int, int] = {}
        if self.colours:
            self._lut = {_pack(c): i for i, c in enumerate(palette)}
            self._lut.update({_pack(c): IGNORE for c in ignore_colours})
        self._dataset = None
        self._vrt_for: tuple | None = None
        self._vrt = None

    def _open(self) -> rasterio.io.DatasetReader:
        if not self.path.exists():
            raise InputError(f"label file not found: {self.path}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                return rasterio.open(self.path)
        except RasterioIOError as exc:
            raise InputError(f"{self.path} is not a readable label raster ({exc})") from None

    def __getstate__(self) -> dict:  # open datasets do not cross process boundaries
        return self.__dict__ | {"_dataset": None, "_vrt": None, "_vrt_for": None}

    def _source_for(self, grid: ImageGrid):
        """The label dataset itself when it lies on the image grid, else a nearest WarpedVRT."""
        if self._dataset is None:
            self._dataset = self._open()
        ds = self._dataset
        label_crs = ds.crs if ds.crs is not None and not ds.transform.is_identity else None
        if grid.crs is None or label_crs is None:
            if (ds.height, ds.width) != (grid.height, grid.width):
                raise LabelProblem(
                    f"{self.path.name}: label {ds.height}x{ds.width} and image {grid.path.name} "
                    f"{grid.height}x{grid.width} differ in size and one has no georeferencing to align them"
                )
            return ds
        same = (
            label_crs == grid.crs
            and ds.transform.almost_equals(grid.transform)
            and (ds.height, ds.width) == (grid.height, grid.width)
        )
        if same:
            return ds
        key = (str(grid.crs), tuple(grid.transform), grid.width, grid.height)
        if self._vrt_for != key:
            from rasterio.enums import Resampling
            from rasterio.vrt import WarpedVRT

            if self._vrt is not None:
                self._vrt.close()
            self._vrt = WarpedVRT(ds, crs=grid.crs, transform=grid.transform, width=grid.width,
                                  height=grid.height, resampling=Resampling.nearest)  # fmt: skip
            self._vrt_for = key
        return self._vrt

    def overlaps(self, grid: ImageGrid) -> bool:
        """True if the label raster covers any pixel of the image."""
        with self._open() as ds:
            if grid.crs is None or ds.crs is None:
                return (ds.height, ds.width) == (grid.height, grid.width)
            from rasterio.coords import disjoint_bounds
            from rasterio.warp import transform_bounds

            label_bounds = transform_bounds(ds.crs, grid.crs, *ds.bounds, densify_pts=21)
            image_bounds = rasterio.transform.array_bounds(grid.height, grid.width, grid.transform)
            return not disjoint_bounds(label_bounds, (image_bounds[0], image_bounds[1],
                                                      image_bounds[2], image_bounds[3]))  # fmt: skip

    def read(self, grid: ImageGrid, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
        """Labels [y2-y1, x2-x1] uint8 (255 = ignore) on the image grid. Raises LabelProblem."""
        src = self._source_for(grid)
        window = Window(x1, y1, x2 - x1, y2 - y1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                covered = src.dataset_mask(window=window) > 0
                raw = src.read([1, 2, 3] if self.colours else [1], window=window)
        except RasterioIOError as exc:
            raise InputError(f"{self.path}: cannot read labels ({exc})") from None
        if self.colours:
            packed = _pack_array(raw)
            values, inverse = np.unique(packed, return_inverse=True)
            mapped = np.array([self._lut.get(int(v), -1) for v in values], np.int64)
            ids = mapped[inverse.reshape(packed.shape)]
            bad = (ids < 0) & covered
            if bad.any():
                found, counts = np.unique(packed[bad], return_counts=True)
                for v, n in zip(found.tolist(), counts.tolist(), strict=True):
                    self._report(_unpack(int(v)), int(n), "colours")
            out = np.where(ids < 0, IGNORE, ids).astype(np.uint8)
        else:
            ids = raw[0].astype(np.int64)
            out = np.where(ids == self.ignore_index, IGNORE, ids)
            bad = (out != IGNORE) & ((out < 0) | (out >= self.num_classes)) & covered
            if bad.any():
                values, counts = np.unique(ids[bad], return_counts=True)
                for v, n in zip(values.tolist(), counts.tolist(), strict=True):
                    self._report(int(v), int(n), "ids")
                out = np.where(bad, IGNORE, out)
            out = np.where((out < 0) | (out >= self.num_classes), IGNORE, out).astype(np.uint8)
        out[~covered] = IGNORE
        return out

    def _report(self, value: Any, pixels: int, kind: str) -> None:
        self.problems[value] = self.problems.get(value, 0) + pixels
        if self.strict:
            if kind == "ids":
                raise LabelProblem(
                    f"{self.path}: label value {value} is out of range for {self.num_classes} "
                    f"classes (ids 0..{self.num_classes - 1}; set ignore_index for unlabelled pixels)"
                )
            raise LabelProblem(
                f"{self.path}: label colour {list(value)} is not in the palette (add it, or list it "
                "under ignore_colours if it marks unlabelled pixels)"
            )

    def close(self) -> None:
        for ds in (self._vrt, self._dataset):
            if ds is not None:
                ds.close()
        self._vrt = self._dataset = None


class VectorLabels:
    """Polygons burnt onto image windows; class from `label_field` (names or ids).

    Raises:
        LabelProblem: the field is missing, or holds names/ids outside the class list (all of them
            are listed).
    """

    def __init__(self, path: Path, label_field: str, classes: tuple[str, ...]) -> None:
        import pyogrio
        import shapely

        self.path, self.label_field = Path(path), label_field
        if not self.path.exists():
            raise InputError(f"label file not found: {self.path}")
        try:
            info = pyogrio.read_info(self.path)
        except Exception as exc:  # pyogrio raises its own DataSourceError family
            raise InputError(f"{self.path} is not a readable vector file ({exc})") from None
        fields = list(info["fields"])
        if label_field not in fields:
            raise LabelProblem(
                f"{self.path}: no attribute {label_field!r} (label_field); it has: {', '.join(fields) or 'none'}"
            )
        meta, _, wkb, field_data = pyogrio.raw.read(self.path, columns=[label_field])
        self.crs = meta.get("crs")
        values = field_data[0]
        ids = np.full(len(values), -1, np.int64)
        lookup = {name.lower(): i for i, name in enumerate(classes)}
        unknown: dict[str, int] = {}
        for k, value in enumerate(values):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue  # a polygon without a class labels nothing
            class_id = _class_id(value, lookup, len(classes))
            if class_id is None:
                unknown[str(value)] = unknown.get(str(value), 0) + 1
            else:
                ids[k] = class_id
        self.unknown = unknown
        if unknown:
            listed = ", ".join(f"{v!r} ({n} polygons)" for v, n in sorted(unknown.items())[:20])
            raise LabelProblem(
                f"{self.path}: {label_field} values not in classes [{', '.join(classes)}]: {listed}"
            )
        geoms = shapely.from_wkb(wkb)
        keep = (ids >= 0) & ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
        self.geometries, self.ids = geoms[keep], ids[keep]
        self._by_crs: dict[str, tuple[Any, Any]] = {}

    def _in_crs(self, grid: ImageGrid):
        """Geometries in the image CRS and an STRtree over them (computed once per CRS)."""
        import shapely

        if grid.crs is None:
            raise LabelProblem(
                f"{grid.path.name} has no georeferencing: vector labels cannot be placed on it"
            )
        key = grid.crs.to_wkt()
        if key not in self._by_crs:
            geoms = self.geometries
            if self.crs is not None:
                from pyproj import CRS, Transformer

                src, dst = CRS.from_user_input(self.crs), CRS.from_wkt(key)
                if not src.equals(dst):
                    tr = Transformer.from_crs(src, dst, always_xy=True)
                    geoms = shapely.transform(
                        geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
                    )
                    geoms = shapely.make_valid(geoms)
            self._by_crs[key] = (geoms, shapely.STRtree(geoms))
        return self._by_crs[key]

    def overlaps(self, grid: ImageGrid) -> bool:
        import shapely

        _, tree = self._in_crs(grid)
        bounds = rasterio.transform.array_bounds(grid.height, grid.width, grid.transform)
        box = shapely.box(bounds[2], bounds[1], bounds[0], bounds[3])
        return len(tree.query(box, predicate="intersects")) > 0

    def read(self, grid: ImageGrid, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
        """Labels [y2-y1, x2-x1] uint8, 255 where no polygon covers the pixel centre."""
        import shapely
        from rasterio.features import rasterize
        from rasterio.windows import bounds as window_bounds
        from rasterio.windows import transform as window_transform

        geoms, tree = self._in_crs(grid)
        window = Window(x1, y1, x2 - x1, y2 - y1)
        left, bottom, right, top = window_bounds(window, grid.transform)
        hits = np.sort(tree.query(shapely.box(min(left, right), min(bottom, top),
                                              max(left, right), max(bottom, top))))  # fmt: skip
        if len(hits) == 0:
            return np.full((y2 - y1, x2 - x1), IGNORE, np.uint8)
        return rasterize(
            zip(geoms[hits], self.ids[hits].tolist(), strict=True), out_shape=(y2 - y1, x2 - x1),
            transform=window_transform(window, grid.transform), fill=IGNORE, dtype="uint8",
        )  # fmt: skip

    def close(self) -> None:
        pass


def _class_id(value: Any, lookup: dict[str, int], n: int) -> int | None:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in lookup:
            return lookup[text.lower()]
        try:
            value = int(text)
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int | np.integer) and 0 <= int(value) < n:
        return int(value)
    return None


def _pack(colour: tuple[int, int, int]) -> int:
    return (int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2])


def _unpack(value: int) -> tuple[int, int, int]:
    return ((value >> 16) & 255, (value >> 8) & 255, value & 255)


def _pack_array(raw: np.ndarray) -> np.ndarray:
    """[3, h, w] uint8 colours -> [h, w] int64 packed RGB."""
    r, g, b = (raw[i].astype(np.int64) for i in range(3))
    return (r << 16) | (g << 8) | b

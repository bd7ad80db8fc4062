"""Label sources: class ids for any window of an image's pixel grid, from rasters or polygons.

Every source answers the same question: "the labels of rows y1:y2, columns x1:x2 of *this image*",
as uint8 class ids with 255 = ignore. How the labels are stored does not matter:

- `RasterLabels`: a mask of class codes (PNG/TIFF, palette PNGs give their indices) or a
  colour-coded RGB mask decoded with the palette (as ISPRS ships them). A mask on the image's
  grid is read directly; one in another CRS, resolution or extent is reprojected onto the image
  grid with nearest neighbour (GDAL's warper through `WarpedVRT`); pixels it does not cover are
  ignored. Its declared nodata value marks unlabelled pixels, except when it is a class's code
  (id, `label_values` code or palette colour): then those pixels are read as the class and
  counted in `nodata_pixels` (for a warning), unless the data set says `label_nodata: ignore`.
- `VectorLabels`: polygons (GeoPackage, GeoJSON, Shapefile, ... anything OGR reads) in any CRS,
  reprojected to the image CRS once and burnt into each window (`rasterio.features.rasterize`,
  pixel-centre rule); pixels under no polygon are ignored. Where polygons overlap, the later
  feature in the file wins.

Both read codes (attribute values, pixel values) by one rule, `crossearth.data.codes`, and count
each code they met in `seen` (polygons, or pixels read), for `data check`'s code -> class table.
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

from crossearth.data.codes import BY_ID, BY_NAME, UNKNOWN, CodeTable, canonical
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
    """Class codes or colours from a label raster (see module docstring).

    Args:
        path: the label raster.
        codes: how pixel values become class ids (`crossearth.data.codes`).
        ignore_index: the stored value meaning "unlabelled" (mapped to 255).
        palette: class colours, for colour-coded masks.
        label_format: "ids", "colours" or "auto" (3+ bands: colours, else ids).
        ignore_colours: colours meaning "unlabelled" (e.g. ISPRS's black boundaries).
        strict: raise `LabelProblem` on codes no class has / unknown colours (else they read as
            ignore and are counted in `problems`).
        nodata_rule: "class": a declared nodata value that is a class's code is read as that class;
            "ignore": it marks unlabelled pixels, as GDAL would have it.
    """

    def __init__(self, path: Path, codes: CodeTable, ignore_index: int = 255,
                 palette: tuple[tuple[int, int, int], ...] = (), label_format: str = "auto",
                 ignore_colours: tuple[tuple[int, int, int], ...] = (), strict: bool = True,
                 nodata_rule: str = "class") -> None:  # fmt: skip
        self.path, self.codes, self.ignore_index = Path(path), codes, ignore_index
        self.num_classes = len(codes.classes)
        self.strict = strict
        self.problems: dict[Any, int] = {}  # unknown value or colour -> pixels
        self.seen: dict[str, int] = {}  # code -> labelled pixels read (ids, not colours)
        with self._open() as ds:
            count = ds.count
            self.nodata = ds.nodata  # the declared nodata value (None: none)
        self.colours = label_format == "colours" or (label_format == "auto" and count >= 3)
        if self.colours and count < 3:
            raise LabelProblem(
                f"{self.path}: label_format colours needs an RGB mask, it has {plural(count, 'band')}"
            )
        self._lut: dict[int, int] = {}
        if self.colours:
            self._lut = {_pack(c): i for i, c in enumerate(palette)}
            self._lut.update({_pack(c): IGNORE for c in ignore_colours})
        #: the class the declared nodata value is the code of (None: it is no class's code)
        self.nodata_class = self._class_of_nodata()
        self.nodata_is_class = self.nodata_class is not None and nodata_rule == "class"
        self.nodata_pixels = 0  # pixels holding that nodata value, read as its class
        self._dataset = None
        self._vrt_for: tuple | None = None
        self._vrt = None

    def _class_of_nodata(self) -> int | None:
        value = self.nodata
        if value is None or np.isnan(value):
            return None
        if self.colours:
            if not (float(value).is_integer() and 0 <= value <= 255):
                return None
            class_id = self._lut.get(_pack((int(value),) * 3), IGNORE)
        else:
            class_id = IGNORE if value == self.ignore_index else self.codes.class_of(value)
        return class_id if 0 <= class_id < self.num_classes else None

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
        """The label dataset itself when it lies on the image grid, else a nearest WarpedVRT
        whose alpha band marks the pixels the label raster covers (values pass unchanged: the
        nodata value is handled by `read`)."""
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
                                  height=grid.height, resampling=Resampling.nearest,
                                  src_nodata=None, nodata=None, add_alpha=True)  # fmt: skip
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

    def _covered(self, src, window: Window) -> np.ndarray:
        """[h, w] bool: pixels the label raster covers, by its mask or alpha (or the warper's
        alpha), leaving its nodata value to `read`."""
        from rasterio.enums import MaskFlags

        if src is self._vrt or MaskFlags.nodata not in src.mask_flag_enums[0]:
            return src.dataset_mask(window=window) > 0
        return np.ones((int(window.height), int(window.width)), bool)

    def read(self, grid: ImageGrid, y1: int, y2: int, x1: int, x2: int) -> np.ndarray:
        """Labels [y2-y1, x2-x1] uint8 (255 = ignore) on the image grid. Raises LabelProblem."""
        src = self._source_for(grid)
        window = Window(x1, y1, x2 - x1, y2 - y1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                covered = self._covered(src, window)
                raw = src.read([1, 2, 3] if self.colours else [1], window=window)
        except RasterioIOError as exc:
            raise InputError(f"{self.path}: cannot read labels ({exc})") from None
        if self.nodata is not None:
            nodata = np.isnan(raw) if np.isnan(self.nodata) else raw == self.nodata
            nodata = nodata.all(axis=0) & covered
            if self.nodata_is_class:
                self.nodata_pixels += int(nodata.sum())
            else:
                covered &= ~nodata
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
            values = raw[0]
            ids = self.codes.ids_of_array(values)
            ids[values == self.ignore_index] = IGNORE
            self._count_codes(values[covered & (ids != IGNORE)])
            bad = (ids == UNKNOWN) & covered
            if bad.any():
                found, counts = np.unique(values[bad], return_counts=True)
                for v, n in zip(found.tolist(), counts.tolist(), strict=True):
                    self._report(canonical(v), int(n), "ids")
            out = np.where(ids == UNKNOWN, IGNORE, ids).astype(np.uint8)
        out[~covered] = IGNORE
        return out

    def _count_codes(self, values: np.ndarray) -> None:
        if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
            counts = np.bincount(values.ravel())
            found = np.flatnonzero(counts)
            pairs = zip(found.tolist(), counts[found].tolist(), strict=True)
        else:
            pairs = zip(*(a.tolist() for a in np.unique(values, return_counts=True)), strict=True)
        for value, n in pairs:
            code = canonical(value) or ""
            self.seen[code] = self.seen.get(code, 0) + int(n)

    def _report(self, value: Any, pixels: int, kind: str) -> None:
        self.problems[value] = self.problems.get(value, 0) + pixels
        if self.strict:
            if kind == "ids":
                raise LabelProblem(f"{self.path}: label values {self.unknown_values([value])}")
            raise LabelProblem(
                f"{self.path}: label colour {list(value)} is not in the palette (add it, or list it "
                "under ignore_colours if it marks unlabelled pixels)"
            )

    def unknown_values(self, values: list[str], listed: str | None = None) -> str:
        """Why label values no class has are not read, and what to do (ids masks)."""
        if self.codes.label_values is None and not self.codes.numeric_names:
            return (
                f"out of range for {self.num_classes} classes: {listed or ', '.join(values)} "
                f"(ids 0..{self.num_classes - 1}; set ignore_index for unlabelled pixels, or map "
                "other codes to classes with label_values)"
            )
        return self.codes.describe_unknown(values, listed)

    def close(self) -> None:
        for ds in (self._vrt, self._dataset):
            if ds is not None:
                ds.close()
        self._vrt = self._dataset = None


class VectorLabels:
    """Polygons burnt onto image windows; class from the codes in `label_field`, read by
    `codes` (`crossearth.data.codes`: names, ids or `label_values`; text or numbers alike).

    Raises:
        LabelProblem: the field is missing, holds codes no class has (all of them are listed), or
            mixes class names and class ids (ambiguous: `label_values` says what each means).
    """

    def __init__(self, path: Path, label_field: str, codes: CodeTable) -> None:
        import pyogrio
        import shapely

        self.path, self.label_field, self.codes = Path(path), label_field, codes
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
        self.seen: dict[str, int] = {}  # code -> polygons
        unknown: dict[str, int] = {}  # the value as the file has it -> polygons
        unknown_codes: list[str] = []
        read_as: dict[str, list[str]] = {BY_NAME: [], BY_ID: []}  # codes read each way
        for k, value in enumerate(values.tolist()):
            code = canonical(value)
            if code is None:
                continue  # a polygon without a class labels nothing
            self.seen[code] = self.seen.get(code, 0) + 1
            class_id, how = codes.lookup(code)
            if class_id == UNKNOWN:
                text = value.decode() if isinstance(value, bytes) else value
                shown = repr(text) if isinstance(text, str) else str(text)
                unknown[shown] = unknown.get(shown, 0) + 1
                unknown_codes.append(code)
            elif class_id < len(codes.classes):  # (IGNORE: mapped to null, labels nothing)
                ids[k] = class_id
            if how in read_as and code not in read_as[how]:
                read_as[how].append(code)
        self.unknown = unknown
        if unknown:
            listed = ", ".join(f"{v} ({_polygons(n)})" for v, n in sorted(unknown.items())[:20])
            raise LabelProblem(
                f"{self.path}: {label_field} values "
                + codes.describe_unknown(sorted(set(unknown_codes)), listed)
            )
        if read_as[BY_NAME] and read_as[BY_ID]:
            names, numbers = sorted(read_as[BY_NAME])[:3], sorted(read_as[BY_ID])[:3]
            raise LabelProblem(
                f"{self.path}: {label_field} is ambiguous: it holds class names "
                f"({', '.join(names)}) and numbers read as class ids ({', '.join(numbers)}); "
                f"say what each code means with label_values in the data set file, e.g. "
                f"label_values: {{{numbers[0]}: {codes.classes[int(numbers[0])]}, "
                f"{names[0]}: {codes.classes[codes.lookup(names[0])[0]]}}}"
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


def _polygons(n: int) -> str:
    return f"{n} polygon{'s' if n != 1 else ''}"


def _pack(colour: tuple[int, int, int]) -> int:
    return (int(colour[0]) << 16) | (int(colour[1]) << 8) | int(colour[2])


def _unpack(value: int) -> tuple[int, int, int]:
    return ((value >> 16) & 255, (value >> 8) & 255, value & 255)


def _pack_array(raw: np.ndarray) -> np.ndarray:
    """[3, h, w] uint8 colours -> [h, w] int64 packed RGB."""
    r, g, b = (raw[i].astype(np.int64) for i in range(3))
    return (r << 16) | (g << 8) | b

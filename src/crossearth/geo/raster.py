"""Windowed reading of any raster GDAL opens (GeoTIFF, COG, VRT, PNG, JPEG) as model input.

A `RasterSource` yields, for a pixel window, the three chosen bands scaled to uint8 and a validity
mask built from the file's nodata value, internal mask (GDAL's dataset mask), every alpha band
(whatever the band count) and, for floating-point data, NaN. Only the requested window is read,
so memory follows the window size.

`Georef` is how the file is placed on the Earth: a CRS with an affine transform, ground control
points (GCPs, with their CRS), rational polynomial coefficients (RPCs), or a transform without a
CRS (e.g. a JPEG/PNG with a `.jgw`/`.pgw` world file). The class map is written with the same
georeferencing; `Georef.ground()` gives the CRS and affine transform used for areas and polygons
(fitted to the GCPs or the RPCs where the file has no transform).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from crossearth.advice import OPTIONS, Advice
from crossearth.errors import InputError, InputNotFoundError
from crossearth.geo.bands import alpha_bands, choose_bands, dataset_label
from crossearth.geo.containers import container_error, is_subdataset, open_subdataset, subdatasets
from crossearth.geo.ranges import GDAL_NO_RANGES, range_message, require_range_requests
from crossearth.geo.remote import (
    REMOTE_ENV,
    gdal_path,
    is_remote,
    mask_text,
    mask_url,
    remote_env,
)
from crossearth.geo.scaling import (
    NodataOverride,
    Scaling,
    ValueTransform,
    estimate_scaling,
    file_mask,
    parse_nodata,
    parse_scale,
    unscale,
    value_transform,
)
from crossearth.geo.stac import is_stac, open_stac_item

RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".png", ".jpg", ".jpeg", ".jp2", ".img"}


def open_raster(path: str | Path) -> rasterio.io.DatasetReader:
    """Open a raster for reading, turning GDAL failures into a clear InputError.

    `path` is a local file, or a URL / GDAL `/vsi...` path kept as a string (see
    `crossearth.geo.remote`): those are read through GDAL's network file systems, window by
    window, and named in messages with their credentials masked; or a GDAL subdataset name
    such as `NETCDF:"file.nc":var` (`crossearth.geo.containers`), also kept as a string.
    A file that holds several rasters (subdatasets) but no bands of its own is refused with
    the list of their names.

    Raises:
        InputNotFoundError: the file (or a subdataset name's container file) does not exist.
        InputError: GDAL cannot read it, or it is a container of several rasters.
    """
    if is_stac(path):  # a STAC item: its band assets stacked by an in-memory VRT
        with rasterio.Env(**REMOTE_ENV):
            return open_stac_item(path)
    if is_remote(path):
        return _one_raster(_open_remote(str(path)), mask_url(str(path)))
    if is_subdataset(path):  # NETCDF:"file.nc":var, HDF5:"file.h5"://var, ...
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return _one_raster(open_subdataset(str(path)), mask_text(str(path)))
    text = str(path)
    path = Path(path)
    if not path.exists():
        if ":" in text:  # another GDAL connection string (`GPKG:f.gpkg:table`, ...)?
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    return _one_raster(rasterio.open(text), mask_text(text))
            except RasterioIOError:
                pass
        raise InputNotFoundError(f"input image not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{path} is not a readable image or raster ({exc})") from None
    return _one_raster(dataset, str(path))


def _one_raster(dataset: rasterio.io.DatasetReader, shown: str) -> rasterio.io.DatasetReader:
    """`dataset` if it holds raster bands; a container of several rasters (a NetCDF or HDF
    file with several variables, opened whole) is closed and refused with the list of its
    subdatasets, by the names that open them (`crossearth.geo.containers`)."""
    if dataset.count > 0:
        return dataset
    found = subdatasets(dataset)
    dataset.close()
    if found:
        raise InputError(mask_text(container_error(shown, found)))
    raise InputError(f"{shown} holds no raster bands")


def _open_remote(url: str) -> rasterio.io.DatasetReader:
    require_range_requests(url)
    try:
        with warnings.catch_warnings(), rasterio.Env(**remote_env(url)):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(gdal_path(url))
            # GDAL reads sidecars when first asked for what they hold: ask now, while the
            # settings that find them (and only them) apply
            _ = dataset.transform, dataset.descriptions, dataset.nodatavals
            _ = dataset.mask_flag_enums
            return dataset
    except RasterioIOError as exc:
        if GDAL_NO_RANGES in str(exc):
            raise InputError(range_message(url)) from None
        raise InputError(f"cannot open {mask_url(url)}: {mask_text(str(exc))}") from None


def read_nearest(
    dataset: rasterio.io.DatasetReader,
    indexes: list[int],
    height: int,
    width: int,
    block_rows: int = 512,
) -> np.ndarray:
    """Bands nearest-resampled to height x width, reading full-resolution rows in blocks.

    One sequential pass with memory bounded by the block: GDAL's own decimated read
    (`out_shape=`) re-decodes compressed tiles many times on files without overviews (measured:
    108 s instead of 2 s for a 4000² deflate GeoTIFF).
    """
    rows = np.minimum(
        (np.arange(height) + 0.5) * dataset.height / height, dataset.height - 1
    ).astype(int)
    cols = np.minimum((np.arange(width) + 0.5) * dataset.width / width, dataset.width - 1).astype(
        int
    )
    out = np.zeros((len(indexes), height, width), dtype=dataset.dtypes[indexes[0] - 1])
    for y0 in range(0, dataset.height, block_rows):
        y1 = min(y0 + block_rows, dataset.height)
        wanted = np.nonzero((rows >= y0) & (rows < y1))[0]
        if wanted.size:
            block = dataset.read(indexes, window=Window(0, y0, dataset.width, y1 - y0))
            out[:, wanted] = block[:, rows[wanted] - y0][:, :, cols]
    return out


@dataclass(frozen=True)
class Georef:
    """The georeferencing a raster file records (any combination may be present)."""

    crs: Any = None  # rasterio CRS of the transform
    transform: Affine | None = None  # None: none or the identity
    gcps: list | None = None  # rasterio GroundControlPoint list
    gcp_crs: Any = None
    rpcs: Any = None  # rasterio RPC

    @classmethod
    def of(cls, dataset: Any) -> Georef:
        """Read the georeferencing of an open rasterio dataset."""
        transform = dataset.transform
        gcps, gcp_crs = dataset.gcps if hasattr(dataset, "gcps") else ([], None)
        return cls(
            crs=dataset.crs,
            transform=None if transform.is_identity else transform,
            gcps=list(gcps) or None,
            gcp_crs=gcp_crs if gcps else None,
            rpcs=getattr(dataset, "rpcs", None),
        )

    @property
    def kind(self) -> str | None:
        """ "crs+transform", "gcps", "rpcs", "transform" (no CRS) or None (pixel coordinates)."""
        if self.crs is not None and self.transform is not None:
            return "crs+transform"
        if self.gcps:
            return "gcps"
        if self.rpcs is not None:
            return "rpcs"
        if self.transform is not None:
            return "transform"
        return None

    def ground(self, height: int, width: int) -> tuple[Any, Affine] | None:
        """(CRS or None, affine pixel-to-map transform) for areas and polygons; None if the
        file has no georeferencing. GCPs: their least-squares affine fit, in the GCPs' CRS.
        RPCs: an affine fit to the RPC model at 5 x 5 points over the image, in EPSG:4326
        (at the RPCs' mean height; terrain relief makes it approximate)."""
        from rasterio.crs import CRS
        from rasterio.transform import from_gcps

        kind = self.kind
        if kind in ("crs+transform", "transform"):
            return self.crs, self.transform
        if kind == "gcps":
            return self.gcp_crs, from_gcps(self.gcps)
        if kind == "rpcs":
            from rasterio.control import GroundControlPoint
            from rasterio.transform import RPCTransformer

            rows = np.linspace(0, height, 5)
            cols = np.linspace(0, width, 5)
            rr, cc = (a.ravel() for a in np.meshgrid(rows, cols, indexing="ij"))
            with RPCTransformer(self.rpcs) as rpc:
                lon, lat = rpc.xy(rr, cc, offset="ul")
            points = [
                GroundControlPoint(row=float(r), col=float(c), x=float(x), y=float(y))
                for r, c, x, y in zip(rr, cc, lon, lat, strict=True)
            ]
            return CRS.from_epsg(4326), from_gcps(points)
        return None

    def write_to(self, dataset: Any) -> None:
        """Give a dataset open for writing the same georeferencing (GCPs and RPCs included)."""
        if self.crs is not None and self.transform is not None:
            dataset.crs, dataset.transform = self.crs, self.transform
        elif self.gcps:
            dataset.gcps = (self.gcps, self.gcp_crs)
        elif self.transform is not None:
            dataset.transform = self.transform
        if self.rpcs is not None:
            dataset.rpcs = self.rpcs


@dataclass
class RasterSource:
    """Reads windows of the chosen bands (3 for RGB/IRRG models, N for a model of N bands),
    scaled to uint8, plus validity from an open dataset (values turned into
    `x * scale + offset` first where the bands record a scale or offset:
    `crossearth.geo.scaling`)."""

    dataset: rasterio.io.DatasetReader
    bands: tuple[int, ...]
    scaling: Scaling
    band_reason: str = ""
    alpha: tuple[int, ...] = ()  # alpha bands (masks), 1-based
    nodata: NodataOverride = None  # `--nodata`: None = the file's value, "none", or a number
    values: ValueTransform = None  # the bands' (scale, offset): values are x * scale + offset
    clipped: int = 0  # valid band values outside the scaling range, over all windows read
    considered: int = 0

    @classmethod
    def open(
        cls,
        path: str | Path,
        model_bands: str = "RGB",
        bands: tuple[int, ...] | None = None,
        scale: str | None = None,
        nodata: str | float | None = None,
        advice: Advice = OPTIONS,
        count: int | None = 3,
        from_model: bool = False,
        model_band_names: tuple[str, ...] | None = None,
    ) -> RasterSource:
        """Open `path` choosing bands and scaling by the module's rules; `nodata` overrides the
        file's nodata value ("none" ignores it, a number replaces it); `count` is the number of
        bands the model takes (None: as many as `bands` lists); `from_model`: `bands` are those the
        model records, `model_band_names` its names for them (see `choose_bands`). Raises InputError, whose advice names the settings
        as `advice` does (`--bands`, or `bands:` of a data set file)."""
        override = parse_nodata(nodata)
        dataset = open_raster(path)
        try:
            choice = choose_bands(dataset, model_bands, bands, advice, count, from_model,
                                  model_band_names)  # fmt: skip
            spec = parse_scale(scale, advice)
            scaling = estimate_scaling(dataset, choice.bands, spec, nodata=override, advice=advice)
        except BaseException:
            dataset.close()
            raise
        return cls(dataset, choice.bands, scaling, choice.reason, tuple(alpha_bands(dataset)),
                   override, value_transform(dataset, choice.bands))  # fmt: skip

    @property
    def height(self) -> int:
        return self.dataset.height

    @property
    def width(self) -> int:
        return self.dataset.width

    @property
    def georef(self) -> Georef:
        return Georef.of(self.dataset)

    @property
    def georeferenced(self) -> bool:
        """Placed on the Earth or a map in any way (CRS, GCPs, RPCs, or a world-file transform)."""
        return self.georef.kind is not None

    def read(self, y1: int, y2: int, x1: int, x2: int) -> tuple[np.ndarray, np.ndarray]:
        """(pixels [h, w, N] uint8, valid [h, w] bool) of the window rows y1:y2, columns x1:x2."""
        window = Window(x1, y1, x2 - x1, y2 - y1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                raw = self.dataset.read(list(self.bands), window=window)
                valid = file_mask(self.dataset, self.bands, self.nodata, window=window)
                if self.alpha:  # GDAL masks with alpha only in 2- and 4-band files
                    valid &= (self.dataset.read(list(self.alpha), window=window) > 0).all(axis=0)
        except RasterioIOError as exc:
            raise InputError(
                f"{dataset_label(self.dataset)}: cannot read pixels ({mask_text(str(exc))}); "
                "the file may be corrupt or the connection lost"
            ) from None
        pixels = np.moveaxis(unscale(raw, self.values), 0, -1)
        if np.issubdtype(pixels.dtype, np.floating):
            valid &= np.isfinite(pixels).all(axis=-1)
        if not self.scaling.is_identity:
            clipped, considered = self.scaling.clipped_count(pixels, valid)
            self.clipped += clipped
            self.considered += considered
        return self.scaling.apply(pixels), valid

    def read_decimated(self, height: int, width: int) -> np.ndarray:
        """Three bands scaled to uint8 [height, width, 3], nearest-resampled (for previews): the
        first three chosen bands (R, G, B of an RGB+extra-band model), or the first one as grey
        when fewer than three are chosen."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            raw = read_nearest(self.dataset, list(self.bands), height, width)
            pixels = np.moveaxis(unscale(raw, self.values), 0, -1)
        if np.issubdtype(pixels.dtype, np.floating):
            pixels = np.nan_to_num(pixels)
        scaled = self.scaling.apply(pixels)
        if scaled.shape[-1] >= 3:
            return np.ascontiguousarray(scaled[..., :3])
        return np.repeat(scaled[..., :1], 3, axis=-1)

    def close(self) -> None:
        self.dataset.close()

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A `(band, y, x)` DataArray read as `crossearth predict` reads a raster file.

`ArrayDataset` answers the questions the file readers ask of a rasterio dataset (band count,
descriptions and other names, pixel type, nodata value, scale and offset, windowed and
decimated reads, the dataset mask), so that bands are chosen by `crossearth.geo.bands`,
scaling is set by `crossearth.geo.scaling.estimate_scaling` and windows are read by
`crossearth.geo.raster.RasterSource.read`: the one reading path of `predict`, whatever the
pixels come from.

What a DataArray records, and where (`ArrayMeta.of`):

- band names: the band coordinate's values when they are text (odc-stac, stackstac), rioxarray's
  `long_name` attribute (the file's band descriptions), and any other text coordinate along the
  band dimension (stackstac's `common_name`); the first is the band's description.
- nodata: `rio.nodata` (the `_FillValue`, `nodata`, `missing_value` or `fill_value`
  attribute or encoding). As GDAL's dataset mask, a pixel is nodata when every band of the
  array holds the nodata value (NaN: is NaN); NaN or infinite values in a chosen band are nodata
  too, as in files.
- scale and offset: rioxarray's `scale_factor`/`add_offset` (one for all bands) or
  `scales`/`offsets` (one per band), as a file's band scale and offset.

Not seen in a DataArray, so not applied: colour interpretations, alpha bands, internal masks
(mask such pixels with the nodata value) and overviews (percentiles come from a nearest-neighbour
decimation of the full-resolution pixels).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.enums import MaskFlags

from crossearth.geo.stac import NAMES_TAG

SAMPLE_SIZE = 1024  # long side of the decimated read for percentiles (estimate_scaling's default)


@dataclass(frozen=True)
class ArrayMeta:
    """What a DataArray records about its bands and pixels (small; pickled into every task)."""

    name: str
    count: int
    height: int
    width: int
    dtype: str
    names: tuple[tuple[str, ...], ...]  # per band, every name it goes by (first: description)
    nodata: float | None
    scales: tuple[float, ...]
    offsets: tuple[float, ...]

    @classmethod
    def of(cls, array: Any, band_dim: str, label: str) -> ArrayMeta:
        """The metadata of `array`, already ordered (band, y, x)."""
        count, height, width = (int(n) for n in array.shape)
        names: list[list[str]] = [[] for _ in range(count)]
        if band_dim in array.coords and array[band_dim].dtype.kind in "OUS":
            for i, value in enumerate(array[band_dim].values):
                names[i].append(str(value))
        long_name = array.attrs.get("long_name")
        if isinstance(long_name, list | tuple) and len(long_name) == count:
            for i, value in enumerate(long_name):
                if value:
                    names[i].append(str(value))
        for key, coord in array.coords.items():
            if key != band_dim and coord.dims == (band_dim,) and coord.dtype.kind in "OUS":
                for i, value in enumerate(coord.values):
                    if isinstance(value, str) and value:
                        names[i].append(value)
        return cls(
            name=label,
            count=count,
            height=height,
            width=width,
            dtype=np.dtype(array.dtype).name,
            names=tuple(tuple(dict.fromkeys(n)) for n in names),
            nodata=_nodata(array),
            scales=_per_band(array.attrs, "scale_factor", "scales", count, 1.0),
            offsets=_per_band(array.attrs, "add_offset", "offsets", count, 0.0),
        )


def _nodata(array: Any) -> float | None:
    value = array.rio.nodata
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _per_band(attrs: dict, one: str, each: str, count: int, default: float) -> tuple[float, ...]:
    values = attrs.get(each)
    if isinstance(values, list | tuple | np.ndarray) and len(values) == count:
        return tuple(default if v is None else float(v) for v in values)
    value = attrs.get(one)
    return (default if value is None else float(value),) * count


class NeedsSample(Exception):
    """Raised by a pixel-less `ArrayDataset` asked for a decimated read: the scaling needs
    percentiles of the pixels."""


class ArrayDataset:
    """Rasterio-reader look-alike over some pixels of the array `meta` describes.

    `pieces`: (y1, y2, x1, x2) rectangles of the whole array and their pixels [count, h, w]; a
    windowed read is served from the piece that holds the window. `sample`: the pixels of the
    decimated read of the whole array (`sample_indices`). With neither, it answers metadata only.
    """

    def __init__(
        self,
        meta: ArrayMeta,
        pieces: list[tuple[tuple[int, int, int, int], np.ndarray]] | None = None,
        sample: np.ndarray | None = None,
    ) -> None:
        self.meta, self.pieces, self.sample = meta, pieces or [], sample
        self.name, self.count = meta.name, meta.count
        self.height, self.width = meta.height, meta.width
        self.dtypes = (meta.dtype,) * meta.count
        self.descriptions = tuple(n[0] if n else None for n in meta.names)
        self.colorinterp = (None,) * meta.count
        self.nodatavals = (meta.nodata,) * meta.count
        self.scales, self.offsets = meta.scales, meta.offsets
        flags = [MaskFlags.nodata] if meta.nodata is not None else [MaskFlags.all_valid]
        self.mask_flag_enums = (flags,) * meta.count

    def tags(self, band: int) -> dict[str, str]:
        """Band `band`'s other names, as a STAC stack records them (`crossearth.geo.stac`)."""
        return {NAMES_TAG: json.dumps(list(self.meta.names[band - 1][1:]))}

    def read(self, indexes: Any, window: Any = None, out_shape: Any = None, **_: Any) -> np.ndarray:
        data = self._pixels(window, out_shape)
        if isinstance(indexes, int):
            return data[indexes - 1]
        return data[[i - 1 for i in indexes]]

    def dataset_mask(self, window: Any = None, out_shape: Any = None, **_: Any) -> np.ndarray:
        """255 where valid, 0 where every band holds the nodata value (GDAL's dataset mask)."""
        data = self._pixels(window, out_shape)
        nodata = self.meta.nodata
        if nodata is None:
            return np.full(data.shape[1:], 255, np.uint8)
        same = np.isnan(data) if math.isnan(nodata) else data == nodata
        return np.where(same.all(axis=0), 0, 255).astype(np.uint8)

    def _pixels(self, window: Any, out_shape: Any) -> np.ndarray:
        if out_shape is not None:
            if self.sample is None:
                raise NeedsSample
            if tuple(out_shape[-2:]) != self.sample.shape[-2:]:
                raise AssertionError(f"decimated read of {out_shape}, sampled {self.sample.shape}")
            return self.sample
        if window is None:
            raise AssertionError("whole-array reads are not served")
        y1, x1 = int(window.row_off), int(window.col_off)
        y2, x2 = y1 + int(window.height), x1 + int(window.width)
        for (a1, a2, b1, b2), pixels in self.pieces:
            if a1 <= y1 and y2 <= a2 and b1 <= x1 and x2 <= b2:
                return pixels[:, y1 - a1 : y2 - a1, x1 - b1 : x2 - b1]
        raise AssertionError(f"no piece holds rows {y1}:{y2}, columns {x1}:{x2}")

    def close(self) -> None:
        pass


def sample_indices(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the nearest-neighbour decimation of a `height` x `width` array to at
    most `SAMPLE_SIZE` pixels on the long side: the shape `sample_valid_values` asks for, each
    output pixel taking the input pixel under its centre (as `crossearth.geo.raster.read_nearest`)."""
    factor = min(1.0, SAMPLE_SIZE / max(height, width))
    out_h = max(1, min(height, round(height * factor)))
    out_w = max(1, min(width, round(width * factor)))
    rows = np.minimum((np.arange(out_h) + 0.5) * height / out_h, height - 1).astype(int)
    cols = np.minimum((np.arange(out_w) + 0.5) * width / out_w, width - 1).astype(int)
    return rows, cols

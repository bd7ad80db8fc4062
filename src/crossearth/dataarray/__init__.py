"""`crossearth.segment`: a lazy class map of a `(band, y, x)` xarray DataArray.

The result is built as a Dask graph of one task per output chunk (`crossearth.dataarray.chunk`):
each task reads only the input its windows need (`crossearth.dataarray.plan`) and runs the
whole-array slide inference's windows that touch its chunk, so the computed map equals
`crossearth predict` on the same pixels. Nothing is read and the model is not run until the
result is computed (`.compute()`, `.to_zarr()`, `.rio.to_raster()`, ...), by whatever Dask
scheduler is active: threads by default, a `distributed.Client`'s workers when one exists.
xarray, Dask and rioxarray are the `crossearth[dask]` extra, imported only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crossearth.errors import InputError

EXTRA = "pip install 'crossearth[dask]'"
CLASS_DIM = "class"


def require_extra() -> tuple[Any, Any]:
    """(xarray, dask.array), with rioxarray's `.rio` accessor registered.

    Raises:
        InputError: the `crossearth[dask]` extra is not installed (the message says how).
    """
    try:
        import dask.array as dask_array
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray
    except ImportError as exc:
        raise InputError(
            f"segmenting xarray arrays needs xarray, rioxarray and dask: {EXTRA} ({exc.name} "
            "is missing)"
        ) from None
    return xarray, dask_array


def segment(
    data_array: Any,
    model: Any,
    *,
    scores: bool = False,
    bands: tuple[int | str, ...] | str | None = None,
    scale: str | None = None,
    nodata: str | float | None = None,
    tile: int | None = None,
    stride: int | None = None,
    batch_size: int = 4,
    blend: str = "mean",
    tta: str = "none",
    precision: str | None = None,
    device: str | None = None,
    config: Any = None,
    backbone: str | Path | None = None,
    download: bool = False,
    chunks: int | tuple[int, int] | None = None,
) -> Any:
    """Segment a `(band, y, x)` DataArray into a lazy `(y, x)` class map.

    Args:
        data_array: pixels of any real type, dims band and the spatial dims rioxarray finds
            (`y`/`x`, `latitude`/`longitude`, ...) in any order; Dask-backed (rioxarray
            `open_rasterio(..., chunks=...)`, odc-stac, stackstac) or NumPy-backed. Bands,
            nodata and scale/offset are read from it as `crossearth.dataarray.source` says.
        model: a loaded model, or anything `crossearth.load_model` takes (a zoo name, a file,
            `hf-hub:...`), loaded once per process (each Dask worker loads its own).
        scores: also return the mean class scores.
        bands, scale, nodata, tile, stride, batch_size, blend, tta: as `crossearth predict`'s
            options (`bands`: 1-based positions along the band dimension or band names; default:
            from the model and the array's band names).
        precision, device, config, backbone, download: as `load_model`'s, for a model given by
            name or file (default precision and device: "auto", as `crossearth predict`); for a
            loaded model, precision and device (when given) apply to a copy of it.
        chunks: output chunk size in px (one number, or (rows, columns)). Each chunk runs the
            windows that touch it with the rest of their batches, so windows at chunk edges
            run once per chunk they touch. Default: the input's spatial chunks, grouped until
            they span at least 4 windows a side (a NumPy-backed array: one chunk).

    Returns:
        A DataArray `classes` (y, x) uint8 of class ids, 255 where the input is nodata
        (`_FillValue`, `rio.nodata`), with the input's x/y coordinates, CRS and transform
        (`spatial_ref`), and `class_names`, `palette` ([R, G, B] per class), `flag_values` and
        `flag_meanings` (CF) attributes. With `scores=True`, a Dataset of `classes` and
        `scores` (class, y, x) float32, the model's mean window scores (NaN where nodata).
        Dask-backed for a Dask-backed input (nothing computed yet), NumPy-backed otherwise.

    Raises:
        InputError: the `crossearth[dask]` extra is missing; `data_array` is not a DataArray of
            three dimensions (band and two spatial ones) of real numbers; the bands the model
            needs are missing or cannot be chosen; an option is out of range.
        CheckpointError, CheckpointNotFoundError, WeightsUnavailableError, ConfigError: the
            model cannot be loaded (as `load_model`).
    """
    xarray, dask_array = require_extra()
    from crossearth.dataarray.build import build

    return build(
        xarray, dask_array, data_array, model, scores=scores, bands=bands, scale=scale,
        nodata=nodata, tile=tile, stride=stride, batch_size=batch_size, blend=blend, tta=tta,
        precision=precision, device=device, config=config, backbone=backbone,
        download=download, chunks=chunks,
    )  # fmt: skip


__all__ = ["segment"]

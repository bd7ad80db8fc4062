"""The one GeoTIFF factory of the tests (fixture `geotiff` in tests/geo/conftest.py).

`write_geotiff` writes a [bands, H, W] array with any georeferencing the tests need (CRS +
transform, a transform alone, GCPs, RPCs, none), nodata, an internal mask, alpha, colour
interpretations and band descriptions, then reads the metadata back and asserts it is what
was asked: a test built on a file that silently lost its metadata would prove nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp


def write_geotiff(
    path: Path,
    data: np.ndarray,
    *,
    crs: Any = None,
    transform: Any = None,
    nodata: float | None = None,
    colorinterp: Sequence[ColorInterp] | None = None,
    descriptions: Sequence[str | None] | None = None,
    photometric: str | None = None,
    alpha: bool = False,
    internal_mask: np.ndarray | None = None,
    gcps: tuple[list, Any] | None = None,
    rpcs: Any = None,
    driver: str = "GTiff",
) -> Path:
    """Write `data` ([bands, H, W]) to `path` and check that the metadata reads back."""
    count, height, width = data.shape
    profile: dict[str, Any] = {
        "driver": driver,
        "height": height,
        "width": width,
        "count": count,
        "dtype": data.dtype.name,
        "nodata": nodata,
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if photometric:
        profile["photometric"] = photometric
    if alpha or (colorinterp is not None and colorinterp[-1] == ColorInterp.alpha):
        profile["alpha"] = "YES"  # GTiff marks alpha only through this creation option
    env = rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True)
    with env, rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if colorinterp is not None:
            dst.colorinterp = list(colorinterp)
        for i, text in enumerate(descriptions or (), start=1):
            if text is not None:
                dst.set_band_description(i, text)
        if internal_mask is not None:
            dst.write_mask(np.where(internal_mask, 255, 0).astype(np.uint8))
        if gcps is not None:
            dst.gcps = gcps
        if rpcs is not None:
            dst.rpcs = rpcs
    with rasterio.open(path) as ds:
        assert ds.shape == (height, width) and ds.count == count
        if crs is not None:
            assert ds.crs == crs
        if colorinterp is not None:
            assert list(ds.colorinterp) == list(colorinterp)
        if descriptions is not None:
            assert [d or None for d in ds.descriptions] == list(descriptions)
        if gcps is not None:
            assert len(ds.gcps[0]) == len(gcps[0]) and ds.gcps[1] == gcps[1]
        if rpcs is not None:
            assert ds.rpcs is not None
    return path


def blocky_scene(path: Path, seed: int, height: int = 70, width: int = 90) -> Path:
    """A 3-band uint8 UTM GeoTIFF of random 16 x 16 blocks (labels vary), folders made."""
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    base = np.random.default_rng(seed).integers(1, 256, (3, height // 16 + 1, width // 16 + 1))
    data = np.kron(base, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_geotiff(
        Path(path), data, crs=CRS.from_epsg(32632), transform=from_origin(5e5, 5.8e6, 0.3, 0.3)
    )

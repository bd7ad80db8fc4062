"""`--match-gsd`: run the model at its training ground-sample distance, map the result back.

The input is resampled on the fly (bilinear, GDAL WarpedVRT: nothing is written) so its pixels have
the model's GSD; the class map is produced on that grid, then resampled to the input grid with
nearest neighbour, block by block. Memory stays bounded by the tile and the block size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from crossearth.errors import InputError
from crossearth.fileio import signals_deferred, temp_beside
from crossearth.geo.area import pixel_size_m
from crossearth.geo.raster import RasterSource
from crossearth.predict.writer import NODATA, ClassMapWriter, tif_to_png

BLOCK_ROWS = 256


@dataclass
class GsdResampler:
    source: RasterSource
    vrt: WarpedVRT
    reader: RasterSource
    factor: float

    @classmethod
    def create(cls, source: RasterSource, model: Any, enabled: bool) -> GsdResampler | None:
        if not enabled:
            return None
        target = model.config.gsd_m
        if not target:
            raise InputError("--match-gsd: this model records no training GSD (zoo models do)")
        ds = source.dataset
        factor = pixel_size_m(ds) / target  # > 1: the model needs finer pixels than the input
        if abs(factor - 1) < 0.01:
            return None
        height, width = max(1, round(ds.height * factor)), max(1, round(ds.width * factor))
        transform = ds.transform @ Affine.scale(ds.width / width, ds.height / height)
        vrt = WarpedVRT(
            ds,
            crs=ds.crs,
            transform=transform,
            width=width,
            height=height,
            resampling=Resampling.bilinear,
        )
        return cls(
            source,
            vrt,
            RasterSource(vrt, source.bands, source.scaling, source.band_reason, alpha=source.alpha),
            factor,
        )

    @property
    def grid(self) -> dict[str, Any]:
        return {"crs": self.vrt.crs, "transform": self.vrt.transform}

    def model_grid_path(self, final: Path) -> Path:
        with signals_deferred():  # only a name is wanted: no file may stay behind
            path = temp_beside(final, ".modelgrid.tif")
            path.unlink()
        return path

    def back_to_input(self, model_grid: Path, final: Path, model: Any, cog: bool) -> Path:
        """Nearest-neighbour resampling of the model-grid class map onto the input grid."""
        ds = self.source.dataset
        png = final.suffix.lower() == ".png"
        target = final
        if png:  # re-encoded as PNG from a hidden intermediate GeoTIFF
            with signals_deferred():
                target = temp_beside(final, ".tif")
                target.unlink()
        writer = ClassMapWriter(
            target,
            height=ds.height,
            width=ds.width,
            crs=ds.crs,
            transform=ds.transform,
            palette=model.config.palette,
            class_names=model.config.class_names,
            cog=cog and not png,
        )
        try:
            with rasterio.open(model_grid) as grid, WarpedVRT(
                grid, crs=ds.crs, transform=ds.transform, width=ds.width, height=ds.height,
                resampling=Resampling.nearest, nodata=NODATA,
            ) as vrt:  # fmt: skip
                valid_in = self.source
                for y0 in range(0, ds.height, BLOCK_ROWS):
                    rows = min(BLOCK_ROWS, ds.height - y0)
                    labels = vrt.read(1, window=Window(0, y0, ds.width, rows))
                    _, valid = valid_in.read(y0, y0 + rows, 0, ds.width)
                    labels[~valid] = NODATA
                    writer.write_rows(y0, labels, None)
            written = writer.commit()[0]
        except BaseException:
            writer.discard()
            raise
        finally:
            model_grid.unlink(missing_ok=True)
            self.vrt.close()
        if png:
            return tif_to_png(written, final, model.config.palette)
        return written

    def counts_on_input_grid(self, classes_file: Path, num_classes: int) -> np.ndarray:
        """Per-row class pixel counts of the final class map (for the area table)."""
        with rasterio.open(classes_file) as src:
            counts = np.zeros((src.height, num_classes), dtype=np.int64)
            for y0 in range(0, src.height, BLOCK_ROWS):
                rows = min(BLOCK_ROWS, src.height - y0)
                labels = src.read(1, window=Window(0, y0, src.width, rows))
                for c in range(num_classes):
                    counts[y0 : y0 + rows, c] = (labels == c).sum(axis=1)
        return counts

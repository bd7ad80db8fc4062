"""Open an input for prediction: bands, scaling, the reading settings, the resampled grid and
the streaming segmenter, shared by whole-scene runs (`crossearth.predict.raster`) and parts of
scenes (`crossearth.predict.split`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasterio.errors import NotGeoreferencedWarning

from crossearth.errors import InputError
from crossearth.geo.containers import is_subdataset
from crossearth.geo.raster import RasterSource
from crossearth.geo.remote import REMOTE_ENV, is_remote, remote_env
from crossearth.geo.stac import is_stac
from crossearth.predict.options import PredictOptions
from crossearth.predict.resample import GsdResampler
from crossearth.predict.stream import StreamingSegmenter

GDAL_CACHE_MB = 64


@contextmanager
def reading_env(image: Path | str) -> Iterator[None]:
    """GDAL settings for reading `image` window by window (remote inputs: range requests)."""
    import rasterio

    # A small GDAL block cache: windows are read once, row by row, so a big cache only costs memory.
    remote = is_remote(image)
    # STAC assets are usually remote; a subdataset name may name a remote container
    cloud = remote or is_stac(image) or ("/vsi" in str(image) and is_subdataset(image))
    cloud_env = (remote_env(str(image)) if remote else REMOTE_ENV) if cloud else {}
    env = {"GDAL_CACHEMAX": GDAL_CACHE_MB, **cloud_env}
    with warnings.catch_warnings(), rasterio.Env(**env):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # PNG/JPEG inputs are expected
        yield


@dataclass
class Prepared:
    """An input opened for prediction: its source, the reader the model runs on (the source, or
    its resampled grid with `match_gsd`), the resampler if any, and the segmenter."""

    source: RasterSource
    reader: Any
    resampler: GsdResampler | None
    segmenter: StreamingSegmenter


def _open_source(
    model: Any, image: Path | str, options: PredictOptions, bands: Any, scale: str | None
) -> RasterSource:
    """`RasterSource.open` with the model's band count; bands the model records (used without
    `--bands`) are named as such in the reason and errors, and a file whose recorded band roles
    differ from the model's band names is refused (`check_band_names`)."""
    from crossearth.data.bandstats import check_band_names

    config = model.config
    from_model = options.bands is None and bool(config.band_indices)
    source = RasterSource.open(image, config.bands, bands, scale, options.nodata,
                               count=config.in_chans, from_model=from_model,
                               model_band_names=config.band_names)  # fmt: skip
    if options.bands is None and config.band_names:
        try:
            check_band_names(source.dataset, source.bands, config.band_names)
        except InputError:
            source.close()
            raise
    return source


@contextmanager
def open_for_prediction(
    model: Any, image: Path | str, options: PredictOptions, before_resampling=None
) -> Iterator[Prepared]:
    """Open `image` with the bands and scaling the options (or the model) ask for, under the
    reading settings of `reading_env`; `before_resampling(source)` runs checks before the
    (possibly expensive) resampled grid is set up.

    Raises:
        InputError, InputNotFoundError: as `predict_raster`.
    """
    crop, stride = options.windows_for(model)
    # A fine-tuned model records how its training files were read; explicit options win.
    bands = options.bands if options.bands is not None else model.config.band_indices
    scale = options.scale if options.scale is not None else model.config.scale
    with reading_env(image), _open_source(model, image, options, bands, scale) as source:
        if before_resampling is not None:
            before_resampling(source)
        resampler = GsdResampler.create(source, model, options.match_gsd)
        segmenter = StreamingSegmenter(
            model,
            crop=crop,
            stride=stride,
            batch_size=options.batch_size,
            blend=options.blend,
            tta=options.tta,
            confidence=options.confidence,
        )
        reader = resampler.reader if resampler else source
        yield Prepared(source, reader, resampler, segmenter)

"""`predict_raster`: one image file in, a georeferenced class map and its companions out.

Outputs for an input `scene.tif` written as `OUT/scene_classes.tif`:
`scene_classes.tif` (uint8, nodata 255, colour map, class names), optionally
`scene_confidence.tif`, `scene_preview.png`, `scene_overlay.png`, polygons, and
`scene_summary.json` (class areas, timings, skipped windows, scaling, bands).
Everything is written under temporary names and renamed at the end; on error or Ctrl-C the
temporary files are removed.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.errors import NotGeoreferencedWarning

from crossearth.errors import InputError
from crossearth.fileio import atomic_path, temp_beside
from crossearth.geo.area import area_table, row_pixel_areas_m2
from crossearth.geo.raster import RasterSource
from crossearth.geo.render import decimated_shape, write_overlay, write_preview
from crossearth.geo.resample import GsdResampler
from crossearth.geo.stream import StreamingSegmenter
from crossearth.geo.writer import ClassMapWriter, tif_to_png

VECTOR_FORMATS = {"gpkg": ".gpkg", "geojson": ".geojson"}
GDAL_CACHE_MB = 64


@dataclass
class PredictOptions:
    """Everything `predict_raster` can be asked to do besides the model itself."""

    bands: tuple[int, ...] | None = None
    scale: str | None = None
    tile: int | None = None
    stride: int | None = None
    batch_size: int = 4
    blend: str = "mean"
    tta: str = "none"
    confidence: bool = False
    preview: bool = True
    overlay: bool = True
    vector: str | None = None  # "gpkg", "geojson" or an explicit path
    cog: bool = False
    match_gsd: bool = False
    png: bool | None = None  # class map as palette PNG (default: for inputs without georeferencing)
    extra_tags: dict[str, str] = field(default_factory=dict)


@dataclass
class OutputPaths:
    classes: Path
    confidence: Path
    preview: Path
    overlay: Path
    summary: Path
    vector: Path | None

    @classmethod
    def for_input(
        cls, image: Path, output: Path, options: PredictOptions, png: bool
    ) -> OutputPaths:
        """`output` is a folder (names derive from the input) or an explicit class-map file."""
        suffix = ".png" if png else ".tif"
        if output.suffix.lower() in {".tif", ".tiff", ".png"}:
            classes, stem = output, output.with_suffix("")
        else:
            stem = output / image.stem
            classes = Path(f"{stem}_classes{suffix}")
        vector = None
        if options.vector:
            fmt = options.vector.lower()
            vector = (
                Path(f"{stem}{VECTOR_FORMATS[fmt]}")
                if fmt in VECTOR_FORMATS
                else Path(options.vector)
            )
        base = str(stem) if output.suffix else f"{stem}"
        return cls(
            classes=classes,
            confidence=Path(f"{base}_confidence.tif"),
            preview=Path(f"{base}_preview.png"),
            overlay=Path(f"{base}_overlay.png"),
            summary=Path(f"{base}_summary.json"),
            vector=vector,
        )


def predict_raster(
    model: Any,
    image: str | Path,
    output: str | Path,
    options: PredictOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Segment one image file; returns the summary that is also written as JSON.

    `progress(done, total)` is called after every batch of windows.
    """
    import rasterio

    # A small GDAL block cache: windows are read once, row by row, so a big cache only costs memory.
    with warnings.catch_warnings(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # PNG/JPEG inputs are expected
        return _predict_raster(
            model, Path(image), Path(output), options or PredictOptions(), progress
        )


def _predict_raster(
    model: Any,
    image: Path,
    output: Path,
    options: PredictOptions,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    # A fine-tuned model records how its training files were read; explicit options win.
    bands = options.bands if options.bands is not None else model.config.band_indices
    scale = options.scale if options.scale is not None else model.config.scale
    with RasterSource.open(image, model.config.bands, bands, scale) as source:
        png = _wants_png(output, options, source)
        paths = OutputPaths.for_input(image, output, options, png)
        _check_outputs(paths, options, source)
        resampler = GsdResampler.create(source, model, options.match_gsd)
        segmenter = StreamingSegmenter(
            model,
            crop=(options.tile,) * 2 if options.tile else None,
            stride=(options.stride,) * 2 if options.stride else None,
            batch_size=options.batch_size,
            blend=options.blend,
            tta=options.tta,
            confidence=options.confidence,
        )
        reader = resampler.reader if resampler else source
        total = len(segmenter.windows(reader.height, reader.width))
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        if resampler:
            target = resampler.model_grid_path(paths.classes)
        elif png:  # the PNG is re-encoded from a hidden intermediate GeoTIFF
            target = temp_beside(paths.classes, ".tif")
            target.unlink()
        else:
            target = paths.classes
        grid = resampler.grid if resampler else _grid_of(source)
        writer = ClassMapWriter(
            target,
            height=reader.height,
            width=reader.width,
            crs=grid["crs"],
            transform=grid["transform"],
            palette=model.config.palette,
            class_names=model.config.class_names,
            confidence_path=paths.confidence if options.confidence and not resampler else None,
            cog=options.cog and not png and not resampler,
            tags={"model": str(getattr(model, "name", "")), **options.extra_tags},
        )
        try:
            stats = segmenter.run(reader, writer, progress=tick)
            written = writer.commit()
        except BaseException:
            writer.discard()
            raise
        classes_file = written[0]
        if resampler:
            classes_file = resampler.back_to_input(written[0], paths.classes, model, options.cog)
        elif png:
            classes_file = tif_to_png(written[0], paths.classes, model.config.palette)
        counts = stats.pixel_counts
        if resampler:  # areas on the input grid
            counts = resampler.counts_on_input_grid(classes_file, model.num_classes)
        summary = _summary(
            image, classes_file, source, model, options, stats, counts, started, resampler
        )
        created = [classes_file] + ([paths.confidence] if options.confidence else [])
        try:
            _write_companions(classes_file, source, model, options, paths, summary, created)
        except BaseException:  # the outputs of one input are a unit: all of them or none
            for path in created:
                path.unlink(missing_ok=True)
            raise
    return summary


def _wants_png(output: Path, options: PredictOptions, source: RasterSource) -> bool:
    """PNG class map: asked by the output name or option, else for inputs without georeferencing."""
    suffix = output.suffix.lower()
    if suffix == ".png":
        return True
    if suffix in {".tif", ".tiff"}:
        return False
    return options.png if options.png is not None else not source.georeferenced


def _grid_of(source: RasterSource) -> dict[str, Any]:
    return {"crs": source.dataset.crs, "transform": source.dataset.transform}


def _check_outputs(paths: OutputPaths, options: PredictOptions, source: RasterSource) -> None:
    folder = paths.classes.parent
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist")
    if options.vector and not source.georeferenced:
        raise InputError(f"--vector needs a georeferenced input; {source.dataset.name} has no CRS")
    if (
        options.vector
        and paths.vector is not None
        and paths.vector.suffix.lower() not in {".gpkg", ".geojson", ".json"}
    ):
        raise InputError(
            f"--vector must be gpkg, geojson, or a .gpkg/.geojson path, got {options.vector!r}"
        )
    if options.match_gsd and not source.georeferenced:
        raise InputError("--match-gsd needs a georeferenced input (its pixel size must be known)")
    if options.match_gsd and options.confidence:
        raise InputError("--confidence cannot be combined with --match-gsd yet")


def _summary(
    image, classes_file, source, model, options, stats, counts, started, resampler
) -> dict:
    ds = source.dataset
    areas = row_pixel_areas_m2(ds.transform, ds.crs, ds.height) if source.georeferenced else None
    megapixels = ds.height * ds.width / 1e6
    seconds = time.perf_counter() - started
    return {
        "input": str(image),
        "class_map": str(classes_file),
        "size": [ds.height, ds.width],
        "crs": ds.crs.to_string() if ds.crs else None,
        "bands": list(source.bands),
        "bands_reason": source.band_reason,
        "scaling": {
            "low": list(source.scaling.low),
            "high": list(source.scaling.high),
            "rule": source.scaling.describe(),
            # share of valid input values outside [low, high], clipped to 0 or 255 (overlaps of
            # windows are counted once per window)
            "clipped_fraction": source.clipped / source.considered if source.considered else 0.0,
        },
        "model": {
            "classes": list(model.config.class_names),
            "crop": list(model.config.inference.crop_size),
        },
        "options": {
            "blend": options.blend,
            "tta": options.tta,
            "batch_size": options.batch_size,
            "match_gsd": bool(resampler),
        },
        "windows": stats.windows,
        "skipped_windows": stats.skipped_windows,
        "nodata_pixels": int(ds.height * ds.width - counts.sum()),
        "classes": area_table(counts, areas, model.config.class_names),
        "seconds": {
            "total": seconds,
            "read": stats.seconds_read,
            "model": stats.seconds_model,
            "finish": stats.seconds_finish,
            "write": stats.seconds_write,
        },
        "megapixels_per_second": megapixels / seconds if seconds else None,
    }


def _write_companions(classes_file, source, model, options, paths, summary, created) -> None:
    """Preview, overlay, polygons and summary; every file written is appended to `created`."""
    palette = model.config.palette
    if options.preview:
        created.append(write_preview(classes_file, palette, paths.preview))
        summary["preview"] = str(paths.preview)
    if options.overlay:
        h, w = decimated_shape(source.height, source.width, 2048)
        created.append(
            write_overlay(source.read_decimated(h, w), classes_file, palette, paths.overlay)
        )
        summary["overlay"] = str(paths.overlay)
    if options.vector:
        from crossearth.geo.vectorize import vectorize_class_map

        summary["polygons"] = vectorize_class_map(
            classes_file, paths.vector, model.config.class_names
        )
        created.append(paths.vector)
        summary["vector"] = str(paths.vector)
    if options.confidence:
        summary["confidence"] = str(paths.confidence)
    with atomic_path(paths.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=_json_default))
    created.append(paths.summary)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")

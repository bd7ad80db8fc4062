"""`predict_raster`: one image file in, a georeferenced class map and its companions out.

Outputs for an input `scene.tif` written as `OUT/scene_classes.tif`:
`scene_classes.tif` (uint8, nodata 255, colour map, class names), optionally
`scene_confidence.tif`, `scene_preview.png`, `scene_overlay.png`, polygons, and
`scene_summary.json` (class areas, timings, skipped windows, scaling, bands).
Everything is written under temporary names (hidden: they start with a dot) and renamed at the
end; on error, Ctrl-C or a termination signal (the CLI turns SIGTERM, SIGHUP, SIGUSR1/2 ... into
an exception) the temporary files and this input's finished outputs are removed. No output is
ever written over the input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import InputError
from crossearth.fileio import atomic_path, recording, signals_deferred, temp_beside
from crossearth.geo.area import area_table, row_pixel_areas_m2
from crossearth.geo.bands import dataset_label
from crossearth.geo.containers import container_file, is_subdataset
from crossearth.geo.containers import naming_path as subdataset_naming
from crossearth.geo.names import safe_name
from crossearth.geo.raster import RasterSource
from crossearth.geo.remote import is_remote, mask_url, naming_path
from crossearth.geo.render import decimated_shape, write_overlay, write_preview
from crossearth.geo.scaling import describe_transform
from crossearth.numbers import round_sig
from crossearth.numbers import seconds as to_seconds
from crossearth.predict.options import PredictOptions
from crossearth.predict.plan import OutputPaths
from crossearth.predict.source import open_for_prediction, reading_env
from crossearth.predict.split import PartResult, assemble
from crossearth.predict.writer import ClassMapWriter, tif_to_png

__all__ = ["OutputPaths", "PredictOptions", "open_for_prediction", "predict_raster"]


def predict_raster(
    model: Any,
    image: str | Path,
    output: str | Path,
    options: PredictOptions | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    stem: str | None = None,
    parts: Sequence[PartResult] | None = None,
) -> dict[str, Any]:
    """Segment one image file; returns the summary that is also written as JSON.

    `output` is a folder (outputs named after `stem`, default the input's stem: see
    `crossearth.predict.plan`) or an explicit class-map file (.tif/.tiff/.png). The class map
    carries the input's georeferencing (CRS and transform, GCPs, RPCs, or a world-file
    transform). `progress(done, total)` is called after every batch of windows. Images of any
    size from 1 x 1 px are accepted (windows smaller than the model takes are padded).
    With `parts` (every part of the scene, from `crossearth.predict.split.predict_part`), the rows
    are taken from the parts instead of being segmented: the outputs are those of a whole run.

    Raises:
        InputNotFoundError: (a `FileNotFoundError`) `image` does not exist.
        InputError: (a `ValueError`) the image is unreadable or its bands cannot be chosen, an
            output would be written over the input, the output folder's parent is missing, or an option
            does not fit this input or model (e.g. `--vector` without georeferencing).
        OSError: writing failed (e.g. disk full); nothing of this input's outputs is left.
    """
    # a URL or a subdataset name (NETCDF:"f.nc":var) stays a string
    image = str(image) if is_subdataset(image) else image if is_remote(image) else Path(image)
    with reading_env(image):
        if stem is None and isinstance(image, str):
            stem = safe_name(
                (subdataset_naming(image) if is_subdataset(image) else naming_path(image)).stem
            )
        output = Path(output)
        if not output.suffix and output.parent.is_dir():
            output.mkdir(exist_ok=True)  # as the CLI does: the folder, not missing parents
        return _predict_raster(
            model, image, output, options or PredictOptions(), progress, stem, parts
        )


def _predict_raster(
    model: Any,
    image: Path | str,
    output: Path,
    options: PredictOptions,
    progress: Callable[[int, int], None] | None,
    stem: str | None,
    parts: Sequence[PartResult] | None,
) -> dict[str, Any]:
    started = time.perf_counter()
    planned: dict[str, Any] = {}

    def plan(source: RasterSource) -> None:
        planned["png"] = _wants_png(output, options, source)
        planned["paths"] = OutputPaths.for_input(
            image, output, options.vector, planned["png"], stem
        )
        _check_outputs(image, planned["paths"], options, source)

    with open_for_prediction(model, image, options, plan) as prepared:
        source, reader, resampler = prepared.source, prepared.reader, prepared.resampler
        segmenter = prepared.segmenter
        png, paths = planned["png"], planned["paths"]
        georef = source.georef
        total = len(segmenter.windows(reader.height, reader.width))
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        if resampler:
            target = resampler.model_grid_path(paths.classes)
        elif png:  # the PNG is re-encoded from a hidden intermediate GeoTIFF
            with signals_deferred():  # only a name is wanted: no file may stay behind
                target = temp_beside(paths.classes, ".tif")
                target.unlink()
        else:
            target = paths.classes
        writer = None
        # every file renamed into place below is noted in `created` as it is renamed
        with recording([]) as created:
            try:
                try:
                    # a signal while the temporary files are made would leave them unknown to cleanup
                    with signals_deferred():
                        writer = ClassMapWriter(
                            target,
                            height=reader.height,
                            width=reader.width,
                            crs=resampler.grid["crs"] if resampler else None,
                            transform=resampler.grid["transform"] if resampler else None,
                            georef=None if resampler else georef,
                            palette=model.config.palette,
                            class_names=model.config.class_names,
                            confidence_path=paths.confidence
                            if options.confidence and not resampler
                            else None,
                            cog=options.cog and not png and not resampler,
                            tags={"model": str(getattr(model, "name", "")), **options.extra_tags},
                        )
                    if parts:  # the rows were segmented by the parts: replay them
                        stats = assemble(
                            parts, writer, reader.height, reader.width, model.num_classes
                        )
                        source.clipped = sum(p.clipped for p in parts)
                        source.considered = sum(p.considered for p in parts)
                    else:
                        stats = segmenter.run(reader, writer, progress=tick)
                    written = writer.commit()
                except BaseException:
                    if writer is not None:
                        writer.discard()
                    raise
                classes_file = written[0]
                if resampler:
                    classes_file = resampler.back_to_input(
                        written[0], paths.classes, model, options.cog
                    )
                elif png:
                    classes_file = tif_to_png(written[0], paths.classes, model.config.palette)
                    if georef.transform is not None:
                        write_world_file(classes_file, georef.transform)
                counts = stats.pixel_counts
                if resampler:  # areas on the input grid
                    counts = resampler.counts_on_input_grid(classes_file, model.num_classes)
                summary = _summary(
                    image, classes_file, source, model, options, stats, counts, started, resampler
                )
                if parts:
                    _add_parts(summary, parts, source)
                _write_companions(classes_file, source, model, options, paths, summary)
            except BaseException:  # the outputs of one input are a unit: all of them or none
                for path in created:  # (the hidden intermediates among them are gone already)
                    path.unlink(missing_ok=True)
                raise
    return summary


def _add_parts(summary: dict[str, Any], parts: Sequence[PartResult], source: Any) -> None:
    """A split scene's summary: `seconds.total` is the wall time from the first part's start to
    the end of the assembly (the parts ran side by side), `seconds.parts` the parts' seconds
    added up over the processes, `seconds.assemble` the assembly's; the number of parts and the
    windows they ran (with the overlap at the cuts)."""
    seconds = summary["seconds"]
    seconds["assemble"] = seconds["total"]
    seconds["parts"] = to_seconds(sum(p.seconds["total"] for p in parts))
    first = min(p.started for p in parts)
    seconds["total"] = to_seconds(max(time.time() - first, seconds["assemble"]))
    summary["parts"] = len(parts)
    summary["windows_run"] = sum(p.windows_run for p in parts)
    rate = source.height * source.width / 1e6 / (seconds["total"] or 1e-9)
    summary["megapixels_per_second"] = round_sig(rate)


def write_world_file(image: Path, transform: Any) -> Path:
    """Write the ESRI world file of `image` (`.pgw` for .png, `.tfw` for .tif, ...), atomically.

    Six lines: x size, rotation terms, y size (negative for north-up), then the map position of
    the centre of the top-left pixel.
    """
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    suffix = image.suffix.lower()
    world = image.with_suffix(f".{suffix[1]}{suffix[-1]}w")
    lines = [a, d, b, e, c + a / 2 + b / 2, f + d / 2 + e / 2]
    with atomic_path(world) as tmp:
        tmp.write_text("".join(f"{v!r}\n" for v in lines))
    return world


def _wants_png(output: Path, options: PredictOptions, source: RasterSource) -> bool:
    """PNG class map: asked by the output name or option, else for inputs without georeferencing."""
    suffix = output.suffix.lower()
    if suffix == ".png":
        return True
    if suffix in {".tif", ".tiff"}:
        return False
    return options.png if options.png is not None else not source.georeferenced


def _check_outputs(
    image: Path | str, paths: OutputPaths, options: PredictOptions, source: RasterSource
) -> None:
    folder = paths.classes.parent
    if not folder.is_dir():
        raise InputError(f"output folder {folder} does not exist")
    read = image if isinstance(image, Path) else container_file(image)  # the file read
    for path in paths.all():
        if read is not None and path.exists() and read.exists() and path.samefile(read):
            raise InputError(
                f"{path} would be written over the input {image}; choose another output"
            )
    kind = source.georef.kind
    if options.vector and kind is None:
        raise InputError(
            f"--vector needs a georeferenced input (a CRS and transform, GCPs, RPCs or a world "
            f"file); {dataset_label(source.dataset)} has none"
        )
    if options.match_gsd and kind != "crs+transform":
        raise InputError(
            "--match-gsd needs an input georeferenced by a CRS and an affine transform (its pixel "
            f"size must be known); {dataset_label(source.dataset)} has {_KIND_NAMES[kind]}"
        )


_KIND_NAMES = {
    None: "no georeferencing",
    "gcps": "ground control points only",
    "rpcs": "RPCs only",
    "transform": "a transform without a CRS",
    "crs+transform": "a CRS and transform",
}


def _precision_name(model: Any) -> str:
    """fp32 / bf16 / fp16 of a PyTorch model; "onnx fp32" / "onnx int8" for an ONNX Runtime
    runner."""
    import torch

    if isinstance(getattr(model, "precision", None), str):  # an ONNX Runtime runner
        return f"onnx {model.precision}"

    dtype = getattr(model, "dtype", None)
    names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    return names.get(dtype, "onnx" if dtype is None else str(dtype))


def _summary(
    image, classes_file, source, model, options, stats, counts, started, resampler
) -> dict:
    ds = source.dataset
    georef = source.georef
    ground = georef.ground(ds.height, ds.width)
    areas = None
    if ground is not None and ground[0] is not None:
        areas = row_pixel_areas_m2(ground[1], ground[0], ds.height, width=ds.width)
    megapixels = ds.height * ds.width / 1e6
    seconds = time.perf_counter() - started
    crs = ground[0] if ground is not None else None
    (tile, _), (stride, _) = options.windows_for(model)
    return {
        "input": mask_url(image) if isinstance(image, str) else str(image),
        "class_map": str(classes_file),
        "size": [ds.height, ds.width],
        "crs": crs.to_string() if crs else None,
        "georeferencing": georef.kind,
        "bands": list(source.bands),
        "bands_reason": source.band_reason,
        "mask_bands": list(source.alpha),
        "scaling": {
            "low": list(source.scaling.low),
            "high": list(source.scaling.high),
            "rule": "; ".join(
                filter(None, (describe_transform(source.values), source.scaling.describe()))
            ),
            # share of valid input values outside [low, high], clipped to 0 or 255 (overlaps of
            # windows are counted once per window)
            "clipped_fraction": round_sig(source.clipped / source.considered)
            if source.considered
            else 0.0,
        },
        "model": {
            "classes": list(model.config.class_names),
            "crop": list(model.config.inference.crop_size),
            # what ran: labels equal `model.predict` exactly in fp32 with the default blend
            "device": str(getattr(model, "device", "cpu")),
            "precision": _precision_name(model),
            # why it runs in that precision (--precision auto records its choice here)
            "precision_reason": getattr(model, "precision_reason", None),
        },
        "options": {
            "tile": tile,
            "stride": stride,
            "blend": options.blend,
            "tta": options.tta,
            "batch_size": options.batch_size,
            "match_gsd": bool(resampler),
        },
        "windows": stats.windows,
        "skipped_windows": stats.skipped_windows,
        "nodata_pixels": int(ds.height * ds.width - counts.sum()),
        # ground areas on the CRS's ellipsoid (projected CRSs: divided by the areal scale factor)
        "classes": area_table(counts, areas, model.config.class_names),
        "seconds": {  # rounded to ms, as `crossearth.numbers` says
            "total": to_seconds(seconds),
            "read": to_seconds(stats.seconds_read),
            "model": to_seconds(stats.seconds_model),
            "finish": to_seconds(stats.seconds_finish),
            "write": to_seconds(stats.seconds_write),
        },
        "megapixels_per_second": round_sig(megapixels / seconds) if seconds else None,
    }


def _write_companions(classes_file, source, model, options, paths, summary) -> None:
    """Preview, overlay, polygons and summary (each published atomically, so noted by the
    caller's `recording`)."""
    palette = model.config.palette
    if options.preview:
        write_preview(classes_file, palette, paths.preview)
        summary["preview"] = str(paths.preview)
    if options.overlay:
        h, w = decimated_shape(source.height, source.width, 2048)
        write_overlay(source.read_decimated(h, w), classes_file, palette, paths.overlay)
        summary["overlay"] = str(paths.overlay)
    if options.vector:
        from crossearth.geo.vectorize import vectorize_class_map

        crs, transform = source.georef.ground(source.height, source.width)
        summary["polygons"] = vectorize_class_map(
            classes_file, paths.vector, model.config.class_names, crs=crs, transform=transform
        )
        summary["vector"] = str(paths.vector)
    if options.confidence:
        summary["confidence"] = str(paths.confidence)
    with atomic_path(paths.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")

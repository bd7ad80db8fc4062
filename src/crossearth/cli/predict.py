"""`crossearth predict`: images in, georeferenced class maps out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from crossearth.cli.app import (
    BackboneOpt,
    ConfigOpt,
    DownloadOpt,
    ModelOpt,
    _report_load,
    app,
    console,
)
from crossearth.errors import InputError


@app.command()
def predict(
    inputs: Annotated[
        list[Path], typer.Argument(help="GeoTIFF/COG/VRT, PNG or JPEG files, or folders of them.")
    ],
    model: ModelOpt,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Class-map file (.tif/.png) or output folder.")
    ],
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    bands: Annotated[
        str | None,
        typer.Option(
            help="Three 1-based bands, e.g. 4,1,2 (default: from the model and the file)."
        ),
    ] = None,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Non-uint8 scaling: auto (p2,p98), none, pLO,pHI, MIN,MAX, or per band 'a,b;c,d;e,f'."
        ),
    ] = None,
    tile: Annotated[
        int | None, typer.Option(min=16, help="Window size (default: the model's crop).")
    ] = None,
    stride: Annotated[
        int | None, typer.Option(min=1, help="Window stride (default: the model's).")
    ] = None,
    blend: Annotated[
        str, typer.Option(help="mean (official), cosine or gaussian window weights.")
    ] = "mean",
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, flip or d4.")] = "none",
    confidence: Annotated[
        bool, typer.Option(help="Also write a confidence raster (percent).")
    ] = False,
    preview: Annotated[bool, typer.Option(help="Write a PNG preview of the class map.")] = True,
    overlay: Annotated[
        bool, typer.Option(help="Write a PNG overlay of the classes on the image.")
    ] = True,
    vector: Annotated[
        str | None, typer.Option(help="Polygons: gpkg, geojson, or a .gpkg/.geojson path.")
    ] = None,
    cog: Annotated[
        bool, typer.Option(help="Write the class map as a Cloud-Optimized GeoTIFF.")
    ] = False,
    match_gsd: Annotated[
        bool, typer.Option(help="Resample to the model's training GSD and back.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto (bf16 where fast), fp32 (parity) or bf16.")
    ] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 4,
    download: DownloadOpt = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or per-file lines.")
    ] = False,
) -> None:
    """Segment images into georeferenced class maps, streaming windows from disk.

    Several inputs or folders need -o to be a folder. Under torchrun (RANK/WORLD_SIZE set), the
    files are shared out between the processes.
    """
    from crossearth.geo.predict import PredictOptions
    from crossearth.imageio import parse_bands
    from crossearth.parallel import shard
    from crossearth.weights import load_model

    files = _expand_inputs(inputs)
    options = PredictOptions(
        bands=parse_bands(bands), scale=scale, tile=tile, stride=stride, batch_size=batch_size,
        blend=blend, tta=tta, confidence=confidence, preview=preview, overlay=overlay, vector=vector,
        cog=cog, match_gsd=match_gsd,
        png={".png": True, ".tif": False, ".tiff": False}.get(output.suffix.lower()),
    )  # fmt: skip
    _check_predict_options(options, output, files)
    _probe_inputs(files, model, options.bands)
    mine, rank, world = shard(files)
    if world > 1 and device == "auto":
        device = _local_device()
    if model.lower().endswith(".onnx"):  # an exported file, run by ONNX Runtime
        from crossearth.export.runner import OnnxSegmenter

        net = OnnxSegmenter(model, device=device)
    else:
        net = load_model(
            model,
            config=config,
            backbone=backbone,
            device=device,
            precision=precision,
            download=download,
        )
    if not quiet:
        _report_load(net)
    _run_predictions(net, mine, output, options, quiet, rank, world)


def _expand_inputs(inputs: list[Path]) -> list[Path]:
    from crossearth.geo.raster import RASTER_SUFFIXES

    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
            if not found:
                raise InputError(
                    f"folder {item} holds no images ({', '.join(sorted(RASTER_SUFFIXES))})"
                )
            files.extend(found)
        else:
            files.append(item)
    return files


def _check_predict_options(options, output: Path, files: list[Path]) -> None:
    from crossearth.geo.stream import BLENDS, TTAS

    if options.blend not in BLENDS:
        raise InputError(f"--blend must be one of {', '.join(BLENDS)}")
    if options.tta not in TTAS:
        raise InputError(f"--tta must be one of {', '.join(TTAS)}")
    if output.suffix:
        if len(files) > 1:
            raise InputError("several inputs need an output folder (-o DIR), not a single file")
        if output.suffix.lower() not in {".tif", ".tiff", ".png"}:
            raise InputError(f"output {output} must be a .tif or .png file, or a folder")
        if not output.parent.is_dir():
            raise InputError(f"output folder {output.parent} does not exist")
        if options.vector and options.vector.lower() not in {"gpkg", "geojson"} and len(files) > 1:
            raise InputError("--vector PATH works with one input; use --vector gpkg for several")
    else:
        if output.exists() and not output.is_dir():
            raise InputError(f"output {output} exists and is not a folder")
        if not output.parent.is_dir():
            raise InputError(f"the parent folder of {output} does not exist")
        output.mkdir(exist_ok=True)


def _probe_inputs(files: list[Path], model: str, bands) -> None:
    """Open every input and check its bands before spending time loading the model."""
    from crossearth.geo.bands import choose_bands
    from crossearth.geo.raster import open_raster
    from crossearth.weights.zoo import ZOO

    model_bands = ZOO[model].bands if model in ZOO else "RGB"
    for path in files:
        with open_raster(path) as ds:
            if bands is not None or ds.count < 4:
                choose_bands(ds, model_bands, bands)


def _local_device() -> str:
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return "cpu"


def _run_predictions(net, files, output, options, quiet: bool, rank: int, world: int) -> None:
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from crossearth.geo.predict import predict_raster

    tag = escape(f"[rank {rank}/{world}] ") if world > 1 else ""
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        for path in files:
            task = bar.add_task(f"{tag}{escape(path.name)}", total=None, rate="")
            start = time.perf_counter()

            def progress(done: int, total: int, task=task, start=start) -> None:
                rate = done / max(time.perf_counter() - start, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{rate:.1f}/s")

            summary = predict_raster(net, path, output, options, progress=progress)
            bar.remove_task(task)
            if not quiet:
                skipped = summary["skipped_windows"]
                console.print(
                    f"{tag}{escape(str(path))} -> {escape(summary['class_map'])} ({summary['seconds']['total']:.1f} s, "
                    f"{summary['windows']} windows, {skipped} skipped as nodata)",
                    soft_wrap=True, highlight=False,
                )  # fmt: skip

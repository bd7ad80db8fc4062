"""The `crossearth` command. It only parses arguments and calls the library."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossearth.errors import CrossEarthError, InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="CrossEarth: domain-generalizable remote-sensing segmentation, in pure PyTorch.",
)
console = Console(stderr=True)

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Zoo name, official .pth or our .safetensors.")
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        help="Preset name, our JSON config, or the official model config (JSON or dumped .py)."
    ),
]
BackboneOpt = Annotated[
    Path | None,
    typer.Option(
        help="Converted DINOv2 backbone for checkpoints that hold only Rein+head weights."
    ),
]
DownloadOpt = Annotated[
    bool, typer.Option(help="Allow downloading zoo files from the Hugging Face Hub.")
]


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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from crossearth.geo.predict import predict_raster

    tag = f"[rank {rank}/{world}] " if world > 1 else ""
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        for path in files:
            task = bar.add_task(f"{tag}{path.name}", total=None, rate="")
            start = time.perf_counter()

            def progress(done: int, total: int, task=task, start=start) -> None:
                rate = done / max(time.perf_counter() - start, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{rate:.1f}/s")

            summary = predict_raster(net, path, output, options, progress=progress)
            bar.remove_task(task)
            if not quiet:
                skipped = summary["skipped_windows"]
                console.print(
                    f"{tag}{path} -> {summary['class_map']} ({summary['seconds']['total']:.1f} s, "
                    f"{summary['windows']} windows, {skipped} skipped as nodata)",
                    soft_wrap=True, highlight=False,
                )  # fmt: skip


def _report_load(net) -> None:
    report = getattr(net, "load_report", None)
    if report is None:
        return
    console.print(f"model loaded: {report.summary()}; {net.config.num_classes} classes")
    for note in report.notes:
        console.print(f"  note: {note}")
    for key in report.unexpected:
        console.print(f"  [yellow]warning[/]: unexpected key ignored: {key}")


@app.command()
def models() -> None:
    """List the model zoo: names, classes, input bands, source domain, files."""
    from crossearth.weights.zoo import ZOO, checkpoint_dir

    table = Table(title=f"CrossEarth model zoo (files go in {checkpoint_dir()})")
    for column in ("name", "classes", "bands", "crop", "source domain", "file"):
        table.add_column(column)
    for entry in ZOO.values():
        crop = entry.preset.split("-")[-1]
        table.add_row(
            entry.name,
            f"{entry.num_classes}: {', '.join(entry.classes.names)}",
            entry.bands,
            crop,
            entry.source_domain,
            entry.filename,
        )
    Console().print(table)


@app.command()
def convert(
    checkpoint: Annotated[str, typer.Argument(help="Official .pth (or zoo name) to convert.")],
    output: Annotated[
        Path, typer.Option("--output", "--out", "-o", help="Output .safetensors file.")
    ],
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    download: DownloadOpt = False,
) -> None:
    """Convert an official checkpoint (plus backbone) into one self-describing .safetensors file."""
    from crossearth.weights import load_model, save_model

    if output.suffix != ".safetensors":
        raise InputError(f"output {output} must end in .safetensors")
    net = load_model(checkpoint, config=config, backbone=backbone, download=download)
    _report_load(net)
    save_model(net, output)
    console.print(f"wrote {output}")


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo outputs.")
    ] = Path("demo_output"),
    reference: Annotated[
        Path | None, typer.Option(help="Official reference tensors (default: ../shared/reference).")
    ] = None,
) -> None:
    """Parity against the official reference tensors, then a prediction on a generated scene."""
    from crossearth.demo import run_demo

    run_demo(output, reference, console=Console())


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        app(standalone_mode=False)
    except CrossEarthError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except OSError as exc:  # disk full, permission denied, ...: the outputs were cleaned up
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()

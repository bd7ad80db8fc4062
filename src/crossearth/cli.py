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
    images: Annotated[list[Path], typer.Argument(help="PNG, JPEG or TIFF images.")],
    model: ModelOpt,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .png/.tif, or a folder.")],
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    bands: Annotated[
        str | None, typer.Option(help="Three 1-based bands to use, e.g. 4,1,2.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(help="fp32 (parity), bf16, or auto.")] = "fp32",
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 4,
    download: DownloadOpt = False,
) -> None:
    """Segment images and write class maps (palette PNG, or GeoTIFF for .tif outputs)."""
    from crossearth.imageio import parse_bands, probe_image, read_image, write_label_map
    from crossearth.weights import load_model

    band_list = parse_bands(bands)
    targets = _output_paths(images, output)
    for image in images:  # fail on a bad input before spending time on the model
        probe_image(image, band_list)
    net = load_model(
        model,
        config=config,
        backbone=backbone,
        device=device,
        precision=precision,
        download=download,
    )
    _report_load(net)
    for image, target in zip(images, targets, strict=True):
        loaded = read_image(image, band_list)
        start = time.perf_counter()
        result = net.predict(loaded.pixels, batch_size=batch_size)
        write_label_map(target, result.labels, net.config.palette, loaded.profile)
        console.print(f"{image} -> {target} ({time.perf_counter() - start:.2f} s)")


def _output_paths(images: list[Path], output: Path) -> list[Path]:
    if output.suffix.lower() in {".png", ".tif", ".tiff"}:
        if len(images) > 1:
            raise InputError("several inputs need an output folder, not a single file")
        return [output]
    if output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    suffix = {
        image: ".tif" if image.suffix.lower() in {".tif", ".tiff"} else ".png" for image in images
    }
    return [output / f"{image.stem}_classes{suffix[image]}" for image in images]


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

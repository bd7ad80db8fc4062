"""`crossearth models`, `convert` and `demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossearth.cli.app import BackboneOpt, ConfigOpt, DownloadOpt, _report_load, app, console
from crossearth.errors import InputError


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
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the outputs (default: demo_output, --quick: demo_output/quick).",
        ),
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Official reference tensors (default: ../shared/reference).")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="A tiny budget (seconds): checks the pipeline only.")
    ] = False,
) -> None:
    """Parity with the official code, then train/evaluate Rein vs CrossEarth on SynthEarth domains."""
    from crossearth.demo import FULL_OUTPUT, QUICK, QUICK_OUTPUT, run_demo

    if output is None:
        output = QUICK_OUTPUT if quick else FULL_OUTPUT
    run_demo(output, reference, console=Console(), budget=QUICK if quick else None)

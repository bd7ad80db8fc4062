"""`crossearth models`, `convert` and `demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossearth.cli.app import (
    BackboneOpt,
    ConfigOpt,
    DownloadOpt,
    _report_load,
    app,
    console,
    stdout_console,
)
from crossearth.errors import InputError


@app.command()
def models(
    wide: Annotated[
        bool, typer.Option("--wide", "-w", help="Also show source domains and file names.")
    ] = False,
) -> None:
    """List the model zoo: names, classes, bands, GSD, crop, which files are on this machine."""
    from rich import box

    from crossearth.weights.zoo import BACKBONE_FILES, ZOO, checkpoint_dir, is_present

    out = stdout_console()
    wide = wide or out.width >= 150
    table = Table(
        title=f"CrossEarth model zoo (files go in {checkpoint_dir()})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("name", no_wrap=True, min_width=max(len(n) for n in ZOO))
    # at 80 columns the class list is cut (its count stays): never the names one types
    table.add_column("classes", no_wrap=True, overflow="ellipsis", max_width=None if wide else 11)
    table.add_column("bands", no_wrap=True)
    table.add_column("GSD m", no_wrap=True, justify="right")
    table.add_column("crop", no_wrap=True, justify="right")
    table.add_column("here", no_wrap=True)
    table.add_column("needs backbone", no_wrap=True)
    if wide:
        table.add_column("source domain")
        table.add_column("file", no_wrap=True)
    backbone_here = {f: is_present(f) for f in BACKBONE_FILES.values()}
    for entry in ZOO.values():
        row = [
            entry.name,
            f"{entry.num_classes}: {', '.join(entry.classes.names)}",
            entry.bands,
            "?" if entry.gsd_m is None else f"{entry.gsd_m:g}",
            entry.preset.split("-")[-1],
            "yes" if is_present(entry.filename) else "no",
            "yes (" + ("here" if backbone_here[entry.backbone_filename] else "missing") + ")",
        ]
        if wide:
            row += [entry.source_domain, entry.filename]
        table.add_row(*row)
    out.print(table)
    out.print(
        "Released files hold only Rein and head weights: put the DINOv2 backbone beside them "
        f"({BACKBONE_FILES['vitl-512']} for crop 512, {BACKBONE_FILES['vitl-1024']} for 1024). "
        + ("" if wide else "Source domains and file names: crossearth models --wide."),
        highlight=False,
    )
    _print_backbones(out)


def _print_backbones(out: Console) -> None:
    """The backbones shipped inside the package (`train --backbone NAME`)."""
    from crossearth.weights.backbone_file import BACKBONES, read_backbone_record

    for name, path in BACKBONES.items():
        if not path.is_file():
            out.print(f"shipped backbone {name}: missing from this installation", highlight=False)
            continue
        record = read_backbone_record(path)
        out.print(
            f"shipped backbone {name}: {record.preset}, pretrained self-supervised "
            f"({record.record.get('objective', '?')}, {record.record.get('steps', '?')} steps) on "
            f"{record.record.get('trained_on', 'unlabelled imagery')}; "
            f"use with train --backbone {name} --set freeze_backbone=true",
            highlight=False,
        )


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
        Path | None,
        typer.Option(
            help="Official reference folder (default: tests/data/reference of this clone)."
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="A tiny budget (seconds): checks the pipeline only.")
    ] = False,
) -> None:
    """Parity with the official code, then train/evaluate Rein vs CrossEarth on SynthEarth domains."""
    from crossearth.demo import FULL_OUTPUT, QUICK, QUICK_OUTPUT, run_demo

    if output is None:
        output = QUICK_OUTPUT if quick else FULL_OUTPUT
    from crossearth.cli.signals import saying_what_is_kept

    with saying_what_is_kept():
        run_demo(output, reference, console=stdout_console(), budget=QUICK if quick else None)

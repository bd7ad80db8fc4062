"""`crossearth synth`: generate SynthEarth domains (procedural, georeferenced) on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossearth.cli.app import app, stdout_console
from crossearth.errors import InputError


@app.command()
def synth(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Data root; domains go to OUT/synthearth/<name>.")
    ],
    domains: Annotated[
        list[str] | None, typer.Option("--domain", help="Domain names (default: all).")
    ] = None,
    train: Annotated[int, typer.Option(min=0, help="Training tiles per domain.")] = 64,
    val: Annotated[int, typer.Option(min=0, help="Validation tiles per domain.")] = 16,
    size: Annotated[int, typer.Option(min=32, help="Tile side in pixels.")] = 256,
    seed: Annotated[int, typer.Option()] = 0,
    archive: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Instead: N unlabelled scenes of a broad archive (random regions, platforms, "
            "seasons, light, band layouts; for `crossearth pretrain`) in OUT.",
        ),
    ] = None,
) -> None:
    """Write SynthEarth domains (GeoTIFF images, PNG labels) in the prepared-dataset layout."""
    from crossearth.data.synthetic import DOMAINS, generate_archive, generate_domain

    if not out.parent.is_dir():
        raise InputError(f"the parent folder of {out} does not exist")
    if archive is not None:
        if domains:
            raise InputError("--archive writes the broad archive; leave out --domain")
        folder = generate_archive(out, archive, size=size, seed=seed)
        stdout_console().print(f"archive: {archive} unlabelled scenes of {size} px in {folder}")
        return
    names = domains or list(DOMAINS)
    unknown = [n for n in names if n not in DOMAINS]
    if unknown:
        raise InputError(f"unknown SynthEarth domains {unknown}; known: {', '.join(DOMAINS)}")
    for name in names:
        folder = generate_domain(out, DOMAINS[name], train=train, val=val, size=size, seed=seed)
        stdout_console().print(f"{name}: {train} train + {val} val tiles in {folder}")

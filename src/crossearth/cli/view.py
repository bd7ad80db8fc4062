"""`crossearth view`: an offline HTML map of predict's class maps over the imagery."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from crossearth.cli.app import app, console
from crossearth.errors import InputError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command()
def view(
    result: Annotated[
        Path, typer.Argument(help="An output folder of `predict`, or one class-map GeoTIFF/PNG.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="HTML file (one scene; default STEM_map.html)."),
    ] = None,
    tiles: Annotated[
        bool | None,
        typer.Option(
            "--tiles/--no-tiles",
            help="Write a tile pyramid beside the page (default: for scenes over 2048 px).",
        ),
    ] = None,
    opacity: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Initial opacity of the classes (0-1).")
    ] = 0.7,
    open_: Annotated[bool, typer.Option("--open", help="Open the map in the browser.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the map's folder over HTTP until Ctrl-C.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address for --serve.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --serve.")] = 8000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """An offline HTML map of each class map over its image, with legend, areas and read-out."""
    from crossearth.viewer import write_map

    with console.status("writing the map", spinner="dots") as status:
        if quiet:
            status.stop()

        def progress(tiles: int) -> None:
            status.update(f"writing the map: {tiles} tiles")

        pages = write_map(result, output, tiles=tiles, opacity=opacity, progress=progress)
    _announce(pages, quiet)
    if serve:
        _serve(pages, host, port, open_, quiet)
    elif open_:
        webbrowser.open(pages[0].resolve().as_uri())


def _announce(pages: list[Path], quiet: bool) -> None:
    if quiet:
        return
    for page in pages:
        console.print(f"map: {escape(str(page))}", soft_wrap=True, highlight=False)


def _serve(pages: list[Path], host: str, port: int, open_: bool, quiet: bool) -> None:
    from crossearth.viewer.serve import start_server

    folder = pages[0].resolve().parent
    if any(p.resolve().parent != folder for p in pages):
        raise InputError("--serve needs the maps in one folder")
    if host not in LOOPBACK:
        console.print(f"[yellow]warning[/]: serving {escape(str(folder))} to the network on {host}")
    server, url = start_server(folder, host, port)
    page_url = url + pages[0].name
    if not quiet:
        console.print(f"serving {escape(page_url)} (Ctrl-C to stop)", highlight=False)
    try:
        if open_:
            webbrowser.open(page_url)
        threading.Event().wait()  # until Ctrl-C
    finally:
        server.shutdown()
        server.server_close()


def write_maps_after_predict(stems: list[str], output: Path, quiet: bool) -> list[Path]:
    """`predict --map`: the map of each class map that predict just wrote (output name stems)."""
    from crossearth.viewer import write_map

    if output.suffix:
        class_maps = [output]
    else:
        class_maps = []
        for stem in stems:
            tif, png = output / f"{stem}_classes.tif", output / f"{stem}_classes.png"
            class_maps.append(tif if tif.is_file() else png)
    pages = [page for class_map in class_maps for page in write_map(class_map)]
    _announce(pages, quiet)
    return pages

"""The Typer application, its shared options and console (the commands live in sibling modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="CrossEarth: domain-generalizable remote-sensing segmentation, in pure PyTorch.",
)
console = Console(stderr=True)


def stdout_console() -> Console:
    """The console for a command's output. Written to a file or a pipe (a log, CI), lines are
    never broken, so paths and commands stay whole for copy and grep; tables keep 80 columns.
    In a terminal, Rich wraps to its width as usual."""
    import sys

    return Console(soft_wrap=not sys.stdout.isatty())


@app.callback()
def _threads(
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU threads for the model (default: the CPUs this process may use, from its "
            "affinity and cgroup quota; or $CROSSEARTH_THREADS / $OMP_NUM_THREADS).",
        ),
    ] = None,
) -> None:
    """CrossEarth: domain-generalizable remote-sensing segmentation, in pure PyTorch."""
    from crossearth.errors import InputError
    from crossearth.threads import configure_threads

    try:
        configure_threads(threads)
    except ValueError as exc:
        raise InputError(str(exc)) from None


ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Zoo name, model file, hf-hub:owner/name or .onnx.")
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


def _report_load(net) -> None:
    report = getattr(net, "load_report", None)
    if report is None:
        return
    console.print(f"model loaded: {report.summary()}; {net.config.num_classes} classes")
    for note in report.notes:
        console.print(f"  note: {note}")
    for key in report.unexpected:
        console.print(f"  [yellow]warning[/]: unexpected key ignored: {key}")

"""The `crossearth` command. It only parses arguments and calls the library."""

from __future__ import annotations

import logging
import sys

import typer
from rich.markup import escape

from crossearth.cli import benchmark, export, models, predict, pretrain, style, synth, train, view  # noqa: F401  (registers the commands)
from crossearth.cli.app import app, console
from crossearth.cli.signals import Stopped, Terminated
from crossearth.cli.usage import report_usage_error, usage_exception_types
from crossearth.errors import CrossEarthError

__all__ = ["app", "main"]

#: The name usage lines show, however the command was started (`crossearth`, `python -m ...`).
PROG_NAME = "crossearth"


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # Lightning gives its logger a console handler of its own when imported: without this its
    # INFO lines would print twice (its handler, then ours through propagation).
    logging.getLogger("lightning").propagate = False
    try:
        code = app(prog_name=PROG_NAME, standalone_mode=False)
    except CrossEarthError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Stopped as exc:  # Ctrl-C or SIGTERM in a run that says what it keeps (train, demo)
        console.print(f"{exc.headline}; {exc.kept}", soft_wrap=True, markup=False,
                      highlight=False)  # fmt: skip
        sys.exit(exc.exit_code)
    except Terminated as exc:
        console.print(f"terminated by {exc.name}; unfinished outputs were removed")
        sys.exit(exc.exit_code)
    except OSError as exc:  # disk full, permission denied, ...: the outputs were cleaned up
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except usage_exception_types() as exc:  # misspelt command/option, missing argument, ...
        root = typer.main.get_command(app)
        sys.exit(report_usage_error(exc, console, root, sys.argv[1:], PROG_NAME))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:  # typer turns Ctrl-C into exit code 130
        if code == 130:
            console.print("aborted")
        sys.exit(code)

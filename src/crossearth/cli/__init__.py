"""The `crossearth` command. It only parses arguments and calls the library."""

from __future__ import annotations

import logging
import sys

import typer
from rich.markup import escape

from crossearth.cli import benchmark, export, models, predict, style, synth, train, view  # noqa: F401  (registers the commands)
from crossearth.cli.app import app, console
from crossearth.cli.signals import Terminated
from crossearth.errors import CrossEarthError

__all__ = ["app", "main"]


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # Lightning gives its logger a console handler of its own when imported: without this its
    # INFO lines would print twice (its handler, then ours through propagation).
    logging.getLogger("lightning").propagate = False
    try:
        code = app(standalone_mode=False)
    except CrossEarthError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Terminated as exc:
        console.print(f"terminated by {exc.name}; unfinished outputs were removed")
        sys.exit(exc.exit_code)
    except OSError as exc:  # disk full, permission denied, ...: the outputs were cleaned up
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:  # typer turns Ctrl-C into exit code 130
        if code == 130:
            console.print("aborted")
        sys.exit(code)

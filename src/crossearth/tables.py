"""Tables on the console that never wrap inside a cell.

Rich shrinks a table that is wider than the console by wrapping text inside its cells
("train 4736, val" / "1036") or cutting it ("synthearth-urban-ae…"), which breaks numbers and
the names one types. `print_table` prints a table as it is when its natural width (every cell
on one line) fits the console (80 columns in a log file or a pipe), and otherwise as records:
the first column's value on a line, then one `  column  value` line per other column (a cell
of several lines, e.g. a list, one line each), so every value stays whole (only a value longer than the console's width wraps, at its end).
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


def natural_width(table: Table, console: Console) -> int:
    """Columns `table` takes with every cell on one line."""
    options = console.options.update(width=max(console.width, 10_000))
    return Measurement.get(console, options, table).maximum


def cell_texts(table: Table) -> list[list[str]]:
    """The plain text of every cell, row by row (markup removed)."""
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def print_table(console: Console, table: Table) -> None:
    """Print `table` on `console` with no cell wrapped or cut: as a table where it fits the
    console's width, else as one record per row (see the module docstring)."""
    if natural_width(table, console) <= console.width:
        for column in table.columns:
            column.no_wrap = True
        console.print(table)
        return
    if table.title:
        console.print(Text(_plain(table.title), style="bold"), soft_wrap=True)
    headers = [_plain(column.header) for column in table.columns]
    pad = max((len(h) for h in headers[1:]), default=0)
    for row in cell_texts(table):
        console.print(Text(row[0], style="bold"), soft_wrap=True)
        for header, value in zip(headers[1:], row[1:], strict=True):
            # a cell of several lines (a list): its lines one below the other
            lines = value.split("\n")
            console.print(Text(f"  {header:<{pad}}  {lines[0]}"), soft_wrap=True)
            for line in lines[1:]:
                console.print(Text(f"  {'':<{pad}}  {line}"), soft_wrap=True)


def _plain(renderable: object) -> str:
    if isinstance(renderable, Text):
        return renderable.plain
    return Text.from_markup(str(renderable)).plain

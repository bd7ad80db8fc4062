"""Tables at 80 columns (issue 22): no cell wrapped or cut, whatever the table holds.

Each table is rendered on a rich Console of width 80 (as in a log file, or a narrow terminal);
every cell's text (each line of a cell that holds a list) must appear whole on one output line.
"""

from __future__ import annotations

import io

import pytest
from cli_runner import run_cli
from rich.console import Console
from rich.table import Table

from crossearth.tables import cell_texts, natural_width, print_table


def rendered(table: Table, width: int = 80) -> tuple[str, list[list[str]]]:
    cells = cell_texts(table)  # before printing: what the table holds
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    print_table(console, table)
    return console.export_text(), cells


def assert_whole(text: str, cells: list[list[str]], width: int = 80) -> None:
    lines = text.splitlines()
    for row in cells:
        for cell in row:
            for part in cell.split("\n"):
                assert any(part in line for line in lines), (part, text)
    assert all(len(line) <= width for line in lines), max(lines, key=len)


def table_of(rows: list[list[str]], headers: list[str]) -> Table:
    table = Table(title="a table")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    return table


@pytest.mark.parametrize("value_width", [5, 20, 40])
def test_any_table_keeps_every_cell_whole_at_80_columns(value_width):
    rows = [[f"name-{i}", "x" * value_width, f"train {1000 + i}, val {20 * i}", "y" * (i % 7)]
            for i in range(12)]  # fmt: skip
    text, cells = rendered(table_of(rows, ["name", "long", "splits", "more"]))
    assert_whole(text, cells)


def test_a_table_that_fits_stays_a_table():
    table = table_of([["potsdam-irrg", "67.5"], ["vaihingen", "58.2"]], ["setting", "mIoU"])
    assert natural_width(table, Console(width=80)) <= 80
    text, cells = rendered(table)
    assert "┃ setting" in text and "│ potsdam-irrg │" in text.replace("  ", " ")
    assert_whole(text, cells)


def test_a_list_in_a_cell_keeps_one_item_per_line():
    rows = [["SynthEarth", "urban\nrural\nautumn", "train one: crossearth train " * 2]]
    text, cells = rendered(table_of(rows, ["setting", "targets", "model"]))
    assert_whole(text, cells)
    lines = text.splitlines()
    assert [i for i, line in enumerate(lines) if line.strip().endswith(("urban", "rural"))]


def test_data_list_at_80_columns(monkeypatch, capsys):
    from crossearth.benchmark import ALL_SETTINGS
    from crossearth.data.catalog import DOMAINS

    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli(monkeypatch, "data", "list") == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    expected = [d.key for d in DOMAINS.values()] + [d.folder for d in DOMAINS.values()]
    expected += [", ".join(f"{k} {v}" for k, v in d.expected.items()) for d in DOMAINS.values()]
    expected += [s.name for s in ALL_SETTINGS.values()]
    expected += [f"{t.domain}/{t.split}" for s in ALL_SETTINGS.values() for t in s.targets]
    for value in filter(None, expected):
        assert any(value in line for line in lines), value
    assert "…" not in text


def test_demo_and_evaluation_tables_at_80_columns(monkeypatch):
    from crossearth.cli.benchmark import _print_classes
    from crossearth.demo import SOURCE, TARGETS, _table, domain_intervals

    scores = {d: 100.0 for d in (SOURCE, *TARGETS)}
    worse = {d: 0.0 for d in (SOURCE, *TARGETS)}
    results = {"baseline": [worse, scores, worse], "crossearth": [scores, scores, worse]}
    text, cells = rendered(_table(results, domain_intervals(results)))
    assert_whole(text, cells)
    classes = ("impervious surfaces", "low vegetation", "a class with a long name indeed")
    metrics = {"IoU": 0.5, "F1": 12.25, "precision": 100.0, "recall": None}
    report = {"targets": {"val": {"per_class": dict.fromkeys(classes, metrics)}}}
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    monkeypatch.setattr("crossearth.cli.benchmark.stdout_console", lambda: console)
    _print_classes(report, classes)
    text = console.export_text()
    for name in classes:
        assert any(name in line for line in text.splitlines()), (name, text)

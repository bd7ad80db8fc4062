"""Usage errors in every command: two lines (usage, problem), "did you mean", exit code 2.

The commands and their options are read from the app itself, so a command added later is covered
without touching this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer.main
from cli_runner import run_cli_captured

from crossearth.cli import app


def _walk(command, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


ROOT = typer.main.get_command(app)
COMMANDS = {path: command for path, command in _walk(ROOT)}
LEAVES = [path for path, command in COMMANDS.items() if not hasattr(command, "commands")]
GROUPS = [path for path, command in COMMANDS.items() if hasattr(command, "commands")]
SUBCOMMANDS = [(group, name) for group in GROUPS for name in COMMANDS[group].commands]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path) or "crossearth"


def long_options(command) -> list[str]:
    names = [o for p in command.params for o in (*p.opts, *p.secondary_opts) if o[:2] == "--"]
    return [*names, "--help"]


def transpose(word: str) -> str:
    """A typo as fingers make it: two neighbouring letters swapped in the middle of `word`."""
    head = len(word) - len(word.lstrip("-"))
    body = word[head:]
    i = max(0, len(body) // 2 - 1)
    while i + 1 < len(body) and body[i] == body[i + 1]:
        i += 1
    if i + 1 >= len(body):
        return word + body[-1]  # no two different neighbours: a doubled last letter instead
    return word[:head] + body[:i] + body[i + 1] + body[i] + body[i + 2 :]


def assert_usage_error(code: int, output: str, path: tuple[str, ...], *needles: str) -> str:
    """Exit code 2 and exactly two lines: the command's usage, then `error: ...`; returns line 2."""
    lines = output.strip().splitlines()
    assert code == 2, output
    assert "Traceback" not in output and "╭" not in output, output
    assert len(lines) == 2, output
    assert lines[0].startswith(f"usage: {' '.join(('crossearth', *path))} "), output
    assert lines[1].startswith("error: "), output
    for needle in needles:
        assert needle in lines[1], output
    return lines[1]


@pytest.mark.parametrize("path", LEAVES, ids=_id)
def test_misspelt_option_suggests_the_option(monkeypatch, capsys, path):
    command = COMMANDS[path]
    options = long_options(command)
    for option in options:
        typo = transpose(option)
        assert typo not in options
        code, output = run_cli_captured(monkeypatch, capsys, *path, typo, "value")
        problem = assert_usage_error(code, output, path, f"no such option {typo}")
        suggested = problem.partition("did you mean ")[2]
        assert option in suggested.replace(",", " ").replace("?", " ").split(), output


@pytest.mark.parametrize("path", list(COMMANDS), ids=_id)
def test_unknown_option_names_the_problem_without_a_guess(monkeypatch, capsys, path):
    code, output = run_cli_captured(monkeypatch, capsys, *path, "--zzzzqqq")
    problem = assert_usage_error(code, output, path, "no such option --zzzzqqq")
    assert "did you mean" not in problem


@pytest.mark.parametrize(("group", "name"), SUBCOMMANDS, ids=lambda v: _id(v) if v else v)
def test_misspelt_command_suggests_the_command(monkeypatch, capsys, group, name):
    typo = transpose(name)
    assert typo not in COMMANDS[group].commands
    code, output = run_cli_captured(monkeypatch, capsys, *group, typo)
    assert_usage_error(code, output, group, f"no such command '{typo}'", f"did you mean '{name}'")


@pytest.mark.parametrize("group", GROUPS, ids=_id)
def test_unknown_command_lists_the_commands(monkeypatch, capsys, group):
    code, output = run_cli_captured(monkeypatch, capsys, *group, "zzzzqqq")
    problem = assert_usage_error(code, output, group, "no such command 'zzzzqqq'")
    for name in COMMANDS[group].commands:
        assert name in problem


REQUIRED_ARGUMENTS = [
    (path, p.name)
    for path in LEAVES
    for p in COMMANDS[path].params
    if p.required and not p.opts[0].startswith("-")
]


@pytest.mark.parametrize(("path", "argument"), REQUIRED_ARGUMENTS, ids=lambda v: str(v))
def test_missing_argument(monkeypatch, capsys, path, argument):
    """Every required option is given, and every argument before `argument`: it alone is missing."""
    command = COMMANDS[path]
    required_options = [p for p in command.params if p.required and p.opts[0].startswith("-")]
    values = [item for p in required_options for item in (p.opts[0], "x")]
    positional = [p.name for p in command.params if not p.opts[0].startswith("-")]
    values += ["x"] * positional.index(argument)
    code, output = run_cli_captured(monkeypatch, capsys, *path, *values)
    assert_usage_error(code, output, path, "missing argument", argument)


def _number_type(param) -> type | None:
    """int or float when the option takes one number (typer's annotation, or click's type)."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None:
        annotation = {"integer": int, "float": float}.get(getattr(param.type, "name", ""))
    kinds = {a for a in (annotation, *typing.get_args(annotation)) if a in (int, float)}
    return next(iter(kinds)) if len(kinds) == 1 else None


NUMBER_OPTIONS = [
    (path, p.opts[0])
    for path in LEAVES
    for p in COMMANDS[path].params
    if p.opts[0].startswith("--") and not getattr(p, "is_flag", False) and _number_type(p)
]


def test_number_options_are_found():
    assert len(NUMBER_OPTIONS) >= 5, NUMBER_OPTIONS  # --max-steps, --tile, --port, ...


@pytest.mark.parametrize(("path", "option"), NUMBER_OPTIONS, ids=lambda v: str(v))
def test_bad_number_names_the_option(monkeypatch, capsys, path, option):
    code, output = run_cli_captured(monkeypatch, capsys, *path, option, "not-a-number")
    assert_usage_error(code, output, path, "invalid value", option)


def test_option_without_its_value_names_the_command(monkeypatch, capsys):
    path, option = NUMBER_OPTIONS[0]
    code, output = run_cli_captured(monkeypatch, capsys, *path, option)
    assert_usage_error(code, output, path, option, "requires an argument")


def test_misspelt_choice_suggests_the_choice(monkeypatch, capsys):
    """An Enum option (style fit --stylizer) with a misspelt value."""
    path = ("style", "fit")
    code, output = run_cli_captured(monkeypatch, capsys, *path, "imgs", "--stylizer", "spectarl")
    assert_usage_error(code, output, path, "--stylizer", "did you mean 'spectral'")


def test_extra_argument(monkeypatch, capsys):
    code, output = run_cli_captured(monkeypatch, capsys, "models", "surplus")
    assert_usage_error(code, output, ("models",), "surplus")


def test_real_process_prints_two_lines_on_stderr(tmp_path):
    """The installed command as a shell runs it: no rich box, no traceback, exit code 2."""
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "crossearth", "predict", "scene.tif", "--modle", "m"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.stdout == ""
    assert_usage_error(proc.returncode, proc.stderr, ("predict",), "did you mean --model?")

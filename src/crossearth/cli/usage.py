"""Usage errors (misspelt command or option, missing argument, bad value) as two plain lines.

Typer/click describe a usage error with an exception that knows the command it happened in (its
`ctx`). `report_usage_error` prints that command's one-line usage and the problem, with "did you
mean" suggestions (difflib) for misspelt commands, options and choices, and returns exit code 2,
the convention of click and of most Unix tools for a command line that could not be parsed:

    usage: crossearth predict [OPTIONS] INPUTS...  ('crossearth predict --help' for details)
    error: no such option --modle; did you mean --model?
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Sequence

import typer
from rich.console import Console
from rich.markup import escape

#: Exit status of a command line that could not be parsed (click's and getopt tools' convention).
USAGE_EXIT_CODE = 2

_NO_SUCH_COMMAND = re.compile(r"^No such command (?P<name>'.*'|\".*\")\.")
_NOT_ONE_OF = re.compile(r"(?P<value>'[^']*'|\"[^\"]*\") is not one of (?P<choices>.+?)\.?$")


def usage_exception_types() -> tuple[type[Exception], ...]:
    """The exception classes typer/click raise for command-line problems.

    Typer >= 0.2x vendors click (its exceptions derive from `typer.TyperException`); older ones
    raise `click.ClickException`. Both are returned when click is installed.
    """
    types: list[type[Exception]] = [typer.TyperException]
    try:
        import click
    except ImportError:  # pragma: no cover - typer without click
        pass
    else:
        types.append(click.ClickException)
    return tuple(types)


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates that look like a misspelling of `word`, best first (at most `n`).

    Options are compared without their leading dashes, so that '--modle' matches '--model'
    rather than every option that merely shares the '--'. Candidates with the same letters in
    another order come first: difflib's ratio misses swapped letters in short names ('--rl' for
    '--lr' scores 0.5).
    """
    by_key: dict[str, str] = {}
    for candidate in candidates:
        by_key.setdefault(candidate.lstrip("-"), candidate)
    typed = word.lstrip("-")
    keys = [k for k in by_key if k != typed and sorted(k) == sorted(typed)]
    keys += [
        k for k in difflib.get_close_matches(typed, list(by_key), n=n, cutoff=0.6) if k not in keys
    ]
    return [by_key[key] for key in keys[:n]]


def _did_you_mean(matches: list[str], quote: bool = False) -> str:
    shown = [repr(m) if quote else m for m in matches]
    if not shown:
        return ""
    if len(shown) == 1:
        return f"; did you mean {shown[0]}?"
    return f"; did you mean {', '.join(shown[:-1])} or {shown[-1]}?"


def _usage_line(ctx) -> str:
    """`usage: crossearth predict [OPTIONS] INPUTS...`, never wrapped (unlike `ctx.get_usage()`)."""
    pieces = ctx.command.collect_usage_pieces(ctx)
    usage = " ".join([ctx.command_path, *pieces])
    help_names = getattr(ctx, "help_option_names", None) or ["--help"]
    return f"usage: {usage}  ('{ctx.command_path} {help_names[0]}' for details)"


def _option_names(ctx) -> list[str]:
    names: list[str] = []
    for param in ctx.command.get_params(ctx):
        names.extend(getattr(param, "opts", []))
        names.extend(getattr(param, "secondary_opts", []))
    return [name for name in names if name.startswith("-")]


def _no_such_command(ctx, message: str) -> str | None:
    found = _NO_SUCH_COMMAND.match(message)
    list_commands = getattr(ctx.command, "list_commands", None) if ctx is not None else None
    if found is None or list_commands is None:
        return None
    try:
        name = str(ast.literal_eval(found.group("name")))
    except (ValueError, SyntaxError):
        return None
    commands = [
        name
        for name in list_commands(ctx)
        if not getattr(ctx.command.get_command(ctx, name), "hidden", False)
    ]
    matches = close_matches(name, commands)
    if matches:
        return f"no such command {name!r}{_did_you_mean(matches, quote=True)}"
    return f"no such command {name!r} (commands: {', '.join(commands)})"


def _bad_choice(message: str) -> str:
    """Append "did you mean" to a "'x' is not one of 'a', 'b'." message (typer's Enum/Literal)."""
    message = message.replace("Value error, ", "")  # pydantic's prefix, in typer >= 0.2x
    found = _NOT_ONE_OF.search(message)
    if found is None:
        return message
    try:
        value = str(ast.literal_eval(found.group("value")))
        choices = [str(c) for c in ast.literal_eval(f"[{found.group('choices')}]")]
    except (ValueError, SyntaxError):
        return message
    matches = close_matches(value, choices)
    return message.rstrip(".") + _did_you_mean(matches, quote=True) if matches else message


def describe_usage_error(exc: Exception) -> str:
    """The problem of a usage exception in one line, with "did you mean" where it fits."""
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    option = getattr(exc, "option_name", None)
    if option is not None and hasattr(exc, "possibilities"):  # NoSuchOption
        matches = close_matches(option, _option_names(ctx)) if ctx is not None else []
        return f"no such option {option}{_did_you_mean(matches)}"
    command = _no_such_command(ctx, message)
    if command is not None:
        return command
    return _sentence(_bad_choice(message))


def _sentence(message: str) -> str:
    """One line, starting in lower case after "error:" as our own messages do ('Missing' ->
    'missing', but 'CRS' stays)."""
    message = " ".join(message.split())
    if len(message) > 1 and message[0].isupper() and message[1].islower():
        message = message[0].lower() + message[1:]
    return message


def is_usage_error(exc: Exception) -> bool:
    """Whether `exc` is a typer/click command-line (usage) error, as opposed to a runtime one."""
    return isinstance(exc, usage_exception_types()) and getattr(exc, "exit_code", 1) == 2


def context_for_args(root, args: Sequence[str], prog_name: str):
    """The click context of the (sub)command that `args` name, e.g. `data check` -> `data check`.

    For the errors click raises without one (an option missing its value, ...). `root` is the
    click command of the app (`typer.main.get_command(app)`); contexts are built with
    `resilient_parsing`, so nothing is validated or run.
    """
    ctx = root.make_context(prog_name, [], resilient_parsing=True)
    for token in args:
        get_command = getattr(ctx.command, "get_command", None)
        if get_command is None:  # a leaf command: its name is known
            break
        sub = get_command(ctx, token)
        if sub is None:
            if token.startswith("-"):
                continue  # the group's own option
            break
        ctx = sub.make_context(token, [], parent=ctx, resilient_parsing=True)
    return ctx


def report_usage_error(
    exc: Exception,
    console: Console,
    root=None,
    args: Sequence[str] = (),
    prog_name: str = "crossearth",
) -> int:
    """Print a typer/click exception in at most two lines on `console`; return the exit code.

    A usage error prints the command's usage line and the problem (exit code 2); when the
    exception does not carry its command's context, that context is found from `args` (the command
    line without the program name) under `root`, the app's click command. Asking for a group
    without a command (`no_args_is_help`) shows the help, which typer has already printed. Any
    other click exception (e.g. a file click could not open) prints `error: ...` with its own
    exit code.
    """
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    code = getattr(exc, "exit_code", 1)
    if type(exc).__name__ == "NoArgsIsHelpError":  # the help text, printed (rich) or carried
        if message.strip():
            console.print(message, markup=False, highlight=False, soft_wrap=True)
        return code
    ctx = getattr(exc, "ctx", None)
    if ctx is None and root is not None and is_usage_error(exc):
        try:
            ctx = context_for_args(root, args, prog_name)
        except Exception:  # the usage line is a courtesy; the problem is printed anyway
            ctx = None
    if is_usage_error(exc) and ctx is not None:
        console.print(_usage_line(ctx), markup=False, highlight=False, soft_wrap=True)
    problem = describe_usage_error(exc) if is_usage_error(exc) else _sentence(message)
    console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    return code

"""Run the `crossearth` CLI in-process, as a user would from a shell (one shared helper)."""

from __future__ import annotations

import sys

import pytest

from crossearth.cli import main


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    """Run `crossearth ARGS...` in this process; returns its exit code (0 on success)."""
    monkeypatch.setattr(sys, "argv", ["crossearth", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
        raise SystemExit(0)
    return exit_info.value.code or 0


def run_cli_captured(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: object
) -> tuple[int, str]:
    """`run_cli`, returning (exit code, everything printed to stdout and stderr)."""
    code = run_cli(monkeypatch, *args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err

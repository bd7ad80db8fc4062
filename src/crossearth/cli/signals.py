"""Scheduler and terminal signals end a command like Ctrl-C does: cleanup code runs.

Batch schedulers stop jobs with SIGTERM (Slurm, Kubernetes, systemd), warn with SIGUSR1/SIGUSR2
(Slurm `--signal`, SGE `-notify`, LSF) or SIGXCPU (CPU-time limits), and a closed terminal
sends SIGHUP. Python's default for all of these is to die at once, skipping `finally` blocks,
so half-written temporary files would stay behind. Inside `terminate_on_signals()` each of them
raises `Terminated` instead; the CLI reports it and exits with 128 + the signal number, the
shell's convention.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from crossearth.stopping import Interrupted

#: Signals turned into `Terminated` (those this platform has).
SIGNAL_NAMES = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU", "SIGQUIT")


class Terminated(BaseException):
    """The process got a termination signal; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def terminate_on_signals() -> Iterator[None]:
    """Within the block, the signals of `SIGNAL_NAMES` raise `Terminated` in the main thread
    (once: a second signal during cleanup is ignored). Outside the main thread: does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = [False]

    def handler(signum: int, frame: object) -> None:
        if fired[0]:
            return
        fired[0] = True
        raise Terminated(signum)

    previous = {}
    for name in SIGNAL_NAMES:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


class Stopped(BaseException):
    """A run that says what it keeps was stopped by a signal (`crossearth.stopping.Interrupted`);
    the CLI prints "aborted; <kept>" (Ctrl-C) or "terminated by SIGTERM; <kept>" and exits with
    128 + the signal number. (Typer turns a `KeyboardInterrupt` into a bare exit code, which
    would lose what is kept.)"""

    def __init__(self, kept: str, signum: int = signal.SIGINT) -> None:
        super().__init__(kept)
        self.kept, self.signum = kept, signum

    @property
    def headline(self) -> str:
        if self.signum == signal.SIGINT:
            return "aborted"
        return f"terminated by {signal.Signals(self.signum).name}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def saying_what_is_kept() -> Iterator[None]:
    """Within the block, an `Interrupted` run ends the command as `Stopped`."""
    try:
        yield
    except Interrupted as exc:
        raise Stopped(exc.kept, exc.signum) from None

"""Atomic file output: write under a temporary name beside the target, rename when complete.

A crash, an error or Ctrl-C never leaves a half-written file under the final name. Files get the
usual permissions (0666 minus the umask), not mkstemp's owner-only 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_beside(final: Path, suffix: str | None = None) -> Path:
    """A new empty temporary file in the folder of `final` (same file system: rename is atomic)."""
    fd, tmp = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=suffix or final.suffix, dir=final.parent
    )
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, final: Path) -> Path:
    """Give `tmp` normal permissions and rename it to `final`."""
    os.chmod(tmp, default_file_mode())  # writers may recreate the file; set the mode last
    os.replace(tmp, final)
    return final


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(final)
    try:
        yield tmp
        publish(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


# Signals that end a run (see `crossearth.cli.signals`); held back while files change names.
_DEFERRED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU", "SIGQUIT")


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold termination signals back for the block and deliver them just after it.

    A signal between creating a temporary file and recording it (or between renaming a finished
    file and recording it) would leave a file no cleanup knows of; with the block made atomic,
    the signal arrives after it, where the caller's cleanup sees every file. Outside the main
    thread, or where the platform has no `pthread_sigmask`, the block runs unchanged.
    """
    import signal
    import threading

    if (
        not hasattr(signal, "pthread_sigmask")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    numbers = {getattr(signal, name) for name in _DEFERRED if hasattr(signal, name)}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)

"""Atomic file output: write under a temporary name beside the target, rename when complete.

A crash, an error or Ctrl-C never leaves a half-written file under the final name. Files get the
usual permissions (0666 minus the umask), not mkstemp's owner-only 0600.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path


def default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# Where `temp_beside` makes temporary files instead of beside their target (see `staging`).
_STAGING: ContextVar[Path | None] = ContextVar("crossearth_staging", default=None)


@contextmanager
def staging(folder: Path) -> Iterator[Path]:
    """Within the block, `temp_beside` makes its files in `folder` (made if missing), which must
    be on the file system of the targets (rename stays atomic). A process killed with SIGKILL
    cannot remove its temporary files; kept in one folder, whoever survives it removes them all
    (the engines give every task its own folder and remove the run's at its end)."""
    folder.mkdir(parents=True, exist_ok=True)
    token = _STAGING.set(folder)
    try:
        yield folder
    finally:
        _STAGING.reset(token)


def temp_beside(final: Path, suffix: str | None = None) -> Path:
    """A new empty temporary file in the folder of `final`, or in the active `staging` folder
    (same file system: rename is atomic).

    A termination signal during the call leaves no file behind. A caller that must also record
    the returned path before a signal lands wraps the call and the record in `signals_deferred`.
    """
    tmp = None
    folder = _STAGING.get() or final.parent
    try:
        with signals_deferred():
            fd, tmp = tempfile.mkstemp(
                prefix=f".{final.stem}.", suffix=suffix or final.suffix, dir=folder
            )
            os.close(fd)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


# Where `publish` notes the files it renames into place (see `recording`); None outside.
_LEDGER: ContextVar[list[Path] | None] = ContextVar("crossearth_published", default=None)


@contextmanager
def recording(created: list[Path]) -> Iterator[list[Path]]:
    """Within the block, every file `publish` (and so `atomic_path`) renames into place is
    appended to `created` in the same signal-free step as the rename, so a cleanup that removes
    `created` on failure never misses a finished file."""
    token = _LEDGER.set(created)
    try:
        yield created
    finally:
        _LEDGER.reset(token)


def publish(tmp: Path, final: Path) -> Path:
    """Give `tmp` normal permissions and rename it to `final` (noted by an active `recording`)."""
    os.chmod(tmp, default_file_mode())  # writers may recreate the file; set the mode last
    with signals_deferred():
        os.replace(tmp, final)
        ledger = _LEDGER.get()
        if ledger is not None:
            ledger.append(final)
    return final


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        with signals_deferred():  # a signal lands after `tmp` is set, where `finally` sees it
            tmp = temp_beside(final)
        yield tmp
        publish(tmp, final)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


# Signals that end a run (see `crossearth.cli.signals`); held back while files change names.
_DEFERRED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGXCPU", "SIGQUIT")
_depth = [0]  # how many `signals_deferred` blocks the main thread is in


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold termination signals back for the block and deliver them just after it.

    A signal between creating a temporary file and recording it (or between renaming a finished
    file and recording it) would leave a file no cleanup knows of; with the block made atomic,
    the signal arrives after it, where the caller's cleanup sees every file. Two layers: the
    signals are blocked in the calling thread, and, because the kernel hands a process-directed
    signal to any thread that does not block it (threads started by native libraries do not), the
    Python-level handlers are swapped for ones that only note the signal; on leaving the block
    the handlers come back and each noted signal is raised again, so the usual handler runs then.
    Blocks nest. Outside the main thread, or where the platform has no `pthread_sigmask`, the
    block runs unchanged.
    """
    import signal
    import threading

    if (
        not hasattr(signal, "pthread_sigmask")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    if _depth[0]:  # inside another block: that one holds the signals and delivers them
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    numbers = {getattr(signal, name) for name in _DEFERRED if hasattr(signal, name)}
    noted: list[int] = []

    def note(signum: int, frame: object) -> None:
        noted.append(signum)

    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, numbers)
    previous: dict[int, object] = {}
    _depth[0] = 1
    try:
        for number in numbers:
            handler = signal.getsignal(number)
            if handler is not None:  # None: set outside Python, cannot be put back
                previous[number] = signal.signal(number, note)
        yield
    finally:
        _depth[0] = 0
        arrived: BaseException | None = None
        for number, handler in previous.items():
            while True:  # every handler is put back, even if one already restored fires
                try:
                    signal.signal(number, handler)  # (runs pending handlers first)
                    break
                except BaseException as exc:  # a restored handler raised for a new signal
                    arrived = arrived or exc
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        if arrived is not None:
            raise arrived
        for number in dict.fromkeys(noted):
            signal.raise_signal(number)  # to this thread: the restored handler runs now

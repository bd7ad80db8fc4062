"""What a stopped run keeps: Ctrl-C in `train` and `demo` ends in one line naming what is kept.

A run folder is removed again when it holds nothing worth keeping (no checkpoint, no model
file): a `RunFolder` remembers which folders and files the run created, and removes only those,
so a folder the user made or an earlier run filled is never removed.
"""

from __future__ import annotations

import shutil
import signal
from contextlib import suppress
from pathlib import Path


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or, with `signum`, a termination signal such as a scheduler's SIGTERM) stopped a
    run; `kept` says, in a few words, what it leaves.

    A `KeyboardInterrupt`, so code that handles Ctrl-C handles this too; the command line prints
    "aborted; <kept>" (Ctrl-C) or "terminated by SIGTERM; <kept>" and exits with 128 + `signum`.
    """

    def __init__(self, kept: str, signum: int = signal.SIGINT) -> None:
        super().__init__(kept)
        self.kept, self.signum = kept, int(signum)


class RunFolder:
    """A folder a run writes into, and what the run created there (to remove it again).

    Make one before the run writes anything: it records the topmost folder of `path` that does
    not exist yet (made by the run, with its parents) or, for a folder that exists, the entries
    already in it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.made = _topmost_missing(self.path)
        self.before = set() if self.made else set(self.path.rglob("*"))

    def remove_created(self) -> str:
        """Remove what the run created: the folder itself when the run made it, else the new
        entries inside it (deepest first; a folder that is not empty then stays). Returns how
        to say it, e.g. "removed runs/try"."""
        if self.made is not None:
            shutil.rmtree(self.made, ignore_errors=True)
            return f"removed {self.made}"
        if not self.path.is_dir():
            return "nothing written"
        new = sorted(set(self.path.rglob("*")) - self.before, key=lambda p: len(p.parts),
                     reverse=True)  # fmt: skip
        for entry in new:
            with suppress(OSError):
                entry.rmdir() if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        return f"removed what this run wrote in {self.path}"


def _topmost_missing(path: Path) -> Path | None:
    """The outermost folder of `path` (itself or a parent, as written) that does not exist, or
    None."""
    if path.exists():
        return None
    top = path
    while not top.parent.exists():
        top = top.parent
    return top

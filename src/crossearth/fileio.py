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

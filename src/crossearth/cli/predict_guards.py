"""What `predict` guards around its run: process launchers it refuses (the Dask scheduler hands
out scenes now) and library warnings printed as one `warning:` line each."""

from __future__ import annotations

from contextlib import contextmanager

from crossearth.cli.app import console
from crossearth.errors import InputError


@contextmanager
def warnings_as_lines():
    """Library warnings (a slow precision, ...) as one `warning: ...` line each."""
    import warnings

    from crossearth.runtime import PrecisionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrecisionWarning)
        try:
            yield
        finally:
            for item in caught:
                if issubclass(item.category, PrecisionWarning):
                    console.print(f"warning: {item.message}", highlight=False, markup=False,
                                  soft_wrap=True)  # fmt: skip
                else:
                    warnings.showwarning(item.message, item.category, item.filename, item.lineno)


def refuse_process_launchers() -> None:
    """Several processes started by torchrun or srun would each run every scene: the output
    folder no longer hands scenes out (a Dask scheduler does)."""
    import os

    for name in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        value = os.environ.get(name, "1")
        if value.isdigit() and int(value) > 1:
            raise InputError(
                f"{value} processes were started ({name}={value}), but predict no longer shares "
                "scenes between processes it did not start: run one predict with --cluster "
                "(local, slurm, or tcp://HOST:PORT of a Dask scheduler whose workers srun "
                "started; see docs/cloud-and-clusters.md)"
            )

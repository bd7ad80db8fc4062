"""This process's place among processes started by torchrun, SLURM or by hand (RANK / WORLD_SIZE).

`predict` needs no communication between them: the processes claim scenes through the run
manifest in the output folder (`crossearth.predict.manifest`), so the outputs are the ones a single
process writes, in any launcher (`torchrun --nproc-per-node N -m crossearth ...`).
"""

from __future__ import annotations

import os

from crossearth.errors import InputError


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 when not launched in parallel)."""
    try:
        rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", 0)))
        world = int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", 1)))
    except ValueError:
        raise InputError("RANK/WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"invalid RANK={rank} for WORLD_SIZE={world}")
    return rank, world

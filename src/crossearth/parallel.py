"""Share work between processes started by torchrun, SLURM or by hand (RANK / WORLD_SIZE).

Inference needs no communication: each process takes every WORLD_SIZE-th file, so the outputs are
the ones a single process writes, in any launcher (`torchrun --nproc-per-node N -m crossearth ...`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TypeVar

from crossearth.errors import InputError

T = TypeVar("T")


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


def shard(items: Sequence[T]) -> tuple[list[T], int, int]:
    """The items this process handles (round-robin), its rank and the world size."""
    rank, world = rank_and_world()
    return list(items[rank::world]), rank, world

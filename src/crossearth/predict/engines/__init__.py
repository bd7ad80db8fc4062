"""Engines: who runs the tasks of a `predict` run (`crossearth.predict.tasks`).

- `local`: this process, scene after scene (the default; Dask is not imported);
- `dask`: a Dask cluster (`--cluster local|tcp://HOST:PORT|slurm|pbs`): the scheduler assigns
  scenes and parts of scenes to workers and runs a task lost with its worker elsewhere.

Both take the same work (`pending`: what the manifest does not hold yet) and tell a `Reporter`
what happened, so the lines a user reads are the same. Neither keeps state of its own: resume
after a killed job is the manifest's (`crossearth.predict.manifest`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from crossearth.predict.tasks import Scene, Target


class Reporter(Protocol):
    """What an engine tells the user about (the CLI prints it)."""

    def task(self, name: str) -> AbstractContextManager[Callable[[int, int], None] | None]:
        """A progress display for a task run in this process; yields `progress(done, total)`."""

    def part_done(self, scene: Scene, part: Any) -> None:
        """Part `part` (a `PartResult`) of `scene` is in the store."""

    def scene_done(self, scene: Scene, summary: dict[str, Any]) -> None:
        """All outputs of `scene` are in the store and recorded."""

    def failed(self, scene: Scene, error: BaseException) -> None:
        """`scene` failed with a user-facing error; the run goes on with the others."""


@dataclass
class Work:
    """A scene still to do, and the parts of it an earlier run finished (index -> PartResult)."""

    scene: Scene
    done_parts: dict[int, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run did: output stems written, scenes skipped as done, failures (stem: message)
    and their errors."""

    written: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def pending(scenes: Sequence[Scene], target: Target, overwrite: bool) -> tuple[list[Work], int]:
    """The work left: every scene whose outputs the manifest does not hold (all with
    `overwrite`), with the parts of split scenes that are done (none with `overwrite`); and
    how many scenes were skipped as done."""
    manifest = target.manifest
    if manifest is None:
        return [Work(scene) for scene in scenes], 0
    work, skipped = [], 0
    for scene in scenes:
        if not overwrite and manifest.is_done(scene.stem, scene.digest):
            skipped += 1
            continue
        done = {}
        if scene.parts > 1 and not overwrite:
            for index in range(scene.parts):
                part = manifest.part_done(scene.stem, scene.digest, index, scene.parts)
                if part is not None:
                    done[index] = part
        work.append(Work(scene, done))
    return work, skipped

"""The local engine: this process runs every task, scene after scene (parts of a split scene
one after the other, then the assembly). It needs no Dask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crossearth.errors import InputError
from crossearth.predict.engines import Reporter, RunResult, Work
from crossearth.predict.tasks import Target, run_assembly, run_part, run_scene


def run_local(
    net: Any, work: Sequence[Work], target: Target, options: Any, reporter: Reporter
) -> RunResult:
    """Run `work` with the loaded model `net`; a scene whose input is bad (`InputError`) fails
    alone, is reported, and the others go on.

    Raises:
        OSError: writing failed (disk full, ...); the failing scene leaves nothing.
    """
    from crossearth.geo.remote import display_name

    result = RunResult()
    for item in work:
        scene = item.scene
        name = display_name(scene.path)
        try:
            if scene.parts > 1:
                parts = dict(item.done_parts)
                for index in range(scene.parts):
                    if index in parts:
                        continue
                    with reporter.task(f"{name} part {index + 1}/{scene.parts}") as progress:
                        parts[index] = run_part(net, scene, index, target, options, progress)
                    reporter.part_done(scene, parts[index])
                ordered = [parts[i] for i in range(scene.parts)]
                with reporter.task(name) as progress:
                    summary = run_assembly(net, scene, ordered, target, options, progress)
            else:
                with reporter.task(name) as progress:
                    summary = run_scene(net, scene, target, options, progress)
        except InputError as exc:
            result.failed.append(f"{scene.stem}: {exc}")
            result.errors.append(exc)
            reporter.failed(scene, exc)
            continue
        result.written.append(scene.stem)
        reporter.scene_done(scene, summary)
    return result

"""The units of work of a `predict` run, the same in every engine: a whole scene, a part of a
scene (a band of rows, `crossearth.predict.split`), and the assembly of a split scene.

Each task writes its outputs completely or not at all, then notes them in the run manifest, so
a task lost with its process (a killed Dask worker, a killed job) is simply run again: by the
scheduler elsewhere, or by the next run of the same command. Temporary files go to a folder of
the task's own (`Manifest.staging_folder`), removed when the task ends and, for a process that
was killed, at the end of the run. On object storage, outputs are made in a local temporary
folder and uploaded when complete (`crossearth.predict.store`).

`ModelSpec` says how to load the model, so a process that runs tasks (a Dask worker) loads it
once and keeps it between tasks (`cached_model`, keyed by the model's fingerprint).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crossearth.fileio import staging
from crossearth.predict.manifest import Manifest, input_identity
from crossearth.predict.store import LocalStore, ObjectStore

Progress = Callable[[int, int], None] | None


@dataclass(frozen=True)
class ModelSpec:
    """What `load_model` (or ONNX Runtime, for a `.onnx` file) needs to load the run's model.

    `threads`: intra-op CPU threads of a process that runs tasks (None: as configured).
    """

    name: str
    config: str | None = None
    backbone: str | None = None
    device: str = "auto"
    precision: str = "auto"
    download: bool = False
    threads: int | None = None

    def key(self) -> str:
        """A fingerprint of the model: these fields and the model file's identity (path, size,
        modification time), so a replaced file is loaded again."""
        return json.dumps([list(self.__dict__.values()), input_identity(self.name)[0]], default=str)

    def load(self) -> Any:
        """The model, on `device` (raises what `load_model` raises)."""
        if self.name.lower().endswith(".onnx"):  # an exported file, run by ONNX Runtime
            from crossearth.export.runner import open_onnx

            return open_onnx(self.name, self.device, self.precision)
        from crossearth.weights import load_model

        return load_model(
            self.name, config=self.config, backbone=Path(self.backbone) if self.backbone else None,
            device=self.device, precision=self.precision, download=self.download,
        )  # fmt: skip


_MODELS: dict[str, Any] = {}  # this process's model, by `ModelSpec.key` (one at a time)


def cached_model(spec: ModelSpec) -> Any:
    """The model of `spec`, loaded once per process and kept (another spec replaces it)."""
    key = spec.key()
    if key not in _MODELS:
        _MODELS.clear()  # one model per process: memory for one
        _MODELS[key] = spec.load()
    return _MODELS[key]


@dataclass(frozen=True)
class Scene:
    """One input of the run: its path or URL, output stem, parts (1: whole) and fingerprint
    (`crossearth.predict.manifest.fingerprint`; "" without a manifest)."""

    path: Path | str
    stem: str
    parts: int = 1
    digest: str = ""


@dataclass(frozen=True)
class Target:
    """Where the run writes: a store (local folder or object storage), with its manifest, or a
    single explicit class-map file (`file`, no manifest)."""

    store: LocalStore | ObjectStore
    manifest: Manifest | None = None
    file: Path | None = None


@contextmanager
def _task_folder(target: Target, task: str):
    """The task's own temporary folder (None without a manifest: files beside their targets)."""
    if target.manifest is None:
        yield None
        return
    folder = target.manifest.staging_folder(task)
    try:
        with staging(folder):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_scene(
    net: Any,
    scene: Scene,
    target: Target,
    options: Any,
    progress: Progress = None,
    parts: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Predict a whole scene (or assemble it from its local `parts`), publish its outputs and
    record it in the manifest; its summary (outputs named by their full names in the store).

    Raises:
        InputError, InputNotFoundError, OSError: as `predict_raster`; nothing of the scene is
            left in the store.
    """
    from crossearth.predict.raster import predict_raster

    with _task_folder(target, scene.stem) as folder:
        if target.store.remote:
            local = folder / "out"
            local.mkdir()
            summary = predict_raster(net, scene.path, local, options, progress=progress,
                                     stem=scene.stem, parts=parts)  # fmt: skip
            summary = _upload(summary, local, target.store)
        else:
            out = target.file or target.store.root
            summary = predict_raster(net, scene.path, out, options, progress=progress,
                                     stem=scene.stem, parts=parts)  # fmt: skip
        if target.manifest is not None:
            target.manifest.record(scene.stem, scene.digest, summary)
    return summary


def _upload(summary: dict[str, Any], local: Path, store: ObjectStore | LocalStore) -> dict:
    """Upload every output in `local` (the summary last, with the store's names in it); the
    summary with those names."""
    prefix = str(local)

    def renamed(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(prefix):
            return store.url(Path(value).relative_to(local).as_posix())
        return value

    summary = {key: renamed(value) for key, value in summary.items()}
    files = sorted(p for p in local.iterdir() if p.is_file() and not p.name.startswith("."))
    summary_file = next(p for p in files if p.name.endswith("_summary.json"))
    summary_file.write_text(json.dumps(summary, indent=2))
    for path in [p for p in files if p != summary_file] + [summary_file]:
        store.put(path, path.name)
    return summary


def run_part(
    net: Any, scene: Scene, index: int, target: Target, options: Any, progress: Progress = None
) -> Any:
    """Predict part `index` of the scene, put its rows in the store and record it; its
    `PartResult`, files named by store names.

    Raises:
        as `crossearth.predict.split.predict_part`.
    """
    from crossearth.predict.split import predict_part

    manifest = target.manifest
    name = manifest.part_name(scene.stem, scene.digest, index, scene.parts)
    with _task_folder(target, f"{scene.stem}.part{index + 1}") as folder:
        if target.store.remote:
            local = folder / Path(name).name
        else:
            local = target.store.root / name
            local.parent.mkdir(parents=True, exist_ok=True)
        result = predict_part(net, scene.path, local, options, index, scene.parts,
                              progress=progress)  # fmt: skip
        if target.store.remote:
            for path in result.files():
                target.store.put(path, f"{Path(name).parent.as_posix()}/{path.name}")
        parent = Path(name).parent
        result = replace(
            result,
            classes=parent / result.classes.name,
            confidence=parent / result.confidence.name if result.confidence else None,
        )
        manifest.record_part(scene.stem, scene.digest, result)
    return result


def run_assembly(
    net: Any, scene: Scene, parts: Sequence[Any], target: Target, options: Any,
    progress: Progress = None,
) -> dict[str, Any]:  # fmt: skip
    """Assemble a split scene from its recorded `parts` (files named by store names) into the
    outputs of a whole run, record it and remove the parts; its summary.

    Raises:
        as `run_scene`; InputError when a part file is missing or not the part's rows.
    """
    store = target.store
    with _task_folder(target, f"{scene.stem}.parts") if store.remote else nullcontext() as folder:
        local = []
        for part in parts:
            files = {}
            for key in ("classes", "confidence"):
                name = getattr(part, key)
                if name is not None:
                    where = folder / Path(name).name if folder is not None else None
                    files[key] = store.get(Path(name).as_posix(), where)
            local.append(replace(part, **files))
        summary = run_scene(net, scene, target, options, progress, parts=local)
    target.manifest.remove_parts(scene.stem)
    return summary

"""The run manifest of `predict` into a folder: resume after a killed job.

The manifest lives in the output folder (a local folder or one on object storage, see
`crossearth.predict.store`), in `.crossearth/` (hidden, so never taken as input):

- `scenes/<stem>.json`: one record per finished scene, written atomically after all of the
  scene's outputs (they are themselves written all-or-none): the run's fingerprint (model,
  options, input identity: see `input_identity`), the output files and the finish time. A scene
  is *done* when its record has this command's fingerprint and all its outputs exist; running
  the same command again skips done scenes, and only those (`--overwrite` redoes them).
- `parts/<stem>/`: the parts of a scene split into bands of rows (`crossearth.predict.split`):
  each part's rows as a GeoTIFF and its record (JSON, written last); a part is done when its
  record has this command's fingerprint and its files exist. They are removed once the scene
  is assembled and recorded.
- `tmp/`: the temporary files of the run's tasks (`crossearth.fileio.staging`), removed at
  the end of the run; a process killed with SIGKILL leaves its own there until then.

Which process works on which scene is the engine's business (`crossearth.predict.engines`):
this process alone, or a Dask scheduler. No scene is ever claimed through files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from contextlib import suppress
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from crossearth.geo.containers import container_file
from crossearth.geo.remote import (
    IDENTITY_HEADERS,
    NETWORK_PREFIXES,
    is_remote,
    mask_url,
    object_identity,
)
from crossearth.geo.stac import is_stac

if TYPE_CHECKING:
    from crossearth.predict.split import PartResult
    from crossearth.predict.store import LocalStore, ObjectStore

FOLDER = ".crossearth"


def fingerprint(
    model: str, options: Any, image: Path | str, unknown: list[str] | None = None
) -> str:
    """A digest of what decides a scene's outputs: the model (name, or file path, size and
    modification time), the prediction options and the input (`input_identity`).

    A remote input whose version cannot be identified (no ETag or Last-Modified) is appended,
    masked, to `unknown` when given: a rerun then trusts its URL (and size, when known).
    """
    ident, known = input_identity(image)
    if not known and unknown is not None:
        unknown.append(mask_url(str(image)))
    opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else options
    blob = json.dumps([input_identity(model)[0], opts, ident], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def input_identity(item: Path | str) -> tuple[Any, bool]:
    """(what identifies this version of an input, whether a change of it would be seen).

    A local file: its absolute path, size and modification time (of the item file for
    `items.json#item-id`, of the archive for `/vsizip//data/a.zip/b.tif`, of the container file
    for a subdataset name such as `NETCDF:"f.nc":var`). A URL: the URL without its query string (signed URLs change per
    run) with the object's size, ETag and Last-Modified (`crossearth.geo.remote.object_identity`;
    one HEAD request); unknown when the server gives neither ETag nor Last-Modified.
    """
    text = str(item)
    container = container_file(text)  # NETCDF:"f.nc":var -> f.nc
    if container is not None and container.is_file():
        stat = container.stat()
        return [text, str(container.resolve()), stat.st_size, stat.st_mtime_ns], True
    if text.startswith("/vsi") and not text.startswith(NETWORK_PREFIXES):
        container = _local_container(text)  # e.g. the archive of /vsizip//data/a.zip/b.tif
        if container is not None:
            stat = container.stat()
            return [text, str(container.resolve()), stat.st_size, stat.st_mtime_ns], True
    if is_remote(item):
        base = text.split("#", 1)[0] if is_stac(text) else text  # a collection's item
        found = object_identity(base)
        versioned = found is not None and any(k in found for k in IDENTITY_HEADERS)
        return [mask_url(text), found], versioned
    path = Path(item)
    if not path.exists() and is_stac(text) and "#" in text:
        path = Path(text.split("#", 1)[0])
    try:
        stat = path.stat()
    except OSError:
        return text, True  # missing: it fails when opened
    return [str(Path(item).resolve()), stat.st_size, stat.st_mtime_ns], True


def _local_container(path: str) -> Path | None:
    """The local file a `/vsizip/`, `/vsitar/`, `/vsigzip/`... path reads from, or None."""
    inner = path.split("/", 2)[2].replace("{", "").replace("}", "")  # drop "/vsixxx/"
    if inner.startswith("/vsi"):
        return None  # an archive on a network file system
    parts = PurePosixPath(inner).parts
    for end in range(len(parts), 0, -1):
        candidate = Path(*parts[:end])
        if candidate.is_file():
            return candidate
    return None


class Manifest:
    """Done records of scenes and parts (by output stem) in `.crossearth/` of a store."""

    def __init__(self, store: LocalStore | ObjectStore) -> None:
        self.store = store

    def remove_temporary(self) -> None:
        """Remove the temporary files of the tasks of this run, or of a killed earlier run
        (one run at a time writes into an output folder)."""
        self.store.remove(f"{FOLDER}/tmp")

    def close(self) -> None:
        """Remove the run's temporary folder and the manifest's local folders that hold
        nothing (a run that failed leaves none)."""
        self.remove_temporary()
        if not self.store.remote:
            root = Path(self.store.root) / FOLDER
            for folder in (root / "scenes", root / "parts", root / "tmp", root):
                with suppress(OSError):  # missing, or not empty
                    folder.rmdir()

    def staging_folder(self, task: str) -> Path:
        """A fresh local folder for the temporary files of one task (one attempt of it: the
        name holds this process's id, so a retry elsewhere never meets a dead one's files)."""
        if self.store.remote:
            import tempfile

            return Path(tempfile.mkdtemp(prefix=f"crossearth-{task}-"))
        return (
            Path(self.store.root) / FOLDER / "tmp" / f"{task}.{socket.gethostname()}.{os.getpid()}"
        )

    def _record_name(self, stem: str) -> str:
        return f"{FOLDER}/scenes/{stem}.json"

    def _read(self, name: str) -> dict[str, Any] | None:
        text = self.store.read_text(name)
        try:
            record = json.loads(text) if text is not None else None
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def is_done(self, stem: str, digest: str) -> bool:
        """True if the scene's outputs for `digest` are complete."""
        record = self._read(self._record_name(stem))
        if record is None or record.get("fingerprint") != digest:
            return False
        return all(self.store.exists(p) for p in record.get("outputs", []))

    def record(self, stem: str, digest: str, summary: dict[str, Any]) -> None:
        """Note the scene as done, atomically, after all its outputs are in place (`summary`
        names them by their full names in the store)."""
        keys = ("class_map", "confidence", "preview", "overlay", "vector")
        outputs = [summary[k] for k in keys if summary.get(k)]
        if not self.store.remote:
            outputs = [str(Path(p).resolve()) for p in outputs]
        entry = {
            "stem": stem,
            "input": summary.get("input"),
            "fingerprint": digest,
            "outputs": outputs,
            "finished": time.time(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.store.write_text(self._record_name(stem), json.dumps(entry, indent=1))

    def part_name(self, stem: str, digest: str, index: int, parts: int) -> str:
        """The store name of part `index` (0-based) of `parts` of the scene (a GeoTIFF)."""
        return f"{FOLDER}/parts/{stem}/{digest[:16]}-part{index + 1}of{parts}.tif"

    def part_done(self, stem: str, digest: str, index: int, parts: int) -> PartResult | None:
        """The record of a finished part for `digest` (its files named by store names), or
        None."""
        from crossearth.predict.split import PartResult

        name = self.part_name(stem, digest, index, parts)
        record = self._read(name[: -len(".tif")] + ".json")
        if record is None or record.get("fingerprint") != digest:
            return None
        try:
            result = PartResult.from_json(record["part"])
        except (KeyError, TypeError, ValueError):
            return None
        if not all(self.store.exists(self.store.url(str(f))) for f in result.files()):
            return None
        return result

    def record_part(self, stem: str, digest: str, result: PartResult) -> None:
        """Note a part as done, atomically, after its files are in the store (`result` names
        them by their store names)."""
        name = self.part_name(stem, digest, result.index, result.parts)
        entry = {"fingerprint": digest, "part": result.to_json(), "finished": time.time(),
                 "host": socket.gethostname(), "pid": os.getpid()}  # fmt: skip
        self.store.write_text(name[: -len(".tif")] + ".json", json.dumps(entry, indent=1))

    def remove_parts(self, stem: str) -> None:
        """Remove a scene's part files (after the scene is assembled and recorded)."""
        self.store.remove(f"{FOLDER}/parts/{stem}")

"""The run manifest of `predict` into a folder: resume after a kill, scenes claimed by processes.

The manifest lives in the output folder, in `.crossearth/` (hidden, so never taken as input):

- `scenes/<stem>.json`: one record per finished scene, written atomically after all of the
  scene's outputs (they are themselves written all-or-none): the run's fingerprint (model,
  options, input identity: see `input_identity`), the output files, the finish time and the run id. A scene is
  *done* when its record has this command's fingerprint and all its outputs exist; running the
  same command again skips done scenes, and only those. `--overwrite` redoes them (scenes that
  another process of the same run finished are not redone).
- `parts/<stem>/`: the parts of a scene split over processes (`crossearth.predict.split`): each
  part's rows as a GeoTIFF and its record (JSON, written last); a part is done when its record
  has this command's fingerprint and its files exist. They are removed once the scene is
  assembled and recorded.
- `claims/<stem>.claim` (and `<stem>.partKofN.claim` for parts): created with `O_CREAT | O_EXCL` (atomic on local and NFSv3+ file
  systems) by the process that works on the scene, removed when it is done or fails. Processes
  of a torchrun / SLURM job (or started by hand with RANK / WORLD_SIZE) walk the scene list from
  different starting points and take every scene nobody holds, so a slow scene holds up only
  its own process. A claim is *stale*, and taken over, when its process is gone: same host and
  its pid no longer runs, or it belongs to another run (a different `TORCHELASTIC_RUN_ID`, or
  SLURM job id / restart count). A claim of a dead process on another host of the same run stays
  until the next run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from crossearth.fileio import atomic_path
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

T = TypeVar("T")
FOLDER = ".crossearth"


def run_id() -> str | None:
    """The id of this job shared by all its processes, or None when the launcher gives none."""
    torch_run = os.environ.get("TORCHELASTIC_RUN_ID")
    if torch_run and torch_run != "none":
        return f"torchrun:{torch_run}:{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        return f"slurm:{job}:{os.environ.get('SLURM_RESTART_COUNT', '0')}"
    return None


def process_start_time() -> float:
    """When this process started, seconds since the epoch (Linux: from /proc; elsewhere: now).

    Records a peer process of the same job wrote after this process started are not reported as
    an earlier run's, also when this process took longer to load its model than the peer took
    for a scene (to the second: the boot time in /proc is whole seconds).
    """
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


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


def work_order(jobs: Sequence[T], rank: int, world: int) -> list[T]:
    """Every job, this process's round-robin share first, then the others' (to take over)."""
    own = list(jobs[rank::world])
    return own + [job for i, job in enumerate(jobs) if i % world != rank]


class Manifest:
    """Done records and claims of scenes (by output stem) in `output/.crossearth/`."""

    def __init__(self, output: Path, overwrite: bool = False) -> None:
        self.root = Path(output) / FOLDER
        self.overwrite = overwrite
        self.run = run_id()
        self.started = time.time()  # what --overwrite counts as redone by this run
        self.process_started = min(process_start_time(), self.started)
        self.host = socket.gethostname()

    def close(self) -> None:
        """Remove the manifest's folders that hold nothing (a run that failed leaves none)."""
        for folder in (self.root / "claims", self.root / "scenes", self.root / "parts", self.root):
            with suppress(OSError):  # missing, or not empty
                folder.rmdir()

    def _record_path(self, stem: str) -> Path:
        return self.root / "scenes" / f"{stem}.json"

    def _claim_path(self, stem: str) -> Path:
        return self.root / "claims" / f"{stem}.claim"

    def is_done(self, stem: str, digest: str) -> bool:
        """True if the scene's outputs for `digest` are complete (and, with overwrite, were
        written by this run)."""
        try:
            record = json.loads(self._record_path(stem).read_text())
        except (OSError, ValueError):
            return False
        if record.get("fingerprint") != digest:
            return False
        if not all(Path(p).exists() for p in record.get("outputs", [])):
            return False
        if self.overwrite:  # only what this run (a peer process) already redid counts
            return self._this_run(record)
        return True

    def done_by_this_run(self, stem: str) -> bool:
        """True if the scene's record was written by this run (a peer process of this job, or
        after this process started), not by an earlier run."""
        try:
            record = json.loads(self._record_path(stem).read_text())
        except (OSError, ValueError):
            return False
        if self._this_run(record):
            return True
        # another process's record since this process started: a peer that was quicker to start
        other = (record.get("host"), record.get("pid")) != (self.host, os.getpid())
        return other and record.get("finished", 0) >= self.process_started

    def _this_run(self, record: dict[str, Any]) -> bool:
        """Written by this job (same run id) or since this process started."""
        same_run = self.run is not None and record.get("run") == self.run
        return same_run or record.get("finished", 0) >= self.started

    def record(self, stem: str, digest: str, summary: dict[str, Any]) -> None:
        """Note the scene as done, atomically, after all its outputs are in place."""
        keys = ("class_map", "confidence", "preview", "overlay", "vector")
        outputs = [str(Path(summary[k]).resolve()) for k in keys if summary.get(k)]
        entry = {
            "stem": stem,
            "input": summary.get("input"),
            "fingerprint": digest,
            "outputs": outputs,
            "finished": time.time(),
            "run": self.run,
            "host": self.host,
            "pid": os.getpid(),
        }
        with atomic_path(self._record_path(stem)) as tmp:  # makes the folder
            tmp.write_text(json.dumps(entry, indent=1))

    def part_file(self, stem: str, digest: str, index: int, parts: int) -> Path:
        """Where part `index` (0-based) of `parts` of the scene goes (its folder is made)."""
        folder = self.root / "parts" / stem
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{digest[:16]}-part{index + 1}of{parts}.tif"

    def part_claim_name(self, stem: str, index: int, parts: int) -> str:
        return f"{stem}.part{index + 1}of{parts}"

    def part_done(self, stem: str, digest: str, index: int, parts: int) -> PartResult | None:
        """The record of a finished part for `digest` (with overwrite: finished by this run),
        or None."""
        from crossearth.predict.split import PartResult

        path = self.root / "parts" / stem / f"{digest[:16]}-part{index + 1}of{parts}.json"
        try:
            record = json.loads(path.read_text())
            result = PartResult.from_json(record["part"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if record.get("fingerprint") != digest or not all(p.exists() for p in result.files()):
            return None
        if self.overwrite and not self._this_run(record):
            return None
        return result

    def record_part(self, stem: str, digest: str, result: PartResult) -> None:
        """Note a part as done, atomically, after its files are in place."""
        path = result.classes.with_suffix(".json")
        entry = {"fingerprint": digest, "part": result.to_json(), "finished": time.time(),
                 "run": self.run, "host": self.host, "pid": os.getpid()}  # fmt: skip
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(entry, indent=1))

    def remove_parts(self, stem: str) -> None:
        """Remove a scene's part files (after the scene is assembled and recorded)."""
        shutil.rmtree(self.root / "parts" / stem, ignore_errors=True)

    @contextmanager
    def claim(self, stem: str) -> Iterator[bool]:
        """Yield True if this process now holds the scene (the claim is removed on exit),
        False if a live process holds it."""
        path = self._claim_path(stem)
        mine = self._try_claim(path)
        if not mine and self._is_stale(path):
            tomb = path.with_name(f".{path.name}.{self.host}.{os.getpid()}")
            try:  # take the stale claim away under a unique name, then claim afresh
                os.replace(path, tomb)
                tomb.unlink()
            except FileNotFoundError:
                pass
            mine = self._try_claim(path)
        try:
            yield mine
        finally:
            if mine:
                path.unlink(missing_ok=True)

    def _try_claim(self, path: Path) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"host": self.host, "pid": os.getpid(), "run": self.run}, f)
        return True

    def _is_stale(self, path: Path) -> bool:
        try:
            holder = json.loads(path.read_text())
        except FileNotFoundError:
            return True
        except (OSError, ValueError):  # being written this instant: a live process
            return False
        if holder.get("run") is not None and self.run is not None and holder["run"] != self.run:
            return True
        return holder.get("host") == self.host and not _pid_alive(int(holder.get("pid", 0)))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True

"""The Dask engine: the tasks of a run on a Dask cluster (`predict --cluster ...`).

`--cluster local` starts a `distributed.LocalCluster` of worker processes for the run and closes
it after; `tcp://HOST:PORT` (or `tls://`) connects to a running scheduler; `slurm` and `pbs`
build a dask-jobqueue cluster from the user's Dask configuration (`jobqueue.yaml`) scaled to
`--workers`. Every scene is one task, a split scene one task per part and one that assembles
them once all parts are done (the scheduler passes the parts' records on). Each worker loads the
model at its first task and keeps it (`crossearth.predict.tasks.cached_model`); on a GPU
machine worker k uses GPU k mod the GPU count. A worker that dies takes its task with it; the
scheduler runs it again on another worker (Dask's `distributed.scheduler.allowed-failures`,
default 3, bounds how often a task may take a worker down). A scene whose input is bad fails
alone: its `InputError` comes back and is reported.

Workers must see the inputs and the output folder: one machine, a shared file system, or an
object store (`-o s3://...`).
"""

from __future__ import annotations

import contextlib
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from crossearth.errors import CrossEarthError, InputError
from crossearth.geo.remote import mask_url
from crossearth.predict.engines import Reporter, RunResult, Work
from crossearth.predict.tasks import ModelSpec, Target, cached_model

KINDS = ("local", "tcp://HOST:PORT", "slurm", "pbs")
CONNECT_TIMEOUT = "10s"
_JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}


def check_cluster(cluster: str) -> str:
    """`--cluster` checked: "local", "slurm", "pbs", or a scheduler address
    (`tcp://HOST:PORT`, `tls://HOST:PORT`); returned as given (kinds lower-cased).

    Raises:
        InputError: anything else.
    """
    kind = cluster.strip()
    if kind.lower() in ("local", *_JOBQUEUE):
        return kind.lower()
    scheme, _, rest = kind.partition("://")
    if (
        scheme.lower() in ("tcp", "tls")
        and rest
        and ":" in rest
        and rest.rsplit(":", 1)[1].isdigit()
    ):
        return kind
    raise InputError(
        f"--cluster must be local, tcp://HOST:PORT (a running Dask scheduler), slurm or pbs, "
        f"got {cluster!r}"
    )


def require_dask() -> None:
    """Raises: InputError naming the extra to install when dask.distributed is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("--cluster needs Dask: pip install 'crossearth[dask]'") from None


def default_workers() -> int:
    """One worker per GPU, else one per two CPU cores (at least one)."""
    import torch

    from crossearth.threads import available_cpus

    if torch.cuda.is_available():
        return torch.cuda.device_count()
    return max(1, available_cpus() // 2)


def threads_per_worker(workers: int) -> int:
    """Intra-op threads of each of `workers` worker processes on this machine: the count chosen
    by `--threads` or the environment for every process, else the CPUs shared out so the
    workers together use each core once."""
    from crossearth.threads import available_cpus, chosen_threads

    count, source = chosen_threads()
    if source.startswith("$"):
        return count
    return max(1, available_cpus() // workers)


@dataclass
class Connection:
    """A client of the run's cluster, and what closes it."""

    client: Any
    cluster: Any = None  # a cluster started for the run (closed with it)
    workers: int = 1

    @property
    def dashboard(self) -> str | None:
        try:
            return self.client.dashboard_link
        except Exception:  # no dashboard (bokeh missing) or no scheduler info
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def connect(cluster: str, workers: int | None) -> Connection:
    """Start or reach the cluster named by `--cluster` (checked by `check_cluster`).

    Raises:
        InputError: Dask (or dask-jobqueue) is not installed, the scheduler cannot be reached,
            or the jobqueue configuration is incomplete; nothing has been started then.
    """
    require_dask()
    import logging

    from distributed import Client, LocalCluster

    # the scheduler's and nannies' chatter (INFO on every connection) would bury the run's lines
    logging.getLogger("distributed").setLevel(logging.ERROR)
    kind = check_cluster(cluster)
    if kind == "local":
        import dask

        n = workers or default_workers()
        # Dask's nannies set MALLOC_TRIM_THRESHOLD_ in their workers, which makes PyTorch on CPU
        # about 1.8x slower (see `_restore_malloc`): the workers started here go without it
        unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
        with warnings.catch_warnings(), dask.config.set(unset):
            warnings.simplefilter("ignore")  # "port 8787 is in use, using another" and the like
            local = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, silence_logs=logging.ERROR
            )
        return Connection(Client(local), local, n)
    if kind in _JOBQUEUE:
        try:
            import dask_jobqueue
        except ImportError:
            raise InputError(
                f"--cluster {kind} needs dask-jobqueue: pip install 'crossearth[jobqueue]'"
            ) from None
        try:
            queue = getattr(dask_jobqueue, _JOBQUEUE[kind])()
        except (ValueError, KeyError, TypeError) as exc:
            reason = str(exc).strip().splitlines()[0].removesuffix(", for example:")
            raise InputError(
                f"--cluster {kind}: the Dask configuration (jobqueue.yaml, section "
                f"jobqueue.{kind}) is incomplete: {reason}"
            ) from None
        n = workers or 1
        queue.scale(n)
        return Connection(Client(queue), queue, n)
    if workers is not None:
        raise InputError(
            "--workers sizes the clusters crossearth starts (local, slurm, pbs); a running "
            "scheduler has the workers that connect to it"
        )
    try:
        client = Client(kind, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {mask_url(kind)}: {exc}") from None
    return Connection(client, None, max(1, len(client.scheduler_info().get("workers", {}))))


def _restore_malloc() -> None:
    """Undo, in this worker process, what `MALLOC_TRIM_THRESHOLD_` (set by Dask's nanny, by
    default 65536) does to glibc: setting it switches off malloc's adaptive mmap threshold, so
    every large tensor buffer is mmap'ed and unmapped again, page faults each time. Measured on
    the nano model of `benchmarks/`: 1.8x the time of a forward pass. Here the mmap threshold
    is set to the adaptive one's ceiling (32 MiB, 64-bit glibc) and the trim threshold to twice
    that, as glibc's adaptation would; a worker started without the variable is left alone."""
    import ctypes
    import os

    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or _MALLOC_FIXED:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 64 * 1024 * 1024)  # M_TRIM_THRESHOLD
    _MALLOC_FIXED.append(True)


_MALLOC_FIXED: list[bool] = []


def _worker_model(spec: ModelSpec) -> Any:
    """The model on this worker: loaded at the first task, kept for the next ones; threads
    set, and `device auto` on a GPU machine: GPU (worker number) mod (GPU count)."""
    from crossearth.threads import configure_threads

    _restore_malloc()
    configure_threads(spec.threads)
    if spec.device == "auto":
        import torch

        if torch.cuda.is_available():
            from distributed import get_worker

            name = str(get_worker().name)
            index = int(name) if name.isdigit() else abs(hash(name))
            spec = replace(spec, device=f"cuda:{index % torch.cuda.device_count()}")
    return cached_model(spec)


def _describe(spec: ModelSpec, options: Any) -> tuple[tuple[int, int], tuple[int, int], str]:
    """On a worker: the model's (crop, stride) for `options` and its load report line."""
    net = _worker_model(spec)
    crop, stride = options.windows_for(net)
    report = getattr(net, "load_report", None)
    line = f"model loaded: {report.summary()}; {net.config.num_classes} classes" if report else ""
    return crop, stride, line


def _scene_task(spec: ModelSpec, scene, target: Target, options: Any) -> dict[str, Any]:
    from crossearth.predict.tasks import run_scene

    return run_scene(_worker_model(spec), scene, target, options)


def _part_task(spec: ModelSpec, scene, index: int, target: Target, options: Any) -> Any:
    from crossearth.predict.tasks import run_part

    return run_part(_worker_model(spec), scene, index, target, options)


def _assembly_task(spec: ModelSpec, scene, parts: Sequence[Any], target: Target, options):
    from crossearth.predict.tasks import run_assembly

    return run_assembly(_worker_model(spec), scene, parts, target, options)


def describe_model(connection: Connection, spec: ModelSpec, options: Any):
    """(crop, stride, load report) from a worker, which loads the model then: a model that does
    not load, or a window it does not take, is one error before any scene is run.

    Raises:
        CrossEarthError: what loading the model or `options.windows_for` raised.
    """
    future = connection.client.submit(_describe, spec, options, pure=False, key=_key("model"))
    return future.result()


def _key(name: str) -> str:
    return f"crossearth-{name}-{uuid.uuid4().hex[:8]}"


def run_dask(
    connection: Connection,
    spec: ModelSpec,
    work: Sequence[Work],
    target: Target,
    options: Any,
    reporter: Reporter,
) -> RunResult:
    """Run `work` on the cluster; one line per finished part and scene through `reporter`.

    A scene whose task raised a `CrossEarthError` (a bad input), or whose task took down more
    workers than Dask allows (`KilledWorker`), fails alone and is reported.

    Raises:
        OSError and other unexpected errors of a task (the remaining tasks are cancelled).
    """
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    client = connection.client
    finals: dict[str, Any] = {}  # future key -> scene
    parts_of: dict[str, tuple[Any, int]] = {}  # future key -> (scene, index)
    futures = []
    for item in work:
        scene = item.scene
        if scene.parts > 1:
            parts: list[Any] = []
            for index in range(scene.parts):
                if index in item.done_parts:
                    parts.append(item.done_parts[index])
                    continue
                future = client.submit(_part_task, spec, scene, index, target, options,
                                       pure=False, key=_key(f"{scene.stem}-part{index + 1}"))  # fmt: skip
                parts_of[future.key] = (scene, index)
                futures.append(future)
                parts.append(future)
            final = client.submit(_assembly_task, spec, scene, parts, target, options,
                                  pure=False, key=_key(scene.stem))  # fmt: skip
        else:
            final = client.submit(_scene_task, spec, scene, target, options, pure=False,
                                  key=_key(scene.stem))  # fmt: skip
        finals[final.key] = scene
        futures.append(final)
    result = RunResult()
    try:
        for future in as_completed(futures):
            if future.key in parts_of:
                if future.status == "finished":
                    reporter.part_done(parts_of[future.key][0], future.result())
                continue  # a failed part fails its scene's assembly: reported there
            scene = finals[future.key]
            if future.status == "finished":
                result.written.append(scene.stem)
                reporter.scene_done(scene, future.result())
                continue
            error = future.exception()
            if isinstance(error, KilledWorker):
                error = InputError(
                    f"{mask_url(str(scene.path))}: its task was lost with the workers that ran "
                    "it (killed, or out of memory) more often than Dask allows"
                )
            if not isinstance(error, CrossEarthError):
                raise error
            result.failed.append(f"{scene.stem}: {error}")
            result.errors.append(error)
            reporter.failed(scene, error)
    finally:
        client.cancel([f for f in futures if not f.done()])
    return result

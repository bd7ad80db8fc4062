"""`crossearth predict`: images in, georeferenced class maps out."""

from __future__ import annotations

import time
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from crossearth.cli.app import (
    BackboneOpt,
    ConfigOpt,
    DownloadOpt,
    ModelOpt,
    _report_load,
    app,
    console,
)
from crossearth.cli.predict_guards import refuse_process_launchers, warnings_as_lines
from crossearth.errors import InputError
from crossearth.wording import count


@app.command()
def predict(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="GeoTIFF/COG/VRT, PNG or JPEG files, folders of them, URLs of rasters "
            "(https://, s3://, gs://, az://, GDAL /vsi... paths; read window by window), STAC "
            "items (.json), or .txt scene lists (one input per line; # comments)."
        ),
    ],
    model: ModelOpt,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Class-map file (.tif/.png) or output folder; a folder on object storage "
            "(s3://bucket/out/, gs://, az://) gets every output uploaded when complete.",
        ),
    ],
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    bands: Annotated[
        str | None,
        typer.Option(
            help="1-based bands, e.g. 4,1,2, or band names, e.g. red,green,blue (STAC "
            "common names, band descriptions): three for RGB/IRRG models, N for a model of N "
            "bands (default: from the model and the file)."
        ),
    ] = None,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Non-uint8 scaling: auto (p2,p98), none, pLO,pHI, MIN,MAX, or per band 'a,b;c,d;e,f'."
        ),
    ] = None,
    nodata: Annotated[
        str | None,
        typer.Option(
            help="Override the file's nodata value: a number, or none to use every pixel "
            "(as GDAL's -a_nodata)."
        ),
    ] = None,
    tile: Annotated[
        int | None, typer.Option(help="Window size in px (default: the model's crop).")
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(
            help="Window stride in px (default: the model's; with --tile, the tile x 341/512)."
        ),
    ] = None,
    blend: Annotated[
        str, typer.Option(help="mean (official), cosine or gaussian window weights.")
    ] = "mean",
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, flip or d4.")] = "none",
    confidence: Annotated[
        bool, typer.Option(help="Also write a confidence raster (percent).")
    ] = False,
    preview: Annotated[bool, typer.Option(help="Write a PNG preview of the class map.")] = True,
    overlay: Annotated[
        bool, typer.Option(help="Write a PNG overlay of the classes on the image.")
    ] = True,
    vector: Annotated[
        str | None, typer.Option(help="Polygons: gpkg, geojson, or a .gpkg/.geojson path.")
    ] = None,
    cog: Annotated[
        bool, typer.Option(help="Write the class map as a Cloud-Optimized GeoTIFF.")
    ] = False,
    match_gsd: Annotated[
        bool, typer.Option(help="Resample to the model's training GSD and back.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[
        str,
        typer.Option(
            help="auto (the fastest path keeping >= 99 % agreement here), fp32 (parity), bf16, "
            "or int8 (CPU; an int8 copy exported once and cached beside the model). Applies to "
            ".onnx models too."
        ),
    ] = "auto",
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 4,
    download: DownloadOpt = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or per-file lines.")
    ] = False,
    map_: Annotated[
        bool, typer.Option("--map", help="Also write an HTML map of each result (crossearth view).")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Redo scenes whose outputs an earlier run of this command completed."),
    ] = False,
    parts: Annotated[
        str,
        typer.Option(
            help="Split each scene into N bands of window rows, run as separate tasks and "
            "assembled into the very output of a whole run. auto: on a cluster, a scene holding "
            "more than its share of the windows gets one part per worker."
        ),
    ] = "auto",
    cluster: Annotated[
        str | None,
        typer.Option(
            help="Run on Dask: local (a cluster of worker processes on this machine), "
            "tcp://HOST:PORT (a running scheduler), slurm or pbs (dask-jobqueue, from your "
            "jobqueue.yaml). Needs pip install 'crossearth[dask]'."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Workers of --cluster local|slurm|pbs (local default: one per GPU, else one "
            "per two CPU cores).",
        ),
    ] = None,
) -> None:
    """Segment images into georeferenced class maps, streaming windows from disk.

    Several inputs or folders need -o to be a folder. Inputs with the same name in different
    folders get their folder names in their output names; no output is ever written over an
    input, and earlier outputs in an input folder are skipped. A run into a folder keeps a
    manifest there (.crossearth/): the same command run again skips the scenes it completed
    (--overwrite redoes them). --cluster runs scenes and parts of scenes on Dask workers.
    SIGTERM, SIGHUP, SIGUSR1/2 (batch schedulers) end the run like Ctrl-C: unfinished outputs
    are removed.
    """
    from crossearth.cli.signals import terminate_on_signals

    with terminate_on_signals():
        _predict(
            inputs, model, output, config, backbone, bands, scale, tile, stride, blend, tta,
            confidence, preview, overlay, vector, cog, match_gsd, device, precision, batch_size,
            download, quiet, map_, overwrite, nodata, parts, cluster, workers,
        )  # fmt: skip


def _predict(
    inputs, model, output, config, backbone, bands, scale, tile, stride, blend, tta, confidence,
    preview, overlay, vector, cog, match_gsd, device, precision, batch_size, download, quiet,
    map_=False, overwrite=False, nodata=None, parts="auto", cluster=None, workers=None,
) -> None:  # fmt: skip
    from crossearth.imageio import parse_bands
    from crossearth.predict import PredictOptions
    from crossearth.predict.manifest import Manifest
    from crossearth.predict.plan import plan_outputs
    from crossearth.predict.store import is_object_url, open_store
    from crossearth.predict.tasks import ModelSpec, Target

    refuse_process_launchers()
    if map_ and "://" in output:
        raise InputError("--map needs a local output folder (the map pages are files beside it)")
    if cluster is not None:
        from crossearth.predict.engines.dask import check_cluster, require_dask

        cluster = check_cluster(cluster)
        require_dask()
    elif workers is not None:
        raise InputError("--workers needs --cluster (local, tcp://HOST:PORT, slurm or pbs)")
    remote = is_object_url(output)
    output = output if remote else Path(output)
    options = PredictOptions(
        bands=parse_bands(bands), scale=scale, nodata=nodata, tile=tile, stride=stride, batch_size=batch_size,
        blend=blend, tta=tta, confidence=confidence, preview=preview, overlay=overlay, vector=vector,
        cog=cog, match_gsd=match_gsd,
        png=None if remote else {".png": True, ".tif": False, ".tiff": False}.get(output.suffix.lower()),
    )  # fmt: skip
    parts_wanted = _parse_parts(parts)
    files, skipped = _expand_inputs(inputs)
    _check_output(options, output, files)
    stems = plan_outputs(files, None if remote else output, options.vector)
    sizes = _probe_inputs(files, model, options.bands)
    if skipped and not quiet:
        console.print(
            f"note: {count(skipped, 'file')} in the input folders "
            + (
                "is an output or temporary file"
                if skipped == 1
                else "are outputs or temporary files"
            )
            + " of crossearth and "
            + ("was" if skipped == 1 else "were")
            + " skipped",
            highlight=False,
        )
    folder = output if remote or not output.suffix else output.parent
    store = open_store(folder)
    store.check_writable()  # a bucket that is missing or refuses writes: before any work
    spec = ModelSpec(
        model, config, str(backbone) if backbone else None, device, precision, download
    )
    key = (
        model,
        {"options": options, "config": config, "backbone": backbone, "precision": precision},
    )
    from crossearth.runtime import PRECISION_CHOICES

    if precision not in PRECISION_CHOICES:
        raise InputError(
            f"--precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}"
        )
    connection = net = None
    if cluster is not None:
        from crossearth.predict.engines.dask import connect, describe_model, threads_per_worker

        connection = connect(cluster, workers)
        if cluster == "local":
            spec = replace(spec, threads=threads_per_worker(connection.workers))
    try:
        if connection is not None:
            crop, stride, line = describe_model(connection, spec, options)
            if not quiet:
                if line:
                    console.print(line, highlight=False)
                _report_cluster(connection, cluster)
            world = connection.workers
        else:
            with warnings_as_lines():
                net = spec.load()
            crop, stride = options.windows_for(net)  # a --tile too small fails before any work
            if not quiet:
                _report_load(net)
            world = 1
        split = _parts_per_scene(sizes, crop, stride, world, parts_wanted)
        manifest = None
        if remote or connection is not None or len(files) > 1 or max(split) > 1:
            manifest = Manifest(store)
        target = Target(store, manifest, None if remote or not output.suffix else output)
        made = not remote and not output.suffix and not output.exists()  # removed if left empty
        if not remote and not output.suffix:
            output.mkdir(exist_ok=True)
        try:
            done = _run(net, connection, spec, files, stems, split, target, options, quiet,
                        overwrite, key)  # fmt: skip
        finally:
            if manifest is not None:
                manifest.close()
            if made:
                with suppress(OSError):  # not empty: this run's outputs are there
                    output.rmdir()
    finally:
        if connection is not None:
            connection.close()
    if map_:
        from crossearth.cli.view import write_maps_after_predict

        write_maps_after_predict(done, output, quiet)


def _report_cluster(connection, cluster: str) -> None:
    from rich.markup import escape

    from crossearth.geo.remote import mask_url

    shown = cluster if "://" not in cluster else mask_url(cluster)
    dashboard = connection.dashboard
    console.print(
        f"Dask cluster {escape(shown)}: {count(connection.workers, 'worker')}"
        + (f"; dashboard {escape(dashboard)}" if dashboard else ""),
        highlight=False, soft_wrap=True,
    )  # fmt: skip


def _run(net, connection, spec, files, stems, split, target, options, quiet, overwrite, key):
    """Fingerprint the scenes, skip what the manifest holds, run the rest on the engine; the
    output stems written. One failed scene of several is reported and the others go on; the
    run then fails naming them."""
    from rich.markup import escape

    from crossearth.predict.engines import pending
    from crossearth.predict.manifest import fingerprint
    from crossearth.predict.tasks import Scene

    scenes = []
    for path, stem, parts in zip(files, stems, split, strict=True):
        unknown: list[str] = []  # a URL whose object version cannot be told
        digest = fingerprint(key[0], key[1], path, unknown) if target.manifest else ""
        if unknown and not quiet:
            console.print(
                f"note: {escape(unknown[0])} has no ETag or Last-Modified: a rerun "
                "trusts its URL and size (a changed object of the same size is not redone)",
                highlight=False, soft_wrap=True,
            )  # fmt: skip
        scenes.append(Scene(path, stem, parts, digest))
    work, already = pending(scenes, target, overwrite)
    if target.manifest is not None:
        target.manifest.remove_temporary()  # of a killed earlier run
    reporter = _ConsoleReporter(quiet, several=len(scenes) > 1)
    with reporter:
        if connection is None:
            from crossearth.predict.engines.local import run_local

            result = run_local(net, work, target, options, reporter)
        else:
            from crossearth.predict.engines.dask import run_dask

            result = run_dask(connection, spec, work, target, options, reporter)
    if already and not quiet:
        console.print(
            f"{count(already, 'scene')} completed by an earlier run skipped (--overwrite "
            f"redoes {'it' if already == 1 else 'them'})",
            highlight=False,
        )
    if result.failed:
        if len(scenes) == 1:
            raise result.errors[0]
        raise InputError(
            f"{len(result.failed)} of {count(len(scenes), 'scene')} failed (the others were "
            "written): " + "; ".join(result.failed)
        )
    return result.written


def _expand_inputs(inputs: list[str]) -> tuple[list[Path | str], int]:
    """Files named, the images in folders named, URLs (kept as strings) and the entries of
    scene lists (`.txt`, `crossearth.geo.scenelist`); (files, how many of our own outputs and
    temporaries in the folders were skipped). A file named twice is taken once."""
    from crossearth.geo.scenelist import is_scene_list, read_scene_list

    files: list[Path | str] = []
    skipped = 0
    for name in inputs:
        if is_scene_list(name):
            listed = name
            for number, entry in read_scene_list(name):
                try:
                    found, n = _expand_one(entry)
                except InputError as exc:  # an empty folder or item collection
                    raise InputError(f"{listed}:{number}: {exc}") from None
                files.extend(found)
                skipped += n
            continue
        found, n = _expand_one(name)
        files.extend(found)
        skipped += n
    unique: dict[Path | str, Path | str] = {}
    for path in files:
        unique.setdefault(path if isinstance(path, str) else path.resolve(), path)
    return list(unique.values()), skipped


def _expand_one(name: str | Path) -> tuple[list[Path | str], int]:
    """The scenes of one input (a file, a folder, a URL, a GDAL subdataset name, a STAC item or
    collection); (files, how many of our own outputs and temporaries in a folder were skipped)."""
    from crossearth.geo.containers import is_subdataset
    from crossearth.geo.raster import RASTER_SUFFIXES
    from crossearth.geo.remote import is_remote
    from crossearth.geo.stac import expand_stac, is_stac
    from crossearth.predict.plan import is_own_output

    if is_stac(name):  # a STAC item, or a collection: one scene per item
        return expand_stac(name if is_remote(name) else Path(name)), 0
    if is_remote(name) or is_subdataset(name):  # kept as text (Path would alter `://`)
        return [str(name)], 0
    item = Path(name)
    if not item.is_dir():
        return [item], 0
    images = sorted(p for p in item.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    found = [p for p in images if not is_own_output(p)]
    skipped = len(images) - len(found)
    if not found:
        raise InputError(
            f"folder {item} holds no images ({', '.join(sorted(RASTER_SUFFIXES))})"
            + (f"; only {skipped} outputs of earlier runs" if images else "")
        )
    return list(found), skipped


def _check_output(options, output: Path | str, files: list[Path | str]) -> None:
    if isinstance(output, str):  # a folder on object storage
        from pathlib import PurePosixPath

        from crossearth.geo.remote import mask_url

        if PurePosixPath(output.split("://", 1)[1]).suffix.lower() in {".tif", ".tiff", ".png"}:
            raise InputError(
                f"an output on object storage is a folder (s3://bucket/out/), not a file: "
                f"{mask_url(output)}"
            )
        if options.vector and options.vector.lower() not in {"gpkg", "geojson"}:
            raise InputError("--vector PATH needs a local output; use --vector gpkg or geojson")
        return
    if output.suffix:
        if len(files) > 1:
            raise InputError("several inputs need an output folder (-o DIR), not a single file")
        if output.suffix.lower() not in {".tif", ".tiff", ".png"}:
            raise InputError(f"output {output} must be a .tif or .png file, or a folder")
        if not output.parent.is_dir():
            raise InputError(f"output folder {output.parent} does not exist")
        if options.vector and options.vector.lower() not in {"gpkg", "geojson"} and len(files) > 1:
            raise InputError("--vector PATH works with one input; use --vector gpkg for several")
    else:
        if output.exists() and not output.is_dir():
            raise InputError(f"output {output} exists and is not a folder")
        if not output.parent.is_dir():
            raise InputError(f"the parent folder of {output} does not exist")


def _probe_inputs(files: list[Path | str], model: str, bands) -> list[tuple[int, int]]:
    """Open every input and check its bands before spending time loading the model; returns
    each input's (height, width) in px."""
    from crossearth.geo.bands import choose_bands
    from crossearth.geo.raster import open_raster
    from crossearth.weights.zoo import ZOO

    model_bands = ZOO[model].bands if model in ZOO else "RGB"
    count, recorded, names = (3, None, None) if model in ZOO else _recorded_bands(model)
    from_model = bands is None and recorded is not None
    if from_model:
        bands = recorded
    sizes = []
    for path in files:
        with open_raster(path) as ds:
            if bands is not None or ds.count < 4:
                choose_bands(ds, model_bands, bands, nbands=count, from_model=from_model,
                             model_band_names=names)  # fmt: skip
            sizes.append((ds.height, ds.width))
    return sizes


def _recorded_bands(model: str) -> tuple[int, tuple[int, ...] | None, tuple[str, ...] | None]:
    """(input band count, recorded band numbers, band names) from a model file's stored config,
    read from the safetensors header only; (3, None, None) for anything else (official
    checkpoints are RGB/IRRG; a file that cannot be read is reported when the model loads)."""
    from crossearth.weights.checkpoint_io import stored_config

    path = Path(model)
    config = stored_config(path) if path.is_file() else None
    if config is None:
        return 3, None, None
    try:
        count = int((config.get("backbone") or {}).get("in_chans", 3))
        recorded = config.get("band_indices")
        names = config.get("band_names")
        return (
            count,
            tuple(int(b) for b in recorded) if recorded else None,
            tuple(str(n) for n in names) if names else None,
        )
    except (TypeError, ValueError, AttributeError):  # load_model names the problem
        return 3, None, None


def _parse_parts(value: str) -> int | None:
    """`--parts`: None for auto, else a whole number >= 1."""
    if value.strip().lower() == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InputError(f"--parts must be auto or a whole number >= 1, got {value!r}")
    return number


def _parts_per_scene(sizes, crop, stride, world: int, wanted: int | None) -> list[int]:
    """Parts of each scene: `wanted` (at most one per row of windows), or the auto rule."""
    from crossearth.inference import slide_windows
    from crossearth.predict.split import auto_parts

    windows, window_rows = [], []
    for height, width in sizes:
        grid = slide_windows(height, width, (min(crop[0], height), min(crop[1], width)), stride)
        windows.append(len(grid))
        window_rows.append(len({w[0] for w in grid}))
    if wanted is None:
        return auto_parts(windows, window_rows, world)
    return [min(wanted, rows) for rows in window_rows]


class _ConsoleReporter:
    """The engines' `Reporter` on the console: a progress bar per task run in this process
    where the console can redraw one (plain progress lines in a log, see
    `crossearth.progress.PlainLines`; none with --quiet), one line per finished part and scene,
    an `error:` line per failed scene of several (a single scene's error ends the run)."""

    def __init__(self, quiet: bool, several: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.quiet, self.several = quiet, several
        columns = (
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("windows"), TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[left]}"),
        )  # fmt: skip
        # a bar only where it can redraw: in a log it would leave a blank line per scene
        self.bar = Progress(*columns, console=console, transient=True,
                            disable=quiet or not console.is_terminal)  # fmt: skip

    def __enter__(self) -> _ConsoleReporter:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def _line(self, text: str) -> None:
        if not self.quiet:
            console.print(text, soft_wrap=True, highlight=False)

    @contextmanager
    def task(self, name: str):
        from rich.markup import escape

        with _bar_task(self.bar, escape(name), self.quiet) as progress:
            yield progress

    def part_done(self, scene, part) -> None:
        from rich.markup import escape

        from crossearth.geo.remote import mask_url

        a, b = part.rows
        self._line(
            f"{escape(mask_url(str(scene.path)))} part {part.index + 1}/{part.parts} (rows "
            f"{a}-{b - 1}) done ({part.seconds['total']:.1f} s, "
            f"{count(part.windows_run, 'window')})"
        )

    def scene_done(self, scene, summary) -> None:
        from rich.markup import escape

        from crossearth.geo.remote import mask_url

        parts = summary.get("parts")
        self._line(
            f"{escape(mask_url(str(scene.path)))} -> {escape(mask_url(summary['class_map']))} "
            f"({summary['seconds']['total']:.1f} s, {count(summary['windows'], 'window')}, "
            f"{summary['skipped_windows']} skipped as nodata; "
            f"{count(summary['nodata_pixels'], 'nodata pixel')}"
            + (f"; assembled from {parts} parts" if parts else "") + ")"
        )  # fmt: skip

    def failed(self, scene, error) -> None:
        from rich.markup import escape

        if self.several:  # one bad scene of a batch: say so, go on, fail at the end
            console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False,
                          soft_wrap=True)  # fmt: skip


@contextmanager
def _bar_task(bar, name: str, quiet: bool = False):
    """A progress-bar line for one job, or plain progress lines where the output is not a
    terminal (unless `quiet`); yields its `progress(done, total)` callback. Rate and time left
    are `crossearth.progress.RateMeter`'s: steady, the first window's start-up left out."""
    from crossearth.progress import PlainLines, RateMeter, duration

    task = bar.add_task(name, total=None, rate="", left="")
    meter = RateMeter()
    plain = None
    if bar.disable and not quiet:
        plain = PlainLines(name, lambda line: console.print(line, highlight=False, soft_wrap=True))

    def progress(done: int, total: int) -> None:
        if plain is not None:
            plain(done, total)
            return
        meter.update(time.monotonic(), done)
        rate, left = meter.rate, meter.seconds_left(total)
        bar.update(
            task, completed=done, total=total,
            rate=f"{rate:.1f}/s" if rate is not None else "",
            left=f"{duration(left)} left" if left is not None and done < (total or 0) else "",
        )  # fmt: skip

    try:
        yield progress
    finally:
        bar.remove_task(task)

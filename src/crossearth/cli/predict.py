"""`crossearth predict`: images in, georeferenced class maps out."""

from __future__ import annotations

import time
from contextlib import contextmanager, suppress
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
        Path, typer.Option("--output", "-o", help="Class-map file (.tif/.png) or output folder.")
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
        str, typer.Option(help="auto (bf16 where fast), fp32 (parity) or bf16.")
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
            help="Split each scene into N bands of window rows that processes take one by one "
            "and that are assembled into the very output of a whole run. auto: with several "
            "processes, a scene holding more than its share of the windows gets one part per "
            "process."
        ),
    ] = "auto",
) -> None:
    """Segment images into georeferenced class maps, streaming windows from disk.

    Several inputs or folders need -o to be a folder. Inputs with the same name in different
    folders get their folder names in their output names; no output is ever written over an
    input, and earlier outputs in an input folder are skipped. A run into a folder keeps a
    manifest there (.crossearth/): the same command run again skips the scenes it completed
    (--overwrite redoes them). Under torchrun or SLURM (RANK/WORLD_SIZE set), the processes
    claim scenes one at a time. SIGTERM, SIGHUP, SIGUSR1/2 (batch schedulers) end the run like
    Ctrl-C: unfinished outputs are removed.
    """
    from crossearth.cli.signals import terminate_on_signals

    with terminate_on_signals():
        _predict(
            inputs, model, output, config, backbone, bands, scale, tile, stride, blend, tta,
            confidence, preview, overlay, vector, cog, match_gsd, device, precision, batch_size,
            download, quiet, map_, overwrite, nodata, parts,
        )  # fmt: skip


def _predict(
    inputs, model, output, config, backbone, bands, scale, tile, stride, blend, tta, confidence,
    preview, overlay, vector, cog, match_gsd, device, precision, batch_size, download, quiet,
    map_=False, overwrite=False, nodata=None, parts="auto",
) -> None:  # fmt: skip
    from crossearth.geo.manifest import Manifest, work_order
    from crossearth.geo.outputs import plan_outputs
    from crossearth.geo.predict import PredictOptions
    from crossearth.imageio import parse_bands
    from crossearth.parallel import rank_and_world
    from crossearth.weights import load_model

    options = PredictOptions(
        bands=parse_bands(bands), scale=scale, nodata=nodata, tile=tile, stride=stride, batch_size=batch_size,
        blend=blend, tta=tta, confidence=confidence, preview=preview, overlay=overlay, vector=vector,
        cog=cog, match_gsd=match_gsd,
        png={".png": True, ".tif": False, ".tiff": False}.get(output.suffix.lower()),
    )  # fmt: skip
    parts_wanted = _parse_parts(parts)
    files, skipped = _expand_inputs(inputs)
    _check_output(options, output, files)
    stems = plan_outputs(files, output, options.vector)
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
    rank, world = rank_and_world()
    key = (
        model,
        {"options": options, "config": config, "backbone": backbone, "precision": precision},
    )
    if world > 1 and device == "auto":
        device = _local_device()
    if model.lower().endswith(".onnx"):  # an exported file, run by ONNX Runtime
        from crossearth.export.runner import OnnxSegmenter

        net = OnnxSegmenter(model, device=device)
    else:
        net = load_model(
            model,
            config=config,
            backbone=backbone,
            device=device,
            precision=precision,
            download=download,
        )
    crop, stride = options.windows_for(net)  # a --tile too small fails before any work
    split = _parts_per_scene(sizes, crop, stride, world, parts_wanted)
    jobs = list(zip(files, stems, split, strict=True))
    manifest = None
    if len(jobs) > 1 or world > 1 or max(split) > 1:
        # scenes (and parts) claimed one by one through the manifest; done ones are skipped
        manifest = Manifest(output if not output.suffix else output.parent, overwrite)
        jobs = work_order(jobs, rank, world)
    if not quiet:
        _report_load(net)
    made = not output.suffix and not output.exists()  # made here: removed again if left empty
    if not output.suffix:
        output.mkdir(exist_ok=True)
    try:
        done = _run_predictions(net, jobs, output, options, quiet, rank, world, manifest, key)
    finally:
        if manifest is not None:
            manifest.close()
        if made:
            with suppress(OSError):  # not empty: a peer's or this run's outputs are there
                output.rmdir()
    if map_:
        from crossearth.cli.view import write_maps_after_predict

        write_maps_after_predict(done, output, quiet)


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
    from crossearth.geo.outputs import is_own_output
    from crossearth.geo.raster import RASTER_SUFFIXES
    from crossearth.geo.remote import is_remote
    from crossearth.geo.stac import expand_stac, is_stac

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


def _check_output(options, output: Path, files: list[Path | str]) -> None:
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
    from crossearth.geo.split import auto_parts
    from crossearth.inference import slide_windows

    windows, window_rows = [], []
    for height, width in sizes:
        grid = slide_windows(height, width, (min(crop[0], height), min(crop[1], width)), stride)
        windows.append(len(grid))
        window_rows.append(len({w[0] for w in grid}))
    if wanted is None:
        return auto_parts(windows, window_rows, world)
    return [min(wanted, rows) for rows in window_rows]


def _local_device() -> str:
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return "cpu"


def _run_predictions(
    net, jobs, output, options, quiet: bool, rank: int, world: int, manifest=None, key=None
) -> list[str]:
    """Predict the scenes this process gets (all of them with a manifest: each is skipped if
    done, else claimed); returns the output stems this process wrote."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from crossearth.geo.manifest import fingerprint

    tag = escape(f"[rank {rank}/{world}] ") if world > 1 else ""
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
        TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[left]}"),
    )  # fmt: skip
    written: list[str] = []
    failed: list[str] = []
    already = 0
    # a bar only where it can redraw: in a log it would leave a blank line per scene, so a
    # log gets plain progress lines instead (crossearth.progress.PlainLines)
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal,
                  transient=True) as bar:  # fmt: skip
        for path, stem, parts in jobs:
            unknown: list[str] = []  # a URL whose object version cannot be told
            digest = fingerprint(key[0], key[1], path, unknown) if manifest else ""
            if unknown and not quiet:
                console.print(
                    f"{tag}note: {escape(unknown[0])} has no ETag or Last-Modified: a rerun "
                    "trusts its URL and size (a changed object of the same size is not redone)",
                    highlight=False, soft_wrap=True,
                )  # fmt: skip
            if manifest and manifest.is_done(stem, digest):
                # a peer process's scenes of this job go unmentioned (one process has no peers)
                already += not (world > 1 and manifest.done_by_this_run(stem))
                continue
            try:
                if parts > 1:
                    summary = _predict_split(
                        net, path, stem, parts, output, options, bar, tag, quiet, manifest,
                        digest, rank, world,
                    )  # fmt: skip
                else:
                    summary = _predict_claimed(
                        net, path, stem, output, options, bar, tag, quiet, manifest, digest
                    )
            except InputError as exc:
                if len(jobs) == 1:
                    raise
                # one bad scene of a batch: say so, go on, fail at the end
                failed.append(f"{stem}: {exc}")
                console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)  # fmt: skip
                continue
            if summary is not None:
                written.append(stem)
    if already and not quiet:
        console.print(
            f"{tag}{count(already, 'scene')} completed by an earlier run skipped (--overwrite "
            f"redoes {'it' if already == 1 else 'them'})",
            highlight=False,
        )
    if failed:
        raise InputError(
            f"{tag}{len(failed)} of {count(len(jobs), 'scene')} failed (the others were written): "
            + "; ".join(failed)
        )
    return written


def _predict_claimed(
    net, path, stem, output, options, bar, tag, quiet, manifest, digest
) -> dict | None:
    """A whole scene, if this process can claim it (always, without a manifest); its summary,
    or None if a peer holds it or finished it meanwhile."""
    from contextlib import nullcontext

    with manifest.claim(stem) if manifest else nullcontext(True) as mine:
        # a peer may have finished the scene between the check and the claim
        if not mine or (manifest and manifest.is_done(stem, digest)):
            return None
        summary = _predict_one(net, path, stem, output, options, bar, tag, quiet)
        if manifest:
            manifest.record(stem, digest, summary)
    return summary


def _predict_split(
    net, path, stem, parts, output, options, bar, tag, quiet, manifest, digest, rank, world
) -> dict | None:
    """A scene split into `parts`: run the parts nobody holds (from this rank's own starting
    part on), record each; whoever finds every part done assembles the scene and records it.
    Returns the scene's summary if this process assembled it, else None."""
    from rich.markup import escape

    from crossearth.geo.remote import display_name, mask_url
    from crossearth.geo.split import predict_part

    first = rank * parts // world
    for index in [(first + k) % parts for k in range(parts)]:
        if manifest.part_done(stem, digest, index, parts):
            continue
        with manifest.claim(manifest.part_claim_name(stem, index, parts)) as mine:
            if not mine or manifest.part_done(stem, digest, index, parts):
                continue
            name = f"{tag}{escape(display_name(path))} part {index + 1}/{parts}"
            with _bar_task(bar, name, quiet) as progress:
                target = manifest.part_file(stem, digest, index, parts)
                result = predict_part(net, path, target, options, index, parts, progress=progress)
            manifest.record_part(stem, digest, result)
            if not quiet:
                a, b = result.rows
                console.print(
                    f"{tag}{escape(mask_url(str(path)))} part {index + 1}/{parts} (rows "
                    f"{a}-{b - 1}) done ({result.seconds['total']:.1f} s, "
                    f"{count(result.windows_run, 'window')})",
                    soft_wrap=True, highlight=False,
                )  # fmt: skip
    done = [manifest.part_done(stem, digest, index, parts) for index in range(parts)]
    if not all(done):
        return None  # a peer still works on a part; the one finishing last assembles
    with manifest.claim(stem) as mine:
        if not mine or manifest.is_done(stem, digest):
            return None
        summary = _predict_one(net, path, stem, output, options, bar, tag, quiet, parts=done)
        manifest.record(stem, digest, summary)
    manifest.remove_parts(stem)
    return summary


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


def _predict_one(net, path, stem, output, options, bar, tag: str, quiet: bool, parts=None) -> dict:
    """One scene with its progress bar and result line; its summary. With `parts`, the scene
    is assembled from them."""
    from rich.markup import escape

    from crossearth.geo.predict import predict_raster
    from crossearth.geo.remote import display_name, mask_url

    with _bar_task(bar, f"{tag}{escape(display_name(path))}", quiet) as progress:
        summary = predict_raster(
            net, path, output, options, progress=progress, stem=stem, parts=parts
        )
    if not quiet:
        skipped = summary["skipped_windows"]
        console.print(
            f"{tag}{escape(mask_url(str(path)))} -> {escape(summary['class_map'])} ({summary['seconds']['total']:.1f} s, "
            f"{count(summary['windows'], 'window')}, {skipped} skipped as nodata; "
            f"{count(summary['nodata_pixels'], 'nodata pixel')}"
            + (f"; assembled from {len(parts)} parts" if parts else "") + ")",
            soft_wrap=True, highlight=False,
        )  # fmt: skip
    return summary

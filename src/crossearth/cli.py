"""The `crossearth` command. It only parses arguments and calls the library."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossearth.errors import CrossEarthError, InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="CrossEarth: domain-generalizable remote-sensing segmentation, in pure PyTorch.",
)
console = Console(stderr=True)

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Zoo name, official .pth or our .safetensors.")
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        help="Preset name, our JSON config, or the official model config (JSON or dumped .py)."
    ),
]
BackboneOpt = Annotated[
    Path | None,
    typer.Option(
        help="Converted DINOv2 backbone for checkpoints that hold only Rein+head weights."
    ),
]
DownloadOpt = Annotated[
    bool, typer.Option(help="Allow downloading zoo files from the Hugging Face Hub.")
]


@app.command()
def predict(
    inputs: Annotated[
        list[Path], typer.Argument(help="GeoTIFF/COG/VRT, PNG or JPEG files, or folders of them.")
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
            help="Three 1-based bands, e.g. 4,1,2 (default: from the model and the file)."
        ),
    ] = None,
    scale: Annotated[
        str | None,
        typer.Option(
            help="Non-uint8 scaling: auto (p2,p98), none, pLO,pHI, MIN,MAX, or per band 'a,b;c,d;e,f'."
        ),
    ] = None,
    tile: Annotated[
        int | None, typer.Option(min=16, help="Window size (default: the model's crop).")
    ] = None,
    stride: Annotated[
        int | None, typer.Option(min=1, help="Window stride (default: the model's).")
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
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 4,
    download: DownloadOpt = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress or per-file lines.")
    ] = False,
) -> None:
    """Segment images into georeferenced class maps, streaming windows from disk.

    Several inputs or folders need -o to be a folder. Under torchrun (RANK/WORLD_SIZE set), the
    files are shared out between the processes.
    """
    from crossearth.geo.predict import PredictOptions
    from crossearth.imageio import parse_bands
    from crossearth.parallel import shard
    from crossearth.weights import load_model

    files = _expand_inputs(inputs)
    options = PredictOptions(
        bands=parse_bands(bands), scale=scale, tile=tile, stride=stride, batch_size=batch_size,
        blend=blend, tta=tta, confidence=confidence, preview=preview, overlay=overlay, vector=vector,
        cog=cog, match_gsd=match_gsd,
        png={".png": True, ".tif": False, ".tiff": False}.get(output.suffix.lower()),
    )  # fmt: skip
    _check_predict_options(options, output, files)
    _probe_inputs(files, model, options.bands)
    mine, rank, world = shard(files)
    if world > 1 and device == "auto":
        device = _local_device()
    net = load_model(
        model,
        config=config,
        backbone=backbone,
        device=device,
        precision=precision,
        download=download,
    )
    if not quiet:
        _report_load(net)
    _run_predictions(net, mine, output, options, quiet, rank, world)


def _expand_inputs(inputs: list[Path]) -> list[Path]:
    from crossearth.geo.raster import RASTER_SUFFIXES

    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
            if not found:
                raise InputError(
                    f"folder {item} holds no images ({', '.join(sorted(RASTER_SUFFIXES))})"
                )
            files.extend(found)
        else:
            files.append(item)
    return files


def _check_predict_options(options, output: Path, files: list[Path]) -> None:
    from crossearth.geo.stream import BLENDS, TTAS

    if options.blend not in BLENDS:
        raise InputError(f"--blend must be one of {', '.join(BLENDS)}")
    if options.tta not in TTAS:
        raise InputError(f"--tta must be one of {', '.join(TTAS)}")
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
        output.mkdir(exist_ok=True)


def _probe_inputs(files: list[Path], model: str, bands) -> None:
    """Open every input and check its bands before spending time loading the model."""
    from crossearth.geo.bands import choose_bands
    from crossearth.geo.raster import open_raster
    from crossearth.weights.zoo import ZOO

    model_bands = ZOO[model].bands if model in ZOO else "RGB"
    for path in files:
        with open_raster(path) as ds:
            if bands is not None or ds.count < 4:
                choose_bands(ds, model_bands, bands)


def _local_device() -> str:
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return "cpu"


def _run_predictions(net, files, output, options, quiet: bool, rank: int, world: int) -> None:
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from crossearth.geo.predict import predict_raster

    tag = escape(f"[rank {rank}/{world}] ") if world > 1 else ""
    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
        for path in files:
            task = bar.add_task(f"{tag}{escape(path.name)}", total=None, rate="")
            start = time.perf_counter()

            def progress(done: int, total: int, task=task, start=start) -> None:
                rate = done / max(time.perf_counter() - start, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{rate:.1f}/s")

            summary = predict_raster(net, path, output, options, progress=progress)
            bar.remove_task(task)
            if not quiet:
                skipped = summary["skipped_windows"]
                console.print(
                    f"{tag}{escape(str(path))} -> {escape(summary['class_map'])} ({summary['seconds']['total']:.1f} s, "
                    f"{summary['windows']} windows, {skipped} skipped as nodata)",
                    soft_wrap=True, highlight=False,
                )  # fmt: skip


def _report_load(net) -> None:
    report = getattr(net, "load_report", None)
    if report is None:
        return
    console.print(f"model loaded: {report.summary()}; {net.config.num_classes} classes")
    for note in report.notes:
        console.print(f"  note: {note}")
    for key in report.unexpected:
        console.print(f"  [yellow]warning[/]: unexpected key ignored: {key}")


@app.command()
def models() -> None:
    """List the model zoo: names, classes, input bands, source domain, files."""
    from crossearth.weights.zoo import ZOO, checkpoint_dir

    table = Table(title=f"CrossEarth model zoo (files go in {checkpoint_dir()})")
    for column in ("name", "classes", "bands", "crop", "source domain", "file"):
        table.add_column(column)
    for entry in ZOO.values():
        crop = entry.preset.split("-")[-1]
        table.add_row(
            entry.name,
            f"{entry.num_classes}: {', '.join(entry.classes.names)}",
            entry.bands,
            crop,
            entry.source_domain,
            entry.filename,
        )
    Console().print(table)


@app.command()
def convert(
    checkpoint: Annotated[str, typer.Argument(help="Official .pth (or zoo name) to convert.")],
    output: Annotated[
        Path, typer.Option("--output", "--out", "-o", help="Output .safetensors file.")
    ],
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    download: DownloadOpt = False,
) -> None:
    """Convert an official checkpoint (plus backbone) into one self-describing .safetensors file."""
    from crossearth.weights import load_model, save_model

    if output.suffix != ".safetensors":
        raise InputError(f"output {output} must end in .safetensors")
    net = load_model(checkpoint, config=config, backbone=backbone, download=download)
    _report_load(net)
    save_model(net, output)
    console.print(f"wrote {output}")


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo outputs.")
    ] = Path("demo_output"),
    reference: Annotated[
        Path | None, typer.Option(help="Official reference tensors (default: ../shared/reference).")
    ] = None,
) -> None:
    """Parity against the official reference tensors, then a prediction on a generated scene."""
    from crossearth.demo import run_demo

    run_demo(output, reference, console=Console())


data_app = typer.Typer(
    no_args_is_help=True, help="Prepare the benchmark datasets from their raw archives."
)
app.add_typer(data_app, name="data")


@data_app.command("prepare")
def data_prepare(
    dataset: Annotated[str, typer.Argument(help="Dataset name (see `crossearth data list`).")],
    raw_dir: Annotated[Path, typer.Argument(help="Folder holding the archives as downloaded.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Data root to write the benchmark layout into.")
    ],
    nearest_colour: Annotated[
        bool,
        typer.Option(
            help="ISPRS: decode labels by nearest palette colour (recovers tiles 4_12, 6_7)."
        ),
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Convert only the first N source tiles.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Convert a dataset's raw archives into the benchmark layout (idempotent: re-run to resume)."""
    from crossearth.data.prepare import CONVERTERS
    from crossearth.data.prepare.common import PrepareOptions

    if dataset not in CONVERTERS:
        raise InputError(f"unknown dataset {dataset!r}; known: {', '.join(CONVERTERS)}")
    if not out.parent.is_dir():
        raise InputError(f"the parent folder of {out} does not exist")
    out.mkdir(exist_ok=True)
    options = PrepareOptions(quiet=quiet, nearest_colour=nearest_colour, limit=limit)
    reports = CONVERTERS[dataset](raw_dir, out, options)
    for report in reports if isinstance(reports, list) else [reports]:
        for line in report.lines():
            Console().print(line, highlight=False, soft_wrap=True)


@data_app.command("list")
def data_list() -> None:
    """The datasets `data prepare` knows, the domains and the benchmark settings."""
    from crossearth.benchmark import SETTINGS
    from crossearth.data.catalog import DOMAINS
    from crossearth.data.prepare import CONVERTERS

    out = Console()
    out.print("datasets: " + ", ".join(CONVERTERS))
    table = Table(title="domains (folders under the data root)")
    for column in ("domain", "folder", "classes", "splits"):
        table.add_column(column)
    for d in DOMAINS.values():
        splits = ", ".join(f"{k} {v}" for k, v in d.expected.items())
        table.add_row(d.key, d.folder, str(len(d.classes)), splits)
    out.print(table)
    settings = Table(title="settings")
    for column in ("setting", "source", "targets", "zoo model", "paper mIoU"):
        settings.add_column(column)
    for st in SETTINGS.values():
        paper = "–" if st.paper_miou is None else f"{st.paper_miou} ({st.paper_source})"
        targets = ", ".join(f"{t.domain}/{t.split}" for t in st.targets)
        settings.add_row(st.name, st.source, targets, st.model or "not released", paper)
    out.print(settings)


def _domain_dirs(items: list[str] | None) -> dict[str, Path]:
    out = {}
    for item in items or []:
        key, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"--domain-dir needs DOMAIN=PATH, got {item!r}")
        out[key] = Path(path)
    return out


@app.command("eval")
def eval_command(
    setting: Annotated[
        str, typer.Option(help='Benchmark setting, e.g. "P(i)2V" (see `crossearth data list`).')
    ],
    data_root: Annotated[
        Path, typer.Option(help="Data root prepared by `crossearth data prepare`.")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Zoo name or file (default: the setting's zoo model)."),
    ] = None,
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the reports.")] = Path(
        "eval_output"
    ),
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N images per target.")
    ] = None,
    domain_dir: Annotated[
        list[str] | None,
        typer.Option(help="DOMAIN=PATH: a folder prepared elsewhere (e.g. by the official tools)."),
    ] = None,
    device: Annotated[str, typer.Option()] = "auto",
    precision: Annotated[str, typer.Option(help="fp32 (official numbers) or bf16/auto.")] = "fp32",
    download: DownloadOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Score a checkpoint on a setting with the official protocol; compare with the paper."""
    from crossearth.benchmark import get_setting
    from crossearth.weights import load_model

    try:
        chosen = get_setting(setting)
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    source = model or chosen.model
    if source is None:
        raise InputError(f"setting {chosen.name} has no released checkpoint; pass --model")
    if not data_root.is_dir():
        raise InputError(f"data root {data_root} does not exist")
    net = load_model(
        source,
        config=config,
        backbone=backbone,
        device=device,
        precision=precision,
        download=download,
    )
    report = _run_eval(net, chosen, data_root, out, limit, _domain_dirs(domain_dir), quiet)
    _print_eval(report)


def _run_eval(net, setting, data_root, out, limit, overrides, quiet):
    from rich.progress import Progress

    from crossearth.evaluate import evaluate_setting

    with Progress(console=console, disable=quiet, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(domain: str, done: int, total: int) -> None:
            if domain not in tasks:
                tasks[domain] = bar.add_task(f"{setting.name} on {domain}", total=total)
            bar.update(tasks[domain], completed=done)

        return evaluate_setting(
            net, setting, data_root, out, limit=limit, overrides=overrides, progress=progress
        )


def _print_eval(report: dict) -> None:
    out = Console()
    for key, t in report["targets"].items():
        extra = (
            f", foreground IoU {t['foreground_IoU']:.2f}"
            if t.get("foreground_IoU") is not None
            else ""
        )
        out.print(f"{report['setting']} on {key} ({t['images']} images): mIoU {t['mIoU']:.2f}, "
                  f"mF1 {t['mF1']:.2f}, OA {t['OA']:.2f}{extra}")  # fmt: skip
    paper = report.get("paper_mIoU")
    if paper is not None and report.get("mIoU") is not None:
        out.print(
            f"paper (CrossEarth, {report['paper_source']}): {paper:.1f}; delta {report['mIoU'] - paper:+.2f}"
        )


@app.command("benchmark")
def benchmark_command(
    data_root: Annotated[
        Path, typer.Option(help="Data root prepared by `crossearth data prepare`.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("benchmark_output"),
    backbone_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with dinov2_converted*.pth, if the zoo files need them."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1)] = None,
    device: Annotated[str, typer.Option()] = "auto",
    precision: Annotated[str, typer.Option()] = "fp32",
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run every setting whose data and zoo checkpoint are present; print the paper-style table."""
    from crossearth.benchmark import SETTINGS
    from crossearth.data.catalog import DOMAINS
    from crossearth.errors import WeightsUnavailableError
    from crossearth.weights import load_model
    from crossearth.weights.zoo import ZOO

    if not data_root.is_dir():
        raise InputError(f"data root {data_root} does not exist")
    rows, skipped = [], []
    for setting in SETTINGS.values():
        missing = [
            t.domain for t in setting.targets if not (data_root / DOMAINS[t.domain].folder).is_dir()
        ]
        if setting.model is None or missing:
            skipped.append(
                f"{setting.name} ({'no checkpoint' if setting.model is None else 'no data: ' + ', '.join(missing)})"
            )
            continue
        backbone = None
        if backbone_dir is not None:
            candidate = backbone_dir / ZOO[setting.model].backbone_filename
            backbone = candidate if candidate.is_file() else None
        try:
            net = load_model(setting.model, backbone=backbone, device=device, precision=precision)
        except WeightsUnavailableError:
            skipped.append(f"{setting.name} (checkpoint {ZOO[setting.model].filename} not on disk)")
            continue
        report = _run_eval(net, setting, data_root, out, limit, {}, quiet)
        rows.append(report)
    table = Table(title="CrossEarth benchmark (mIoU %)")
    for column in ("setting", "ours", "paper", "delta", "paper source"):
        table.add_column(column)
    for r in rows:
        ours, paper = r.get("mIoU"), r.get("paper_mIoU")
        delta = "–" if ours is None or paper is None else f"{ours - paper:+.2f}"
        table.add_row(r["setting"], "–" if ours is None else f"{ours:.2f}", "–" if paper is None else f"{paper:.1f}",
                      delta, r.get("paper_source") or "not published")  # fmt: skip
    Console().print(table)
    if skipped:
        Console().print("skipped: " + "; ".join(skipped), soft_wrap=True)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        code = app(standalone_mode=False)
    except CrossEarthError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except OSError as exc:  # disk full, permission denied, ...: the outputs were cleaned up
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, highlight=False)
        sys.exit(1)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise
    if isinstance(code, int) and code:  # typer turns Ctrl-C into exit code 130
        if code == 130:
            console.print("aborted")
        sys.exit(code)


if __name__ == "__main__":
    main()

"""`crossearth data prepare|list`, `eval` and `benchmark`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossearth.cli.app import BackboneOpt, ConfigOpt, DownloadOpt, app, console
from crossearth.errors import InputError

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
    boundary_labels: Annotated[
        bool,
        typer.Option(
            help="ISPRS: use the non-eroded labels (with boundaries); the paper uses the eroded."
        ),
    ] = False,
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
    options = PrepareOptions(
        quiet=quiet, nearest_colour=nearest_colour, limit=limit, boundary_labels=boundary_labels
    )
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

"""`crossearth data prepare|list`, `eval` and `benchmark`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossearth.cli.app import BackboneOpt, ConfigOpt, DownloadOpt, app, console, stdout_console
from crossearth.errors import InputError
from crossearth.tables import print_table
from crossearth.wording import count

data_app = typer.Typer(
    no_args_is_help=True,
    help="Prepare the benchmark datasets from their raw archives; check your own data set.",
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
            stdout_console().print(line, highlight=False, soft_wrap=True)


@data_app.command("list")
def data_list() -> None:
    """The datasets `data prepare` knows, the domains and the benchmark settings."""
    from crossearth.benchmark import ALL_SETTINGS, SYNTH_SETTINGS
    from crossearth.data.catalog import DOMAINS
    from crossearth.data.prepare import CONVERTERS

    out = stdout_console()
    out.print("datasets: " + ", ".join(CONVERTERS) + "; SynthEarth is generated: crossearth synth")
    table = Table(title="domains (folders under the data root)")
    for column in ("domain", "folder", "classes", "splits"):
        table.add_column(column)
    for d in DOMAINS.values():
        splits = ", ".join(f"{k} {v}" for k, v in d.expected.items())
        table.add_row(d.key, d.folder, str(len(d.classes)), splits)
    print_table(out, table)
    settings = Table(title="settings")
    for column in ("setting", "source", "targets", "zoo model", "paper mIoU"):
        settings.add_column(column)
    for st in ALL_SETTINGS.values():
        paper = "–" if st.paper_miou is None else f"{st.paper_miou} ({st.paper_source})"
        targets = "\n".join(f"{t.domain}/{t.split}" for t in st.targets)  # one per line
        model = st.model or (
            "train one: crossearth train" if st.name in SYNTH_SETTINGS else "not released"
        )
        settings.add_row(st.name, st.source, targets, model, paper)
    print_table(out, settings)


@data_app.command("check")
def data_check(
    description: Annotated[Path, typer.Argument(help="Data set description (YAML).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON.")
    ] = None,
) -> None:
    """What your data set holds (images, labelled pixels per class and split) and what does not
    fit (images without labels, labels outside the image, unknown values or names); exit 1 if
    anything does not fit."""
    import json

    from crossearth.data.check import check_data
    from crossearth.data.spec import load_data_spec

    spec = load_data_spec(description)
    report = check_data(spec)
    out = stdout_console()
    table = Table(title=f"{description.name}: labelled pixels per class")
    table.add_column("split")
    table.add_column("images", justify="right")
    table.add_column("bands", justify="right")
    for name in spec.classes:
        table.add_column(name, justify="right")
    table.add_column("unlabelled", justify="right")
    for s in report.splits:
        labelled = int(s.labelled.sum())
        counts = sorted(set(s.band_counts.values()))
        table.add_row(s.name, str(s.images), "/".join(str(c) for c in counts) or "-",
                      *(_share(int(v), s.pixels) for v in s.labelled),
                      _share(s.pixels - labelled, s.pixels))  # fmt: skip
    print_table(out, table)
    for codes in report.codes:
        _print_codes(out, codes)
    if spec.holdout:
        out.print(f"validation: {spec.holdout}", highlight=False, markup=False)
    if report.gsd_m is not None:
        out.print(f"pixel size of the first training image: {report.gsd_m:g} m", highlight=False)
    if json_out is not None:
        json_out.write_text(json.dumps(report.as_dict(), indent=2))
    for warning in report.warnings:
        out.print(f"warning: {warning}", highlight=False, soft_wrap=True, markup=False)
    if report.problems:
        for problem in report.problems:
            out.print(f"problem: {problem}", highlight=False, soft_wrap=True, markup=False)
        raise InputError(f"{count(len(report.problems), 'problem')} in {description}")
    out.print("no problems found")


def _print_codes(out: Console, codes) -> None:
    """The code -> class table one label source was read with (`CodeReport`)."""
    from rich.markup import escape

    out.print(f"{codes.source}: {codes.rule}", highlight=False, markup=False, soft_wrap=True)
    table = Table()
    for column in ("code", "class", "read as", codes.unit):
        table.add_column(column, justify="right" if column == codes.unit else "left")
    for code, name, how, n in codes.rows[:50]:
        table.add_row(escape(code), escape(name), how or "–", f"{n:,}")
    if len(codes.rows) > 50:
        table.add_row("...", f"{len(codes.rows) - 50} more codes (see --json)", "", "")
    out.print(table)


def _share(pixels: int, total: int) -> str:
    from crossearth.numbers import format_share

    return f"{pixels:,} ({format_share(pixels / total)})" if total else "0"


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
        str | None,
        typer.Option(help='Benchmark setting, e.g. "P(i)2V" (see `crossearth data list`).'),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="Data root prepared by `crossearth data prepare`.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Or your own data: a data set description (YAML).")
    ] = None,
    split: Annotated[str, typer.Option(help="With --data: val, train or a target's name.")] = "val",
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
    ignore_class_names: Annotated[
        bool,
        typer.Option(
            help="Score a model whose class names differ from the data's (same count): "
            "refused by default, as it is most likely a model of other classes."
        ),
    ] = False,
) -> None:
    """Score a model on a benchmark setting (compared with the paper) or on your data (--data)."""
    from crossearth.benchmark import get_setting
    from crossearth.weights import load_model

    if data is not None:
        if setting is not None:
            raise InputError("evaluate on --setting or on --data, not both")
        if model is None:
            raise InputError("--data needs --model (a zoo name or a model file)")
        _eval_data(data, split, model, config, backbone, device, precision, download, out,
                   limit, quiet, ignore_class_names)  # fmt: skip
        return
    if setting is None or data_root is None:
        raise InputError(
            "say what to evaluate on: --setting NAME --data-root DIR, or --data DATA.yaml"
        )

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
    report = _run_eval(net, chosen, data_root, out, limit, _domain_dirs(domain_dir), quiet,
                       ignore_class_names)  # fmt: skip
    _print_eval(report)


def _eval_data(data, split, model, config, backbone, device, precision, download, out, limit,
               quiet, ignore_class_names=False) -> None:  # fmt: skip
    from rich.progress import Progress

    from crossearth.data.spec import load_data_spec
    from crossearth.evaluate import evaluate_data
    from crossearth.weights import load_model

    spec = load_data_spec(data)
    spec.split(split)  # an unknown split fails before the model loads
    net = load_model(model, config=config, backbone=backbone, device=device,
                     precision=precision, download=download)  # fmt: skip
    with Progress(console=console, disable=quiet or not console.is_terminal, transient=True) as bar:
        task = bar.add_task(f"{data.name} {split}", total=None)

        def progress(_: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = evaluate_data(net, spec, split, out, limit=limit, progress=progress,
                               ignore_class_names=ignore_class_names)  # fmt: skip
    _print_eval(report, out)
    _print_classes(report, spec.classes)
    for warning in report.get("warnings", []):
        stdout_console().print(f"warning: {warning}", highlight=False, soft_wrap=True, markup=False)


def _print_classes(report: dict, classes: tuple[str, ...]) -> None:
    table = Table(title="per class")
    for column in ("class", "IoU", "F1", "precision", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for t in report["targets"].values():
        for name in classes:
            c = t["per_class"][name]
            table.add_row(name, *(_pct(c.get(k)) for k in ("IoU", "F1", "precision", "recall")))
    print_table(stdout_console(), table)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _run_eval(net, setting, data_root, out, limit, overrides, quiet, ignore_class_names=False):
    from rich.progress import Progress

    from crossearth.evaluate import evaluate_setting

    with Progress(console=console, disable=quiet or not console.is_terminal, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(domain: str, done: int, total: int) -> None:
            if domain not in tasks:
                tasks[domain] = bar.add_task(f"{setting.name} on {domain}", total=total)
            bar.update(tasks[domain], completed=done)

        return evaluate_setting(net, setting, data_root, out, limit=limit, overrides=overrides,
                                progress=progress, ignore_class_names=ignore_class_names)  # fmt: skip


def _print_eval(report: dict, folder: Path | None = None) -> None:
    out = stdout_console()
    for key, t in report["targets"].items():
        head = f"{report['setting']} on {key} ({t['images']} images)"
        if not t.get("pixels"):  # every label ignored: no metric is defined
            out.print(f"{head}: no labelled pixel, nothing to score", highlight=False)
            continue
        extra = (
            f", foreground IoU {_pct(t['foreground_IoU'])}"
            if t.get("foreground_IoU") is not None
            else ""
        )
        out.print(f"{head}: mIoU {_pct(t['mIoU'])}, mF1 {_pct(t['mF1'])}, "
                  f"OA {_pct(t['OA'])}{extra}")  # fmt: skip
    paper = report.get("paper_mIoU")
    if "data" in report:
        out.print(f"reports in {folder} (eval_*.json, eval_*.md, confusion_*.png)", highlight=False)
    elif paper is not None and report.get("mIoU") is not None:
        out.print(
            f"paper (CrossEarth, {report['paper_source']}): {paper:.1f}; delta {report['mIoU'] - paper:+.2f}"
        )


def _nothing_to_run(data_root: Path, skipped: list[str]) -> str:
    """One line on why `benchmark` ran no setting: how many lack data, checkpoints, a release."""
    counts = {
        "no data": sum("no data" in s for s in skipped),
        "no checkpoint": sum("not on disk" in s for s in skipped),
        "none released": sum("no checkpoint)" in s for s in skipped),
    }
    reasons = []
    if counts["no data"]:
        reasons.append(
            f"{counts['no data']} lack their target data under {data_root} "
            "(prepare it with `crossearth data prepare`)"
        )
    if counts["no checkpoint"]:
        reasons.append(
            f"{counts['no checkpoint']} have data but their zoo checkpoint is not on this "
            "machine (see `crossearth models`)"
        )
    if counts["none released"]:
        reasons.append(f"{counts['none released']} have no released checkpoint")
    return f"nothing to benchmark: of {len(skipped)} settings, " + "; ".join(reasons)


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
    from crossearth.advice import BENCHMARK
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
            net = load_model(setting.model, backbone=backbone, device=device, precision=precision,
                             advice=BENCHMARK)  # fmt: skip
        except WeightsUnavailableError:
            skipped.append(f"{setting.name} (checkpoint {ZOO[setting.model].filename} not on disk)")
            continue
        report = _run_eval(net, setting, data_root, out, limit, None, quiet)  # no --domain-dir
        rows.append(report)
    if not rows:
        raise InputError(_nothing_to_run(data_root, skipped))
    table = Table(title="CrossEarth benchmark (mIoU %)")
    for column in ("setting", "ours", "paper", "delta", "paper source"):
        table.add_column(column)
    for r in rows:
        ours, paper = r.get("mIoU"), r.get("paper_mIoU")
        delta = "–" if ours is None or paper is None else f"{ours - paper:+.2f}"
        table.add_row(r["setting"], "–" if ours is None else f"{ours:.2f}", "–" if paper is None else f"{paper:.1f}",
                      delta, r.get("paper_source") or "not published")  # fmt: skip
    print_table(stdout_console(), table)
    if skipped:
        stdout_console().print("skipped: " + "; ".join(skipped), soft_wrap=True)

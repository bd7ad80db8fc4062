"""`crossearth train`: Rein PEFT (or full fine-tuning) with the Mask2Former losses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossearth.cli.app import app, stdout_console
from crossearth.errors import InputError


@app.command()
def train(
    setting: Annotated[
        str | None, typer.Option(help='Benchmark setting to train on, e.g. "P(i)2V".')
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Or your own data: a data set description (YAML, see README)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML training config (configs/<setting>.yaml).")
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="Data root prepared by `crossearth data prepare`.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (checkpoints, logs, weights).")
    ] = None,
    init: Annotated[
        str | None, typer.Option(help="Start from these weights (zoo name or file).")
    ] = None,
    backbone: Annotated[
        Path | None, typer.Option(help="DINOv2 backbone (converted or original patch 14).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Per device.")] = None,
    devices: Annotated[int | None, typer.Option(min=1)] = None,
    num_nodes: Annotated[int | None, typer.Option(min=1)] = None,
    accelerator: Annotated[str | None, typer.Option(help="auto, cpu or gpu.")] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="auto (default: bf16-mixed where the GPU or CPU computes bf16 natively, else "
            "32-true), bf16-mixed, 32-true, 16-mixed."
        ),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its checkpoints/last.ckpt.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any config key: key=value.")
    ] = None,
    dump_config: Annotated[
        bool, typer.Option(help="Print the resolved config as YAML and exit.")
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace the run already in the run folder (its models, checkpoints)."),
    ] = False,
) -> None:
    """Train on your data set (--data) or a benchmark setting, validating on its targets.

    On your data, a model smaller than ViT-L (a preset, or a file such as the demo's) brings
    its own defaults: its crop, points to match, a short schedule for the device (see
    docs/training.md); every option and --set still wins. Ctrl-C stops the run with exit code
    130 and says what it keeps (the last checkpoint); a run folder without one is removed.
    """
    import dataclasses

    import yaml

    from crossearth.runtime import slow_precision_warning, training_device, training_precision
    from crossearth.train.config import load_config
    from crossearth.train.defaults import follow_model, given_keys, model_config_of, record

    cfg = load_config(config, setting)
    direct = {
        "data": str(data) if data else None,
        "data_root": str(data_root) if data_root else None, "out_dir": str(out) if out else None,
        "init": init, "backbone": str(backbone) if backbone else None, "max_steps": max_steps,
        "batch_size": batch_size, "devices": devices, "num_nodes": num_nodes,
        "accelerator": accelerator, "precision": precision,
    }  # fmt: skip
    cfg = cfg.override(
        [f"{k}={yaml.safe_dump(v).strip()}" for k, v in direct.items() if v is not None]
    )
    cfg = cfg.override(set_ or [])
    device = training_device(cfg.accelerator)
    choices = []
    if cfg.data:
        given = given_keys(config, direct, set_ or [])
        cfg, line = follow_model(cfg, given, model_config_of(cfg.init, cfg.preset), device.type)
        choices += [line] if line else []
    warning = None if cfg.precision == "auto" else slow_precision_warning(cfg.precision, device)
    chosen, why = training_precision(cfg.precision, device)
    cfg = dataclasses.replace(cfg, precision=chosen)
    choices += [why] if why else []
    if dump_config:
        notes = choices + ([f"warning: {warning}"] if warning else [])
        typer.echo(record(cfg, notes), nl=False)  # as it is: a YAML file, never wrapped
        return
    from crossearth.train.datasets import run_datasets
    from crossearth.train.run import build_model, finished_run_files, fit

    held = [] if resume else finished_run_files(Path(cfg.out_dir))
    if held and not overwrite:
        raise InputError(
            f"{cfg.out_dir} already holds a run ({', '.join(p.name for p in held)}): give "
            f"another --out, continue it with --resume {Path(cfg.out_dir) / 'checkpoints' / 'last.ckpt'}"
            ", or replace it with --overwrite"
        )
    console = stdout_console()
    run = run_datasets(cfg)  # the data and the model are checked first: a mistake is one line
    for note in run.notes:
        console.print(f"validation: {note}", highlight=False, markup=False)
    for warning in run.warnings:
        console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    model = build_model(cfg, run.num_classes, run.metadata(),
                        report=lambda m: console.print(m, highlight=False, markup=False),
                        bands=run)  # fmt: skip
    for line in choices:
        console.print(f"defaults: {line}", highlight=False, markup=False, soft_wrap=True)
    if warning:
        console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    from crossearth.cli.signals import saying_what_is_kept

    for path in held:  # --overwrite: the data and model were checked; the old run goes now
        import shutil

        shutil.rmtree(path) if path.is_dir() else path.unlink()
    with saying_what_is_kept():
        result = fit(cfg, run.train, run.val_sets, run.val_names, model, resume=resume,
                     choices=choices, source_domain=run.source_domain)  # fmt: skip
    console.print(f"done at step {result['global_step']}; weights in {result['out_dir']}")

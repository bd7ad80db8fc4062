"""`crossearth pretrain`: self-supervised pretraining of a backbone on unlabelled imagery."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from crossearth.cli.app import app, stdout_console


@app.command()
def pretrain(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Unlabelled images: files, folders (recursive), globs, scene lists (.txt), "
            "data set files (.yaml: its training images)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: backbone.safetensors, checkpoints.")
    ] = Path("runs/pretrain"),
    preset: Annotated[
        str | None,
        typer.Option(help="Architecture (default: the --init file's, else vit-tiny-256)."),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(help="Continue pretraining this backbone (file or shipped name)."),
    ] = None,
    backbone: Annotated[
        Path | None, typer.Option(help="Or continue a DINOv2 backbone (converted or patch 14).")
    ] = None,
    objective: Annotated[
        str, typer.Option(help="mim, distill or both (masked modelling + self-distillation).")
    ] = "both",
    max_steps: Annotated[int, typer.Option(min=1)] = 3000,
    batch_size: Annotated[int, typer.Option(min=1, help="Per device.")] = 32,
    crop: Annotated[int, typer.Option(min=32, help="Square crop side, px (multiple of 16).")] = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (AdamW).")] = 1e-3,
    seed: Annotated[int, typer.Option()] = 0,
    precision: Annotated[
        str, typer.Option(help="auto (bf16 where the hardware is fast), bf16-mixed, 32-true.")
    ] = "auto",
    accelerator: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    devices: Annotated[int, typer.Option(min=1)] = 1,
    num_nodes: Annotated[int, typer.Option(min=1)] = 1,
    workers: Annotated[int, typer.Option(min=0, help="Data loader processes.")] = 2,
    checkpoint_every: Annotated[int, typer.Option(min=1)] = 500,
    resume: Annotated[
        Path | None, typer.Option(help="Continue a run from its checkpoints/last.ckpt.")
    ] = None,
) -> None:
    """Pretrain a backbone self-supervised; writes OUT/backbone.safetensors for `train --backbone`."""
    from crossearth.pretrain.config import PretrainConfig
    from crossearth.pretrain.run import prepare
    from crossearth.pretrain.run import pretrain as run_pretrain

    cfg = PretrainConfig(
        preset=preset, objective=objective, init=init, backbone=str(backbone) if backbone else None,
        out_dir=str(out), max_steps=max_steps, batch_size=batch_size, crop=crop, lr=lr,
        warmup_steps=min(150, max(1, max_steps // 10)), seed=seed, precision=precision,
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, num_workers=workers,
        checkpoint_every=checkpoint_every,
    )  # fmt: skip
    plan = prepare(cfg, inputs)  # every input problem is reported before OUT is created
    console = stdout_console()
    for problem in plan.skipped[:5]:
        console.print(f"warning: skipped {problem}", highlight=False, markup=False)
    if len(plan.skipped) > 5:
        console.print(f"warning: skipped {len(plan.skipped) - 5} more unreadable files")
    start = f"from {plan.start_from}" if plan.start_from else "from scratch"
    console.print(
        f"pretraining {plan.cfg.preset} {start} on {plan.windows.describe()}: objective "
        f"{cfg.objective}, {cfg.max_steps} steps of {cfg.batch_size} crops of {cfg.crop} px",
        highlight=False,
    )
    command = "crossearth " + shlex.join(sys.argv[1:])
    result = run_pretrain(plan, command=command, resume=resume)
    console.print(f"done at step {result['global_step']}; backbone: {result['backbone']}")

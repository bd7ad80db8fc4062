"""Run a pretraining: check the inputs, build the objective, train with Lightning, write
`backbone.safetensors`.

Everything that can be wrong with the inputs (no readable image, images smaller than the crop, an
`--init` of another preset) is checked in `prepare`, before the run folder is created. Training
follows `crossearth.train.run`: a position-deterministic stream (sample k is a pure function of
(seed, k), so a resumed run draws exactly what an unbroken one would), Lightning checkpoints in
`OUT/checkpoints/last.ckpt` for `--resume`, the same progress bar and progress lines.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD
from crossearth.errors import CheckpointError, ConfigError
from crossearth.inference import normalize
from crossearth.models.presets import get_preset
from crossearth.pretrain.augment import photometric_view
from crossearth.pretrain.config import PretrainConfig
from crossearth.pretrain.images import ImageWindows, expand_inputs, open_images
from crossearth.pretrain.objective import OBJECTIVES, Pretrainer, teacher_momentum
from crossearth.train.data import StreamDataset, StreamSampler, _seeded

BACKBONE_FILE = "backbone.safetensors"


@dataclass
class PretrainPlan:
    """A checked run: its config (preset resolved), images and starting weights."""

    cfg: PretrainConfig
    windows: ImageWindows
    inputs: list[str]
    start: dict[str, torch.Tensor] | None  # backbone tensors to start from, None = scratch
    start_from: str | None
    skipped: list[str]


def prepare(cfg: PretrainConfig, inputs: list[str | Path]) -> PretrainPlan:
    """Check everything before any file is written.

    Raises:
        InputError: no input, no readable image, an image smaller than the crop.
        ConfigError: unknown preset or objective, bad numbers, `--init` of another preset.
        CheckpointError: an unreadable or mismatching `--init`/`--backbone` file.
    """
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(
            f"unknown objective {cfg.objective!r}; use one of {', '.join(OBJECTIVES)}"
        )
    if cfg.init and cfg.backbone:
        raise ConfigError("--init and --backbone both name starting weights: give one")
    if cfg.crop % 16 or cfg.crop < 32:
        raise ConfigError(f"--crop must be a multiple of 16 of at least 32 px, got {cfg.crop}")
    if not 0 < cfg.mask_ratio < 1:
        raise ConfigError(f"mask_ratio must lie between 0 and 1, got {cfg.mask_ratio}")
    start, start_from, preset = None, None, cfg.preset
    source = cfg.init or cfg.backbone
    if source:
        start, file_preset, start_from = _starting_weights(source, cfg.preset, bool(cfg.backbone))
        preset = preset or file_preset
    preset = preset or ("vitl-512" if cfg.backbone else "vit-tiny-256")
    try:
        model_cfg = get_preset(preset)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if start is not None:
        _check_shapes(start, PlainShapes.of(model_cfg.backbone), source, preset)
    if not inputs:
        raise ConfigError("give the images to pretrain on: files, folders, globs or lists")
    files, skipped = open_images(expand_inputs(list(inputs)), cfg.crop)
    windows = ImageWindows(files, cfg.crop, tuple(cfg.scale_range))
    cfg = dataclasses.replace(cfg, preset=preset)
    return PretrainPlan(cfg, windows, [str(i) for i in inputs], start, start_from, skipped)


def _starting_weights(
    source: str, preset: str | None, dinov2: bool
) -> tuple[dict[str, torch.Tensor], str | None, str]:
    """Backbone tensors of `source` (a backbone file, shipped name, model file or DINOv2), the
    preset its record names (None if it names none) and how to describe it."""
    from crossearth.weights.backbone_file import read_backbone_record, resolve_backbone
    from crossearth.weights.checkpoint_io import read_checkpoint
    from crossearth.weights.state import backbone_tensors

    path = resolve_backbone(source)
    record = read_backbone_record(path)
    if record.preset and preset and record.preset != preset:
        raise ConfigError(
            f"{source} is a {record.preset} backbone, not {preset}: leave out --preset to "
            f"continue it as {record.preset}, or start {preset} from scratch"
        )
    grid = get_preset(preset or record.preset or "vitl-512").backbone.grid_size if dinov2 else None
    tensors = backbone_tensors(read_checkpoint(path).state_dict, grid)
    return tensors, record.preset, str(source)


@dataclass(frozen=True)
class PlainShapes:
    shapes: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, backbone_cfg) -> PlainShapes:
        from crossearth.pretrain.objective import PlainViT

        with torch.device("meta"):
            vit = PlainViT(backbone_cfg)
        return cls({k: tuple(v.shape) for k, v in vit.state_dict().items()})


def _check_shapes(
    tensors: dict[str, torch.Tensor], expected: PlainShapes, source: str, preset: str
) -> None:
    for key, shape in expected.shapes.items():
        if key not in tensors:
            raise CheckpointError(f"{source} is not a {preset} backbone: it lacks {key}")
        if tuple(tensors[key].shape) != shape:
            raise CheckpointError(
                f"{source} is not a {preset} backbone: {key} has shape "
                f"{list(tensors[key].shape)}, {preset} needs {list(shape)}"
            )


def build_pretrainer(plan: PretrainPlan) -> Pretrainer:
    """The objective's modules, with the starting weights or a fresh init (LayerScale at
    `cfg.layer_scale`)."""
    cfg = plan.cfg
    backbone_cfg = get_preset(cfg.preset).backbone
    torch.manual_seed(cfg.seed)
    net = Pretrainer(backbone_cfg, cfg.objective, cfg.mask_ratio)
    if plan.start is None:
        with torch.no_grad():
            for name, p in net.backbone.named_parameters():
                if name.endswith((".ls1.gamma", ".ls2.gamma")):
                    p.fill_(cfg.layer_scale)
    else:
        wanted = net.backbone.state_dict()
        net.backbone.load_state_dict({k: plan.start[k] for k in wanted}, strict=True)
    net.sync_teacher()
    return net


class PretrainStream(StreamDataset):
    """Position p: a window (`ImageWindows.sample`), a random flip and 90° rotation, and two
    photometric views when the objective distils (else view_b = view_a = the window)."""

    def __init__(self, windows: ImageWindows, seed: int, views: bool) -> None:
        super().__init__(windows, None, seed)
        self.views = views

    def __getitem__(self, position: int) -> dict[str, Any]:
        generator = _seeded(self.seed, 1, position)
        image = self.source.sample(self.index_of(position), generator)
        k = int(torch.randint(0, 4, (), generator=generator))
        image = torch.rot90(image, k, dims=(1, 2))
        if float(torch.rand((), generator=generator)) < 0.5:
            image = image.flip(-1)
        if self.views:
            a = photometric_view(image[None], generator)[0]
            b = photometric_view(image[None], generator)[0]
        else:
            a = b = image.float()
        return {"view_a": a, "view_b": b, "position": position}


class PretrainModule(L.LightningModule):
    """Optimises a `Pretrainer`: AdamW (no decay on norms, tokens, biases), linear warm-up then
    cosine to `min_lr`; the teacher follows the student after every step."""

    def __init__(self, net: Pretrainer, cfg: PretrainConfig) -> None:
        super().__init__()
        self.net, self.cfg = net, cfg

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        a = normalize(batch["view_a"], IMAGENET_MEAN, IMAGENET_STD)
        b = normalize(batch["view_b"], IMAGENET_MEAN, IMAGENET_STD)
        generator = _seeded(self.cfg.seed, 2, int(batch["position"][0]))
        out = self.net.losses(a, b, generator)
        loss = out["loss"]
        if not torch.isfinite(loss):
            from crossearth.train.module import NonFiniteLossError

            raise NonFiniteLossError(
                f"the loss is {loss.item()} at step {self.global_step}; stopping before a "
                "poisoned checkpoint is written (lower --lr, or try --precision 32-true)"
            )
        for key, value in out.items():
            self.log(f"pretrain/{key}", value, prog_bar=key == "loss", batch_size=a.shape[0])
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # The teacher follows inside the optimizer step, before any callback (a checkpoint
        # written at this step then holds the updated teacher: resume stays exact).
        super().optimizer_step(*args, **kwargs)
        momentum = teacher_momentum(
            self.global_step, self.cfg.schedule_span, self.cfg.teacher_momentum
        )
        self.net.update_teacher(momentum)

    def configure_optimizers(self):
        from crossearth.train.module import param_groups

        optimizer = torch.optim.AdamW(
            param_groups(self.net, self.cfg.weight_decay), lr=self.cfg.lr, betas=(0.9, 0.95)
        )
        cfg = self.cfg

        def factor(step: int) -> float:
            if step < cfg.warmup_steps:
                return (step + 1) / cfg.warmup_steps
            span = max(cfg.schedule_span - cfg.warmup_steps, 1)
            progress = min((step - cfg.warmup_steps) / span, 1.0)
            floor = cfg.min_lr / cfg.lr
            return floor + (1 - floor) * (1 + math.cos(math.pi * progress)) / 2

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def export_backbone(self) -> torch.nn.Module:
        """The weights to keep: the EMA teacher when the objective distils (as DINO and
        data2vec keep theirs), else the student."""
        if self.net.uses_distill:
            return self.net.teacher
        return self.net.backbone


class ExportBackbone(Callback):
    """Writes OUT/backbone.safetensors (preset + record) when training ends."""

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path, self.record = path, record

    def on_train_end(self, trainer: L.Trainer, module: PretrainModule) -> None:
        if trainer.is_global_zero:
            from crossearth.weights.backbone_file import save_backbone

            record = self.record | {"steps": trainer.global_step}
            save_backbone(module.export_backbone(), self.path, module.cfg.preset, record)


class StreamLoader(DataLoader):
    """The position of the stream is the trainer's global step (see `crossearth.train.run`)."""

    def state_dict(self) -> dict[str, Any]:
        return {"position": "global_step"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore: the sampler starts at the restored step."""


class PretrainData(L.LightningDataModule):
    def __init__(self, stream: PretrainStream, cfg: PretrainConfig) -> None:
        super().__init__()
        self.stream, self.cfg = stream, cfg

    def train_dataloader(self) -> DataLoader:
        sampler = StreamSampler.for_trainer(self.trainer, self.cfg.batch_size)
        return StreamLoader(
            self.stream, batch_size=self.cfg.batch_size, sampler=sampler,
            num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0,
        )  # fmt: skip


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision for `auto`: bf16-mixed on a bf16 GPU or a CPU with native bf16
    (AMX, AVX512-BF16), else 32-true (emulated bf16 is slower than fp32 on AVX2-only CPUs)."""
    if precision != "auto":
        return precision
    from crossearth.runtime import cpu_has_fast_bf16

    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if gpu:
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_fast_bf16() else "32-true"


def pretrain(
    plan: PretrainPlan,
    *,
    command: str = "",
    resume: str | Path | None = None,
    enable_progress_bar: bool = True,
    progress_lines: bool | None = None,
) -> dict[str, Any]:
    """Train and write OUT/backbone.safetensors; returns its path and the final step."""
    from lightning.pytorch.loggers import CSVLogger

    from crossearth.train.progress import (
        PlainProgress,
        StepProgressBar,
        quiet_lightning,
        stdout_is_terminal,
    )
    from crossearth.train.run import check_resume

    cfg = plan.cfg
    out = Path(cfg.out_dir)
    net = build_pretrainer(plan)
    module = PretrainModule(net, cfg)
    if resume is not None:
        check_resume(Path(resume), module)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    quiet_lightning()
    stream = PretrainStream(plan.windows, cfg.seed, net.uses_distill)
    record = {
        "trained_on": plan.windows.describe(), "inputs": plan.inputs[:20],
        "objective": cfg.objective, "batch_size": cfg.batch_size * cfg.devices * cfg.num_nodes,
        "crop": cfg.crop, "seed": cfg.seed, "init": plan.start_from, "command": command,
    }  # fmt: skip
    terminal = stdout_is_terminal()
    bar = enable_progress_bar and terminal
    lines = not terminal if progress_lines is None else progress_lines
    multi = cfg.devices * cfg.num_nodes > 1
    trainer = L.Trainer(
        accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes,
        strategy="ddp" if multi else "auto", precision=resolve_precision(cfg.precision, cfg.accelerator),
        max_steps=cfg.max_steps, limit_val_batches=0, num_sanity_val_steps=0,
        use_distributed_sampler=False, log_every_n_steps=cfg.log_every, enable_progress_bar=bar,
        enable_model_summary=False, logger=[CSVLogger(out, name="csv")], default_root_dir=out,
        callbacks=[
            ModelCheckpoint(dirpath=out / "checkpoints", every_n_train_steps=cfg.checkpoint_every,
                            save_last=True, save_top_k=0),
            ExportBackbone(out / BACKBONE_FILE, record),
            *([StepProgressBar()] if bar else []),
            *([PlainProgress()] if lines else []),
        ],
    )  # fmt: skip
    trainer.fit(
        module, datamodule=PretrainData(stream, cfg), ckpt_path=str(resume) if resume else None
    )
    return {
        "backbone": str(out / BACKBONE_FILE),
        "global_step": trainer.global_step,
        "module": module,
    }

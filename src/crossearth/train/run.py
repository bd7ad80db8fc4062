"""Build the model, data and Lightning trainer for a `TrainConfig`, and run it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from crossearth.data.classes import differing_class_names
from crossearth.errors import CheckpointError, ConfigError
from crossearth.models.presets import get_preset
from crossearth.models.segmentor import CrossEarth
from crossearth.stopping import Interrupted, RunFolder
from crossearth.train.config import TrainConfig
from crossearth.train.data import (
    StreamDataset,
    StreamSampler,
    ValidationSet,
    collate_list,
    collate_train,
)
from crossearth.train.module import CrossEarthModule
from crossearth.train.progress import (
    PlainProgress,
    StepProgressBar,
    methods_line,
    quiet_lightning,
    stdout_is_terminal,
)

log = logging.getLogger(__name__)


def build_model(
    cfg: TrainConfig,
    num_classes: int,
    metadata: dict[str, Any] | None = None,
    *,
    report: Callable[[str], None] | None = print,
    bands: Any = None,
) -> CrossEarth:
    """The model a run starts from, carrying the data's class names, palette, bands and GSD.

    From `cfg.init` (a zoo name or model file): every tensor is kept when the classes are the
    data's (same count, and the same names where both record names, compared by
    `crossearth.data.classes.class_key`); otherwise only the tensors whose shape depends on the
    class count (the class embedding, `decode_head.cls_embed.*`) are re-initialised, and
    `report` is told which (and which class names differ). Else the preset, with an optional
    `cfg.backbone`: a DINOv2 file, a `crossearth pretrain` backbone file or a shipped backbone
    name (`crossearth.weights.backbone_file.BACKBONES`); a backbone file that records its preset
    sets the preset (`report` is told when it differs from `cfg.preset`).

    Args:
        metadata: ModelConfig fields recorded in the model (class_names, palette, bands,
            band_indices, band_names, scale, gsd_m); None leaves the defaults.
        bands: a `RunData` of other than three bands (its `in_chans`, `rgb_slots`, `mean`,
            `std`): a preset from scratch takes that many bands; a 3-band `init` or `backbone`
            is extended by `crossearth.models.bands.expand_input_bands` (RGB kernels kept on the
            RGB bands, the others zero). The per-band mean/std become the model's normalisation.

    Raises:
        ConfigError: unknown preset, an `init` of other than three bands that does not take the
            data's bands. CheckpointError: unreadable init or backbone file.

    The weights it initialises (Rein, the head, re-initialised tensors) are drawn from
    `cfg.seed`, without touching the caller's random state: the same command gives the same
    starting model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _build_model(cfg, num_classes, metadata, report=report, bands=bands)


def _build_model(
    cfg: TrainConfig,
    num_classes: int,
    metadata: dict[str, Any] | None,
    *,
    report: Callable[[str], None] | None,
    bands: Any,
) -> CrossEarth:
    in_chans = bands.in_chans if bands is not None and bands.mean is not None else 3
    backbone_path = None
    if cfg.backbone:
        from crossearth.weights.backbone_file import read_backbone_record, resolve_backbone

        backbone_path = resolve_backbone(cfg.backbone)
        record = read_backbone_record(backbone_path)
        if record.preset and record.preset != cfg.preset and not cfg.init:
            if report is not None:
                report(f"preset {record.preset} (from the backbone file; not {cfg.preset})")
            cfg = dataclasses.replace(cfg, preset=record.preset)
    if cfg.init:
        from crossearth.advice import TRAINING
        from crossearth.weights import load_model

        source = load_model(cfg.init, backbone=backbone_path, advice=TRAINING)
        names = (metadata or {}).get("class_names")
        renamed = differing_class_names(source.config.class_names, names)
        same = source.num_classes == num_classes and not renamed
        model = source if same else _transfer(source, num_classes, report, renamed)
    else:
        try:
            preset = get_preset(cfg.preset, num_classes)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None
        if not cfg.backbone and in_chans != 3:  # from scratch: every band's kernel is random
            preset = preset.replace(
                backbone=dataclasses.replace(preset.backbone, in_chans=in_chans)
            )
        model = CrossEarth(preset)
        if cfg.backbone:
            from crossearth.weights.checkpoint_io import read_checkpoint
            from crossearth.weights.state import backbone_tensors

            tensors = backbone_tensors(
                read_checkpoint(backbone_path).state_dict, model.config.backbone.grid_size
            )
            expected = model.backbone.state_dict()
            for key, value in tensors.items():
                if key in expected and tuple(value.shape) != tuple(expected[key].shape):
                    raise CheckpointError(
                        f"the backbone file does not fit preset {cfg.preset}: {key} has shape "
                        f"{list(value.shape)}, the model {list(expected[key].shape)}"
                    )
            missing, _ = model.backbone.load_state_dict(tensors, strict=False)
            missing = [k for k in missing if not k.startswith("reins.")]
            if missing:
                raise CheckpointError(
                    f"the backbone file lacks {len(missing)} weights, e.g. {missing[0]}"
                )
        elif cfg.freeze_backbone:
            log.warning(
                "training Rein on a frozen *random* backbone: pass --backbone (DINOv2) for real runs"
            )
    if model.config.in_chans != in_chans:
        if model.config.in_chans != 3:
            raise ConfigError(
                f"--init takes {model.config.in_chans} bands, the data {in_chans}: give a model "
                f"of the data's bands or a 3-band (RGB) one to extend"
            )
        from crossearth.models.bands import expand_input_bands

        model = expand_input_bands(model, in_chans, bands.rgb_slots)
        if report is not None:
            report(
                f"input bands: 3 -> {in_chans}; RGB kernels kept on input slots "
                f"{bands.rgb_slots}, the other bands' kernels start at zero"
            )
    if in_chans != 3:
        inference = dataclasses.replace(
            model.config.inference, mean=tuple(bands.mean), std=tuple(bands.std)
        )
        model.config = model.config.replace(inference=inference)
    if metadata:
        model.config = model.config.replace(**metadata)
    return model.train()


def _transfer(
    source: CrossEarth,
    num_classes: int,
    report: Callable[[str], None] | None,
    renamed: list[str] | None = None,
) -> CrossEarth:
    """`source`'s architecture with `num_classes` classes: every tensor of the same shape is
    copied, except the class embedding; the others keep their fresh initialisation. `renamed`:
    the class ids whose names differ (same count: the embedding's shape fits, its meaning not)."""
    import dataclasses

    head = dataclasses.replace(source.config.head, num_classes=num_classes)
    config = source.config.replace(head=head, class_names=None, palette=None)
    target = CrossEarth(config)
    kept = source.state_dict()
    fresh = target.state_dict()
    reinit = [
        k
        for k, v in fresh.items()
        if k not in kept or kept[k].shape != v.shape or k.startswith(CLASS_EMBEDDING)
    ]
    target.load_state_dict({k: kept[k] for k in fresh if k not in reinit}, strict=False)
    if report is not None:
        why = (
            f"--init has other classes than the data (class id: model / data): {'; '.join(renamed)}"
            if renamed
            else f"--init has {source.num_classes} classes, the data {num_classes}"
        )
        report(
            f"{why}: kept {len(fresh) - len(reinit)} tensors, re-initialised {len(reinit)}: "
            f"{', '.join(reinit)}"
        )
    target.transfer_report = {
        "kept": [k for k in fresh if k not in reinit],
        "reinitialised": reinit,
    }
    return target


#: The tensors that give each class its meaning: re-initialised for a model of other classes.
CLASS_EMBEDDING = "decode_head.cls_embed."


class StepLoader(DataLoader):
    """The training loader: its position is the trainer's global step (see `StreamSampler`),
    restored with the trainer, so a mid-stream resume is exact; the `state_dict` interface tells
    Lightning so (it otherwise warns that the loader is not resumable)."""

    def state_dict(self) -> dict[str, Any]:
        return {"position": "global_step"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore: `train_dataloader` starts the sampler at the restored step."""


class StreamData(L.LightningDataModule):
    """Training stream (positions from the restored global step) and validation sets."""

    def __init__(
        self, train: StreamDataset, val_sets: list[ValidationSet], cfg: TrainConfig
    ) -> None:
        super().__init__()
        self.train_set, self.val_sets, self.cfg = train, val_sets, cfg

    def train_dataloader(self) -> DataLoader:
        sampler = StreamSampler.for_trainer(self.trainer, self.cfg.batch_size)
        return StepLoader(
            self.train_set, batch_size=self.cfg.batch_size, sampler=sampler, collate_fn=collate_train,
            num_workers=self.cfg.num_workers, persistent_workers=self.cfg.num_workers > 0,
        )  # fmt: skip

    def val_dataloader(self) -> list[DataLoader]:
        return [
            DataLoader(v, batch_size=1, collate_fn=collate_list, num_workers=0)
            for v in self.val_sets
        ]


class ExportWeights(Callback):
    """Writes best.safetensors (by mean target mIoU) and last.safetensors in our single-file format."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir, self.best = out_dir, float("-inf")

    def on_validation_end(self, trainer: L.Trainer, module: CrossEarthModule) -> None:
        score = module.last_val.get("mean")
        if (
            trainer.is_global_zero
            and score is not None
            and score > self.best
            and not trainer.sanity_checking
        ):
            from crossearth.weights import save_model

            self.best = score
            save_model(module.model, self.out_dir / "best.safetensors")

    def on_train_end(self, trainer: L.Trainer, module: CrossEarthModule) -> None:
        if trainer.is_global_zero:
            from crossearth.weights import save_model

            save_model(module.model, self.out_dir / "last.safetensors")


def check_resume(path: Path, module: CrossEarthModule) -> None:
    """Refuse a resume checkpoint of another architecture with a message naming the first mismatch."""
    if not path.is_file():
        raise CheckpointError(f"resume checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as exc:
        raise CheckpointError(
            f"{path} is not a crossearth training checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise CheckpointError(
                f"{path} lacks {key}: it is a checkpoint of another model or config"
            )
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {list(state[key].shape)}, this run expects {list(value.shape)} "
                "(another architecture, preset or class count)"
            )


def fit(
    cfg: TrainConfig,
    train_set: StreamDataset,
    val_sets: list[ValidationSet],
    val_names: list[str],
    model: CrossEarth,
    *,
    resume: str | Path | None = None,
    enable_progress_bar: bool = True,
    callbacks: list[Callback] | None = None,
    strategy: str | None = None,
    earth_style: tuple | None = None,
    verbose: bool = True,
    progress_lines: bool | None = None,
    progress_label: str = "",
    choices: list[str] | None = None,
    source_domain: str | None = None,
) -> dict[str, Any]:
    """Train; returns the final validation results and the output paths.

    The run folder `cfg.out_dir` gets `config.yaml`, the config as run (readable again with
    `--config`), headed by `choices` (lines saying which defaults were chosen and why) as
    comments. A `cfg.precision` of "auto" is resolved here (`crossearth.runtime.training_precision`).

    Progress: with `enable_progress_bar`, a step bar when standard output is a terminal. Plain
    progress lines (`PlainProgress`, each starting with `progress_label`) with `progress_lines`;
    by default (None) when standard output is not a terminal (a log file, a pipe, CI), bar or no
    bar.

    Validation's mean mIoU (`val/mIoU`, which picks `best.safetensors`) is over `val_names`
    without `source_domain`, where a setting validates on its source too (SynthEarth); the
    source's score is still printed and logged.

    Raises:
        Interrupted: (a `KeyboardInterrupt`) Ctrl-C or SIGTERM (its `signum`) stopped the run;
            its `kept` names the last checkpoint and model files, or says that the run
            folder, holding none, was removed (only what this run created: a folder that
            existed stays).
    """
    from crossearth.runtime import training_device, training_precision

    choices = list(choices or [])
    if cfg.precision == "auto":
        precision, why = training_precision("auto", training_device(cfg.accelerator))
        cfg = dataclasses.replace(cfg, precision=precision)
        choices.append(why)
    out = Path(cfg.out_dir)
    folder = RunFolder(out)
    try:
        return _fit(cfg, train_set, val_sets, val_names, model, resume, enable_progress_bar,
                    callbacks, strategy, earth_style, verbose, progress_lines, progress_label,
                    choices, source_domain)  # fmt: skip
    except KeyboardInterrupt as exc:
        raise Interrupted(_kept(out, folder), getattr(exc, "signum", signal.SIGINT)) from exc


def finished_run_files(out: Path) -> list[Path]:
    """The model files and checkpoint folder of a run already in `out` (empty if none)."""
    names = ("best.safetensors", "last.safetensors", "checkpoints")
    return [out / n for n in names if (out / n).exists()]


def _kept(out: Path, folder: RunFolder) -> str:
    """What a stopped run leaves, in a few words; a run folder without a checkpoint or model
    file is removed (what this run created of it)."""
    last = out / "checkpoints" / "last.ckpt"
    models = [p.name for p in (out / "best.safetensors", out / "last.safetensors") if p.is_file()]
    if last.is_file():
        also = f" and {', '.join(models)}" if models else ""
        return f"kept {last}{also}; continue with --resume {last}"
    if models:
        return f"kept {', '.join(str(out / m) for m in models)} (no checkpoint to resume from)"
    return f"no checkpoint yet, so nothing kept: {folder.remove_created()}"


class _StopAtCtrlC(Callback):
    """Lightning turns Ctrl-C into `sys.exit(1)` after its own teardown; this notes that it was
    Ctrl-C, so `fit` raises `KeyboardInterrupt` again (exit 130, what is kept)."""

    def __init__(self) -> None:
        self.interrupted = False

    def on_exception(self, trainer: L.Trainer, module: Any, exception: BaseException) -> None:
        self.interrupted = self.interrupted or isinstance(exception, KeyboardInterrupt)


def _fit(cfg, train_set, val_sets, val_names, model, resume, enable_progress_bar, callbacks,
         strategy, earth_style, verbose, progress_lines, progress_label, choices,
         source_domain):  # fmt: skip
    from crossearth.train.defaults import record

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(record(cfg, choices))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    quiet_lightning()
    module = CrossEarthModule(
        model, cfg, val_names, earth_style=earth_style, source_domain=source_domain
    )
    if resume is not None:
        check_resume(Path(resume), module)
    multi = cfg.devices * cfg.num_nodes > 1
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    terminal = stdout_is_terminal()
    stop = _StopAtCtrlC()
    bar = enable_progress_bar and terminal
    lines = not terminal if progress_lines is None else progress_lines
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=strategy or ("ddp" if multi else "auto"),
        precision=cfg.precision,
        max_steps=cfg.max_steps,
        val_check_interval=min(cfg.val_every, cfg.max_steps) if val_sets else None,
        check_val_every_n_epoch=None,
        limit_val_batches=cfg.val_limit,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=cfg.log_every,
        enable_progress_bar=bar,
        enable_model_summary=False,
        logger=[TensorBoardLogger(out, name="tensorboard"), CSVLogger(out, name="csv")],
        callbacks=[
            ModelCheckpoint(
                dirpath=out / "checkpoints",
                every_n_train_steps=cfg.checkpoint_every,
                save_last=True,
                save_top_k=0,
            ),
            ExportWeights(out),
            stop,
            *([StepProgressBar()] if bar else []),
            *([PlainProgress(progress_label)] if lines else []),
            *(callbacks or []),
        ],
        default_root_dir=out,
    )
    if trainer.is_global_zero and verbose:
        print(module.trainable_summary())
        print(methods_line(cfg))
    data = StreamData(train_set, val_sets, cfg)
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, datamodule=data, ckpt_path=str(resume) if resume else None)
    except SystemExit:  # Lightning's ending for Ctrl-C (exit 1) and SIGTERM (exit 0!)
        if stop.interrupted:
            raise KeyboardInterrupt from None
        if getattr(trainer, "received_sigterm", False):
            raise Interrupted("", signal.SIGTERM) from None
        raise
    finally:  # Lightning ignores Ctrl-C from the first one on, and leaves it so
        if handler is not None and signal.getsignal(signal.SIGINT) is not handler:
            with contextlib.suppress(ValueError):  # not the main thread
                signal.signal(signal.SIGINT, handler)
    return {"val": module.last_val, "out_dir": str(out), "global_step": trainer.global_step}

"""What a training run shows on the console: a step progress bar (on a terminal), plain progress
lines (when the output goes to a file, a pipe or a CI log), and which method parts are on."""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar

from crossearth.progress import (
    PROGRESS_SECONDS,
    RateMeter,
    duration,
    format_rate,
    time_left_column,
)
from crossearth.train.config import TrainConfig


class StepProgressBar(RichProgressBar):
    """The training bar counts optimizer steps of the whole run: `step ━━━ N/max_steps`.

    Lightning's default counts batches of the current epoch (`Epoch 0/-2`, and `15/4` after a
    resume); our runs are step-based with one endless epoch, so epochs say nothing. After a resume
    the bar starts at the restored global step.
    """

    @property
    def total_train_batches(self) -> int | float:
        return self.trainer.max_steps if self.trainer.max_steps > 0 else float("inf")

    def _get_train_description(self, current_epoch: int) -> str:
        return "step"

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._update(self.train_progress_bar_id, trainer.global_step)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._update(self.train_progress_bar_id, trainer.global_step)
        self.refresh()

    def configure_columns(self, trainer: L.Trainer) -> list:
        """Lightning's columns with a steady time left (`crossearth.progress.RateMeter`) in
        place of rich's, which divides by the speed of the last 30 s and jumps with pauses."""
        columns = super().configure_columns(trainer)
        for i, column in enumerate(columns):
            if type(column).__name__ == "CustomTimeColumn":
                columns[i] = time_left_column(show_elapsed=True, style=self.theme.time)
        return columns

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)  # the logger's version number, not a training metric
        return items


def stdout_is_terminal() -> bool:
    """True when standard output is an interactive terminal (a progress bar can redraw there)."""
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


class PlainProgress(Callback):
    """Progress as plain lines for output that is not a terminal (a log file, a pipe, CI), where a
    redrawn bar shows nothing or garbage. One line at the first step, then at most every
    `every_seconds` (default `PROGRESS_SECONDS`), and at the last step:

        run 2/6 step 120/250 loss 0.831 (2.4 steps/s, 54 s left)

    The rate and time left are `crossearth.progress.RateMeter`'s (steady: work and time weighted
    by age, the first step's start-up left out); the last line gives the whole run's average.

    `label` starts each line ("run 2/6 " in the demo). Lines go to `write` (default: print to
    standard output, flushed); only the global-zero process of a multi-process run writes.
    `clock` (seconds, monotonic) is for tests.
    """

    def __init__(
        self,
        label: str = "",
        every_seconds: float | None = None,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.label = label
        self.every_seconds = PROGRESS_SECONDS if every_seconds is None else every_seconds
        self.write = write or _print_flushed  # (module-level: spawned DDP processes pickle it)
        self.clock = clock
        self.meter = RateMeter()  # steady rate and time left (crossearth.progress)
        self._start: tuple[float, int] | None = None  # (time, global step) at the first batch
        self._last_line = -math.inf

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not trainer.is_global_zero:
            return
        now, step = self.clock(), trainer.global_step
        if self._start is None:
            self._start = (now, step)  # rates from here: the first step includes start-up
        self.meter.update(now, step)
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        last = total is not None and step >= total
        if not last and now - self._last_line < self.every_seconds:
            return
        self._last_line = now
        self.write(self.line(step, total, _loss(outputs), now))

    def line(self, step: int, total: int | None, loss: float | None, now: float) -> str:
        """The text of one progress line at global `step` (of `total`) at time `now`."""
        text = f"{self.label}step {step}/{total}" if total else f"{self.label}step {step}"
        if loss is not None:
            text += f" loss {loss:.3f}"
        last = bool(total) and step >= total
        if last:  # the whole run's average
            start_time, start_step = self._start or (now, step)
            elapsed, done = now - start_time, step - start_step
            rate = done / elapsed if elapsed > 0 and done > 0 else None
        else:  # steady: work and time weighted by age (crossearth.progress.RateMeter)
            rate = self.meter.rate
        if rate is not None:
            text += f" ({format_rate(rate, 'steps')}"
            left = None if last else self.meter.seconds_left(total)
            if left is not None:
                text += f", {duration(left)} left"
            text += ")"
        return text


def _print_flushed(line: str) -> None:
    print(line, flush=True)


def _loss(outputs: Any) -> float | None:
    value = outputs.get("loss") if isinstance(outputs, dict) else outputs
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def methods_line(cfg: TrainConfig) -> str:
    """One line saying which parts of CrossEarth's method a run uses, e.g.
    `methods: Earth-Style Injection on (spectral, p=0.1), Multi-Task Training off, GSE off`."""
    esi = f"on ({cfg.stylizer}, p={cfg.esi_prob:g}, alpha={cfg.esi_alpha:g})" if cfg.esi else "off"
    mtt = f"on (masked {cfg.mim_ratio:.0%} in blocks of {cfg.mim_block} px)" if cfg.mtt else "off"
    gse = "on" if cfg.gse else "off"
    backbone = "frozen (Rein PEFT)" if cfg.freeze_backbone else "trained (full fine-tuning)"
    return (
        f"methods: Earth-Style Injection {esi}, Multi-Task Training {mtt}, "
        f"Geospatial Semantic Extractor {gse}; backbone {backbone}"
    )


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # Ctrl-C: the run's own line says what it keeps ("aborted; kept ...")
        return "💡 Tip" not in message and "Detected KeyboardInterrupt" not in message


def quiet_lightning() -> None:
    """Drop console lines that say nothing about the run: Lightning's advertising tips, its
    line on Ctrl-C (the run says what it keeps instead), its deprecation notice about torch's
    pytree API (internal to Lightning, not actionable by users) and its note on an empty
    validation list (a run without validation, as the demo's, means it)."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r"Total length of `list` across ranks is zero.*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())

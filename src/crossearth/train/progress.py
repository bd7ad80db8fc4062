"""What a training run shows on the console: a step progress bar and which method parts are on."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

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

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)  # the logger's version number, not a training metric
        return items


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
        return "💡 Tip" not in record.getMessage()


def quiet_lightning() -> None:
    """Drop console lines that say nothing about the run: Lightning's advertising tips and its
    deprecation notice about torch's pytree API (internal to Lightning, not actionable by users)."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropTips) for f in logger.filters):
            logger.addFilter(_DropTips())

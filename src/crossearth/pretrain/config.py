"""Settings of a pretraining run (`crossearth pretrain`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class PretrainConfig:
    preset: str | None = None  # None: the --init file's, else vit-tiny-256 (vitl-512 for DINOv2)
    objective: str = "both"  # mim, distill or both (crossearth.pretrain.objective)
    init: str | None = None  # a backbone to continue from: our backbone file or a zoo name
    backbone: str | None = None  # or a DINOv2 file (converted, or the original patch 14)
    out_dir: str = "runs/pretrain"
    max_steps: int = 3000
    schedule_steps: int | None = None  # learning-rate and EMA schedules span this (None: max_steps)
    batch_size: int = 32  # per device
    crop: int = 128
    scale_range: tuple[float, float] = (0.5, 2.0)  # windows of crop/f source pixels
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 150
    weight_decay: float = 0.05
    mask_ratio: float = 0.4  # share of masked 2 x 2 patch blocks
    teacher_momentum: float = 0.99  # EMA momentum at the start (cosine to 1)
    layer_scale: float = 0.1  # LayerScale init from scratch (DINOv2's 1e-5 learns too slowly here)
    precision: str = "auto"  # auto (bf16-mixed where the hardware is fast), bf16-mixed, 32-true
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    num_workers: int = 2
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50

    @property
    def schedule_span(self) -> int:
        """Steps the cosine learning rate and the teacher's momentum schedule span."""
        return self.schedule_steps or self.max_steps

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

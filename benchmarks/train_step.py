"""Seconds per training step (forward + Mask2Former loss + backward + AdamW) on this machine.

Presets `vit-tiny-256` (crop 256) and `vits-512` (crop 512), Rein PEFT (frozen backbone) and, for
the tiny preset, full fine-tuning; batch 2; fp32 and bf16 autocast; median of a few steps after a
warm-up. Random weights and data: the cost does not depend on them.

    .venv/bin/python benchmarks/train_step.py [--steps 3] [--presets vit-tiny-256 vits-512]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import crossearth
from crossearth.inference import normalize
from crossearth.train.config import TrainConfig
from crossearth.train.losses import Mask2FormerLoss
from crossearth.train.module import CrossEarthModule


def step_seconds(
    preset: str, crop: int, freeze: bool, precision: str, steps: int, batch: int
) -> float:
    torch.manual_seed(0)
    model = crossearth.create_model(preset, num_classes=6).train()
    module = CrossEarthModule(model, TrainConfig(preset=preset, freeze_backbone=freeze))
    module.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    criterion = Mask2FormerLoss(6)
    images = torch.randint(0, 256, (batch, 3, crop, crop), dtype=torch.uint8)
    labels = torch.randint(0, 6, (batch, crop, crop))
    cfg = model.config.inference
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model.forward_head(normalize(images, cfg.mean, cfg.std), all_stages=True)
            loss = criterion(out.class_logits, out.mask_logits, labels)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step is a warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["vit-tiny-256", "vits-512"])
    args = parser.parse_args()
    crops = {"vit-tiny-256": 256, "vits-512": 512, "vitb-512": 512, "vitl-512": 512}
    print(
        f"batch {args.batch}, median of {args.steps} steps after one warm-up, {torch.get_num_threads()} threads"
    )
    for preset in args.presets:
        for freeze in (True, False) if preset == "vit-tiny-256" else (True,):
            for precision in ("fp32", "bf16"):
                s = step_seconds(preset, crops[preset], freeze, precision, args.steps, args.batch)
                mode = "Rein PEFT" if freeze else "full fine-tune"
                print(
                    f"{preset:13s} crop {crops[preset]:4d} {mode:14s} {precision}: {s:.2f} s/step"
                )


if __name__ == "__main__":
    main()

"""The LightningModule around a plain CrossEarth `nn.Module`: PEFT freezing, losses, schedule, metrics."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from crossearth.errors import CrossEarthError
from crossearth.inference import normalize
from crossearth.metrics import ConfusionMatrix, scores
from crossearth.models.segmentor import CrossEarth
from crossearth.train.config import TrainConfig
from crossearth.train.losses import Mask2FormerLoss

# Official paramwise custom_keys with decay_mult 0 (substring match), plus every norm layer.
NO_DECAY_KEYS = (
    "norm", "query_embed", "level_embed", "learnable_tokens", "reins.scale", "mask_token", "gate",
)  # fmt: skip
NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)


class NonFiniteLossError(CrossEarthError):
    """The loss became NaN or Inf: training stops before a poisoned checkpoint is written."""


# DINOv2 weights the official forward never uses (masked-token pre-training, the final norm):
# they never train, so that DDP (which expects a gradient for every trainable tensor) works with
# full fine-tuning too.
UNUSED = ("backbone.mask_token", "backbone.norm.")


# A model of other than three bands has input kernels the pretrained backbone never saw (zero
# or random): they train even under Rein PEFT, or the extra bands could never be learnt.
PATCH_EMBED = "backbone.patch_embed."


def trainable_names(model: CrossEarth, freeze_backbone: bool) -> list[str]:
    """Names of the parameters that train (see `_trains`)."""
    extra = model.config.in_chans != 3
    return [n for n, _ in model.named_parameters() if _trains(n, freeze_backbone, extra)]


def _trains(name: str, freeze_backbone: bool, train_patch_embed: bool = False) -> bool:
    if name.startswith(UNUSED):
        return False
    if train_patch_embed and name.startswith(PATCH_EMBED):
        return True
    return not (freeze_backbone and _is_frozen(name))


def _is_frozen(name: str) -> bool:
    return (
        name.startswith("backbone.")
        and ".reins." not in name
        and not name.startswith("backbone.reins")
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups as the official optimizer wrapper builds them (trainable parameters only)."""
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters()
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in norm_params or any(k in name for k in NO_DECAY_KEYS):
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up (from 1e-6) then poly decay to 0 at `schedule_steps`."""
    if step < cfg.warmup_steps:
        return 1e-6 + (1 - 1e-6) * step / cfg.warmup_steps
    span = max(cfg.schedule_steps - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return (1 - progress) ** cfg.poly_power


class CrossEarthModule(L.LightningModule):
    """Trains Rein + head (or everything) with the Mask2Former criterion; validates per target domain."""

    def __init__(
        self,
        model: CrossEarth,
        cfg: TrainConfig,
        val_domains: list[str] | None = None,
        earth_style: tuple | None = None,
        source_domain: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.val_domains = val_domains or []
        # a setting that also validates on its source (SynthEarth) selects on the targets alone
        self.source_domain = source_domain
        # The paper's training-only parts; none of them is part of `model` or its checkpoints.
        self.esi = build_style_injection(cfg, earth_style) if cfg.esi else None
        self.mtt = None
        if cfg.mtt:
            from crossearth.models.mim import MultiTaskHead

            self.mtt = MultiTaskHead(
                model.config.backbone.embed_dim, channels=cfg.mim_channels, token_size=cfg.crop,
                mask_ratio=cfg.mim_ratio, block_size=cfg.mim_block,
            )  # fmt: skip
        self.gse = None
        if cfg.gse:
            from crossearth.models.gse import GSEInjection, install

            self.gse = GSEInjection.for_backbone(model)
            self._gse_handle = install(model.backbone, self.gse, auto_image=True)
        self.criterion = Mask2FormerLoss(
            model.num_classes,
            class_weight=cfg.class_weight,
            mask_weight=cfg.mask_weight,
            dice_weight=cfg.dice_weight,
            no_object_weight=cfg.no_object_weight,
            num_points=cfg.num_points,
        )
        if model.config.in_chans != 3 and (cfg.esi or cfg.mtt or cfg.gse):
            from crossearth.errors import ConfigError

            raise ConfigError(
                f"Earth-Style Injection, Multi-Task Training and GSE work on 3-band (RGB) "
                f"images; this model takes {model.config.in_chans} bands: turn them off "
                f"(--set esi=false mtt=false gse=false)"
            )
        extra = model.config.in_chans != 3
        for name, p in model.named_parameters():
            p.requires_grad_(_trains(name, cfg.freeze_backbone, extra))
        model.backbone.gradient_checkpointing = cfg.gradient_checkpointing
        self._confusions: dict[int, ConfusionMatrix] = {}
        self.last_val: dict[str, float] = {}

    # -- what trains ---------------------------------------------------------------------------
    def trainable_summary(self) -> str:
        groups: dict[str, int] = {}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                key = ".".join(name.split(".")[:2])
                groups[key] = groups.get(key, 0) + p.numel()
        total = sum(p.numel() for p in self.model.parameters())
        train = sum(groups.values())
        parts = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in sorted(groups.items()))
        return f"trainable {train / 1e6:.2f}M of {total / 1e6:.2f}M parameters: {parts}"

    def train(self, mode: bool = True) -> CrossEarthModule:
        super().train(mode)
        if mode and self.cfg.freeze_backbone:  # the frozen backbone stays in eval mode
            for name, child in self.model.backbone.named_children():
                if name != "reins":
                    child.eval()
        return self

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            param_groups(self, self.cfg.weight_decay),  # the model and the training-only heads
            lr=self.cfg.lr,
            betas=tuple(self.cfg.betas),
            eps=self.cfg.eps,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, self.cfg)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        cfg = self.model.config.inference
        images = batch["image"]
        step_gen = _generator(self.cfg.seed + 7, int(batch["position"][0]), self.device)
        styled = False
        if self.esi is not None:  # Earth-Style Injection: sometimes the whole batch is restyled
            stylised, styled = self.esi(images, step_gen)
            if styled:
                self.log("train/esi_fired", 1.0, batch_size=images.shape[0])
        x_clean = normalize(images, cfg.mean, cfg.std)
        x = normalize(stylised, cfg.mean, cfg.std) if styled else x_clean
        feats, queries = self.model.backbone(x.to(self.model.dtype))
        out = self.model.decode_head(feats, queries, all_stages=True)
        generators = [_generator(self.cfg.seed, int(p), self.device) for p in batch["position"]]
        losses = self.criterion(
            out.class_logits, out.mask_logits, batch["label"].long(), generators=generators
        )
        loss = losses["loss"]
        if (
            self.mtt is not None
        ):  # Multi-Task Training: reconstruct the clean image from a masked view
            x_masked, _ = self.mtt.masked_view(x_clean, step_gen)
            masked_feats, _ = self.model.backbone(x_masked.to(self.model.dtype))
            size = tuple(x.shape[-2:])
            recon_masked = self.mtt.reconstruct(masked_feats, size)
            recon_styled = self.mtt.reconstruct(feats, size) if styled else None
            mim = self.mtt.losses(recon_masked, x_clean, recon_styled)
            loss = loss + self.cfg.mim_weight * mim["loss"]
            self.log("train/mim", mim["loss"], batch_size=images.shape[0])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss is {loss.item()} at step {self.global_step}; stopping before a poisoned "
                "checkpoint is written (lower the learning rate, or try --precision 32-true)"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        last = len(out.class_logits) - 1
        for term in ("loss_cls", "loss_mask", "loss_dice"):
            key = f"s{last}.{term}"
            if key in losses:
                self.log(f"train/{term}", losses[key], batch_size=x.shape[0])
        return loss

    # -- validation: the official protocol, pooled per domain -----------------------------------
    def on_validation_epoch_start(self) -> None:
        self._confusions = {}

    def validation_step(self, batch: list[dict], batch_idx: int, dataloader_idx: int = 0) -> None:
        cm = self._confusions.setdefault(dataloader_idx, ConfusionMatrix(self.model.num_classes))
        for sample in batch:
            pred = self.model.predict(sample["image"], test_resize=sample.get("test_resize"),
                                      keep_ratio=sample.get("keep_ratio", True))  # fmt: skip
            cm.update(pred.labels, sample["label"])

    def on_validation_epoch_end(self) -> None:
        results = {}
        for idx, cm in sorted(self._confusions.items()):
            if self.trainer.world_size > 1:
                matrix = torch.from_numpy(cm.matrix).to(self.device)
                cm.matrix = (
                    self.all_gather(matrix).sum(0).cpu().numpy() if matrix.ndim == 2 else cm.matrix
                )
            name = self.val_domains[idx] if idx < len(self.val_domains) else f"domain{idx}"
            miou = scores(cm.matrix).miou
            results[name] = miou
            if not math.isnan(miou):  # NaN: no labelled pixel, nothing to score (never a 0)
                self.log(f"val/{name}/mIoU", miou, sync_dist=False)
        if results:
            targets = {k: v for k, v in results.items() if k != self.source_domain} or results
            scored = [v for v in targets.values() if not math.isnan(v)]
            mean = float(np.mean(scored)) if scored else None
            if mean is not None:
                self.log("val/mIoU", mean)
            self.last_val = results | {"mean": mean}
            if self.trainer.is_global_zero and self.cfg.log_every > 0:
                parts = ", ".join(
                    f"{k} {'–' if math.isnan(v) else f'{v:.2f}'}" for k, v in results.items()
                )
                shown = "– (no labelled pixel)" if mean is None else f"{mean:.2f}"
                if len(targets) < len(results):
                    shown += " on the targets"
                    parts = parts.replace(f"{self.source_domain} ", f"source {self.source_domain} ")
                print(f"[step {self.global_step}] val mIoU {shown} ({parts})")


def build_style_injection(cfg: TrainConfig, earth_style: tuple | None):
    """ESI from an (EarthStyle, stylizer) pair, or from the config's files."""
    from crossearth.train.style import EarthStyle, EarthStyleInjection, SpectralStylizer

    if earth_style is not None:
        earth, stylizer = earth_style
    else:
        if not cfg.earth_style:
            raise CrossEarthError(
                "--set esi=true needs an Earth style file: --set earth_style=PATH (make one with "
                "`crossearth style fit IMAGE_FOLDER -o earth_style.npz`)"
            )
        earth = EarthStyle.load(cfg.earth_style)
        if cfg.stylizer == "neural":
            from crossearth.train.style import NeuralStylizer

            stylizer = NeuralStylizer.from_checkpoints(cfg.style_predictor, cfg.style_transformer)
        else:
            stylizer = SpectralStylizer()
    return EarthStyleInjection(
        stylizer, earth, prob=cfg.esi_prob, alpha=cfg.esi_alpha, block=cfg.esi_block,
        stylized_fraction=cfg.esi_fraction,
    )  # fmt: skip


def _generator(seed: int, position: int, device: torch.device) -> torch.Generator:
    """Point sampling randomness as a function of the sample's position in the data stream, so
    that runs split over different numbers of devices sample the same points."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed((seed * 1_000_003 + position) % (2**63))
    return gen

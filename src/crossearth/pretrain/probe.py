"""Linear probe: how much a frozen backbone's features say about the classes, per domain.

The features are the ones a CrossEarth head reads: the tokens of the backbone's four `out_indices`
blocks (before the final norm, as `ReinDinoBackbone` returns them, here without Rein), at stride
16, concatenated (4 x embed_dim channels) and standardised with the training set's per-channel
mean and std. A per-pixel linear classifier (a 1 x 1 convolution on the stride-16 map, its logits
upsampled bilinearly to the labels: the same as a linear layer on bilinearly upsampled features,
since both steps are linear) is trained on a source domain with cross-entropy (Adam, full batch)
and scored by mIoU on the source's validation tiles and on unseen target domains. The backbone
never changes, so the probe measures the features alone: pretrained against a random init of the
same architecture is what pretraining bought.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from crossearth.config import IMAGENET_MEAN, IMAGENET_STD
from crossearth.inference import normalize
from crossearth.metrics import IGNORE_INDEX, ConfusionMatrix, scores
from crossearth.pretrain.objective import PlainViT


def load_plain_backbone(path: str | Path) -> PlainViT:
    """A `PlainViT` with a backbone file's weights (`crossearth.weights.backbone_file`), eval mode.

    Raises:
        CheckpointError: not a backbone file with a recorded config.
    """
    from crossearth.errors import CheckpointError
    from crossearth.weights.backbone_file import read_backbone_record, resolve_backbone
    from crossearth.weights.checkpoint_io import read_checkpoint
    from crossearth.weights.state import backbone_tensors

    path = resolve_backbone(path)
    record = read_backbone_record(path)
    if record.config is None:
        raise CheckpointError(f"{path} is not a crossearth backbone file (no recorded config)")
    vit = PlainViT(record.config)
    tensors = backbone_tensors(read_checkpoint(path).state_dict, record.config.grid_size)
    vit.load_state_dict(tensors, strict=True)
    return vit.eval()


@torch.no_grad()
def dense_features(vit: PlainViT, images: list[np.ndarray], batch: int = 16) -> torch.Tensor:
    """[N, 4 * C, H / 16, W / 16] float32 features of H x W x 3 uint8 images of one size."""
    out = []
    for start in range(0, len(images), batch):
        chunk = np.stack(images[start : start + batch])
        x = normalize(torch.from_numpy(chunk).permute(0, 3, 1, 2), IMAGENET_MEAN, IMAGENET_STD)
        b, _, h, w = x.shape
        gh, gw = h // vit.cfg.patch_size, w // vit.cfg.patch_size
        tokens = vit.prepare_tokens(x)
        levels = []
        for idx, block in enumerate(vit.blocks):
            tokens = block(tokens)
            if idx in vit.cfg.out_indices:
                levels.append(tokens[:, 1:].transpose(1, 2).reshape(b, -1, gh, gw))
        out.append(torch.cat(levels, dim=1).float())
    return torch.cat(out)


@dataclass
class ProbeResult:
    miou: dict[str, float]  # domain -> mIoU %
    train_miou: float


def linear_probe(
    vit: PlainViT,
    train: tuple[list[np.ndarray], list[np.ndarray]],
    evaluations: dict[str, tuple[list[np.ndarray], list[np.ndarray]]],
    num_classes: int,
    *,
    steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
) -> ProbeResult:
    """Fit the probe on `train` (images, labels with 255 = ignore) and score every evaluation set.

    Returns mIoU in % (the official protocol's pooled confusion matrix per domain)."""
    feats = dense_features(vit, train[0])
    mean = feats.mean(dim=(0, 2, 3), keepdim=True)
    std = feats.std(dim=(0, 2, 3), keepdim=True) + 1e-5
    feats = (feats - mean) / std
    labels = torch.from_numpy(np.stack(train[1]).astype(np.int64))
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(num_classes, feats.shape[1], 1, 1, generator=generator) * 0.01
    weight.requires_grad_(True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)
    for _ in range(steps):
        logits = F.interpolate(
            F.conv2d(feats, weight, bias), size=labels.shape[-2:], mode="bilinear",
            align_corners=False,
        )  # fmt: skip
        loss = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def score(images: list[np.ndarray], truth: list[np.ndarray]) -> float:
        f = (dense_features(vit, images) - mean) / std
        with torch.no_grad():
            logits = F.interpolate(
                F.conv2d(f, weight, bias), size=truth[0].shape, mode="bilinear",
                align_corners=False,
            )  # fmt: skip
        cm = ConfusionMatrix(num_classes)
        for pred, label in zip(logits.argmax(1).numpy(), truth, strict=True):
            cm.update(pred, label)
        return float(scores(cm.matrix).miou)

    return ProbeResult({name: score(*data) for name, data in evaluations.items()}, score(*train))


def random_backbone_like(path: str | Path, out: str | Path, seed: int = 0) -> Path:
    """A copy of a backbone file with the same keys, shapes and metadata but fresh weights: the
    initialisation a pretraining run starts from (LayerScale 0.1, see `PretrainConfig`)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from crossearth.fileio import atomic_path
    from crossearth.pretrain.config import PretrainConfig
    from crossearth.weights.backbone_file import read_backbone_record, resolve_backbone

    path = resolve_backbone(path)
    record = read_backbone_record(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        keys = list(f.keys())
    torch.manual_seed(seed)
    vit = PlainViT(record.config)
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if name.endswith((".ls1.gamma", ".ls2.gamma")):
                p.fill_(PretrainConfig.layer_scale)
    state = vit.state_dict()
    if sorted(state) != sorted(keys):
        raise ValueError(f"{path}: keys differ from a fresh {record.preset} backbone")
    metadata["record"] = json.dumps(record.record | {"reinitialised": True, "seed": seed})
    with atomic_path(out) as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
    return Path(out)

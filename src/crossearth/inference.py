"""The official test protocol on in-memory images: normalise, optional resize, slide, argmax."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Prediction:
    """A segmentation: `labels` [H, W] class ids and `scores` [C, H, W] (official, non-negative)."""

    labels: np.ndarray
    scores: np.ndarray

    @property
    def confidence(self) -> np.ndarray:
        """Share of the winning class in the summed scores, [H, W] in 0..1."""
        total = self.scores.sum(axis=0)
        return np.divide(self.scores.max(axis=0), total, out=np.zeros_like(total), where=total > 0)


def slide_windows(
    height: int, width: int, crop: tuple[int, int], stride: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Official mmseg slide windows as (y1, y2, x1, x2); edge windows are shifted inside the image."""
    (crop_h, crop_w), (stride_h, stride_w) = crop, stride
    if min(crop_h, crop_w, stride_h, stride_w) <= 0:
        raise ValueError(f"crop {crop} and stride {stride} must be positive")
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    if (rows > 1 and stride_h > crop_h) or (cols > 1 and stride_w > crop_w):
        raise ValueError(f"stride {stride} larger than crop {crop} would leave pixels unpredicted")
    out = []
    for i in range(rows):
        for j in range(cols):
            y2, x2 = min(i * stride_h + crop_h, height), min(j * stride_w + crop_w, width)
            out.append((max(y2 - crop_h, 0), y2, max(x2 - crop_w, 0), x2))
    return out


def rescale_size(height: int, width: int, long_edge: int) -> tuple[int, int]:
    """Output size of the official `Resize(scale=(S, S), keep_ratio=True)`: long edge becomes S."""
    factor = min(long_edge / max(height, width), long_edge / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


def normalize(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """[B, C, H, W] pixel values (0..255 after scaling) -> the model's normalised input
    (one mean and std per channel)."""
    m = torch.tensor(mean, dtype=torch.float32, device=image.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=image.device).view(1, -1, 1, 1)
    return (image.float() - m) / s


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """Validate an H x W x C uint8 array (C >= 1 bands) and turn it into a float [1, C, H, W]
    tensor."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a NumPy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] < 1:
        raise ValueError(f"expected an H x W x C image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0..255), got {image.dtype}")
    if not (image.flags.writeable and image.flags.c_contiguous):
        image = np.array(image)  # torch cannot wrap read-only memory
    return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float()


def window_scores(model: nn.Module, batch: torch.Tensor, multiple: int = 1) -> torch.Tensor:
    """Scores [B, C, h, w] (fp32) of a batch of normalised windows of one size.

    Windows whose size is not a multiple of `multiple` (the patch size; only images smaller than
    the crop) are zero-padded at the bottom/right, as mmseg pads training batches, and cropped back.
    Windows with a side below the model's `min_input_size` (thin strips, tiny chips: the coarsest
    feature level would be empty) are zero-padded to that size the same way.

    The batch enters the model in one memory layout (contiguous NCHW), whatever the caller built
    it from: convolution kernels pick a different algorithm, and so a different summation order,
    for a channels-last tensor (which an H x W x 3 array permuted to NCHW is) on some CPUs
    (AVX2-only), and the streaming path and `model.predict` must do the same arithmetic.
    """
    batch = batch.contiguous()
    win_h, win_w = batch.shape[-2:]
    smallest = int(getattr(model, "min_input_size", 0) or 0)
    pad_h = max(-win_h % multiple, smallest - win_h)
    pad_w = max(-win_w % multiple, smallest - win_w)
    if pad_h or pad_w:
        batch = F.pad(batch, (0, pad_w, 0, pad_h))
    return model(batch).float()[:, :, :win_h, :win_w]


def slide_inference(
    model: nn.Module,
    inputs: torch.Tensor,
    crop: tuple[int, int],
    stride: tuple[int, int],
    num_classes: int,
    batch_size: int = 4,
    multiple: int = 1,
) -> torch.Tensor:
    """Sum window scores into a canvas and divide by the per-pixel window count ([1, C, H, W])."""
    _, _, height, width = inputs.shape
    windows = slide_windows(height, width, crop, stride)
    scores = torch.zeros((1, num_classes, height, width), dtype=torch.float32, device=inputs.device)
    count = torch.zeros((1, 1, height, width), dtype=torch.float32, device=inputs.device)
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        batch = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in chunk])
        out = window_scores(model, batch, multiple)
        for k, (y1, y2, x1, x2) in enumerate(chunk):
            scores[:, :, y1:y2, x1:x2] += out[k : k + 1]
            count[:, :, y1:y2, x1:x2] += 1
    return scores / count


def predict_array(
    model: nn.Module,
    image: np.ndarray,
    *,
    test_resize: int | bool | None = True,
    keep_ratio: bool = True,
    batch_size: int = 4,
) -> Prediction:
    """Segment an H x W x C uint8 array (the model's C bands, e.g. RGB) with the model's official test protocol.

    `test_resize=True` applies the model config's test resize (if it has one); an int sets the long
    edge explicitly; False/None disables it; `keep_ratio=False` resizes to S x S instead (the
    official CASID TemMs pipeline). Scores are returned at the input size. Images of any size
    from 1 x 1 px are accepted (see `window_scores`).

    Raises:
        TypeError: `image` is not a NumPy array.
        ValueError: `image` is not H x W x C uint8 with C the model's band count.
    """
    cfg = model.config.inference
    pixels = to_tensor(image).to(model.device)
    if pixels.shape[1] != model.config.in_chans:
        raise ValueError(
            f"the model takes {model.config.in_chans} band(s), the image has {pixels.shape[1]}"
        )
    height, width = pixels.shape[-2:]
    long_edge = cfg.test_resize if test_resize is True else (test_resize or None)
    if long_edge:
        size = rescale_size(height, width, long_edge) if keep_ratio else (long_edge, long_edge)
        if size != (height, width):
            # cv2 INTER_LINEAR on uint8 (the official backend): bilinear, no antialias, rounded.
            pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
            pixels = pixels.round().clamp(0, 255)
    x = normalize(pixels, cfg.mean, cfg.std)
    scores = slide_inference(
        model, x, cfg.crop_size, cfg.stride, model.num_classes, batch_size,
        multiple=model.config.backbone.patch_size,
    )  # fmt: skip
    if scores.shape[-2:] != (height, width):
        scores = F.interpolate(scores, size=(height, width), mode="bilinear", align_corners=False)
    scores_np = scores[0].cpu().numpy()
    labels = scores_np.argmax(axis=0).astype(np.uint8 if model.num_classes <= 256 else np.int32)
    return Prediction(labels=labels, scores=scores_np)

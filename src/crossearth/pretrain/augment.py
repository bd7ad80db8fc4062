"""Photometric views for self-distillation: the same pixels under another light, sensor and sky.

Each view of a crop keeps its geometry (so the teacher's and the student's patches correspond one
to one) and changes what domain shifts in remote sensing change: overall brightness and contrast,
per-band gains, a random mixing of the bands (a stand-in for other band layouts, e.g. false
colour), desaturation, haze (a blend towards a bright grey), blur (a coarser platform) and sensor
noise. Randomness comes from a `torch.Generator`, so a sample's views are a pure function of its
stream position (exact resume).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ViewStrength:
    """Ranges and probabilities of the photometric changes (per image)."""

    brightness: tuple[float, float] = (0.6, 1.4)
    contrast: tuple[float, float] = (0.7, 1.3)
    band_gain: tuple[float, float] = (0.8, 1.2)
    mix_prob: float = 0.3  # chance of a random band permutation and mixing
    grey_prob: float = 0.1
    haze_prob: float = 0.3
    haze: tuple[float, float] = (0.05, 0.35)
    blur_prob: float = 0.3
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    noise: tuple[float, float] = (0.0, 8.0)  # standard deviation, in 0..255 grey values


def _u(generator: torch.Generator, low: float, high: float, n: int = 1) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def photometric_view(
    images: torch.Tensor, generator: torch.Generator, strength: ViewStrength = ViewStrength()
) -> torch.Tensor:
    """A changed copy of `images` (float [B, 3, H, W] in 0..255), clipped to 0..255.

    Every draw comes from `generator` in a fixed order, whatever the images hold."""
    out = []
    for image in images.float():
        s = strength
        x = image * _u(generator, *s.band_gain, 3).view(3, 1, 1)
        if float(torch.rand((), generator=generator)) < s.mix_prob:
            perm = torch.randperm(3, generator=generator)
            mix = torch.eye(3)[perm] * 0.7 + 0.3 * torch.rand(3, 3, generator=generator) / 3
            x = torch.einsum("ij,jhw->ihw", mix / mix.sum(1, keepdim=True), x)
        if float(torch.rand((), generator=generator)) < s.grey_prob:
            x = x.mean(0, keepdim=True).expand_as(x)
        mean = x.mean()
        x = (x - mean) * float(_u(generator, *s.contrast)) + mean
        x = x * float(_u(generator, *s.brightness))
        if float(torch.rand((), generator=generator)) < s.blur_prob:
            x = gaussian_blur(x, float(_u(generator, *s.blur_sigma)))
        if float(torch.rand((), generator=generator)) < s.haze_prob:
            h = float(_u(generator, *s.haze))
            x = x * (1 - h) + h * 240.0  # towards a bright grey (SynthEarth's haze level)
        sigma = float(_u(generator, *s.noise))
        x = x + sigma * torch.randn(x.shape, generator=generator)
        out.append(x.clamp(0, 255))
    return torch.stack(out)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [C, H, W] (reflect padding, radius 3 sigma)."""
    radius = max(1, int(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    k = (k / k.sum()).to(image.dtype)
    c = image.shape[0]
    x = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]

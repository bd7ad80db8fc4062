"""The official training augmentations (spec §3), on tensors, with randomness from a generator.

Every transform is called as ``transform(image, label, generator) -> (image, label)`` with
``image`` a uint8 ``[3, H, W]`` tensor (channels in file order: RGB, or IR-R-G for IRRG tiles) and
``label`` a uint8 ``[H, W]`` tensor of class ids (255 = ignore). All random draws come from the
``torch.Generator`` passed in, in the order mmseg makes them, so a sample's augmentation is a pure
function of the generator's seed (exact resume, equal samples across DDP ranks and worker counts).
The draws are not numpy's, so the crops and colours are not those of an official run, only their
distributions are.

The official pipeline (512 config; the 1024 config doubles every size)::

    RandomChoiceResize(ResizeShortestEdge, scales 256..1024, max_size 2048)
    RandomCrop(512, cat_max_ratio=0.75) -> RandomFlip(0.5) -> PhotoMetricDistortion()
    data preprocessor: normalise, then pad to 512 x 512 (image 0 after normalising, label 255)

Differences from mmseg/OpenCV, all at the level of a grey value or a rounding:
- Bilinear resizing uses torchvision (half-pixel centres, no antialiasing, like ``cv2.resize``
  with INTER_LINEAR, which mmcv calls); OpenCV's uint8 path rounds differently, so about a quarter
  of the pixels differ by 1 (never more, against opencv-python 4.10). Nearest resizing of labels uses the same source pixel as INTER_NEAREST.
- The HSV conversions reproduce OpenCV's 8-bit ones bit for bit (H in 0..179, fixed-point
  RGB -> HSV, float32 HSV -> RGB truncated), checked against opencv-python 4.10 on every colour;
  torchvision's ``adjust_saturation`` (blend with grey) and ``adjust_hue`` (float HSV) are
  different operations and are not used.
- mmseg pads in the data preprocessor, after normalising, with 0: padded pixels become the mean
  colour. `TrainPipeline` pads last, in uint8, with the mean colour rounded (`MEAN_PAD`), which
  normalises to within 0.006 of 0; `RandomCropCatMax(pad=True)` on its own pads with ``pad_value``
  (0 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

IGNORE_INDEX = 255
# The data preprocessor's mean (RGB), rounded: uint8 padding that normalises to (almost) 0.
MEAN_PAD = (124, 116, 104)


def official_scales(crop: int) -> tuple[int, ...]:
    """Shortest-edge choices of the official configs: int(crop * x) for x = 0.5, 0.6, ..., 2.0."""
    return tuple(int(crop * x * 0.1) for x in range(5, 21))


SCALES_512 = official_scales(512)  # 256, 307, ..., 1024
SCALES_1024 = official_scales(1024)  # 512, 614, ..., 2048


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """Like numpy's ``randint(low, high)``: an integer in [low, high)."""
    return int(torch.randint(low, high, (1,), generator=generator))


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def _check(image: torch.Tensor, label: torch.Tensor) -> None:
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] < 1:
        raise ValueError(
            f"expected a uint8 [C, H, W] image, got {image.dtype} {tuple(image.shape)}"
        )
    if label.dtype != torch.uint8 or label.shape != image.shape[1:]:
        raise ValueError(
            f"expected a uint8 [H, W] label matching the image {tuple(image.shape[1:])}, "
            f"got {label.dtype} {tuple(label.shape)}"
        )


def shortest_edge_size(height: int, width: int, short: int, max_size: int) -> tuple[int, int]:
    """(h, w) after mmseg's ``ResizeShortestEdge`` followed by mmcv's keep-ratio rescale.

    The short edge becomes ``short`` unless the long edge would then exceed ``max_size``, in which
    case the long edge becomes ``max_size``. mmseg rounds that target, and ``imrescale`` then
    recomputes one factor from it and rounds again; both roundings are reproduced.
    """
    factor = short / min(height, width)
    new_h, new_w = height * factor, width * factor
    if height < width:
        new_h = short
    else:
        new_w = short
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    target_h, target_w = int(new_h + 0.5), int(new_w + 0.5)
    factor = min(
        max(target_h, target_w) / max(height, width), min(target_h, target_w) / min(height, width)
    )
    return int(height * factor + 0.5), int(width * factor + 0.5)


def resize_pair(
    image: torch.Tensor, label: torch.Tensor, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image bilinear (no antialiasing, as cv2), label nearest (cv2 INTER_NEAREST's pixel)."""
    if tuple(image.shape[1:]) == tuple(size):
        return image, label
    image = TF.resize(image, list(size), interpolation=InterpolationMode.BILINEAR, antialias=False)
    label = TF.resize(label[None], list(size), interpolation=InterpolationMode.NEAREST)[0]
    return image, label


def pad_pair(
    image: torch.Tensor,
    label: torch.Tensor,
    size: tuple[int, int],
    pad_value: int | Sequence[int] = 0,
    label_pad_value: int = IGNORE_INDEX,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad at the bottom and right (as mmseg's ``stack_batch``) to at least ``size`` (h, w)."""
    height, width = image.shape[1:]
    out_h, out_w = max(height, size[0]), max(width, size[1])
    if (out_h, out_w) == (height, width):
        return image, label
    channels = image.shape[0]
    fill = torch.as_tensor(pad_value, dtype=torch.uint8).reshape(-1, 1, 1)
    if fill.shape[0] != channels:  # one value for every band (or the first one's, repeated)
        fill = fill[:1]
    padded = fill.expand(channels, out_h, out_w).clone()
    padded[:, :height, :width] = image
    padded_label = torch.full((out_h, out_w), label_pad_value, dtype=torch.uint8)
    padded_label[:height, :width] = label
    return padded, padded_label


class RandomShortestEdgeResize:
    """mmseg ``RandomChoiceResize(resize_type='ResizeShortestEdge')``.

    Draws a short-edge length uniformly from ``scales`` and resizes keeping the aspect ratio; the
    long edge never exceeds ``max_size``. Image bilinear without antialiasing (mmcv uses
    ``cv2.resize`` INTER_LINEAR, which does not antialias), label nearest.
    """

    def __init__(self, scales: Sequence[int], max_size: int) -> None:
        if not scales:
            raise ValueError("scales must not be empty")
        self.scales = tuple(int(s) for s in scales)
        self.max_size = int(max_size)

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        short = self.scales[_randint(generator, 0, len(self.scales))]
        size = shortest_edge_size(image.shape[1], image.shape[2], short, self.max_size)
        return resize_pair(image, label, size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scales={self.scales}, max_size={self.max_size})"


class RandomCropCatMax:
    """mmseg ``RandomCrop(crop_size, cat_max_ratio)``.

    A crop window is drawn uniformly; while the most frequent class (ignoring ``ignore_index``)
    covers ``cat_max_ratio`` or more of the labelled pixels, or fewer than two classes are present,
    another window is drawn, at most ``tries`` times. As in mmseg, the window drawn after the last
    failed check is used without checking (``tries + 1`` draws at most).

    An image smaller than the crop gives a smaller crop (the whole of that side). mmseg pads such
    crops in its data preprocessor, after flip and photometric distortion; with ``pad=True`` (the
    default) this transform pads right away, at the bottom and right, with ``pad_value`` (image)
    and ``ignore_index`` (label). `TrainPipeline` uses ``pad=False`` and pads last, as mmseg.
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        cat_max_ratio: float = 0.75,
        ignore_index: int = IGNORE_INDEX,
        tries: int = 10,
        pad: bool = True,
        pad_value: int | Sequence[int] = 0,
    ) -> None:
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_index = int(ignore_index)
        self.tries = int(tries)
        self.pad = pad
        self.pad_value = pad_value

    def _window(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int]:
        y = _randint(generator, 0, max(height - self.size[0], 0) + 1)
        x = _randint(generator, 0, max(width - self.size[1], 0) + 1)
        return y, x

    def acceptable(self, crop: torch.Tensor) -> bool:
        """mmseg's rule: at least two labelled classes, the largest below ``cat_max_ratio``."""
        counts = torch.bincount(crop.reshape(-1).long(), minlength=256)
        if 0 <= self.ignore_index < counts.numel():
            counts[self.ignore_index] = 0
        counts = counts[counts > 0]
        return len(counts) > 1 and float(counts.max()) / float(counts.sum()) < self.cat_max_ratio

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = label.shape
        crop_h, crop_w = self.size
        y, x = self._window(height, width, generator)
        if self.cat_max_ratio < 1.0:
            for _ in range(self.tries):
                if self.acceptable(label[y : y + crop_h, x : x + crop_w]):
                    break
                y, x = self._window(height, width, generator)
        image = image[:, y : y + crop_h, x : x + crop_w]
        label = label[y : y + crop_h, x : x + crop_w]
        if self.pad:
            image, label = pad_pair(image, label, self.size, self.pad_value, self.ignore_index)
        return image.contiguous(), label.contiguous()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, cat_max_ratio={self.cat_max_ratio})"


class RandomHorizontalFlip:
    """mmseg ``RandomFlip(prob=p, direction='horizontal')``: image and label together."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = float(p)

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if float(torch.rand((), generator=generator, dtype=torch.float64)) < self.p:
            return image.flip(-1), label.flip(-1)
        return image, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


# OpenCV's 8-bit HSV conversions (color_hsv.simd.hpp), H in 0..179 (2 degrees per step).
_HSV_SHIFT = 12
_STEPS = torch.arange(256, dtype=torch.float64)
_SDIV = torch.where(_STEPS > 0, torch.round((255 << _HSV_SHIFT) / _STEPS.clamp(min=1)), 0).int()
_HDIV = torch.where(
    _STEPS > 0, torch.round((180 << _HSV_SHIFT) / (6 * _STEPS.clamp(min=1))), 0
).int()
# sector -> which of (v, v(1-s), v(1-s f), v(1-s(1-f))) each of r, g, b takes (OpenCV sector_data)
_SECTOR_R = torch.tensor([0, 2, 1, 1, 3, 0])
_SECTOR_G = torch.tensor([3, 0, 0, 2, 1, 1])
_SECTOR_B = torch.tensor([1, 1, 3, 0, 0, 2])


def rgb_to_hsv_cv2(image: torch.Tensor) -> torch.Tensor:
    """uint8 [3, H, W] RGB -> uint8 HSV as ``cv2.cvtColor(.., COLOR_RGB2HSV)`` (H 0..179)."""
    r, g, b = image.int().unbind(0)  # int32 is enough: products stay below 2**29
    v = torch.maximum(torch.maximum(r, g), b)
    diff = v - torch.minimum(torch.minimum(r, g), b)
    half = 1 << (_HSV_SHIFT - 1)
    s = (diff * _SDIV[v] + half) >> _HSV_SHIFT
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _HDIV[diff] + half) >> _HSV_SHIFT
    h = torch.where(h < 0, h + 180, h)
    return torch.stack([h, s, v]).to(torch.uint8)


def hsv_to_rgb_cv2(hsv: torch.Tensor) -> torch.Tensor:
    """uint8 [3, H, W] HSV (H 0..179) -> uint8 RGB as ``cv2.cvtColor(.., COLOR_HSV2RGB)``.

    Bit-exact with OpenCV's vectorised 8-bit path (opencv-python 4.10, x86-64): float32 maths,
    ``1 - s * f`` as one fused multiply-add, and truncation (not rounding) back to uint8.
    """
    h = hsv[0].float() * (6.0 / 180.0)
    s = hsv[1].float() * (1.0 / 255.0)
    v = hsv[2].float() * (1.0 / 255.0)
    sector = h.trunc()
    f = h - sector
    tab = torch.stack(
        [v, v * (1 - s), v * _one_minus_product(s, f), v * _one_minus_product(s, 1 - f)]
    )
    index = sector.long()[None]
    rgb = torch.cat([tab.gather(0, table[index]) for table in (_SECTOR_R, _SECTOR_G, _SECTOR_B)])
    return (rgb * 255.0).trunc().clamp(0, 255).to(torch.uint8)


def _one_minus_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """float32 ``1 - a * b`` rounded once, as a fused multiply-add (the float64 product is exact)."""
    return (1.0 - a.double() * b.double()).float()


def _convert(values: torch.Tensor, alpha: float = 1.0, beta: float = 0.0) -> torch.Tensor:
    """mmseg's ``convert``: float32 ``x * alpha + beta``, clipped to 0..255, truncated to uint8."""
    return (values.float() * alpha + beta).clamp(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class PhotoMetricParams:
    """One draw of `PhotoMetricDistortion`; ``None`` means the step is skipped."""

    brightness: float | None
    contrast_first: bool
    contrast: float | None
    saturation: float | None
    hue: int | None


class PhotoMetricDistortion:
    """mmseg ``PhotoMetricDistortion`` with its defaults, on the uint8 image; the label is untouched.

    Brightness (add ±``brightness_delta``), then, in random order (``mode``), contrast (multiply by
    0.5..1.5) before or after saturation (S channel times 0.5..1.5) and hue (H + an integer in
    [-hue_delta, hue_delta), numpy's half-open ``randint``, in OpenCV's 0..179 units); each step
    applies with probability 0.5 and every step clips to 0..255 and truncates to uint8, as mmseg.
    Saturation and hue each convert to HSV and back (OpenCV's 8-bit conversions, see
    `rgb_to_hsv_cv2`). mmseg works on the BGR array and converts with BGR2HSV; with the channels
    in file order here and RGB2HSV the result is the same.
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: int = 18,
    ) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_range = (float(contrast_range[0]), float(contrast_range[1]))
        self.saturation_range = (float(saturation_range[0]), float(saturation_range[1]))
        self.hue_delta = int(hue_delta)

    def sample(self, generator: torch.Generator) -> PhotoMetricParams:
        """The random draws, in mmseg's order."""

        def coin() -> bool:
            return _randint(generator, 0, 2) == 1

        brightness = (
            _uniform(generator, -self.brightness_delta, self.brightness_delta) if coin() else None
        )
        contrast_first = coin()
        contrast = None
        if contrast_first and coin():
            contrast = _uniform(generator, *self.contrast_range)
        saturation = _uniform(generator, *self.saturation_range) if coin() else None
        hue = _randint(generator, -self.hue_delta, self.hue_delta) if coin() else None
        if not contrast_first and coin():
            contrast = _uniform(generator, *self.contrast_range)
        return PhotoMetricParams(brightness, contrast_first, contrast, saturation, hue)

    @staticmethod
    def apply(image: torch.Tensor, params: PhotoMetricParams) -> torch.Tensor:
        if params.brightness is not None:
            image = _convert(image, beta=params.brightness)
        if params.contrast_first and params.contrast is not None:
            image = _convert(image, alpha=params.contrast)
        # Saturation and hue act on the first three bands (the colour ones); images of fewer
        # bands have no colour to change. Brightness and contrast act on every band.
        colour = image.shape[0] >= 3
        if params.saturation is not None and colour:
            hsv = rgb_to_hsv_cv2(image[:3])
            hsv[1] = _convert(hsv[1], alpha=params.saturation)
            image = torch.cat((hsv_to_rgb_cv2(hsv), image[3:]))
        if params.hue is not None and colour:
            hsv = rgb_to_hsv_cv2(image[:3])
            hsv[0] = torch.remainder(hsv[0].long() + params.hue, 180).to(torch.uint8)
            image = torch.cat((hsv_to_rgb_cv2(hsv), image[3:]))
        if not params.contrast_first and params.contrast is not None:
            image = _convert(image, alpha=params.contrast)
        return image

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.apply(image, self.sample(generator)), label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(brightness_delta={self.brightness_delta}, "
            f"contrast_range={self.contrast_range}, saturation_range={self.saturation_range}, "
            f"hue_delta={self.hue_delta})"
        )


class TrainPipeline:
    """The official train pipeline: resize, cat-max crop, flip, photometric distortion, pad.

    Output: image uint8 ``[3, crop, crop]``, label uint8 ``[crop, crop]`` (padded with
    ``pad_value`` / 255 at the bottom and right where the resized image is smaller than the crop).
    Small pipelines for tests and demos: ``TrainPipeline(crop=64, scales=(64, 80, 96),
    max_size=256)``.
    """

    def __init__(
        self,
        crop: int | tuple[int, int],
        scales: Sequence[int] | None,
        max_size: int,
        cat_max_ratio: float = 0.75,
        flip_prob: float = 0.5,
        photometric: bool = True,
        pad_value: int | Sequence[int] = MEAN_PAD,
    ) -> None:
        self.crop = (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[1]))
        self.pad_value = pad_value
        # scales=None: the input is already at its training scale (windows of large scenes).
        resize = [RandomShortestEdgeResize(scales, max_size)] if scales is not None else []
        self.steps: list = [
            *resize,
            RandomCropCatMax(self.crop, cat_max_ratio, pad=False),
            RandomHorizontalFlip(flip_prob),
        ]
        if photometric:
            self.steps.append(PhotoMetricDistortion())

    def __call__(
        self, image: torch.Tensor, label: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check(image, label)
        for step in self.steps:
            image, label = step(image, label, generator)
        return pad_pair(image, label, self.crop, self.pad_value)

    def __repr__(self) -> str:
        steps = ", ".join(map(repr, self.steps))
        return f"{type(self).__name__}([{steps}], pad to {self.crop} with {self.pad_value})"


def pipeline_512(**kwargs) -> TrainPipeline:
    """The 512 config: short edge from 256..1024, long edge at most 2048, 512 crops."""
    return TrainPipeline(crop=512, scales=SCALES_512, max_size=2048, **kwargs)


def pipeline_1024(**kwargs) -> TrainPipeline:
    """The 1024 config: short edge from 512..2048, long edge at most 4096, 1024 crops."""
    return TrainPipeline(crop=1024, scales=SCALES_1024, max_size=4096, **kwargs)

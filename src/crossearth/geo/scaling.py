"""Turn pixels of any type into the model's 8-bit input by one documented, deterministic rule.

The models were trained on 8-bit images, so every selected band is mapped to 0..255:

    out = round(clip((x - low) / (high - low), 0, 1) * 255)

computed in float64 per band, rounding to the nearest integer (ties to even, as `numpy.rint`).
Values below `low` become 0 and values above `high` become 255: they are *clipped*, and the run
summary reports the share of valid values that were clipped (`Scaling.clipped_count`). A band
whose `high <= low` (e.g. a constant band) maps to 0 everywhere; NaN maps to 0.

A band whose file records a scale and an offset other than 1 and 0 (GDAL's band scale/offset:
a GeoTIFF's, a NetCDF variable's `scale_factor`/`add_offset`, or a STAC item's, see
`crossearth.geo.stac`) first has its values turned into `x * scale + offset` (float64), as
`gdal_translate -unscale` does; `low`, `high`, percentiles and `--scale` ranges are in those
units (e.g. reflectance `--scale 0,0.3` for Sentinel-2 digital numbers with scale 0.0001). The
nodata value (the file's or `--nodata`) is compared with the values as stored, before scaling.

How `low` and `high` are chosen is set by `--scale` (`parse_scale`):

- `auto` (default): 8-bit (uint8) data is used as is (identity, no arithmetic); any other pixel
  type is stretched between the per-band 2nd and 98th percentiles.
- `none`: use the values as they are; only 8-bit data is accepted (`check_spec_for_dtype`).
- `pLO,pHI`, e.g. `p1,p99`: stretch between the per-band LO-th and HI-th percentiles.
- `MIN,MAX`, e.g. `0,10000`: the same explicit range for every band.
- `MIN,MAX;MIN,MAX;...`: one explicit range per selected band, in model order (three for
  an RGB model, N for a model of N bands).

Percentiles (`estimate_scaling`) are computed once per file, not per tile, so tiles of one
file share one mapping and show no seams. The selected bands are read decimated to at most
`sample_size` pixels on the long side with nearest-neighbour sampling (GDAL serves the read from
overviews when the file has them), together with the dataset mask read the same way. Pixels the
mask marks invalid, values equal to the band's nodata value, NaN and infinities are left out;
the percentiles of the remaining values are computed with `numpy.percentile` (linear
interpolation). A band without any valid value gets `low = high = 0`, i.e. it maps to 0. The
same file always gives the same mapping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.io
from rasterio.enums import Resampling

from crossearth.advice import OPTIONS, Advice
from crossearth.errors import InputError
from crossearth.geo.bands import alpha_bands

NBANDS_MODEL = 3
DEFAULT_PERCENTILES = (2.0, 98.0)

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR_RE = re.compile(rf"^\s*({_NUMBER})\s*,\s*({_NUMBER})\s*$")
_PERCENTILE_RE = re.compile(rf"^\s*[pP]\s*({_NUMBER})\s*,\s*[pP]\s*({_NUMBER})\s*$")

_ACCEPTED_FORMS = (
    "'auto' (8-bit data as is, other pixel types stretched between per-band percentiles 2 and 98), "
    "'none' (values as they are; 8-bit data only), "
    "'pLO,pHI' (per-band percentiles, e.g. 'p1,p99'), "
    "'MIN,MAX' (one range for all bands, e.g. '0,10000'), or "
    "'MIN,MAX;MIN,MAX;MIN,MAX' (one range per selected band, e.g. '0,3000;0,3000;0,2500')"
)


@dataclass(frozen=True)
class Scaling:
    """A per-band linear map from pixel values to 0..255: `low` -> 0, `high` -> 255, clipped."""

    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        low = tuple(float(v) for v in self.low)
        high = tuple(float(v) for v in self.high)
        if len(low) != len(high) or not low:
            raise ValueError(f"Scaling needs one low and one high per band, got {low} and {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def identity(cls, nbands: int) -> Scaling:
        """The map that leaves 8-bit data unchanged (low 0, high 255 for every band)."""
        return cls((0.0,) * nbands, (255.0,) * nbands)

    @property
    def nbands(self) -> int:
        return len(self.low)

    @property
    def is_identity(self) -> bool:
        return all(lo == 0.0 for lo in self.low) and all(hi == 255.0 for hi in self.high)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Map H x W x B pixels of any dtype to uint8 by the module's rule.

        The identity map on uint8 input returns `pixels` itself (no copy, no float math).
        """
        if pixels.ndim != 3 or pixels.shape[2] != self.nbands:
            raise ValueError(
                f"expected H x W x {self.nbands} pixels, got shape {tuple(pixels.shape)}"
            )
        if pixels.dtype == np.uint8 and self.is_identity:
            return pixels
        out = np.empty(pixels.shape, dtype=np.uint8)
        for b, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)):
            if not hi > lo:  # constant band (or inverted range): nothing to stretch
                out[..., b] = 0
                continue
            x = pixels[..., b].astype(np.float64)
            t = np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 255.0
            np.rint(t, out=t)
            np.nan_to_num(t, copy=False, nan=0.0)
            out[..., b] = t.astype(np.uint8)
        return out

    def clipped_count(
        self, pixels: np.ndarray, valid_mask: np.ndarray | None = None
    ) -> tuple[int, int]:
        """Count (values outside [low, high], values considered) over the valid pixels.

        Counts per band value, so a pixel with two clipped bands counts twice out of B. NaN and
        masked pixels (`valid_mask` false or 0, H x W) are not considered. Summing the pairs over
        tiles gives the file's clipped fraction.
        """
        if pixels.ndim != 3 or pixels.shape[2] != self.nbands:
            raise ValueError(
                f"expected H x W x {self.nbands} pixels, got shape {tuple(pixels.shape)}"
            )
        if pixels.dtype == np.uint8 and self.is_identity:
            clipped = 0
            considered = (
                pixels.shape[0] * pixels.shape[1]
                if valid_mask is None
                else int(np.count_nonzero(valid_mask))
            ) * self.nbands
            return clipped, considered
        valid = None if valid_mask is None else np.asarray(valid_mask).astype(bool)
        clipped = considered = 0
        for b, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)):
            x = pixels[..., b]
            if valid is not None:
                x = x[valid]
            if np.issubdtype(x.dtype, np.floating):
                x = x[~np.isnan(x)]
            considered += int(x.size)
            clipped += int(np.count_nonzero((x < lo) | (x > hi)))
        return clipped, considered

    def clipped_fraction(self, pixels: np.ndarray, valid_mask: np.ndarray | None = None) -> float:
        """Share (0..1) of valid pixel values outside [low, high]; 0.0 when nothing is valid."""
        clipped, considered = self.clipped_count(pixels, valid_mask)
        return clipped / considered if considered else 0.0

    def describe(self) -> str:
        """One line for the run summary, e.g. 'identity' or 'band ranges 0-3000, 0-3000, 0-2500'."""
        if self.is_identity:
            return "identity (8-bit values as is)"
        ranges = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in zip(self.low, self.high, strict=True))
        return f"linear stretch to 0-255 from band ranges {ranges}"


@dataclass(frozen=True)
class ScaleSpec:
    """What `--scale` asked for; `estimate_scaling` turns it into a `Scaling` for one file.

    `mode` is "auto", "none", "percentile" or "range". `percentiles` is (lo, hi) for "auto"
    and "percentile"; `ranges` holds one (min, max) for all bands or one per selected band.
    """

    mode: str
    percentiles: tuple[float, float] | None = None
    ranges: tuple[tuple[float, float], ...] | None = None

    def describe(self) -> str:
        """How the spec reads back to the user, in `--scale` syntax."""
        if self.mode in ("auto", "none"):
            return self.mode
        if self.mode == "percentile" and self.percentiles is not None:
            lo, hi = self.percentiles
            return f"p{lo:g},p{hi:g}"
        assert self.ranges is not None
        return ";".join(f"{lo:g},{hi:g}" for lo, hi in self.ranges)


def parse_scale(text: str | None, advice: Advice = OPTIONS) -> ScaleSpec:
    """Parse a `--scale` value (see the module docstring); bad text raises InputError naming the
    setting as `advice` does (`--scale`, or `scale:` in a data set file)."""
    lead = advice.scale or "scale"
    if text is None:
        return ScaleSpec("auto", percentiles=DEFAULT_PERCENTILES)
    word = text.strip().lower()
    if word == "auto":
        return ScaleSpec("auto", percentiles=DEFAULT_PERCENTILES)
    if word == "none":
        return ScaleSpec("none")

    match = _PERCENTILE_RE.match(text)
    if match:
        lo, hi = (_finite(v, text, lead) for v in match.groups())
        if not 0.0 <= lo < hi <= 100.0:
            raise InputError(
                f"{lead} {text!r}: percentiles must satisfy 0 <= LO < HI <= 100, e.g. 'p2,p98'"
            )
        return ScaleSpec("percentile", percentiles=(lo, hi))

    groups = text.split(";")
    ranges = []
    for group in groups:
        pair = _PAIR_RE.match(group)
        if not pair:
            raise InputError(f"{lead} {text!r} is not understood; use {_ACCEPTED_FORMS}")
        lo, hi = (_finite(v, text, lead) for v in pair.groups())
        if not hi > lo:
            raise InputError(
                f"{lead} {text!r}: the range {group.strip()!r} needs MIN < MAX "
                f"(MIN maps to 0, MAX to 255)"
            )
        ranges.append((lo, hi))
    # One range for all bands, or one per selected band (checked against the band count when
    # the bands are known: `estimate_scaling`).
    return ScaleSpec("range", ranges=tuple(ranges))


def _finite(value: str, text: str, lead: str = "--scale") -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{lead} {text!r}: {value!r} is not a finite number")
    return number


def check_spec_for_dtype(
    spec: ScaleSpec,
    dtype: np.dtype | str | Sequence[np.dtype | str],
    advice: Advice = OPTIONS,
) -> None:
    """Refuse a spec that cannot handle the pixel type(s), e.g. `--scale none` on 16-bit data;
    the InputError names the fix as `advice` does (`--scale auto`, `scale: auto` in a file)."""
    dtypes = [np.dtype(d) for d in ([dtype] if isinstance(dtype, (str, np.dtype)) else dtype)]
    for dt in dtypes:
        if np.issubdtype(dt, np.complexfloating) or dt.kind not in "uif":
            raise InputError(
                f"pixel type {dt.name} is not supported; the image must hold real numbers "
                f"(integer or floating-point bands)"
            )
    if spec.mode == "none":
        odd = sorted({dt.name for dt in dtypes if dt != np.uint8})
        if odd:
            fix = (
                f"Use {advice.set_scale('auto')} (per-band 2-98 percentile stretch), "
                f"{advice.set_scale('p1,p99')}, or an explicit range such as "
                f"{advice.set_scale('0,10000')}"
                if advice.scale
                else "Give 8-bit images"
            )
            raise InputError(
                f"{advice.scale or 'scale'} none uses pixel values as they are, which only works "
                f"for 8-bit (uint8) images, but this image is {', '.join(odd)}. {fix}"
            )


#: Per selected band, the (scale, offset) a file records for it; None when all are (1, 0).
ValueTransform = tuple[tuple[float, float], ...] | None


def value_transform(dataset: rasterio.io.DatasetReader, bands: Sequence[int]) -> ValueTransform:
    """Per band of the 1-based `bands`, the (scale, offset) GDAL reports for it (its
    `GetScale`/`GetOffset`; unset is 1 and 0), or None when every one is (1.0, 0.0)."""
    scales = dataset.scales or (1.0,) * dataset.count
    offsets = dataset.offsets or (0.0,) * dataset.count
    pairs = tuple(
        (
            1.0 if scales[b - 1] is None else float(scales[b - 1]),
            0.0 if offsets[b - 1] is None else float(offsets[b - 1]),
        )
        for b in bands
    )
    return None if all(p == (1.0, 0.0) for p in pairs) else pairs


def unscale(data: np.ndarray, transform: ValueTransform) -> np.ndarray:
    """`data` [B, ...] (one plane per selected band) as `x * scale + offset` per band, float64;
    `data` itself when `transform` is None."""
    if transform is None:
        return data
    scale = np.array([s for s, _ in transform], np.float64).reshape(-1, *(1,) * (data.ndim - 1))
    offset = np.array([o for _, o in transform], np.float64).reshape(scale.shape)
    return data.astype(np.float64) * scale + offset


def describe_transform(transform: ValueTransform) -> str:
    """The value transform for a summary, e.g. 'x * 0.0001 + -0.1 per band' (or '' for none)."""
    if transform is None:
        return ""
    if len(set(transform)) == 1:
        scale, offset = transform[0]
        return f"values x * {scale:g} + {offset:g} (the file's scale and offset)"
    each = ", ".join(f"x * {s:g} + {o:g}" for s, o in transform)
    return f"values {each} per band (the file's scales and offsets)"


# `--nodata`: None keeps the file's nodata value, "none" ignores it, a number replaces it.
NodataOverride = float | str | None


def parse_nodata(text: str | float | None) -> NodataOverride:
    """`--nodata VALUE|none` as GDAL tools take it. Raises InputError for anything else."""
    if text is None or isinstance(text, float | int):
        return None if text is None else float(text)
    if text.strip().lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--nodata takes a number or none, got {text!r}") from None
    return value


def file_mask(
    dataset: rasterio.io.DatasetReader,
    bands: Sequence[int],
    nodata: NodataOverride,
    *,
    window=None,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Validity [h, w] bool from the file: GDAL's dataset mask (nodata value, internal mask), or
    with a `nodata` override only an internal mask, then the override's value where every chosen
    band equals it (GDAL's rule: a pixel is nodata when all bands are)."""
    kwargs = {"window": window} if out_shape is None else {
        "out_shape": out_shape, "resampling": Resampling.nearest
    }  # fmt: skip
    if nodata is None:
        return dataset.dataset_mask(**kwargs) > 0
    from rasterio.enums import MaskFlags

    flags = dataset.mask_flag_enums[bands[0] - 1]
    if MaskFlags.per_dataset in flags and MaskFlags.nodata not in flags:
        valid = dataset.dataset_mask(**kwargs) > 0  # an internal mask stays a mask
    else:
        shape = out_shape if out_shape is not None else (int(window.height), int(window.width))
        valid = np.ones(shape, bool)
    if nodata != "none":
        unique = sorted(set(bands))
        read = {"window": window} if out_shape is None else {
            "out_shape": (len(unique), *out_shape), "resampling": Resampling.nearest
        }  # fmt: skip
        data = dataset.read(unique, **read)
        same = np.isnan(data) if math.isnan(nodata) else data == nodata
        valid &= ~same.all(axis=0)
    return valid


def estimate_scaling(
    dataset: rasterio.io.DatasetReader,
    bands: tuple[int, ...],
    spec: ScaleSpec,
    *,
    sample_size: int = 1024,
    nodata: NodataOverride = None,
    advice: Advice = OPTIONS,
) -> Scaling:
    """The `Scaling` for the selected (1-based) `bands` of `dataset` under `spec`.

    `nodata` overrides the file's nodata value (see `NodataOverride`); `advice` names the
    scaling setting in errors (`crossearth.advice`).

    Percentiles come from one decimated, masked read of the whole file (module docstring), so
    the result is deterministic and shared by all tiles of the file.
    """
    bands = tuple(int(b) for b in bands)
    dtypes = [dataset.dtypes[b - 1] for b in bands]
    transform = value_transform(dataset, bands)
    if transform is not None:  # values are x * scale + offset: real numbers, not 8-bit
        check_spec_for_dtype(ScaleSpec("auto"), dtypes, advice)
        if spec.mode == "none":
            raise InputError(
                f"--scale none uses pixel values as they are, which only works for 8-bit "
                f"values, but the image's bands record a scale and offset "
                f"({describe_transform(transform)}). Pass --scale auto (per-band 2-98 "
                f"percentile stretch), --scale p1,p99, or a range in those units"
            )
        dtypes = ["float64" if t != (1.0, 0.0) else d for d, t in zip(dtypes, transform,
                                                                        strict=True)]  # fmt: skip
    check_spec_for_dtype(spec, dtypes, advice)
    nb = len(bands)
    all_uint8 = all(np.dtype(d) == np.uint8 for d in dtypes)

    if spec.mode == "none" or (spec.mode == "auto" and all_uint8):
        return Scaling.identity(nb)
    if spec.mode == "range":
        assert spec.ranges is not None
        ranges = spec.ranges
        if len(ranges) == 1:
            ranges = ranges * nb
        if len(ranges) != nb:
            raise InputError(
                f"{advice.scale or 'scale'} {spec.describe()!r} gives {len(spec.ranges)} ranges "
                f"but {nb} bands are "
                f"selected; give one range for all bands or one per selected band"
            )
        return Scaling(tuple(lo for lo, _ in ranges), tuple(hi for _, hi in ranges))
    if spec.mode not in ("auto", "percentile") or spec.percentiles is None:
        raise ValueError(f"unknown scale spec {spec}")

    samples = sample_valid_values(dataset, bands, sample_size=sample_size, nodata=nodata)
    low, high = [], []
    for values in samples:
        if values.size == 0:
            low.append(0.0)
            high.append(0.0)
            continue
        lo, hi = np.percentile(values, spec.percentiles)
        low.append(float(lo))
        high.append(float(hi))
    return Scaling(tuple(low), tuple(high))


def sample_valid_values(
    dataset: rasterio.io.DatasetReader,
    bands: tuple[int, ...],
    *,
    sample_size: int = 1024,
    nodata: NodataOverride = None,
) -> list[np.ndarray]:
    """Per selected band, the valid values (float64, 1-D) of a decimated read of the whole file.

    Decimated to at most `sample_size` pixels on the long side (nearest neighbour); pixels
    masked by the dataset mask or an alpha band, equal to the band's nodata value, NaN or infinite are dropped.
    Values are `x * scale + offset` where the file records a scale or an offset (`unscale`).
    """
    if sample_size < 1:
        raise ValueError(f"sample_size must be >= 1, got {sample_size}")
    height, width = dataset.height, dataset.width
    factor = min(1.0, sample_size / max(height, width))
    out_h = max(1, min(height, round(height * factor)))
    out_w = max(1, min(width, round(width * factor)))

    unique = sorted(set(bands))
    data = dataset.read(
        unique, out_shape=(len(unique), out_h, out_w), resampling=Resampling.nearest
    )
    mask = file_mask(dataset, bands, nodata, out_shape=(out_h, out_w))
    alpha = alpha_bands(dataset)
    if alpha:  # GDAL takes alpha as the mask only for 2- and 4-band files; we always do
        planes = dataset.read(
            alpha, out_shape=(len(alpha), out_h, out_w), resampling=Resampling.nearest
        )
        mask &= (planes > 0).all(axis=0)

    transform = value_transform(dataset, bands)
    samples = []
    for k, b in enumerate(bands):
        values = data[unique.index(b)][mask].astype(np.float64)
        keep = np.isfinite(values)
        value = dataset.nodatavals[b - 1] if nodata is None else nodata
        if isinstance(value, float | int) and not math.isnan(value):
            keep &= values != value  # nodata: the value as stored
        values = values[keep]
        if transform is not None:
            scale, offset = transform[k]
            values = values * scale + offset
            values = values[np.isfinite(values)]
        samples.append(values)
    return samples

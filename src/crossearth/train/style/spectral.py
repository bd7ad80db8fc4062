"""`SpectralStylizer`: Earth-observation style shifts from image statistics, no network needed.

The style of a remote-sensing image is described by 16 numbers, each tied to a physical cause of
domain shift between sensors, places and dates, and each with an operator that changes exactly that
quantity. With `x` the image scaled to 0..1:

1. **Haze** (1 number: optical depth τ). Atmospheric path radiance adds a bright veil and scales
   the ground signal by the transmission t = exp(-τ): `x = J·t + A·(1-t)`, with airlight A (white,
   1.0) and scene radiance J. Following the dark channel prior (He et al. 2009; haze-free surfaces
   always contain some very dark pixels: shadows, water, dense vegetation), t is estimated from the
   dark-channel level d, the `dark_quantile` (1 %) quantile of the per-pixel minimum over the bands:
   t = 1 - d/A. Restyling removes the source's haze and adds the target's. τ is clamped to ≥ 0.
   This mimics differences in aerosol load, humidity and viewing geometry between acquisitions.
2. **Band levels** (3 log-means + 3 log-stds of the dehazed J, per band). Sensor gain/offset and
   radiometric calibration, sun elevation (season, latitude, time of day) and the processing chain
   (stretches, white balance) change per-band brightness and contrast.
3. **Band mixing** (3 numbers: Fisher z = atanh(r) of the cross-band correlations 1-2, 1-3, 2-3).
   Different spectral response functions, band-to-band crosstalk, saturation settings and land
   cover phenology (green-up, senescence) change how strongly the bands co-vary. The bands are
   mixed towards the target with a whitening-colouring transform on the 3 x 3 band covariance (band
   levels and mixing are applied together: the target covariance is `σσᵀ ∘ R`). The target
   correlation matrix is made positive definite (eigenvalues ≥ 1e-4, unit diagonal) and the
   covariances are regularised by `eps` so that flat or grey images do not blow up.
4. **Texture and sharpness** (6 numbers: per band, the slopes of the log-log radially averaged
   Fourier amplitude spectrum over 1/64..1/8 and 1/8..1/2 cycles per pixel). The high-frequency
   slope follows the sensor's MTF, the ground sampling distance versus resampling, motion and
   defocus blur or over-sharpening; the low-frequency slope follows scene scale (field and building
   sizes, i.e. GSD and landscape). Restyling multiplies the amplitude spectrum by a radial gain
   that is linear in log frequency on each range (pivot 1/8, DC kept, phase kept), which changes the
   measured slopes by exactly the requested amount. The spectrum is taken of the periodic component
   of the image (Moisan 2011, periodic plus smooth decomposition) so that the image borders do not
   add a spurious 1/f cross; the smooth component is added back unfiltered.

Restyling applies dehaze → spectrum → band levels and mixing → target haze and clips to 0..255.
When the target is the image's own embedding every step is the identity (up to float rounding).
The steps interact slightly (mixing bands changes their spectra; the target haze is set from the
dehazed image's statistics), so one pass brings an image close to, not exactly onto, the target.
Everything is per image, batched and deterministic; it runs on any device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from crossearth.train.style.base import check_embeddings, check_images, no_grad_fp32

BAND_PAIRS = ((0, 1), (0, 2), (1, 2))
COMPONENT_NAMES = (
    *(f"log_mean_b{i}" for i in (1, 2, 3)),
    *(f"log_std_b{i}" for i in (1, 2, 3)),
    *(f"corr_z_b{i + 1}{j + 1}" for i, j in BAND_PAIRS),
    "haze_tau",
    *(f"slope_low_b{i}" for i in (1, 2, 3)),
    *(f"slope_high_b{i}" for i in (1, 2, 3)),
)
F_LOW, F_MID, F_HIGH = 1 / 64, 1 / 8, 1 / 2  # cycles per pixel
BINS_PER_RANGE = 8
MAX_DARK = 0.95  # the dark-channel level is clamped to this share of the airlight


class SpectralStylizer:
    """Statistics-based stylizer for 3-band imagery; see the module docstring for the components.

    Args:
        dark_quantile: quantile of the per-pixel band minimum taken as the dark-channel level.
        airlight: airlight level A in 0..1 (haze adds `A·(1-t)` to every band).
        max_slope_change: limit on the spectral slope change per restyling (in log-log units).
        corr_limit: correlations are clamped to ±this before the Fisher transform.
        eps: floor for means and stds, and the covariance regulariser (in 0..1 units).
    """

    name = "spectral-v1"
    embedding_dim = len(COMPONENT_NAMES)
    component_names = COMPONENT_NAMES
    min_size = 32

    def __init__(
        self,
        *,
        dark_quantile: float = 0.01,
        airlight: float = 1.0,
        max_slope_change: float = 2.0,
        corr_limit: float = 0.999,
        eps: float = 1e-4,
    ) -> None:
        self.dark_quantile = dark_quantile
        self.airlight = airlight
        self.max_slope_change = max_slope_change
        self.corr_limit = corr_limit
        self.eps = eps
        self._grids: dict[tuple, _FrequencyGrid] = {}

    @no_grad_fp32
    def embed(self, images: Tensor) -> Tensor:
        x = check_images(images, self.min_size) / 255
        return self._analyse(x)[0]

    @no_grad_fp32
    def stylize(self, images: Tensor, embeddings: Tensor) -> Tensor:
        x = check_images(images, self.min_size) / 255
        b, _, h, w = x.shape
        target = check_embeddings(embeddings, b, self.embedding_dim).to(x.device)
        own, trans_s, spectrum, smooth = self._analyse(x)
        grid = self._grid(h, w, x.device)

        # texture / sharpness: radial log-linear gain on the periodic component's spectrum
        delta = (target[:, 10:] - own[:, 10:]).view(b, 2, 3)
        delta = delta.clamp(-self.max_slope_change, self.max_slope_change)[..., None]
        log_gain = delta[:, 0] * grid.low_offset + delta[:, 1] * grid.high_offset  # b, 3, F
        gain = torch.exp(log_gain).view(b, 3, *spectrum.shape[-2:])
        filtered = torch.fft.irfft2(gain * (spectrum - smooth) + smooth, s=(h, w)).flatten(2)
        mean_f, cov_f = _moments(filtered)

        # band levels and mixing: whitening-colouring of the dehazed image J = (x - A(1-t)) / t
        # (on the 3 x 3 band covariance), then the target haze: out = J'·t' + A(1 - t'),
        # all folded into one affine map per image: out = M·x_f + c
        t = target.double()
        mean_t, std_t = t[:, 0:3].exp(), t[:, 3:6].exp()
        corr_t = _correlation_matrix(torch.tanh(t[:, 6:9]))
        cov_t = corr_t * std_t[:, :, None] * std_t[:, None, :]
        trans_s = trans_s.double()[:, None, None]
        trans_t = torch.exp(-t[:, 9].clamp(min=0)).clamp(min=1 - MAX_DARK)[:, None, None]
        eye = torch.eye(3, dtype=torch.float64, device=x.device) * self.eps**2
        whiten = _matrix_power(cov_f / trans_s**2 + eye, -0.5)
        transform = _matrix_power(cov_t + eye, 0.5) @ whiten * (trans_t / trans_s)
        offset = trans_t * mean_t[..., None] - transform @ mean_f[..., None]
        offset = offset + self.airlight * (1 - trans_t)
        out = torch.baddbmm(offset.float(), transform.float(), filtered)
        return (out.clamp(0, 1) * 255).view(b, 3, h, w)

    def _analyse(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Embedding, haze transmission, and the rfft2 of x and of its smooth component."""
        h, w = x.shape[-2:]
        dark = x.amin(1).flatten(1)
        k = max(1, round(self.dark_quantile * dark.shape[1]))
        level = dark.kthvalue(k, dim=1).values.double().clamp(0, MAX_DARK * self.airlight)
        trans = 1 - level / self.airlight

        # statistics of the dehazed image J = (x - A(1-t)) / t, an affine map of x
        mean_x, cov_x = _moments(x.flatten(2))
        mean = (mean_x - self.airlight * (1 - trans[:, None])) / trans[:, None]
        cov = cov_x / trans[:, None, None] ** 2
        std = cov.diagonal(dim1=1, dim2=2).clamp(min=0).sqrt()
        pairs = [
            cov[:, i, j] / (std[:, i] * std[:, j]).clamp(min=self.eps**2) for i, j in BAND_PAIRS
        ]
        corr = torch.stack(pairs, 1).clamp(-self.corr_limit, self.corr_limit)

        # spectral slopes do not depend on the affine dehazing: measure them on x
        spectrum, smooth = _periodic_smooth_spectra(x, self._grid(h, w, x.device))
        grid = self._grid(h, w, x.device)
        amplitude = (spectrum - smooth).abs().flatten(2)  # b, 3, F
        binned = torch.log((amplitude @ grid.bin_weights.T).clamp(min=1e-12))  # b, 3, bins
        slopes = grid.slopes(binned)  # b, 3, 2

        embedding = torch.cat(
            [
                mean.clamp(min=self.eps).log(),
                std.clamp(min=self.eps).log(),
                torch.atanh(corr),
                -torch.log(trans)[:, None],
                slopes[..., 0],
                slopes[..., 1],
            ],
            1,
        ).float()
        return embedding, trans.float(), spectrum, smooth

    def _grid(self, h: int, w: int, device: torch.device) -> _FrequencyGrid:
        key = (h, w, str(device))
        if key not in self._grids:
            if len(self._grids) > 16:
                self._grids.clear()
            self._grids[key] = _FrequencyGrid(h, w, device)
        return self._grids[key]


class _FrequencyGrid:
    """Radial log-frequency bins of an rfft2 grid, and the per-frequency pivot offsets."""

    def __init__(self, h: int, w: int, device: torch.device) -> None:
        fy = torch.fft.fftfreq(h, dtype=torch.float64)
        fx = torch.fft.rfftfreq(w, dtype=torch.float64)
        freq = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).flatten()
        f_low = max(F_LOW, 2 / min(h, w))
        edges = torch.cat(
            [
                torch.logspace(math.log10(f_low), math.log10(F_MID), BINS_PER_RANGE + 1)[:-1],
                torch.logspace(math.log10(F_MID), math.log10(F_HIGH), BINS_PER_RANGE + 1),
            ]
        ).double()
        centres = (edges[:-1].log() + edges[1:].log()) / 2
        nbins = centres.numel()
        index = (torch.bucketize(freq, edges, right=True) - 1).clamp(max=nbins - 1)
        index[freq > F_HIGH] = -1
        # rfft stores one half of the plane: the other columns stand for two coefficients
        col = torch.full((w // 2 + 1,), 2.0, dtype=torch.float64)
        col[0] = 1.0
        if w % 2 == 0:
            col[-1] = 1.0
        weight = col[None, :].expand(h, -1).flatten()
        inside = index >= 0
        bins = torch.zeros(nbins, freq.numel(), dtype=torch.float64)
        bins[index[inside], inside.nonzero().squeeze(1)] = weight[inside]
        counts = bins.sum(1)
        self.bin_weights = (bins / counts.clamp(min=1e-12)[:, None]).float().to(device)
        filled = (counts > 0).double()
        self.fit_weights = torch.stack([filled[:BINS_PER_RANGE], filled[BINS_PER_RANGE:]]).to(
            device
        )
        self.centres = torch.stack([centres[:BINS_PER_RANGE], centres[BINS_PER_RANGE:]]).to(device)

        # the gain of a frequency uses its bin's centre, so measured slopes shift exactly
        nearest = index.clone()
        nearest[(index < 0) & (freq <= f_low)] = 0
        nearest[(index < 0) & (freq > F_HIGH)] = nbins - 1
        offset = centres[nearest] - math.log(F_MID)
        offset[0] = 0.0  # DC: the mean is kept
        low = nearest < BINS_PER_RANGE
        self.low_offset = torch.where(low, offset, 0.0).float().to(device)
        self.high_offset = torch.where(low, 0.0, offset).float().to(device)

        # Moisan's smooth component: factors of the border jumps' spectrum and 1 / Laplacian
        q = torch.arange(h, dtype=torch.float64)[:, None]
        r = torch.arange(w // 2 + 1, dtype=torch.float64)[None, :]
        laplacian = 2 * torch.cos(2 * math.pi * q / h) + 2 * torch.cos(2 * math.pi * r / w) - 4
        laplacian[0, 0] = math.inf  # the smooth component has zero mean
        self.inv_laplacian = (1 / laplacian).float().to(device)
        self.row_factor = (1 - torch.exp(2j * math.pi * q / h)).to(torch.complex64).to(device)
        self.col_factor = (1 - torch.exp(2j * math.pi * r / w)).to(torch.complex64).to(device)

    def slopes(self, log_amplitude: Tensor) -> Tensor:
        """Weighted least-squares slope of log amplitude vs log frequency on each range."""
        y = log_amplitude.double().unflatten(-1, (2, BINS_PER_RANGE))  # ..., range, bin
        wts, x = self.fit_weights, self.centres
        x_bar = (wts * x).sum(-1, keepdim=True) / wts.sum(-1, keepdim=True)
        y_bar = (wts * y).sum(-1, keepdim=True) / wts.sum(-1, keepdim=True)
        num = (wts * (x - x_bar) * (y - y_bar)).sum(-1)
        den = (wts * (x - x_bar) ** 2).sum(-1)
        return num / den


def _periodic_smooth_spectra(u: Tensor, grid: _FrequencyGrid) -> tuple[Tensor, Tensor]:
    """rfft2 of `u` and of its smooth component s (Moisan's decomposition u = p + s).

    s solves the periodic discrete Poisson equation Δs = v, where v holds the jumps across the
    opposite image borders (v = a on the first row, -a on the last, with a = last - first row;
    likewise for the columns); p = u - s is periodic-like, so its spectrum has no border cross.
    v is zero inside, so its spectrum is a sum of two outer products of 1-D FFTs.
    """
    rows = torch.fft.rfft(u[..., -1, :] - u[..., 0, :])  # ..., W/2+1
    cols = torch.fft.fft(u[..., :, -1] - u[..., :, 0])  # ..., H
    jumps = rows[..., None, :] * grid.row_factor + cols[..., :, None] * grid.col_factor
    return torch.fft.rfft2(u), jumps * grid.inv_laplacian


def _moments(flat: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image band means (B x 3) and covariances (B x 3 x 3, float64) of B x 3 x N pixels."""
    mean = flat.mean(2, keepdim=True)
    centred = flat - mean
    cov = (centred @ centred.transpose(1, 2)).double() / flat.shape[-1]
    return mean.squeeze(2).double(), cov


def _correlation_matrix(pairs: Tensor) -> Tensor:
    """3 x 3 correlation matrices from (r12, r13, r23), made positive definite with unit diagonal."""
    b = pairs.shape[0]
    corr = torch.eye(3, dtype=pairs.dtype, device=pairs.device).repeat(b, 1, 1)
    for k, (i, j) in enumerate(BAND_PAIRS):
        corr[:, i, j] = corr[:, j, i] = pairs[:, k]
    vals, vecs = torch.linalg.eigh(corr)
    if bool((vals < 1e-4).any()):
        corr = vecs @ torch.diag_embed(vals.clamp(min=1e-4)) @ vecs.transpose(1, 2)
        d = corr.diagonal(dim1=1, dim2=2).sqrt()
        corr = corr / (d[:, :, None] * d[:, None, :])
    return corr


def _matrix_power(mat: Tensor, power: float) -> Tensor:
    vals, vecs = torch.linalg.eigh(mat)
    return vecs @ torch.diag_embed(vals.clamp(min=1e-30) ** power) @ vecs.transpose(1, 2)

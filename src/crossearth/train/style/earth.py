"""The Earth style distribution: a full-covariance Gaussian over style embeddings.

CrossEarth fits the mean and covariance of the style embeddings of a large remote-sensing corpus
(Million-AID in the paper) and samples new styles from it exactly like Style Augmentation does:

    U, s, _ = svd(cov)          (numpy, float64)
    A = U · diag(√s)            (so that A·Aᵀ = cov), cast to float32
    e = A·z + μ,  z ~ N(0, I)   (z drawn with torch.randn from the caller's generator)

A Cholesky factor would give the same distribution but other samples for the same seed; the SVD
form keeps sample-for-sample parity with the released code.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from crossearth.errors import InputError

FORMAT = "crossearth-earth-style-v1"


class RunningMoments:
    """Streaming mean and covariance (Chan et al.'s pairwise update, float64).

    Each batch's own mean and centred scatter are merged into the running ones, which is exact in
    exact arithmetic and numerically stable (no large raw sums are subtracted).
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.scatter: np.ndarray | None = None

    def update(self, batch: Tensor | np.ndarray) -> None:
        if isinstance(batch, Tensor):
            batch = batch.detach().to("cpu", torch.float64).numpy()
        batch = np.asarray(batch, dtype=np.float64)
        if batch.ndim == 1:
            batch = batch[None]
        if batch.ndim != 2:
            raise InputError(f"embeddings must be N x D, got shape {batch.shape}")
        if batch.shape[0] == 0:
            return
        if not np.isfinite(batch).all():
            raise InputError("embeddings contain NaN or infinite values")
        if self.mean is not None and batch.shape[1] != self.mean.shape[0]:
            raise InputError(
                f"embeddings change size: {batch.shape[1]} after {self.mean.shape[0]} dimensions"
            )
        n_b = batch.shape[0]
        mean_b = batch.mean(axis=0)
        centred = batch - mean_b
        scatter_b = centred.T @ centred
        if self.mean is None:
            self.count, self.mean, self.scatter = n_b, mean_b, scatter_b
            return
        total = self.count + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / total)
        self.scatter = (
            self.scatter + scatter_b + np.outer(delta, delta) * (self.count * n_b / total)
        )
        self.count = total

    def covariance(self) -> np.ndarray:
        """Unbiased (N-1) covariance, like `numpy.cov(rowvar=False)`."""
        if self.count < 2:
            raise InputError(
                f"a covariance needs at least 2 embeddings, got {self.count}; give more images"
            )
        cov = self.scatter / (self.count - 1)
        return (cov + cov.T) / 2


class EarthStyle:
    """A Gaussian N(mean, cov) over style embeddings, sampled as in Style Augmentation.

    `count` is how many embeddings it was fitted on and `stylizer` names the stylizer whose
    embeddings they are (both optional metadata, saved with the statistics).
    """

    def __init__(
        self,
        mean: Tensor | np.ndarray,
        cov: Tensor | np.ndarray,
        *,
        count: int | None = None,
        stylizer: str | None = None,
    ) -> None:
        mean_np = _as_numpy(mean, "mean")
        cov_np = _as_numpy(cov, "covariance")
        if mean_np.ndim != 1 or mean_np.shape[0] < 1:
            raise InputError(f"the style mean must be a vector, got shape {mean_np.shape}")
        dim = mean_np.shape[0]
        if cov_np.shape != (dim, dim):
            raise InputError(
                f"the style covariance must be {dim} x {dim} to match the mean, "
                f"got shape {cov_np.shape}"
            )
        if not (np.isfinite(mean_np).all() and np.isfinite(cov_np).all()):
            raise InputError("the style mean or covariance contains NaN or infinite values")
        scale = max(float(np.abs(cov_np).max()), 1e-300)
        if np.abs(cov_np - cov_np.T).max() > 1e-6 * scale:
            raise InputError("the style covariance is not symmetric")
        u, s, _ = np.linalg.svd(cov_np)
        if np.linalg.eigvalsh(cov_np).min() < -1e-6 * scale:
            raise InputError("the style covariance is not positive semi-definite")
        self.mean = torch.from_numpy(mean_np)
        self.cov = torch.from_numpy(cov_np)
        self.factor = torch.from_numpy((u * np.sqrt(s)[None, :]).astype(np.float32))
        self.count = count
        self.stylizer = stylizer

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def __repr__(self) -> str:
        return f"EarthStyle(dim={self.dim}, count={self.count}, stylizer={self.stylizer!r})"

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """`n` styles `e = A·z + μ` as an `n x D` float32 tensor on the generator's device."""
        if n < 0:
            raise InputError(f"cannot sample {n} styles")
        device = generator.device if generator is not None else torch.device("cpu")
        z = torch.randn(n, self.dim, generator=generator, device=device)
        factor = self.factor.to(device)
        return z @ factor.T + self.mean.to(device, torch.float32)

    @classmethod
    def fit(
        cls, embeddings: Iterable[Tensor | np.ndarray], *, stylizer: str | None = None
    ) -> EarthStyle:
        """Mean and unbiased covariance of all rows of the `N_i x D` batches, streamed."""
        moments = RunningMoments()
        for batch in embeddings:
            moments.update(batch)
        cov = moments.covariance()
        return cls(moments.mean, cov, count=moments.count, stylizer=stylizer)

    def save(self, path: str | Path) -> Path:
        """Write the statistics as an .npz (written to `path` as given, no suffix added)."""
        path = Path(path)
        arrays = {
            "format": np.array(FORMAT),
            "mean": self.mean.numpy(),
            "covariance": self.cov.numpy(),
            "count": np.array(-1 if self.count is None else self.count, dtype=np.int64),
            "stylizer": np.array(self.stylizer or ""),
        }
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path, dim: int | None = None) -> EarthStyle:
        """Read an .npz written by `save`, or the mean/covariance pair of a Style Augmentation
        `checkpoint_embeddings.pth` (its Painter-by-Numbers distribution). `dim` checks the size."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"earth style file not found: {path}")
        if path.suffix.lower() in (".pth", ".pt"):
            from crossearth.train.style.neural import load_style_embeddings

            stats = load_style_embeddings(path)
            if stats.pbn is None:
                raise InputError(f"{path} holds no style mean and covariance")
            style = stats.pbn
        else:
            style = cls._load_npz(path)
        if dim is not None and style.dim != dim:
            raise InputError(
                f"{path} describes {style.dim}-d styles, but the stylizer embeds into {dim} "
                "dimensions; fit the earth style with the same stylizer"
            )
        return style

    @classmethod
    def _load_npz(cls, path: Path) -> EarthStyle:
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError(f"{path} is a single array, not an earth style .npz file")
            with data:
                missing = {"mean", "covariance"} - set(data.files)
                if missing:
                    raise InputError(
                        f"{path} is not an earth style file: it lacks {sorted(missing)} "
                        f"(found {sorted(data.files)})"
                    )
                mean, cov = data["mean"], data["covariance"]
                count = int(data["count"]) if "count" in data.files else -1
                name = str(data["stylizer"]) if "stylizer" in data.files else ""
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise InputError(f"{path} is not a readable earth style .npz file: {exc}") from None
        return cls(mean, cov, count=None if count < 0 else count, stylizer=name or None)

    @classmethod
    def from_npy(cls, mean_path: str | Path, cov_path: str | Path) -> EarthStyle:
        """The authors' layout: `earth_embedding/mean.npy` and `covariance.npy`."""
        arrays = []
        for p in (Path(mean_path), Path(cov_path)):
            try:
                arrays.append(np.load(p, allow_pickle=False))
            except (ValueError, OSError, EOFError) as exc:
                raise InputError(f"{p} is not a readable .npy array: {exc}") from None
        return cls(np.asarray(arrays[0]).reshape(-1), arrays[1])


def _as_numpy(value: Tensor | np.ndarray, what: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().to("cpu", torch.float64).numpy()
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"the style {what} is not numeric") from None

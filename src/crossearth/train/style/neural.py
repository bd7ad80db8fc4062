"""The neural stylizer of the paper: Style Augmentation's style predictor and Ghiasi transformer.

CrossEarth's Earth-Style Injection uses the networks and weights of Style Augmentation (Jackson et
al. 2019): an Inception-v3 style predictor P (trunk up to Mixed_6e, spatial mean, Linear 768→100)
and a Ghiasi et al. (2017) transformer T whose conditional instance norms take their scale and shift
from the 100-d embedding. This is an independent implementation from the published architecture
description; module and parameter names follow the published checkpoints
(`checkpoint_stylepredictor.pth`: `state_dict_stylepredictor`, 352 or 422 tensors;
`checkpoint_transformer.pth`: `state_dict_ghiasi`, 84 tensors), which load strictly.

Differences from the upstream call, on purpose: P always runs in eval mode (upstream leaves its
BatchNorm in training mode), loading is strict, files load with `weights_only=True`, embedding
statistics are cast to float32, and T pads inputs to a multiple of 4 (reflect) and crops back.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossearth.errors import CheckpointError, InputError
from crossearth.train.style.base import check_embeddings, check_images, no_grad_fp32
from crossearth.train.style.earth import EarthStyle

EMBEDDING_DIM = 100
PREDICTOR_KEY = "state_dict_stylepredictor"
TRANSFORMER_KEY = "state_dict_ghiasi"
EMBEDDINGS_FILE = "checkpoint_embeddings.pth"

# P's preprocessing, reproduced exactly: ImageNet normalisation with the upstream typo 0.255 for
# the blue std, followed by torchvision's `transform_input` (which uses 0.225) to Google's [-1, 1]
# scaling. Net effect R' = 2R - 1, G' = 2G - 1, B' ≈ 1.7647·B - 0.9045.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
UPSTREAM_NORMALISE_STD = (0.229, 0.224, 0.255)  # sic: 0.255, the shipped statistics used it
TRANSFORM_INPUT_STD = (0.229, 0.224, 0.225)
PREDICTOR_MIN_SIZE = 43  # Mixed_6a needs a 3 x 3 input


def predictor_input_affine() -> tuple[Tensor, Tensor]:
    """Per-channel (scale, shift) that P applies to [0,1] RGB input: x' = scale·x + shift."""
    scale, shift = [], []
    for m, s_norm, s_tf in zip(
        IMAGENET_MEAN, UPSTREAM_NORMALISE_STD, TRANSFORM_INPUT_STD, strict=True
    ):
        scale.append(s_tf / 0.5 / s_norm)
        shift.append(-m / s_norm * s_tf / 0.5 + (m - 0.5) / 0.5)
    return torch.tensor(scale, dtype=torch.float64), torch.tensor(shift, dtype=torch.float64)


# ---------------------------------------------------------------- style predictor (Inception-v3)


class BasicConv2d(nn.Module):
    """Conv (no bias) → BatchNorm (eps 1e-3) → ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1x1 | 1x1→5x5 | 1x1→3x3→3x3 | avg-pool→1x1."""

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([a, b, c, d], 1)


class InceptionB(nn.Module):
    """Mixed_6a: 3x3/2 | 1x1→3x3→3x3/2 | max-pool/2 (288 → 768 channels)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b-6e: factorised 7x7 branches with c7 inner channels, 192 channels each."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            c = layer(c)
        d = self.branch_pool(F.avg_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([a, b, c, d], 1)


class StylePredictor(nn.Module):
    """Inception-v3 up to Mixed_6e, spatial mean, Linear(768 → 100). Input RGB in [0, 1]."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.fc = nn.Linear(768, embedding_dim)
        scale, shift = predictor_input_affine()
        self.register_buffer("input_scale", scale.float().view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", shift.float().view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = x * self.input_scale + self.input_shift
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
        ):
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


# ---------------------------------------------------------------- Ghiasi transformer


def _reflect_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    pad = conv.kernel_size[0] // 2
    return conv(F.pad(x, (pad, pad, pad, pad), mode="reflect"))


def _conditional(x: Tensor, fc_gamma: nn.Linear, fc_beta: nn.Linear, e: Tensor) -> Tensor:
    """Conditional instance norm: γ(e) ⊙ IN(x) + β(e), γ and β raw linear outputs."""
    gamma = fc_gamma(e)[:, :, None, None]
    beta = fc_beta(e)[:, :, None, None]
    return F.instance_norm(x, eps=1e-5) * gamma + beta


class ConvInRelu(nn.Module):
    """Reflect pad → conv → plain instance norm → ReLU (the unconditioned encoder)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        return F.relu(F.instance_norm(_reflect_conv(self.conv, x), eps=1e-5))


class ResidualBlock(nn.Module):
    """x + CIN(conv2(ReLU(CIN(conv1(x))))), 3x3 convs with reflect padding."""

    def __init__(self, channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.fc_beta1 = nn.Linear(embedding_dim, channels)
        self.fc_gamma1 = nn.Linear(embedding_dim, channels)
        self.fc_beta2 = nn.Linear(embedding_dim, channels)
        self.fc_gamma2 = nn.Linear(embedding_dim, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        y = F.relu(_conditional(_reflect_conv(self.conv1, x), self.fc_gamma1, self.fc_beta1, e))
        return x + _conditional(_reflect_conv(self.conv2, y), self.fc_gamma2, self.fc_beta2, e)


class UpsampleConvInRelu(nn.Module):
    """(Nearest ×2) → reflect pad → conv → CIN → (ReLU)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        embedding_dim: int,
        *,
        upsample: bool = True,
        activation: bool = True,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.activation = activation
        self.conv = nn.Conv2d(cin, cout, kernel)
        self.fc_beta = nn.Linear(embedding_dim, cout)
        self.fc_gamma = nn.Linear(embedding_dim, cout)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = _conditional(_reflect_conv(self.conv, x), self.fc_gamma, self.fc_beta, e)
        return F.relu(x) if self.activation else x


class GhiasiTransformer(nn.Module):
    """Style transfer network T(x, e): RGB in [0, 1] and a style embedding → RGB in (0, 1).

    Inputs whose sides are not multiples of 4 are reflect-padded and the output is cropped back.
    """

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        d = embedding_dim
        self.layers = nn.ModuleList(
            [
                ConvInRelu(3, 32, 9),
                ConvInRelu(32, 64, 3, stride=2),
                ConvInRelu(64, 128, 3, stride=2),
                *(ResidualBlock(128, d) for _ in range(5)),
                UpsampleConvInRelu(128, 64, 3, d),
                UpsampleConvInRelu(64, 32, 3, d),
                UpsampleConvInRelu(32, 3, 9, d, upsample=False, activation=False),
            ]
        )

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < 8:
            raise InputError(f"the style transformer needs at least 8 x 8 px, got {h} x {w}")
        pad_h, pad_w = -h % 4, -w % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        if e.ndim == 1:
            e = e.expand(x.shape[0], -1)
        for layer in self.layers:
            x = layer(x, e)
        return torch.sigmoid(x[..., :h, :w])


# ---------------------------------------------------------------- the stylizer


class NeuralStylizer(nn.Module):
    """Style Augmentation's P and T as a `Stylizer` (100-d embeddings, images in 0..255).

    `downsamples=n` average-pools the transformer's input by 2^n and upsamples its output
    bilinearly (faster, softer; upstream's option). The predictor always stays in eval mode.
    `imagenet_mean` and `pbn_style` hold the statistics of `checkpoint_embeddings.pth` when loaded.
    """

    name = "style-augmentation"
    embedding_dim = EMBEDDING_DIM

    def __init__(
        self,
        predictor: StylePredictor | None = None,
        transformer: GhiasiTransformer | None = None,
        *,
        downsamples: int = 0,
    ) -> None:
        super().__init__()
        self.predictor = predictor if predictor is not None else StylePredictor()
        self.transformer = transformer if transformer is not None else GhiasiTransformer()
        self.downsamples = downsamples
        self.imagenet_mean: Tensor | None = None
        self.pbn_style: EarthStyle | None = None
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> NeuralStylizer:
        return super().train(False)  # frozen networks: BatchNorm keeps its running statistics

    @property
    def device(self) -> torch.device:
        return self.predictor.fc.weight.device

    @no_grad_fp32
    def embed(self, images: Tensor) -> Tensor:
        x = check_images(images, PREDICTOR_MIN_SIZE)
        return self.predictor(x.to(self.device) / 255).float().to(images.device)

    @no_grad_fp32
    def stylize(self, images: Tensor, embeddings: Tensor) -> Tensor:
        x = check_images(images, 8).to(self.device) / 255
        e = check_embeddings(embeddings, x.shape[0], self.embedding_dim).to(self.device)
        h, w = x.shape[-2:]
        if self.downsamples:
            x = F.avg_pool2d(x, 2**self.downsamples, ceil_mode=True)
        out = self.transformer(x, e)
        if self.downsamples:
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return (out * 255).to(images.device)

    @classmethod
    def from_checkpoints(
        cls,
        predictor_path: str | Path,
        transformer_path: str | Path,
        embeddings_path: str | Path | None = None,
        *,
        downsamples: int = 0,
    ) -> NeuralStylizer:
        """Load Style Augmentation's `checkpoint_stylepredictor.pth` and
        `checkpoint_transformer.pth` (strictly, weights only). `checkpoint_embeddings.pth` is read
        from `embeddings_path`, or from beside the transformer file when it is there."""
        stylizer = cls(downsamples=downsamples)
        state = _state_dict(predictor_path, PREDICTOR_KEY, "style predictor", "fc.weight")
        _load_strict(stylizer.predictor, state, "style predictor", predictor_path)
        state = _state_dict(
            transformer_path, TRANSFORMER_KEY, "style transformer", "layers.0.conv.weight"
        )
        _load_strict(stylizer.transformer, state, "style transformer", transformer_path)
        if embeddings_path is None:
            beside = Path(transformer_path).with_name(EMBEDDINGS_FILE)
            embeddings_path = beside if beside.is_file() else None
        if embeddings_path is not None:
            stats = load_style_embeddings(embeddings_path)
            stylizer.imagenet_mean, stylizer.pbn_style = stats.imagenet_mean, stats.pbn
        return stylizer.eval()


# ---------------------------------------------------------------- checkpoint files


@dataclass
class StyleEmbeddings:
    """Contents of `checkpoint_embeddings.pth`: the ImageNet mean embedding and the
    Painter-by-Numbers style distribution (float32; either may be absent)."""

    imagenet_mean: Tensor | None
    pbn: EarthStyle | None


def load_style_embeddings(path: str | Path) -> StyleEmbeddings:
    obj = _read(path, "style embeddings")
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} is not a style embeddings file (expected a dict of tensors)")
    known = {"imagenet_embedding_mean", "pbn_embedding_mean", "pbn_embedding_covariance"}
    if not known & set(obj):
        raise CheckpointError(
            f"{path} is not a style embeddings file: none of {sorted(known)} in it "
            f"(found {sorted(map(str, obj))[:8]})"
        )

    def vector(key: str) -> Tensor | None:
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, Tensor) or value.numel() != EMBEDDING_DIM:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise CheckpointError(f"{path}: {key} must hold {EMBEDDING_DIM} values, got {shape}")
        return value.reshape(EMBEDDING_DIM).float()

    imagenet, mean = vector("imagenet_embedding_mean"), vector("pbn_embedding_mean")
    cov = obj.get("pbn_embedding_covariance")
    pbn = None
    if mean is not None and cov is not None:
        if not isinstance(cov, Tensor) or tuple(cov.shape) != (EMBEDDING_DIM, EMBEDDING_DIM):
            raise CheckpointError(f"{path}: pbn_embedding_covariance must be 100 x 100")
        try:
            pbn = EarthStyle(mean, cov.double(), stylizer=NeuralStylizer.name)
        except InputError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    return StyleEmbeddings(imagenet, pbn)


def _read(path: str | Path, what: str) -> object:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} cannot be loaded as a {what} checkpoint with weights-only loading: {first}"
        ) from None
    except Exception as exc:  # corrupt zip, truncated file, not a torch file at all
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {exc}") from None


def _state_dict(path: str | Path, key: str, what: str, marker: str) -> dict[str, Tensor]:
    """The state dict under `key`, or the file itself when it is a bare state dict (recognised
    by its `marker` key, with or without a DataParallel `module.` prefix)."""
    obj = _read(path, what)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} is not a {what} checkpoint (top level is not a dict)")
    others = {PREDICTOR_KEY: "style predictor", TRANSFORMER_KEY: "style transformer"}
    if key in obj:
        state = obj[key]
    elif any(k in obj for k in others if k != key):
        found = next(others[k] for k in others if k != key and k in obj)
        raise CheckpointError(
            f"{path} is the {found} checkpoint, not the {what} one: "
            "are the predictor and transformer files swapped?"
        )
    elif marker in obj or f"module.{marker}" in obj:
        state = obj
    else:
        raise CheckpointError(
            f"{path} is not a {what} checkpoint: no '{key}' entry "
            f"(top-level keys: {sorted(map(str, obj))[:8]})"
        )
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: '{key}' is not a state dict of tensors")
    state = dict(state)
    if state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _load_strict(module: nn.Module, state: dict[str, Tensor], what: str, path) -> None:
    """Load every parameter and buffer (BatchNorm's num_batches_tracked may be absent)."""
    expected = module.state_dict()

    def optional(k: str) -> bool:
        return k.endswith("num_batches_tracked")

    missing = [k for k in expected if k not in state and not optional(k)]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        ):
            if items:
                more = f" and {len(items) - 5} more" if len(items) > 5 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
        raise CheckpointError(
            f"{path} does not fit the {what} ({len(state)} tensors in the file); "
            + "; ".join(parts)
        )
    module.load_state_dict(
        {k: state[k].to(v.dtype) for k, v in expected.items() if k in state}, strict=False
    )

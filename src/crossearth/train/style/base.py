"""The stylizer interface shared by Earth-Style Injection, style fitting and the two stylizers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor

from crossearth.errors import InputError


@runtime_checkable
class Stylizer(Protocol):
    """Maps images to style embeddings and re-renders images in a given style.

    Images are float tensors `B x 3 x H x W` with values in 0..255 (any device); embeddings are
    `B x embedding_dim` float32. Both methods run without gradients: Earth-Style Injection uses
    the restyled image as data, not as part of the graph. A stylizer may carry a `name` (saved with
    fitted styles so that a style is not used with a stylizer whose embedding means something else).
    """

    embedding_dim: int

    def embed(self, images: Tensor) -> Tensor: ...

    def stylize(self, images: Tensor, embeddings: Tensor) -> Tensor: ...


_Method = TypeVar("_Method", bound=Callable)


def no_grad_fp32(method: _Method) -> _Method:
    """Run a stylizer method without gradients and outside autocast (in float32): mixed-precision
    training must not turn the statistics and style networks into bf16/fp16 arithmetic."""

    @functools.wraps(method)
    def wrapper(self, images, *args, **kwargs):
        device = getattr(images, "device", torch.device("cpu"))
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            return method(self, images, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def stylizer_name(stylizer: object) -> str:
    return str(getattr(stylizer, "name", type(stylizer).__name__))


def check_images(images: Tensor, min_size: int = 1, what: str = "images") -> Tensor:
    """Float32 `B x 3 x H x W` view of `images` (uint8 or float), or an InputError saying why not."""
    if not isinstance(images, Tensor):
        raise InputError(f"{what} must be a torch tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise InputError(f"{what} must be B x 3 x H x W, got shape {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise InputError(f"{what} is an empty batch")
    if min(images.shape[-2:]) < min_size:
        raise InputError(
            f"{what} are {images.shape[-2]} x {images.shape[-1]} px; at least {min_size} px "
            "per side are needed"
        )
    if images.dtype == torch.uint8:
        return images.float()
    if not images.dtype.is_floating_point:
        raise InputError(f"{what} must be uint8 or float (0..255), got {images.dtype}")
    return images.float()


def check_embeddings(embeddings: Tensor, batch: int, dim: int) -> Tensor:
    if not isinstance(embeddings, Tensor) or not embeddings.dtype.is_floating_point:
        raise InputError("style embeddings must be a float tensor")
    if embeddings.ndim == 1:
        embeddings = embeddings.expand(batch, -1)
    if embeddings.shape != (batch, dim):
        raise InputError(
            f"style embeddings must be {batch} x {dim} (one per image), "
            f"got {tuple(embeddings.shape)}"
        )
    return embeddings.float()

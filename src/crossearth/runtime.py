"""Device and precision choices ("auto" picks CUDA if present, bf16 where the hardware is fast)."""

from __future__ import annotations

import torch

from crossearth.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r} ({exc})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available")
    return resolved


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles (bf16 matmuls several times faster than fp32)."""
    try:
        return bool(torch._C._cpu._is_amx_tile_supported())
    except AttributeError:  # older torch
        return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """fp32 (the parity path), bf16, or auto: bf16 on bf16-capable CUDA and on AMX CPUs."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if device.type == "cpu" and cpu_has_amx() else torch.float32
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of fp32, bf16, auto")
    return PRECISIONS[precision]

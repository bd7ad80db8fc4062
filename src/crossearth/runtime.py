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


def cpu_has_fast_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AMX tiles or AVX512-BF16)."""
    try:
        if torch._C._cpu._init_amx():
            return True
    except AttributeError:  # older or newer torch without the hook
        pass
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """fp32 (the parity path), bf16, or auto: bf16 on bf16-capable CUDA and CPUs."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of fp32, bf16, auto")
    return PRECISIONS[precision]

"""Device and precision choices ("auto" picks CUDA if present, bf16 where the hardware is fast)."""

from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path

import torch

from crossearth.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
#: every `--precision` value: int8 runs an ONNX Runtime int8 file (`crossearth.export.int8`).
PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")
#: CPU features that decide which precision is fast (printed beside benchmark figures).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


class PrecisionWarning(UserWarning):
    """A precision was asked for that this hardware runs slower than another one."""


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_description() -> str:
    """'MODEL NAME, N cores; features' for benchmark lines (features from `CPU_FEATURES`)."""
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    return f"{model}, {os.cpu_count()} cores; " + " ".join(f for f in CPU_FEATURES if f in flags)


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
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The PyTorch dtype of fp32 (the parity path), bf16, or auto (bf16 on bf16-capable CUDA
    and CPUs, else fp32). bf16 on a CPU without native bf16 warns (`PrecisionWarning`): it is
    emulated there and ran a ViT-L window 5x slower than fp32 on an AVX2-only AMD EPYC.

    Raises:
        ConfigError: an unknown precision (int8 is handled by `load_model`, not here).
    """
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if precision not in PRECISIONS:
        raise ConfigError(
            f"unknown precision {precision!r}; use one of {', '.join(PRECISION_CHOICES)}"
        )
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        warnings.warn(
            "this CPU has no native bf16 (no AVX512-BF16 or AMX): bf16 is emulated and runs "
            "several times slower than fp32; use --precision fp32, or int8 (faster still)",
            PrecisionWarning,
            stacklevel=2,
        )
    return PRECISIONS[precision]

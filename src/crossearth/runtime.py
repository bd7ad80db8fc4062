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


#: Lightning's accelerator names -> torch device types ("auto": CUDA if present, else the CPU).
_ACCELERATOR_DEVICES = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "mps": "mps"}


def training_device(accelerator: str) -> torch.device:
    """The device type a Lightning `accelerator` ("auto", "cpu", "gpu", "cuda", "mps") trains on."""
    if accelerator == "auto":
        return resolve_device("auto")
    try:
        return torch.device(_ACCELERATOR_DEVICES.get(accelerator, accelerator))
    except RuntimeError:  # a name torch does not know ("tpu"): Lightning reports a bad one
        return torch.device("cpu")


def training_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """Lightning's precision for `precision` on `device`, and why, in one line.

    "auto" chooses as `resolve_precision("auto", ...)` does for inference: "bf16-mixed" on a CUDA
    GPU with bf16 and on a CPU that multiplies bf16 natively (AMX, AVX512-BF16), else "32-true"
    (on a CPU without them bf16 is emulated: ~25x slower than fp32 in a measured training run).
    Any other value is Lightning's own ("32-true", "bf16-mixed", "16-mixed", ...), returned as it
    is with an empty reason.
    """
    if precision != "auto":
        return precision, ""
    fast = resolve_precision("auto", device) == torch.bfloat16
    chosen = "bf16-mixed" if fast else "32-true"
    if device.type == "cuda":
        why = "the GPU computes in bf16" if fast else "the GPU has no bf16"
    elif device.type == "cpu":
        why = (
            "the CPU multiplies bf16 natively (AMX or AVX512-BF16)"
            if fast
            else "the CPU has no native bf16 (AMX or AVX512-BF16), where bf16 is many times "
            "slower than fp32"
        )
    else:
        why = f"bf16 is chosen on CUDA and CPUs only, not {device.type}"
    return chosen, f"precision {chosen} (auto: {why})"


def slow_precision_warning(precision: str, device: torch.device) -> str | None:
    """A one-line warning for bf16 asked for on a CPU that lacks native bf16, naming the faster
    choice; None otherwise."""
    if device.type != "cpu" or not precision.startswith("bf16") or cpu_has_fast_bf16():
        return None
    return (
        f"--precision {precision} on a CPU without native bf16 (AMX or AVX512-BF16) is many "
        "times slower than fp32: --precision 32-true (or auto) is faster here"
    )

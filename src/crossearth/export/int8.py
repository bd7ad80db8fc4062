"""`--precision int8`: an ONNX Runtime int8 copy of a model, exported once and cached.

The copy is the file `export --quantize int8` writes (`crossearth.export.quantize`: 7-bit
weights, checked to agree with fp32 on >= 99 % of its check tile). It is cached beside the model
(`<model>.int8-<fingerprint>.onnx`), or under `$CROSSEARTH_HOME/int8/` (default
`~/.cache/crossearth/int8/`) when the model's folder is not writable or the model has no file,
keyed by the model's fingerprint (its config and every weight), so a changed model is exported
again and an unchanged one never twice. A file lock (`filelock`) beside the target makes a second
process wait for the first's export instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from crossearth.errors import ConfigError

#: How long a process waits for another's export of the same model, seconds.
LOCK_TIMEOUT_S = 3600.0


def require_int8() -> None:
    """Raise `ConfigError` naming the precision to use when ONNX Runtime is not installed."""
    try:
        import filelock  # noqa: F401
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"--precision int8 runs on ONNX Runtime, which is not installed here ({exc}): "
            "pip install 'crossearth[onnx]', or use --precision fp32 (or bf16 where the CPU "
            "has native bf16)"
        ) from None


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (hex) of a CrossEarth model's config and every parameter and buffer (names,
    shapes, dtypes, bytes): two models with the same digest compute the same function."""
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    """sha256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_path(source: Path | None, name: str, fingerprint: str) -> Path:
    """Where the int8 copy of a model lives: beside `source` when its folder is writable, else
    in `$CROSSEARTH_HOME/int8/`."""
    file = f"{name}.int8-{fingerprint[:16]}.onnx"
    if source is not None and os.access(source.parent, os.W_OK):
        return source.parent / file
    from crossearth.reference import cache_root

    return cache_root() / "int8" / file


def cached_int8(
    source: Path | None, name: str, fingerprint: str, make: Callable[[Path], None]
) -> Path:
    """The cached int8 file of a model, made by `make(target)` under a file lock
    if it is not there yet (a progress line on stderr while it is made)."""
    from filelock import FileLock

    target = cache_path(source, name, fingerprint)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT_S):
        if target.is_file():  # another process made it while this one waited
            return target
        print(
            f"exporting an int8 copy of {name} once (ViT-L: 1-4 min), cached at {target}",
            file=sys.stderr,
            flush=True,
        )
        start = time.perf_counter()
        make(target)
        print(
            f"int8 copy ready in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True
        )
    return target


def existing_int8(source: Path | None, name: str, fingerprint: Callable[[], str]) -> Path | None:
    """The cached int8 file of a model if one was made, else None; `fingerprint` is only
    computed when some int8 copy of `name` is cached (hashing a ViT-L takes about a second)."""
    from crossearth.reference import cache_root

    folders = [cache_root() / "int8"] + ([source.parent] if source is not None else [])
    if not any(any(f.glob(f"{name}.int8-*.onnx")) for f in folders if f.is_dir()):
        return None
    digest = fingerprint()
    for folder in folders:
        candidate = folder / f"{name}.int8-{digest[:16]}.onnx"
        if candidate.is_file():
            return candidate
    return None


def int8_model_file(model: torch.nn.Module, source: Path | None) -> Path:
    """The int8 ONNX file of a PyTorch CrossEarth model (exported once, then cached).

    Raises:
        ConfigError: ONNX Runtime is missing, or the model cannot be exported.
        QuantizationError: the int8 file would fall below 99 % agreement (nothing cached).
    """
    from crossearth.export.onnx import export_onnx
    from crossearth.export.quantize import QuantizationError

    require_int8()
    name = source.stem if source is not None else "model"

    def make(target: Path) -> None:
        try:
            export_onnx(model, target, quantize="int8")
        except (QuantizationError, OSError):
            raise
        except Exception as exc:  # a model torch.onnx cannot trace
            raise ConfigError(
                f"{name} could not be exported to int8 ONNX ({exc}); use --precision fp32 "
                "(or bf16 where the CPU has native bf16)"
            ) from None

    return cached_int8(source, name, model_fingerprint(model), make)


def int8_onnx_file(path: Path) -> Path:
    """The int8 copy of an fp32 ONNX file written by `crossearth export` (made once, cached).

    Raises:
        ConfigError: ONNX Runtime is missing.
        QuantizationError: the file is not a crossearth export, or its int8 copy would fall
            below 99 % agreement (nothing cached).
    """
    from crossearth.export.quantize import quantize_file

    require_int8()
    return cached_int8(path, path.stem, file_fingerprint(path), lambda t: quantize_file(path, t))

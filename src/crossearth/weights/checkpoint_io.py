"""Read tensors from checkpoint files safely (`torch.load(weights_only=True)` or safetensors)."""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from crossearth.errors import CheckpointError, CheckpointNotFoundError
from crossearth.weights.sniff import FileKind, sniff_checkpoint
from crossearth.wording import with_article

NATIVE_FORMAT = "crossearth"


@dataclass
class RawCheckpoint:
    """Tensors of a checkpoint file, plus what else it carried (mmengine `meta`, our config)."""

    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)
    native_config: dict[str, Any] | None = None
    path: Path | None = None


def read_checkpoint(path: str | Path) -> RawCheckpoint:
    """Read an official `.pth` (mmengine dict or bare state dict) or a `.safetensors` file.

    The format is recognised by content, so a misnamed file still reads. Raises `CheckpointError`
    saying what the file is when it is none of these (an HTML page, a truncated download...).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}")
    if sniff_checkpoint(path) is FileKind.SAFETENSORS:
        return _read_safetensors(path)
    return _read_torch(path)


def stored_config(path: str | Path) -> dict[str, Any] | None:
    """The model config our .safetensors files store in their header (read without the tensors);
    None for any other file, or one whose header cannot be read (`read_checkpoint` says why)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if metadata.get("format") != NATIVE_FORMAT:
            return None
        config = json.loads(metadata.get("config") or "null")
    except Exception:  # not safetensors, unreadable, bad JSON: reported when the model loads
        return None
    return config if isinstance(config, dict) else None


def _read_safetensors(path: Path) -> RawCheckpoint:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    config = None
    if metadata.get("format") == NATIVE_FORMAT and "config" in metadata:
        try:
            config = json.loads(metadata["config"])
        except json.JSONDecodeError as exc:
            raise CheckpointError(
                f"{path}: the embedded model config is not valid JSON ({exc})"
            ) from None
    return RawCheckpoint(state_dict=tensors, meta=dict(metadata), native_config=config, path=path)


def _read_torch(path: Path) -> RawCheckpoint:
    try:
        if path.suffix == ".safetensors":  # misnamed: torch.load would dispatch on the suffix
            with open(path, "rb") as f:
                obj = torch.load(f, map_location="cpu", weights_only=True)
        else:  # a path lets torch read the zip natively (fast for GB-sized files)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types (IndexError, KeyError...) on bad files
        raise CheckpointError(_torch_load_message(path, exc)) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds {with_article(type(obj).__name__)}, not a state dict")
    meta: dict[str, Any] = {}
    state = obj
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(state.get(wrapper), dict):
            meta = obj["meta"] if isinstance(obj.get("meta"), dict) else {}
            state = state[wrapper]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} contains no tensors")
    if all(k.startswith("module.") for k in tensors):  # saved from DistributedDataParallel
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return RawCheckpoint(state_dict=tensors, meta=meta, path=path)


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _torch_load_message(path: Path, exc: Exception) -> str:
    """Our message for a failed safe `torch.load`; PyTorch's own text is not passed on, since it
    advises `weights_only=False`, which would run code from the file."""
    found = _UNSUPPORTED_GLOBAL.search(str(exc))
    if found:
        return (
            f"refusing {path}: it stores a Python object ({found.group(1)}) that only unsafe "
            "unpickling could rebuild, and unpickling can run code from the file. crossearth "
            "reads checkpoints with weights_only=True only. If you made this file, save the "
            "model's state_dict() instead (or use crossearth.save_model)."
        )
    if "Weights only load failed" in str(exc) or isinstance(exc, pickle.UnpicklingError):
        return (
            f"cannot read {path}: it is not a valid PyTorch checkpoint (the pickled data is "
            "corrupt or truncated: an interrupted download or copy?). Download it again."
        )
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"cannot read {path} as a PyTorch checkpoint ({type(exc).__name__}: {reason}): the file "
        "is truncated (an interrupted download or copy?) or damaged. Download it again."
    )

"""One model per process, found by its fingerprint: chunk tasks never carry the model itself.

A task graph names its model by a `ModelRef`: a fingerprint, and how a process that lacks the
model gets it. A model given by name or file (anything `load_model` takes) is loaded by each
process on first use (each Dask worker loads its own, on its own device with `device="auto"`).
A model object given directly travels as one graph key of its own, which Dask hands to each
worker process once; the process that built the graph (threads, synchronous runs) uses the very
object, uncopied. Either way the model is then kept in this process's cache, which holds the
last `KEEP` models used.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEEP = 2  # models kept per process (a ViT-L is ~1.2 GB in fp32)

_cache: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class LoadSpec:
    """`load_model(source, **options)`, as data (it pickles in a few bytes)."""

    source: str
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        from crossearth.weights import load_model

        return load_model(self.source, **self.options)

    def fingerprint(self) -> str:
        """The source (a local file: its absolute path, size and modification time) and options."""
        ident: Any = self.source
        path = Path(self.source)
        if path.is_file():
            stat = path.stat()
            ident = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
        blob = json.dumps(["load", ident, self.options], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


def object_fingerprint(model: Any) -> str:
    """A model object's key: this process and object, and the identity and in-place version of
    every parameter and buffer (an edited or reloaded model gets another key)."""
    import torch

    stamp: list[Any] = ["object", os.getpid(), id(model)]
    if isinstance(model, torch.nn.Module):
        stamp += [
            (name, t.data_ptr(), t._version, str(t.dtype), str(t.device))
            for name, t in [*model.named_parameters(), *model.named_buffers()]
        ]
    blob = json.dumps(stamp, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_model(fingerprint: str, spec: LoadSpec | None = None, model: Any = None) -> Any:
    """The model of `fingerprint` in this process: the cached one, else `model`, else loaded by
    `spec` (then cached; the `KEEP` most recently used stay).

    Raises:
        whatever `load_model` raises for `spec`.
    """
    with _lock:
        if fingerprint in _cache:
            _cache.move_to_end(fingerprint)
            return _cache[fingerprint]
        if model is None:
            if spec is None:
                raise ValueError(f"model {fingerprint} is neither cached nor loadable here")
            model = spec.load()  # under the lock: threads of one worker load it once
        _cache[fingerprint] = model
        while len(_cache) > KEEP:
            _cache.popitem(last=False)
        return model


def clear() -> None:
    """Forget every cached model (tests; freeing memory)."""
    with _lock:
        _cache.clear()

"""Memoise image-independent tensors derived from parameters, for inference only.

Rein's per-layer token features and object queries, and the position embedding resized to a token
grid, depend on the weights alone; a large scene would recompute them for every batch of windows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import torch


class ParameterCache:
    """Values computed from parameters, reused while those parameters are unchanged.

    An entry is valid while every parameter it came from has the same storage, in-place version
    counter (bumped by optimiser steps and in-place edits), dtype and device. Owners also clear
    the cache when moved or cast (`_apply`) and after `load_state_dict`, so a freed storage
    address reused by new weights cannot pass for the old ones. With autograd enabled nothing is
    cached, and what was cached is dropped: training recomputes (and back-propagates) as before,
    and the next inference after a training step starts afresh even when a fused optimiser
    updated the weights without bumping their version counters.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[tuple, torch.Tensor]] = {}

    def get(
        self, key: Hashable, params: Iterable[torch.Tensor], compute: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        if torch.compiler.is_compiling():  # traced into the graph: no Python-side state
            return compute()
        if torch.is_grad_enabled():  # training: an optimiser step may follow, and fused
            self.clear()  # optimisers update weights without bumping their version counters
            return compute()
        stamp = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == stamp:
            return entry[1]
        value = compute()
        self._entries[key] = (stamp, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __getstate__(self) -> dict:  # pickled (DDP spawn, deepcopy) empty: values are derived
        return {"_entries": {}}

    def __len__(self) -> int:
        return len(self._entries)


class CachedModule(torch.nn.Module):
    """A module with a `ParameterCache` that is cleared whenever its weights may be replaced."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = ParameterCache()  # a plain attribute: not in the state dict
        self.register_load_state_dict_post_hook(_clear_cache)

    def _apply(self, fn, recurse: bool = True):  # .to(), .float(), .cuda(), ...
        self.cache.clear()
        return super()._apply(fn, recurse)


def _clear_cache(module: CachedModule, incompatible_keys) -> None:
    """`load_state_dict` post-hook (a module-level function, so models stay picklable)."""
    module.cache.clear()

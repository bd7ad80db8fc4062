"""A model of N input bands made from a model of three (RGB) bands.

`expand_input_bands` keeps every tensor of the RGB model and rebuilds only the patch embedding's
kernel `backbone.patch_embed.proj.weight` [D, 3, p, p] as [D, N, p, p]:

- the pretrained red, green and blue kernels go to the slots of the bands that are red, green
  and blue (`rgb_slots`); every other band's kernel is zero. The N-band model therefore computes
  exactly the RGB model's output on those three bands, whatever the other bands hold, before
  training; training then learns the other kernels (the patch embedding trains even under Rein
  PEFT: `crossearth.train.module`).
- a band set without red, green or blue (e.g. SAR VV, VH): every band's kernel starts as the
  mean of the three RGB kernels times 3 / N, so that an image whose bands all hold the same
  normalised value x is embedded as the RGB model embeds a grey image of value x. The pretrained
  kernel's response to brightness structure (edges, texture) is kept, spread evenly over the
  bands, instead of starting from nothing.
"""

from __future__ import annotations

import dataclasses

import torch

from crossearth.errors import ConfigError
from crossearth.models.segmentor import CrossEarth

KERNEL = "backbone.patch_embed.proj.weight"


def expand_input_bands(
    model: CrossEarth, in_chans: int, rgb_slots: tuple[int | None, int | None, int | None]
) -> CrossEarth:
    """A copy of the 3-band `model` that takes `in_chans` bands (see module docstring).

    Args:
        model: a model whose config has `backbone.in_chans == 3` (R, G, B in that order).
        in_chans: the new number of input bands, >= 1.
        rgb_slots: 0-based input slots of red, green and blue (None: the band set lacks it).

    Raises:
        ConfigError: `model` does not take 3 bands, `in_chans` < 1, a slot out of range or
            repeated.
    """
    if model.config.in_chans != 3:
        raise ConfigError(
            f"--init takes {model.config.in_chans} bands: only a 3-band (RGB) model can be "
            f"extended to other bands; the data gives {in_chans}"
        )
    if in_chans < 1:
        raise ConfigError(f"a model needs at least one input band, got {in_chans}")
    used = [s for s in rgb_slots if s is not None]
    if any(not 0 <= s < in_chans for s in used) or len(set(used)) != len(used):
        raise ConfigError(f"red, green, blue slots {rgb_slots} do not fit {in_chans} bands")
    backbone = dataclasses.replace(model.config.backbone, in_chans=in_chans)
    target = CrossEarth(model.config.replace(backbone=backbone))
    state = model.state_dict()
    old = state[KERNEL]
    new = torch.zeros((old.shape[0], in_chans, *old.shape[2:]), dtype=old.dtype)
    if used:
        for c, slot in enumerate(rgb_slots):
            if slot is not None:
                new[:, slot] = old[:, c]
    else:
        new[:] = (old.mean(dim=1, keepdim=True) * (3.0 / in_chans)).expand_as(new)
    state[KERNEL] = new
    target.load_state_dict(state)
    return target.to(next(model.parameters()).device).train(model.training)

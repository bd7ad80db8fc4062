"""Model code: plain `nn.Module`s with the official checkpoint key layout."""

from crossearth.models.presets import PRESETS, get_preset
from crossearth.models.segmentor import CrossEarth

__all__ = ["PRESETS", "CrossEarth", "get_preset"]

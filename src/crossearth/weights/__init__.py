"""Checkpoints: official loading and conversion, our single-file format, the model zoo."""

from crossearth.weights.loader import load_model, to_runtime
from crossearth.weights.native import save_model
from crossearth.weights.zoo import ZOO, ZooEntry

__all__ = ["ZOO", "ZooEntry", "load_model", "save_model", "to_runtime"]

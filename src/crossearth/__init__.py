"""crossearth: CrossEarth domain-generalizable remote-sensing segmentation in pure PyTorch."""

from typing import TYPE_CHECKING

from crossearth.config import ModelConfig
from crossearth.errors import (
    CheckpointError,
    CheckpointNotFoundError,
    ConfigError,
    CrossEarthError,
    InputError,
    InputNotFoundError,
    UnknownNameError,
    WeightsUnavailableError,
)
from crossearth.inference import Prediction
from crossearth.models import CrossEarth, get_preset
from crossearth.weights import ZOO, load_model, save_model

if TYPE_CHECKING:
    from crossearth.geo.predict import PredictOptions, predict_raster
    from crossearth.viewer import show, write_map

__version__ = "0.1.0"


def __getattr__(name: str):
    """GeoTIFF inference is imported on first use: the model alone needs only torch and numpy
    (a bare GPU machine can benchmark it without GDAL)."""
    if name in ("PredictOptions", "predict_raster"):
        from crossearth.geo import predict

        return getattr(predict, name)
    if name in ("show", "write_map"):  # the map viewer (rasterio, Pillow)
        from crossearth import viewer

        return getattr(viewer, name)
    raise AttributeError(f"module 'crossearth' has no attribute {name!r}")


def create_model(preset: str, num_classes: int = 6) -> CrossEarth:
    """A randomly initialised model of a named preset (for training or tests), in eval mode.

    Raises:
        UnknownNameError: (a `KeyError`) `preset` is not a preset name.
    """
    return CrossEarth(get_preset(preset, num_classes)).eval()


__all__ = [
    "ZOO",
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "CrossEarth",
    "CrossEarthError",
    "InputError",
    "InputNotFoundError",
    "ModelConfig",
    "PredictOptions",
    "Prediction",
    "UnknownNameError",
    "WeightsUnavailableError",
    "create_model",
    "get_preset",
    "load_model",
    "predict_raster",
    "save_model",
    "show",
    "write_map",
]

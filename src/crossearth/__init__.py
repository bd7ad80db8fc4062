"""crossearth: CrossEarth domain-generalizable remote-sensing segmentation in pure PyTorch."""

from crossearth.config import ModelConfig
from crossearth.geo.predict import PredictOptions, predict_raster
from crossearth.inference import Prediction
from crossearth.models import CrossEarth, get_preset
from crossearth.weights import ZOO, load_model, save_model

__version__ = "0.1.0"


def create_model(preset: str, num_classes: int = 6) -> CrossEarth:
    """A randomly initialised model of a named preset (for training or tests)."""
    return CrossEarth(get_preset(preset, num_classes)).eval()


__all__ = [
    "ZOO",
    "CrossEarth",
    "ModelConfig",
    "PredictOptions",
    "Prediction",
    "create_model",
    "get_preset",
    "load_model",
    "predict_raster",
    "save_model",
]

"""crossearth: CrossEarth domain-generalizable remote-sensing segmentation in pure PyTorch."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from crossearth.threads import configure_threads, prefer_passive_waiting

prefer_passive_waiting()  # before torch is imported (crossearth.threads says why)

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
    from crossearth.dataarray import segment
    from crossearth.predict import PredictOptions, predict_raster
    from crossearth.viewer import show, write_map

__version__ = "0.1.0"


def __getattr__(name: str):
    """GeoTIFF inference is imported on first use: the model alone needs only torch and numpy
    (a bare GPU machine can benchmark it without GDAL)."""
    if name in ("PredictOptions", "predict_raster"):
        from crossearth import predict

        return getattr(predict, name)
    if name == "segment":  # xarray/Dask in and out: the crossearth[dask] extra
        from crossearth.dataarray import segment

        return segment
    if name in ("show", "write_map"):  # the map viewer (rasterio, Pillow)
        from crossearth import viewer

        return getattr(viewer, name)
    raise AttributeError(f"module 'crossearth' has no attribute {name!r}")


def create_model(
    preset: str,
    num_classes: int | None = None,
    *,
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    gsd_m: float | None = None,
) -> CrossEarth:
    """A randomly initialised model of a named preset (for training or tests).

    Args:
        num_classes: default: the number of `class_names`, else 6.
        class_names, palette, gsd_m: recorded in the model's config and in every file
            `save_model` writes (palette: one (R, G, B) 0-255 per class; GSD in metres).

    Raises:
        UnknownNameError: (a `KeyError`) unknown preset; the message lists the known ones.
        ConfigError: names, palette or GSD that do not fit (see `ModelConfig.with_labels`).
    """
    if num_classes is None:
        num_classes = 6 if class_names is None or isinstance(class_names, str) else len(class_names)
    config = get_preset(preset, num_classes).with_labels(class_names, palette, gsd_m)
    return CrossEarth(config).eval()


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
    "configure_threads",
    "create_model",
    "get_preset",
    "load_model",
    "predict_raster",
    "save_model",
    "segment",
    "show",
    "write_map",
]

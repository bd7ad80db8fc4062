"""The model runs with torch and numpy alone (a bare GPU machine has no GDAL, and no network to
install it); GeoTIFF support is imported on first use."""

from __future__ import annotations

import subprocess
import sys

OPTIONAL = [
    "rasterio", "safetensors", "typer", "rich", "huggingface_hub", "lightning", "scipy", "yaml",
    "torchmetrics", "shapely", "pyogrio", "PIL", "timm", "torchvision",
]  # fmt: skip

SCRIPT = f"""
import sys
for name in {OPTIONAL!r}:
    sys.modules[name] = None  # importing any of them now fails
import torch
import crossearth
from crossearth.weights import to_runtime
model = to_runtime(crossearth.create_model("vit-tiny-256", 3), "cpu", "fp32")
with torch.no_grad():
    print(tuple(model(torch.zeros(1, 3, 32, 32)).shape))
try:
    crossearth.predict_raster
except ImportError:
    print("geo needs rasterio")
"""


def test_model_needs_only_torch_and_numpy():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["(1, 3, 32, 32)", "geo needs rasterio"]


def test_geo_api_is_available_lazily():
    import crossearth
    from crossearth.predict import PredictOptions, predict_raster

    assert crossearth.predict_raster is predict_raster
    assert crossearth.PredictOptions is PredictOptions

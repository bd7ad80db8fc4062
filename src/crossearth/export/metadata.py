"""The metadata an exported model carries: QGIS Deepness' keys and our own config.

Deepness (PUTvision/qgis-plugin-deepness) reads string values from the ONNX `metadata_props` and
decodes each with `json.loads`; this module writes every value with `json.dumps`. Keys:

| key | value |
| --- | --- |
| `model_type` | `"Segmentor"` |
| `class_names` | `{"0": "name", ...}` consecutive ids |
| `resolution` | ground-sample distance in cm per pixel (omitted when the model's GSD is unknown) |
| `tiles_size` / `tile_size` | the static input size S (the documentation names the first, the plugin's code reads the second) |
| `tiles_overlap` | overlap of neighbouring windows in percent of S (integer), from the official stride |
| `standardization_mean` / `standardization_std` | per channel, applied after `/255` |

Our own keys, ignored by Deepness: `crossearth_config` (the full `ModelConfig.to_dict()`, with the
crop and stride of the exported tile), `crossearth_scores` (the name of the raw official-scores
tensor inside the graph), `crossearth_bands` and `crossearth_output`.
"""

from __future__ import annotations

import json
from typing import Any

from crossearth.data.classes import placeholder_names

SCORES_TENSOR = "official_scores"  # raw scores inside the ONNX graph, before normalising
OUTPUT_NOTE = (
    "per-class probabilities: the official CrossEarth scores (softmax x sigmoid summed over "
    "queries) divided by their sum over classes; argmax unchanged"
)


def export_stride(crop: int, stride: int, tile: int) -> int:
    """The stride for windows of `tile` pixels that keeps the official overlap ratio."""
    return max(1, min(tile, round(tile * stride / crop)))


def overlap_percent(tile: int, stride: int) -> int:
    """Overlap of neighbouring windows in whole percent of the tile (Deepness reads an int)."""
    return round(100 * (tile - stride) / tile)


def deepness_metadata(config: Any, tile: int) -> dict[str, str]:
    """Deepness' metadata for a model of `config` (a `ModelConfig`) exported at `tile` pixels.

    Built from `config.to_dict()` with defaults for absent fields, so configs that carry more
    (fine-tuning runs) fit in unchanged. Values are JSON strings.
    """
    data = config.to_dict()
    inference = data.get("inference") or {}
    crop = int((inference.get("crop_size") or (tile, tile))[0])
    stride = int((inference.get("stride") or (crop, crop))[0])
    tile_stride = export_stride(crop, stride, tile)
    mean = [float(m) / 255 for m in inference.get("mean", (123.675, 116.28, 103.53))]
    std = [float(s) / 255 for s in inference.get("std", (58.395, 57.12, 57.375))]
    names = data.get("class_names") or placeholder_names(int(data["head"]["num_classes"]))
    meta: dict[str, Any] = {
        "model_type": "Segmentor",
        "class_names": {str(i): str(name) for i, name in enumerate(names)},
        "tiles_size": tile,
        "tile_size": tile,
        "tiles_overlap": overlap_percent(tile, tile_stride),
        "standardization_mean": mean,
        "standardization_std": std,
    }
    gsd_m = data.get("gsd_m")
    if gsd_m is not None:
        meta["resolution"] = round(float(gsd_m) * 100, 4)
    exported = dict(data)
    exported["inference"] = {
        **inference,
        "crop_size": [tile, tile],
        "stride": [tile_stride, tile_stride],
    }
    meta["crossearth_config"] = exported
    meta["crossearth_scores"] = SCORES_TENSOR
    meta["crossearth_bands"] = _bands_note(
        str(data.get("bands", "RGB")), data.get("band_indices"), data.get("band_names")
    )
    meta["crossearth_input_channels"] = int((data.get("backbone") or {}).get("in_chans", 3))
    meta["crossearth_output"] = OUTPUT_NOTE
    return {key: json.dumps(value) for key, value in meta.items()}


def _bands_note(bands: str, band_indices: Any = None, band_names: Any = None) -> str:
    if band_names and len(band_names) != 3:  # a model of other than three bands
        channels = ", ".join(f"{i} = {n}" for i, n in enumerate(band_names, start=1))
        return (
            f"{len(band_names)} input channels: {channels} (trained on file bands "
            f"{', '.join(str(b) for b in band_indices or ())})"
        )
    if bands.upper() == "IRRG":
        note = "IRRG: map near-infrared, red, green to input channels 1, 2, 3"
    else:
        note = f"{bands}: input channels 1, 2, 3 in this order"
    if band_indices:  # fine-tuned models record the file bands they were trained on
        note += f" (trained on file bands {', '.join(str(b) for b in band_indices)})"
    return note

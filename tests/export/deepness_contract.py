"""QGIS Deepness' side of the contract, re-stated from its code (v0.6.5) for the tests.

`read_metadata` parses the ONNX metadata the way the plugin's `ModelBase` getters do (every value
through `json.loads`, then float/int; class names sorted by int key and required consecutive);
`preprocess` is its tile preprocessing (cut channels, `* 1/255` to float32, standardise, NCHW).
Independent of crossearth's own code on purpose.
"""

from __future__ import annotations

import json

import numpy as np


def read_metadata(custom: dict[str, str]) -> dict:
    out: dict = {}
    if "model_type" in custom:
        out["model_type"] = str(json.loads(custom["model_type"])).capitalize()
    names = json.loads(custom["class_names"])
    if isinstance(names, dict):
        names = [names]
    lists = []
    for per_output in names:
        ordered = sorted(per_output.items(), key=lambda kv: int(kv[0]))
        for expected, (key, _) in enumerate(ordered):
            if int(key) != expected:
                raise ValueError("class names are not consecutive")
        lists.append([v for _, v in ordered])
    out["class_names"] = lists
    if "resolution" in custom:
        out["resolution"] = float(json.loads(custom["resolution"]))
    if "tile_size" in custom:
        out["tile_size"] = int(json.loads(custom["tile_size"]))
    if "tiles_overlap" in custom:
        out["tiles_overlap"] = int(json.loads(custom["tiles_overlap"]))
    out["mean"] = [float(x) for x in json.loads(custom["standardization_mean"])]
    out["std"] = [float(x) for x in json.loads(custom["standardization_std"])]
    return out


def preprocess(tiles_nhwc: np.ndarray, channels: int, mean, std) -> np.ndarray:
    x = tiles_nhwc[:, :, :, :channels]
    x = np.float32(x * 1.0 / 255.0)
    x = (x - np.array(mean)) / np.array(std)
    return np.transpose(x, (0, 3, 1, 2))

"""Deployment: ONNX (runnable in QGIS Deepness) and torch.export files, ONNX Runtime inference.

`export_onnx` and `export_program` write one file holding the network, its input normalisation
contract and its metadata; `OnnxSegmenter` runs an exported ONNX file through the streaming GeoTIFF
path without PyTorch models. Everything here imports `onnx`/`onnxruntime` lazily (the `onnx` extra).
"""

from crossearth.export.wrapper import DeployModel, caches_disabled

__all__ = ["DeployModel", "caches_disabled"]

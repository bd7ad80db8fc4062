"""`OnnxSegmenter`: an exported ONNX file behind the interface the streaming GeoTIFF path uses.

`StreamingSegmenter` calls `model(batch)` on normalised windows and reads `model.config`,
`model.num_classes` and `model.device`; this class provides exactly those with ONNX Runtime
underneath, so `crossearth predict --model model.onnx` needs no PyTorch weights. It returns the raw
official scores (a named tensor inside the graph), so window blending is the same as PyTorch's and
the class map equals the PyTorch model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crossearth.config import ModelConfig
from crossearth.errors import InputError
from crossearth.export.metadata import SCORES_TENSOR
from crossearth.export.onnx import require_onnx


class OnnxSegmenter:
    """Runs an ONNX file exported by `crossearth export` with ONNX Runtime.

    Call it with a normalised batch [B, 3, h, w] (float32, h, w <= S, the static tile): smaller
    windows (images smaller than the tile) are zero-padded at the bottom/right, the value of a
    mean-colour pixel, and cropped back, so for those the result approximates PyTorch's.
    Returns the official scores [B, C, h, w] as a float32 tensor.
    """

    def __init__(self, path: str | Path, *, device: str = "cpu", threads: int | None = None):
        onnx, ort = require_onnx()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"ONNX model {self.path} does not exist")
        try:
            proto = onnx.load(str(self.path))
        except Exception as exc:
            raise InputError(f"{self.path} is not a readable ONNX file ({exc})") from None
        meta = {p.key: p.value for p in proto.metadata_props}
        if "crossearth_config" not in meta:
            raise InputError(
                f"{self.path} was not written by `crossearth export` (no crossearth_config "
                "metadata); it cannot be run by crossearth predict"
            )
        self.config = ModelConfig.from_dict(json.loads(meta["crossearth_config"]))
        self.config = self.config.with_display_defaults()
        self.name = self.path.name
        from crossearth.export.quantize import AGREEMENT_KEY, QUANTIZATION_KEY

        #: "int8" for a quantised file, else "fp32" (what `predict`'s summary records)
        self.precision = "int8" if QUANTIZATION_KEY in meta else "fp32"
        #: why this precision runs (set by whoever chose it; recorded in `predict`'s summary)
        self.precision_reason = f"the {self.precision} ONNX file as given"
        self.check_agreement = json.loads(meta[AGREEMENT_KEY]) if AGREEMENT_KEY in meta else None
        scores = json.loads(meta.get("crossearth_scores", json.dumps(SCORES_TENSOR)))
        _expose_output(proto, scores)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") or device == "auto":
            available = ort.get_available_providers()
            if "CUDAExecutionProvider" in available:
                providers.insert(0, "CUDAExecutionProvider")
            elif str(device).startswith("cuda"):
                raise InputError("ONNX Runtime here has no CUDA provider; use --device cpu")
        self.session = ort.InferenceSession(
            proto.SerializeToString(), sess_options=options, providers=providers
        )
        del proto
        (inp,) = self.session.get_inputs()
        self.input_name = inp.name
        self.tile = int(inp.shape[-1])
        self.scores_name = scores

    def predict(self, image: np.ndarray, **kwargs: Any) -> Any:
        """Segment an H x W x C uint8 array with the official protocol, as
        `CrossEarth.predict` does (`crossearth.inference.predict_array`; a `Prediction`)."""
        from crossearth.inference import predict_array

        return predict_array(self, image, **kwargs)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        h, w = batch.shape[-2:]
        if h > self.tile or w > self.tile:
            raise InputError(
                f"{self.name} takes {self.tile}x{self.tile} windows (its static input); got "
                f"{h}x{w}: leave --tile at the model's size"
            )
        x = batch.detach().float().cpu()
        if (h, w) != (self.tile, self.tile):
            x = F.pad(x, (0, self.tile - w, 0, self.tile - h))
        (out,) = self.session.run(
            [self.scores_name], {self.input_name: np.ascontiguousarray(x.numpy())}
        )
        return torch.from_numpy(out)[:, :, :h, :w]


def _expose_output(proto: Any, name: str) -> None:
    """Make the raw-scores tensor a graph output (in memory only) so the session returns it."""
    from onnx import TensorProto, helper

    graph = proto.graph
    if any(o.name == name for o in graph.output):
        return
    if not any(name in node.output for node in graph.node):
        raise InputError(f"the ONNX graph has no tensor {name!r} (not a crossearth export?)")
    graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))


def open_onnx(path: str | Path, device: str = "cpu", precision: str = "auto") -> OnnxSegmenter:
    """An ONNX file in the precision asked for: int8 quantises an fp32 file once (cached beside
    it, `crossearth.export.int8`); fp32 and bf16 cannot undo an int8 file."""
    path = Path(path)
    if precision == "int8" and not str(device).startswith("cuda"):
        from crossearth.export.int8 import require_int8

        require_int8()
    net = OnnxSegmenter(path, device=device)
    if precision == "bf16":
        raise InputError(
            f"{path.name} is an ONNX file: it runs in the precision it was exported in "
            f"({net.precision}); use --precision "
            + (
                "fp32, int8 (a cached int8 copy) or auto"
                if net.precision == "fp32"
                else "int8 or auto"
            )
        )
    if precision == "fp32" and net.precision == "int8":
        raise InputError(
            f"{path.name} holds int8 weights and cannot run in fp32: use --precision int8 (or "
            "auto), or the fp32 export or the PyTorch model for fp32"
        )
    if precision == "int8" and net.precision == "fp32":
        if str(device).startswith("cuda"):
            raise InputError("--precision int8 runs on the CPU (ONNX Runtime); use --device cpu")
        from crossearth.export.int8 import int8_onnx_file

        del net
        net = OnnxSegmenter(int8_onnx_file(path))
        net.precision_reason = "asked for (--precision int8): the int8 copy of the fp32 file"
    elif precision != "auto":
        net.precision_reason = f"asked for (--precision {precision})"
    return net

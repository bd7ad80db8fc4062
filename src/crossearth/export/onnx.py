"""`export_onnx`: a CrossEarth model -> one ONNX file that QGIS Deepness and ONNX Runtime run.

The graph takes one static square window `[B, N, S, S]` (N: the model's bands, 3 for RGB) (batch dynamic), normalised as Deepness
does (`/255`, then standardisation), and returns per-class probabilities `[B, C, S, S]`. Masked
attention and MSDeformAttn export as plain ONNX ops (`GridSample` needs opset >= 16); no custom op.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossearth.errors import InputError
from crossearth.export.metadata import SCORES_TENSOR, deepness_metadata
from crossearth.export.wrapper import (
    SUM_FLOOR,
    DeployModel,
    caches_disabled,
    position_embedding_for,
)
from crossearth.fileio import atomic_path

log = logging.getLogger(__name__)

MIN_OPSET = 16  # GridSample
DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
QUANTIZE = ("int8",)


def require_onnx() -> tuple[Any, Any]:
    """Import onnx and onnxruntime, or raise an `InputError` naming the extra to install."""
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise InputError(
            f"ONNX support needs the onnx extra: pip install 'crossearth[onnx]' ({exc})"
        ) from None
    return onnx, onnxruntime


def check_tile(model: torch.nn.Module, tile: int | None) -> int:
    """The export tile size: the model's crop by default; a positive multiple of the patch size."""
    cfg = model.config
    tile = int(tile or cfg.inference.crop_size[0])
    patch = cfg.backbone.patch_size
    if tile <= 0 or tile % patch:
        raise InputError(
            f"--tile must be a positive multiple of the patch size {patch}, got {tile}"
        )
    return tile


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    *,
    tile: int | None = None,
    opset: int = DEFAULT_OPSET,
    fp16: bool = False,
    quantize: str | None = None,
    min_agreement: float | None = None,
) -> Path:
    """Write `model` (a `CrossEarth`) as an ONNX file with Deepness metadata; returns the path.

    `tile`: the static input size S (default: the model's crop). `fp16` stores the weights in
    float16 (half the file) with a cast to float32 in front of each use, so the arithmetic stays
    float32. `quantize="int8"` applies ONNX Runtime's dynamic int8 quantisation with 7-bit
    weights to the backbone's weight MatMuls (for CPUs; `crossearth.export.quantize`) and writes
    the file only if it agrees with fp32 on at least `min_agreement` (default 99 %) of its check
    tile's pixels. The file is checked with `onnx.checker` and written atomically. The model is
    put in fp32 eval mode (in place) and should be on the CPU.

    Raises:
        InputError: bad options.
        QuantizationError: the int8 file falls below `min_agreement` (nothing is written).
    """
    onnx, _ = require_onnx()
    if opset < MIN_OPSET:
        raise InputError(f"--opset must be >= {MIN_OPSET} (GridSample), got {opset}")
    if quantize is not None and quantize not in QUANTIZE:
        raise InputError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if quantize and fp16:
        raise InputError("--fp16 and --quantize int8 exclude each other")
    tile = check_tile(model, tile)
    path = Path(path)
    model = model.float().eval()
    num_classes = int(model.num_classes)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".onnx-export-") as work:
        raw = Path(work) / "raw.onnx"
        _trace(model, raw, tile, opset)
        proto = onnx.load(str(raw))
        _append_normalisation(proto, num_classes, tile)
        if fp16:
            _weights_to_fp16(proto)
        for key, value in deepness_metadata(model.config, tile).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "crossearth"
        onnx.checker.check_model(proto)
        if quantize == "int8":
            from crossearth.export.quantize import MIN_AGREEMENT, quantize_proto

            floor = MIN_AGREEMENT if min_agreement is None else min_agreement
            proto, _ = quantize_proto(proto, min_agreement=floor)
        with atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
    return path


def _trace(model: torch.nn.Module, path: Path, tile: int, opset: int) -> None:
    dummy = torch.zeros(1, model.config.in_chans, tile, tile)
    net = DeployModel(model, normalise=False).eval()
    at_tile = position_embedding_for(model, tile)
    with caches_disabled(model), at_tile, torch.no_grad(), _quiet_tracer():
        torch.onnx.export(
            net,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[SCORES_TENSOR],
            dynamic_axes={INPUT_NAME: {0: "batch"}, SCORES_TENSOR: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


class _quiet_tracer:
    """Silence the tracer's warnings about Python shape arithmetic (static by design here)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def _append_normalisation(proto: Any, num_classes: int, tile: int) -> None:
    """probabilities = scores / max(Σ_c scores, floor); the raw scores stay a named tensor."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    (scores_out,) = [o for o in graph.output if o.name == SCORES_TENSOR]
    graph.output.remove(scores_out)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "crossearth_class_axis"),
            numpy_helper.from_array(np.array(SUM_FLOOR, dtype=np.float32), "crossearth_sum_floor"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node(
                "ReduceSum",
                [SCORES_TENSOR, "crossearth_class_axis"],
                ["crossearth_score_sum"],
                keepdims=1,
            ),
            helper.make_node(
                "Max", ["crossearth_score_sum", "crossearth_sum_floor"], ["crossearth_denominator"]
            ),
            helper.make_node("Div", [SCORES_TENSOR, "crossearth_denominator"], [OUTPUT_NAME]),
        ]
    )
    shape = ["batch", num_classes, tile, tile]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, shape))


def _weights_to_fp16(proto: Any) -> None:
    """Store large float32 initializers as float16, each followed by a Cast back to float32."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    keep, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < 16:
            keep.append(init)
            continue
        array = numpy_helper.to_array(init)
        half = numpy_helper.from_array(array.astype(np.float16), f"{init.name}__fp16")
        keep.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)

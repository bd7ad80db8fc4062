"""int8 ONNX files that hold on every x86 CPU kind, and the agreement check that guards them.

**The format.** ONNX Runtime's dynamic quantisation of the ViT backbone's weight MatMuls (2-D
weights only; the head and Rein's small token products stay fp32): activations uint8, quantised
per call, weights int8 with **reduce_range** (7-bit: every weight in [-64, 64]).

**Why 7-bit weights.** ONNX Runtime (MLAS) multiplies u8 activations by s8 weights. With
AVX512-VNNI or AVX-VNNI (`vpdpbusd`) each product is accumulated in int32 and nothing can
overflow. A CPU without VNNI (AVX2-only laptops and older servers) uses `vpmaddubsw`, which adds
two adjacent u8 x s8 products into a *saturating int16*: with full-range weights two products
reach 2 x 255 x 128 = 65,280 > 32,767, the sum is clipped, and on an AVX2-only AMD EPYC the
previous (full-range) file agreed with fp32 on 42-70 % of the reference pixels. With weights in
[-64, 64] two products stay within 2 x 255 x 64 = 32,640 <= 32,767, so the int16 step is exact and
every CPU kind computes the same integers (ONNX Runtime's quantisation documentation recommends
`reduce_range` for such CPUs). Measured on the reference model (AVX512-VNNI CPU): 99.50 % /
99.54 % argmax agreement with PyTorch fp32 on inputs a / b, against 99.13 / 99.50 % for
full-range weights. ONNX Runtime picks its kernel from CPUID, with no switch to force the AVX2
path, so the AVX2 guarantee rests on this bound (tested on every file: `weights_in_7_bits`).

**The check.** `quantize_proto` runs the fp32 graph and the int8 graph on one smooth random
tile (its *check input*, Deepness' preprocessing) and refuses (`QuantizationError`) a file whose
argmax agreement falls below `MIN_AGREEMENT` (99 %, the agreement crossearth promises for int8).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from crossearth.errors import CrossEarthError

#: argmax agreement with fp32 an int8 file must reach on its check input (share of pixels).
MIN_AGREEMENT = 0.99
#: metadata key marking a quantised file (its value describes the format).
QUANTIZATION_KEY = "crossearth_quantization"
#: metadata key holding the int8 file's argmax agreement with fp32 on its check input (0..1).
AGREEMENT_KEY = "crossearth_int8_check_agreement"
FORMAT = "int8 dynamic: backbone MatMul weights, 7-bit (reduce_range), activations u8"


class QuantizationError(CrossEarthError, ValueError):
    """An int8 file would agree with fp32 on fewer pixels than promised, or cannot be made."""


def is_quantized(proto: Any) -> bool:
    """True for a file written by `quantize_proto` (its metadata says so)."""
    return any(p.key == QUANTIZATION_KEY for p in proto.metadata_props)


def backbone_weight_matmuls(proto: Any) -> list[str]:
    """Names of the MatMul/Gemm nodes of the ViT backbone that multiply by a 2-D weight.

    These hold most of the FLOPs. Quantising the head too (its masked attention thresholds the
    masks at sigmoid 0.5) costs agreement: on the reference model, argmax agreement with fp32 fell
    from 99.1 % (backbone weights only) to 93.4 % (every weight MatMul). Rein's token products
    and the feature merge (weights of other ranks, little work) stay fp32 too: quantising them
    lowered agreement on reference input a from 99.50 % to 98.18 % with 7-bit weights."""
    weights = {init.name: len(init.dims) for init in proto.graph.initializer}
    return [
        node.name
        for node in proto.graph.node
        if node.op_type in ("MatMul", "Gemm")
        and node.name.startswith("/model/backbone/")
        and any(weights.get(name) == 2 for name in node.input)
    ]


def weights_in_7_bits(proto: Any) -> bool:
    """True when every int8 weight of the graph lies in [-64, 64] (no int16 saturation on AVX2)."""
    from onnx import TensorProto, numpy_helper

    found = False
    for init in proto.graph.initializer:
        if init.data_type == TensorProto.INT8 and len(init.dims) == 2:
            found = True
            if np.abs(numpy_helper.to_array(init).astype(np.int16)).max() > 64:
                return False
    return found


def check_agreement(fp32: bytes, int8: bytes) -> float:
    """argmax agreement (share of pixels, 0..1) of two serialised crossearth ONNX graphs on the
    check input: one smooth random tile of the graph's size and bands, preprocessed as Deepness
    does (`crossearth.export.verify`)."""
    import onnxruntime as ort

    from crossearth.export.verify import deepness_input, random_tile

    labels = []
    for blob in (fp32, int8):
        session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        mean = json.loads(meta["standardization_mean"])
        std = json.loads(meta["standardization_std"])
        (inp,) = session.get_inputs()
        x = deepness_input(random_tile(int(inp.shape[-1]), bands=len(mean)), mean, std)
        labels.append(session.run(None, {inp.name: x})[0].argmax(1))
        del session
    return float((labels[0] == labels[1]).mean())


def quantize_proto(proto: Any, *, min_agreement: float = MIN_AGREEMENT) -> tuple[Any, float]:
    """The int8 version of an fp32 crossearth ONNX graph and its agreement on the check input.

    Raises:
        QuantizationError: the graph has no backbone MatMul (not a crossearth export), is already
            int8, or the int8 graph agrees with fp32 on less than `min_agreement` of the check
            input's pixels.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if is_quantized(proto):
        raise QuantizationError("the ONNX file is already int8")
    nodes = backbone_weight_matmuls(proto)
    if not nodes:
        raise QuantizationError("no backbone MatMul found to quantise (not a crossearth export?)")
    with tempfile.TemporaryDirectory(prefix="crossearth-int8-") as work:
        src, dst = Path(work) / "fp32.onnx", Path(work) / "int8.onnx"
        onnx.save(proto, str(src))
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer's generic "consider pre-processing" warning
        try:
            quantize_dynamic(
                str(src),
                str(dst),
                weight_type=QuantType.QInt8,
                reduce_range=True,  # 7-bit weights: see the module docstring
                op_types_to_quantize=["MatMul", "Gemm"],
                nodes_to_quantize=nodes,
            )
        finally:
            root.setLevel(level)
        quantized = onnx.load(str(dst))
    present = {p.key for p in quantized.metadata_props}
    for prop in proto.metadata_props:
        if prop.key not in present:
            entry = quantized.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value
    entry = quantized.metadata_props.add()
    entry.key, entry.value = QUANTIZATION_KEY, json.dumps(FORMAT)
    onnx.checker.check_model(quantized)
    agreement = check_agreement(proto.SerializeToString(), quantized.SerializeToString())
    if agreement < min_agreement:
        raise QuantizationError(
            f"the int8 file agrees with fp32 on {agreement:.2%} of its check tile's pixels, "
            f"below the {min_agreement:.1%} int8 promises; nothing written (use fp32, or bf16 "
            "where the CPU has native bf16)"
        )
    entry = quantized.metadata_props.add()
    entry.key, entry.value = AGREEMENT_KEY, json.dumps(round(agreement, 6))
    return quantized, agreement


def quantize_file(
    source: str | Path, target: str | Path, *, min_agreement: float = MIN_AGREEMENT
) -> tuple[Path, float]:
    """int8-quantise an fp32 file written by `export_onnx`; (target, agreement on the check
    input). Written atomically, and only when the check passes (`quantize_proto`).

    Raises:
        QuantizationError: see `quantize_proto`.
    """
    import onnx

    from crossearth.fileio import atomic_path

    target = Path(target)
    proto, agreement = quantize_proto(onnx.load(str(source)), min_agreement=min_agreement)
    with atomic_path(target) as tmp:
        onnx.save(proto, str(tmp))
    return target, agreement

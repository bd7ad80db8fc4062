"""bf16 (backbone in bf16, head in fp32) agrees with the fp32 parity path on >= 99% of pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from reference import config_path, reference_dir

import crossearth
from crossearth.runtime import resolve_precision


@pytest.mark.parametrize("tag", ["a", "b"])
def test_bf16_argmax_agreement(tag):
    ref = reference_dir()
    image = np.asarray(Image.open(ref / f"small_ref2_input_{tag}.png").convert("RGB"))
    fp32 = crossearth.load_model(ref / "small_ref2.pth", config=config_path(), precision="fp32")
    bf16 = crossearth.load_model(ref / "small_ref2.pth", config=config_path(), precision="bf16")
    assert bf16.backbone.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert bf16.decode_head.cls_embed.weight.dtype == torch.float32
    a, b = fp32.predict(image), bf16.predict(image)
    assert b.scores.dtype == np.float32
    assert not np.array_equal(a.scores, b.scores)  # really a different computation
    agreement = (a.labels == b.labels).mean()
    assert agreement >= 0.99, f"bf16 agrees with fp32 on {100 * agreement:.2f}% of pixels"


def test_precision_names():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("auto", cpu) in (torch.float32, torch.bfloat16)
    with pytest.raises(crossearth.errors.ConfigError):
        resolve_precision("fp8", cpu)

"""CrossEarth = Rein-tuned DINOv2 backbone + Rein Mask2Former head, with the official key layout."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from crossearth.config import ModelConfig
from crossearth.models.backbone import PYRAMID_SCALES, ReinDinoBackbone
from crossearth.models.mask2former import HeadOutput, ReinMask2FormerHead, semantic_scores

if TYPE_CHECKING:
    from crossearth.inference import Prediction


class CrossEarth(nn.Module):
    """The segmentation network. State-dict keys match the official `backbone.*` / `decode_head.*`.

    `forward` takes a normalised batch [B, 3, H, W] (H, W multiples of 16) and returns the official
    semantic scores [B, C, H, W]; `predict` runs the whole official test protocol on a uint8 image.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config.with_display_defaults()
        self.backbone = ReinDinoBackbone(config.backbone, config.rein)
        if config.head.num_queries != config.rein.token_length:
            raise ValueError(
                f"num_queries ({config.head.num_queries}) must equal the Rein token_length "
                f"({config.rein.token_length}): the queries are the Rein tokens"
            )
        self.decode_head = ReinMask2FormerHead(config.head, [config.backbone.embed_dim] * 4)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def min_input_size(self) -> int:
        """Smallest window side (px) the network takes: its coarsest feature level (scale
        `min(PYRAMID_SCALES)` of the patch grid) must hold at least one cell. Smaller inputs are
        zero-padded to it by `predict` and cropped back."""
        return self.config.backbone.patch_size * math.ceil(1 / min(PYRAMID_SCALES))

    @property
    def device(self) -> torch.device:
        return self.backbone.cls_token.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.cls_token.dtype

    def forward_head(self, x: torch.Tensor, *, all_stages: bool = False) -> HeadOutput:
        feats, queries = self.backbone(x.to(self.dtype), resize=False)
        head_dtype = self.decode_head.querys2feat.weight.dtype
        return self.decode_head(
            feats, queries.to(head_dtype), all_stages=all_stages, scales=PYRAMID_SCALES
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_head(x)
        return semantic_scores(out.final_class_logits, out.final_mask_logits, tuple(x.shape[-2:]))

    @torch.inference_mode()
    def predict(self, image: np.ndarray, **kwargs) -> Prediction:
        """Segment an H x W x 3 uint8 RGB array with the official protocol (see `predict_array`).

        Any size from 1 x 1 px works: windows smaller than `min_input_size` are zero-padded
        (as the model's input normalisation maps padding to the mean colour) and cropped back.

        Raises:
            TypeError: `image` is not a NumPy array.
            ValueError: `image` is not H x W x 3 uint8.
        """
        from crossearth.inference import predict_array

        return predict_array(self, image, **kwargs)

"""Named architectures: the two official ViT-L configs and smaller ones of the same structure.

The small presets (ViT-B/S/tiny) keep every module type and the official head, so they exercise the
same code paths on a laptop CPU and in tests; they have no pretrained weights.
"""

from __future__ import annotations

from collections.abc import Callable

from crossearth.config import (
    BackboneConfig,
    HeadConfig,
    InferenceConfig,
    ModelConfig,
    ReinConfig,
)


def vitl_512(num_classes: int = 6) -> ModelConfig:
    """Official `CrossEarth_dinov2_mask2former_512x512`: ViT-L/16, crop 512, stride 341."""
    return ModelConfig(
        backbone=BackboneConfig(img_size=512),
        rein=ReinConfig(),
        head=HeadConfig(num_classes=num_classes),
        inference=InferenceConfig(crop_size=(512, 512), stride=(341, 341)),
    )


def vitl_1024(num_classes: int = 6) -> ModelConfig:
    """Official `CrossEarth_dinov2_mask2former_1024x1024`: identical but for the 64x64 grid."""
    return ModelConfig(
        backbone=BackboneConfig(img_size=1024),
        rein=ReinConfig(),
        head=HeadConfig(num_classes=num_classes),
        inference=InferenceConfig(crop_size=(1024, 1024), stride=(683, 683)),
    )


def _small(embed_dim: int, depth: int, heads: int, out_indices: tuple[int, ...], lora: int,
           encoder_layers: int, decoder_layers: int, decoder_ffn: int, img_size: int,
           num_classes: int) -> ModelConfig:  # fmt: skip
    stride = (img_size * 2 + 2) // 3
    return ModelConfig(
        backbone=BackboneConfig(
            embed_dim=embed_dim,
            depth=depth,
            num_heads=heads,
            img_size=img_size,
            out_indices=out_indices,
        ),
        rein=ReinConfig(lora_dim=lora),
        head=HeadConfig(
            num_classes=num_classes,
            encoder_layers=encoder_layers,
            decoder_layers=decoder_layers,
            decoder_ffn_dim=decoder_ffn,
        ),
        inference=InferenceConfig(crop_size=(img_size, img_size), stride=(stride, stride)),
    )


def vitb_512(num_classes: int = 6) -> ModelConfig:
    """ViT-B/16 (768, 12 blocks, 12 heads) with the official head; out_indices 3, 5, 7, 11."""
    return _small(768, 12, 12, (3, 5, 7, 11), 16, 6, 9, 2048, 512, num_classes)


def vits_512(num_classes: int = 6) -> ModelConfig:
    """ViT-S/16 (384, 12 blocks, 6 heads), lighter head (4 encoder / 6 decoder layers)."""
    return _small(384, 12, 6, (3, 5, 7, 11), 8, 4, 6, 1024, 512, num_classes)


def vit_tiny_256(num_classes: int = 6) -> ModelConfig:
    """The structure of the official reference model (128-d, 6 blocks): for tests and demos."""
    return _small(128, 6, 2, (1, 2, 4, 5), 8, 2, 3, 1024, 256, num_classes)


PRESETS: dict[str, Callable[[int], ModelConfig]] = {
    "vitl-512": vitl_512,
    "vitl-1024": vitl_1024,
    "vitb-512": vitb_512,
    "vits-512": vits_512,
    "vit-tiny-256": vit_tiny_256,
}


def get_preset(name: str, num_classes: int = 6) -> ModelConfig:
    """Config of a named preset.

    Raises:
        UnknownNameError: (a `KeyError`) `name` is not a preset; the message lists the known names.
    """
    from crossearth.errors import UnknownNameError

    try:
        factory = PRESETS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}"
        ) from None
    return factory(num_classes)

"""Read the official mmseg `cfg.model` dict (as JSON) into a `ModelConfig`.

Only settings our implementation supports are accepted; anything that would silently change the
math (another backbone or head type, Rein without linked queries) is refused with a clear error.
"""

from __future__ import annotations

from typing import Any

from crossearth.config import (
    BackboneConfig,
    HeadConfig,
    InferenceConfig,
    ModelConfig,
    ReinConfig,
)
from crossearth.errors import ConfigError

SUPPORTED_BACKBONES = {"ReinsDinoVisionTransformer"}
SUPPORTED_REINS = {"LoRAReins", "Reins"}
SUPPORTED_HEADS = {"ReinMask2FormerHead"}
DEFAULT_OUT_INDICES = (7, 11, 15, 23)


def is_official_config(data: dict[str, Any]) -> bool:
    """True for an mmseg model dict (it has `backbone` and `decode_head` with `type` entries)."""
    return isinstance(data.get("backbone"), dict) and "type" in data["backbone"]


def config_from_official(model_cfg: dict[str, Any]) -> ModelConfig:
    """Translate an official `cfg.model` (EncoderDecoder + Rein DINOv2 + ReinMask2FormerHead)."""
    try:
        return _translate(model_cfg)
    except ConfigError:
        raise
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"malformed official model config ({type(exc).__name__}: {exc})"
        ) from None


def _translate(model_cfg: dict[str, Any]) -> ModelConfig:
    if model_cfg.get("type", "EncoderDecoder") not in {"EncoderDecoder", "PEFTEncoderDecoder"}:
        raise ConfigError(f"unsupported segmentor type {model_cfg.get('type')!r}")
    bb = _section(model_cfg, "backbone", SUPPORTED_BACKBONES)
    rein = bb.get("reins_config") or {}
    if rein.get("type") not in SUPPORTED_REINS:
        raise ConfigError(
            f"backbone.reins_config.type {rein.get('type')!r} is not one of {sorted(SUPPORTED_REINS)}"
        )
    if not rein.get("link_token_to_query", False):
        raise ConfigError(
            "reins_config.link_token_to_query is false: the ReinMask2FormerHead needs Rein queries"
        )
    head = _section(model_cfg, "decode_head", SUPPORTED_HEADS)
    if not head.get("replace_query_feat", False):
        raise ConfigError("decode_head.replace_query_feat=False (query_feat head) is not supported")
    pix = head.get("pixel_decoder", {})
    enc = pix.get("encoder", {}).get("layer_cfg", {})
    enc_attn, enc_ffn = enc.get("self_attn_cfg", {}), enc.get("ffn_cfg", {})
    dec = head.get("transformer_decoder", {})
    dec_layer = dec.get("layer_cfg", {})
    feat = int(head.get("feat_channels", 256))
    depth = int(bb.get("depth", 12))
    embed = int(bb.get("embed_dim", 768))
    backbone = BackboneConfig(
        embed_dim=embed,
        depth=depth,
        num_heads=int(bb.get("num_heads", 12)),
        mlp_ratio=float(bb.get("mlp_ratio", 4.0)),
        patch_size=int(bb.get("patch_size", 16)),
        img_size=int(bb.get("img_size", 224)),
        out_indices=tuple(int(i) for i in bb.get("out_indices", DEFAULT_OUT_INDICES)),
        layer_scale_init=bb.get("init_values"),
        qkv_bias=bool(bb.get("qkv_bias", True)),
        proj_bias=bool(bb.get("proj_bias", True)),
        ffn_bias=bool(bb.get("ffn_bias", True)),
    )
    if bb.get("ffn_layer", "mlp") != "mlp":
        raise ConfigError(
            f"backbone.ffn_layer {bb.get('ffn_layer')!r} is not supported (only 'mlp')"
        )
    if int(rein.get("embed_dims", embed)) != embed or int(rein.get("num_layers", depth)) != depth:
        raise ConfigError("reins_config embed_dims/num_layers must equal the backbone's")
    reins = ReinConfig(
        token_length=int(rein.get("token_length", 100)),
        lora_dim=int(rein["lora_dim"]) if rein.get("type") == "LoRAReins" else None,
        query_dims=int(rein.get("query_dims", 256)),
        scale_init=float(rein.get("scale_init", 1e-3)),
        use_softmax=bool(rein.get("use_softmax", True)),
        zero_mlp_delta_f=bool(rein.get("zero_mlp_delta_f", False)),
    )
    head_cfg = HeadConfig(
        num_classes=int(head["num_classes"]),
        num_queries=int(head.get("num_queries", 100)),
        feat_channels=feat,
        out_channels=int(head.get("out_channels", 256)),
        num_transformer_feat_level=int(head.get("num_transformer_feat_level", 3)),
        pos_num_feats=int(head.get("positional_encoding", {}).get("num_feats", feat // 2)),
        norm_groups=int(pix.get("norm_cfg", {}).get("num_groups", 32)),
        encoder_layers=int(pix.get("encoder", {}).get("num_layers", 6)),
        encoder_heads=int(enc_attn.get("num_heads", 8)),
        encoder_points=int(enc_attn.get("num_points", 4)),
        encoder_ffn_dim=int(enc_ffn.get("feedforward_channels", 1024)),
        decoder_layers=int(dec.get("num_layers", 9)),
        decoder_heads=int(dec_layer.get("self_attn_cfg", {}).get("num_heads", 8)),
        decoder_ffn_dim=int(dec_layer.get("ffn_cfg", {}).get("feedforward_channels", 2048)),
    )
    cross_heads = int(dec_layer.get("cross_attn_cfg", {}).get("num_heads", head_cfg.decoder_heads))
    if cross_heads != head_cfg.decoder_heads:
        raise ConfigError(
            "decoder self- and cross-attention with different head counts are not supported"
        )
    if (
        int(enc_attn.get("num_levels", head_cfg.num_transformer_feat_level))
        != head_cfg.num_transformer_feat_level
    ):
        raise ConfigError("pixel decoder num_levels must equal num_transformer_feat_level")
    return ModelConfig(
        backbone=backbone, rein=reins, head=head_cfg, inference=_inference(model_cfg, backbone)
    )


def _section(model_cfg: dict[str, Any], name: str, supported: set[str]) -> dict[str, Any]:
    section = model_cfg.get(name)
    if not isinstance(section, dict):
        raise ConfigError(f"official config has no {name!r} section")
    if section.get("type") not in supported:
        raise ConfigError(
            f"{name}.type {section.get('type')!r} is not supported (expected one of {sorted(supported)})"
        )
    return section


def _inference(model_cfg: dict[str, Any], backbone: BackboneConfig) -> InferenceConfig:
    pre = model_cfg.get("data_preprocessor") or {}
    test = model_cfg.get("test_cfg") or {}
    mean = tuple(float(v) for v in pre.get("mean", (123.675, 116.28, 103.53)))
    std = tuple(float(v) for v in pre.get("std", (58.395, 57.12, 57.375)))
    if not pre.get("bgr_to_rgb", True):
        # The official loader reads BGR; without the flip the model was trained on BGR input.
        raise ConfigError(
            "data_preprocessor.bgr_to_rgb=False (BGR-trained models) is not supported"
        )
    if test.get("mode", "slide") != "slide":
        raise ConfigError(f"test_cfg.mode {test.get('mode')!r} is not supported (only 'slide')")
    crop = tuple(int(v) for v in test.get("crop_size", (backbone.img_size, backbone.img_size)))
    stride = tuple(int(v) for v in test.get("stride", (backbone.img_size * 2 // 3,) * 2))
    return InferenceConfig(mean=mean, std=std, crop_size=crop, stride=stride)

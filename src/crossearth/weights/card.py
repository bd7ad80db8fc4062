"""The model card (`README.md` on the Hub) generated from a model's config.

Built from `ModelConfig.to_dict()` field by field with defaults, so fields added later (band
indices, scaling rule, training run details, metrics) appear without changing this module: known
descriptive fields get their own sections, any other extra field is listed under "Other settings",
and fields whose name mentions training, source data or metrics go to those sections.
"""

from __future__ import annotations

import json
from typing import Any

from crossearth.data.classes import placeholder_names

ARCHITECTURE_KEYS = {"backbone", "rein", "head", "inference"}
DESCRIBED_KEYS = {"class_names", "palette", "bands", "gsd_m"}
BASE_LICENCES = (
    "DINOv2 ViT-L backbone weights: Apache-2.0 (Meta AI, facebookresearch/dinov2)",
    "CrossEarth code and released weights: MIT (Cusyoung/CrossEarth)",
    "crossearth (this implementation): MIT",
)


def _section_of(key: str) -> str:
    low = key.lower()
    if "metric" in low or low in {"miou", "scores", "results", "evaluation"}:
        return "Metrics"
    if "source" in low or "dataset" in low or "domain" in low or low == "data":
        return "Source data"
    if "train" in low or low in {"run", "run_info", "optimizer", "schedule", "setting"}:
        return "Training"
    return "Other settings"


def _architecture(cfg: dict[str, Any]) -> str:
    bb, head = cfg.get("backbone", {}), cfg.get("head", {})
    names = {1024: "ViT-L", 768: "ViT-B", 384: "ViT-S"}
    dim = bb.get("embed_dim", 1024)
    vit = names.get(dim, f"ViT ({dim}-d)")
    return (
        f"DINOv2 {vit}/{bb.get('patch_size', 16)} ({bb.get('depth', '?')} blocks) with Rein "
        f"adapters and a Mask2Former head ({head.get('num_queries', '?')} queries, "
        f"{head.get('decoder_layers', '?')} decoder layers, MSDeformAttn pixel decoder)"
    )


def _value(value: Any) -> str:
    if isinstance(value, dict | list | tuple):
        return "\n```json\n" + json.dumps(value, indent=2, default=str) + "\n```\n"
    return f"`{value}`"


def model_card(
    config: Any, repo_id: str, *, filename: str = "model.safetensors", extra: dict | None = None
) -> str:
    """Markdown model card for `config` (a `ModelConfig`) published as `repo_id/filename`.

    `extra` adds descriptive fields not in the config (e.g. a zoo entry's source domain); the
    config wins where both have a field."""
    cfg = {**(extra or {}), **config.to_dict()}
    n = int(cfg.get("head", {}).get("num_classes", 0))
    names = list(cfg.get("class_names") or placeholder_names(n))
    palette = list(cfg.get("palette") or [])
    inference = cfg.get("inference", {})
    crop = list(inference.get("crop_size", (512, 512)))
    stride = list(inference.get("stride", crop))
    bands = str(cfg.get("bands", "RGB"))
    gsd = cfg.get("gsd_m")
    short = repo_id.split("/")[-1]
    lines = [
        "---",
        "license: mit",
        "library_name: crossearth",
        "pipeline_tag: image-segmentation",
        "tags:",
        "- remote-sensing",
        "- semantic-segmentation",
        "- domain-generalization",
        "- crossearth",
        "---",
        "",
        f"# {short}",
        "",
        f"A CrossEarth semantic-segmentation model: {_architecture(cfg)}. It is stored in the "
        f"crossearth single-file format "
        f"(`{filename}`: safetensors weights with the model config in the file's metadata).",
        "",
        "## Classes",
        "",
        "| id | class | colour |",
        "| --- | --- | --- |",
    ]
    for i, name in enumerate(names):
        colour = "#{:02x}{:02x}{:02x}".format(*palette[i]) if i < len(palette) else "-"
        lines.append(f"| {i} | {name} | `{colour}` |")
    lines += [
        "",
        "## Input",
        "",
        f"- Bands, in the order of the three input channels: **{bands}**"
        + (" (near-infrared, red, green)" if bands.upper() == "IRRG" else ""),
        "- Ground-sample distance of the training imagery: "
        + (f"**{float(gsd):g} m** ({float(gsd) * 100:g} cm) per pixel" if gsd else "not recorded"),
        f"- Sliding window: crop {crop[0]}x{crop[-1]} pixels, stride {stride[0]}",
        f"- Normalisation: 8-bit pixels minus mean {list(inference.get('mean', []))}, divided by "
        f"std {list(inference.get('std', []))}",
        "",
    ]
    sections: dict[str, list[str]] = {}
    for key, value in cfg.items():
        if key in ARCHITECTURE_KEYS | DESCRIBED_KEYS or value in (None, "", [], {}):
            continue
        sections.setdefault(_section_of(key), []).append(f"- **{key}**: {_value(value)}")
    for title in ("Source data", "Training", "Metrics", "Other settings"):
        lines += [f"## {title}", ""]
        lines += sections.get(title) or [
            "Not recorded in this model's file." if title != "Other settings" else "None."
        ]
        lines.append("")
    hub = f"hf-hub:{repo_id}" + ("" if filename == "model.safetensors" else f"/{filename}")
    lines += [
        "## How to run it",
        "",
        "Command line (with crossearth installed):",
        "",
        "```bash",
        f"crossearth predict scene.tif --model {hub} -o out/",
        "```",
        "",
        "Python:",
        "",
        "```python",
        "import crossearth",
        f'model = crossearth.load_model("{hub}")',
        "prediction = model.predict(image)  # H x W x 3 uint8 -> labels, scores",
        "```",
        "",
        "QGIS ([Deepness](https://qgis-plugin-deepness.readthedocs.io/) plugin): export one ONNX "
        "file with its metadata inside, then load it in Deepness as a Segmentor:",
        "",
        "```bash",
        f"crossearth export {hub} -o {short}.onnx  # needs the onnx extra: crossearth[onnx]",
        "```",
        "",
        "## Licence",
        "",
        *[f"- {item}" for item in BASE_LICENCES],
        "- The training data keeps its own licence; check it before commercial use.",
        "",
    ]
    return "\n".join(lines)

"""`crossearth export` (ONNX for QGIS Deepness / ONNX Runtime, torch.export) and `crossearth push`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crossearth.cli.app import BackboneOpt, ConfigOpt, DownloadOpt, _report_load, app, console
from crossearth.errors import InputError
from crossearth.wording import with_article

FORMATS = {"onnx": ".onnx", "torch-export": ".pt2"}


@app.command()
def export(
    model: Annotated[
        str, typer.Argument(help="Zoo name, model file (.pth/.safetensors) or hf-hub:owner/name.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="model.onnx or model.pt2.")],
    format: Annotated[
        str | None,
        typer.Option("--format", help="onnx or torch-export (default: from the output suffix)."),
    ] = None,
    tile: Annotated[
        int | None, typer.Option(min=16, help="Static input size S (default: the model's crop).")
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 16 for GridSample).")] = 17,
    fp16: Annotated[
        bool, typer.Option(help="ONNX: store weights in float16 (half the file; fp32 arithmetic).")
    ] = False,
    quantize: Annotated[
        str | None,
        typer.Option(
            help="ONNX: int8 (dynamic int8 backbone MatMul weights, 7-bit: exact on every x86 "
            "CPU kind; written only if it agrees with fp32 on >= 99 % of a check tile)."
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="Run one tile through the file and PyTorch and report agreement.")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    download: DownloadOpt = False,
) -> None:
    """Export a model as one file: ONNX with QGIS Deepness metadata, or a torch.export program.

    Input: one static S x S window [B, N, S, S] (batch dynamic; N = the model's bands, 3 for
    RGB), pixels/255 standardised with the
    mean/std in the metadata. Output: per-class probabilities [B, C, S, S] (the official scores
    divided by their sum over classes; the argmax is unchanged).
    """
    from crossearth.weights import load_model

    fmt = format or {".onnx": "onnx", ".pt2": "torch-export"}.get(output.suffix.lower())
    if fmt not in FORMATS:
        raise InputError(
            f"--format must be one of {', '.join(FORMATS)} (or use a .onnx/.pt2 output name)"
        )
    if output.suffix.lower() != FORMATS[fmt]:
        raise InputError(
            f"{with_article(fmt)} output must end in {FORMATS[fmt]}, got {output.name}"
        )
    if fmt != "onnx" and (fp16 or quantize or opset != 17):
        raise InputError("--opset, --fp16 and --quantize apply to ONNX exports only")
    if not output.parent.is_dir():
        raise InputError(f"output folder {output.parent} does not exist")
    if output.exists() and not overwrite:
        raise InputError(f"{output} exists; pass --overwrite to replace it")
    if fmt == "onnx":
        from crossearth.export.onnx import require_onnx

        require_onnx()  # fail before loading a large model
    net = load_model(model, config=config, backbone=backbone, download=download)
    _report_load(net)
    if fmt == "onnx":
        from crossearth.export.onnx import export_onnx

        export_onnx(net, output, tile=tile, opset=opset, fp16=fp16, quantize=quantize)
    else:
        from crossearth.export.torch_export import export_program

        export_program(net, output, tile=tile)
    size_mb = output.stat().st_size / 1e6
    console.print(f"wrote {output} ({size_mb:.1f} MB)")
    if verify:
        _verify(net, output, fmt)


def _verify(net, output: Path, fmt: str) -> None:
    """One smooth random tile, preprocessed as Deepness does, through the file and PyTorch."""
    from crossearth.export.verify import compare, deepness_input, random_tile

    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta().custom_metadata_map
        size = int(session.get_inputs()[0].shape[-1])

        def run(x):
            return session.run(None, {session.get_inputs()[0].name: x})[0]

    else:
        import torch

        from crossearth.export.torch_export import load_program

        program, meta_obj = load_program(output)
        meta = {k: json.dumps(v) for k, v in meta_obj.items()}
        size = int(json.loads(meta["tile_size"]))
        module = program.module()

        def run(x):
            with torch.no_grad():
                return module(torch.from_numpy(x)).numpy()

    mean, std = json.loads(meta["standardization_mean"]), json.loads(meta["standardization_std"])
    x = deepness_input(random_tile(size, bands=len(mean)), mean, std)
    agreement = compare(net, run, x)
    console.print(
        f"check on one {size}x{size} tile: probabilities max |diff| "
        f"{agreement.max_abs_diff:.2e}, argmax agreement {agreement.argmax_agreement:.2%}"
    )


@app.command()
def push(
    weights: Annotated[
        str, typer.Argument(help="Our .safetensors, an official .pth, or a zoo name.")
    ],
    repo: Annotated[str, typer.Option(help="Hub repository, owner/name (created if missing).")],
    private: Annotated[bool, typer.Option(help="Create the repository as private.")] = False,
    message: Annotated[str | None, typer.Option(help="Commit message.")] = None,
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    download: DownloadOpt = False,
) -> None:
    """Upload a model (as model.safetensors) with a generated model card to the Hugging Face Hub."""
    from crossearth.weights import load_model
    from crossearth.weights.push import push_model
    from crossearth.weights.zoo import ZOO

    net = load_model(weights, config=config, backbone=backbone, download=download)
    _report_load(net)
    entry = ZOO.get(weights)
    extra = {"source_domain": entry.source_domain} if entry else None
    path = Path(weights)
    result = push_model(
        net,
        repo,
        weights_file=path if path.is_file() else None,
        private=private or None,
        message=message,
        extra=extra,
    )
    console.print(f"pushed model.safetensors and README.md to {result['url']}")

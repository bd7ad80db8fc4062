"""`export_program`: a CrossEarth model -> a `torch.export` ExportedProgram file (`.pt2`).

Same contract as the ONNX file: a normalised window `[B, 3, S, S]` (S static, B dynamic) in,
per-class probabilities `[B, C, S, S]` out. The Deepness-style metadata and our config travel as
the extra file `crossearth_metadata.json` inside the archive (`load_program`).

Not offered: an AOTInductor package. `torch._inductor.aoti_compile_and_package` builds one from this
program on CPU, but with torch 2.14 its outputs were wrong on the reference model (argmax agreement
9 % with PyTorch, while the program itself matches within 1e-4), so it is not shipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from crossearth.export.metadata import deepness_metadata
from crossearth.export.onnx import check_tile
from crossearth.export.wrapper import DeployModel, caches_disabled, position_embedding_for
from crossearth.fileio import atomic_path

METADATA_FILE = "crossearth_metadata.json"
MAX_BATCH = 1024


def export_program(
    model: torch.nn.Module, path: str | Path, *, tile: int | None = None
) -> torch.export.ExportedProgram:
    """Trace `model` with `torch.export` at a static `tile` (default: its crop) and save it.

    The batch dimension is dynamic (1..1024). Inference-only caches are bypassed while tracing
    (`caches_disabled`). The file is written atomically; returns the program.
    """
    tile = check_tile(model, tile)
    model = model.float().eval()
    net = DeployModel(model).eval()
    example = (torch.zeros(2, model.config.in_chans, tile, tile),)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with caches_disabled(model), position_embedding_for(model, tile), torch.no_grad():
        program = torch.export.export(net, example, dynamic_shapes=({0: batch},))
    meta = {k: json.loads(v) for k, v in deepness_metadata(model.config, tile).items()}
    with atomic_path(Path(path)) as tmp:
        torch.export.save(program, str(tmp), extra_files={METADATA_FILE: json.dumps(meta)})
    return program


def load_program(path: str | Path) -> tuple[torch.export.ExportedProgram, dict]:
    """Load a `.pt2` written by `export_program`: the program and its metadata (decoded JSON)."""
    extra = {METADATA_FILE: ""}
    program = torch.export.load(str(path), extra_files=extra)
    return program, json.loads(extra[METADATA_FILE] or "{}")

"""The official reference (`small_ref2`): where it is, and its compact copy in the repository.

The reference is a reduced official checkpoint with the tensors the official CrossEarth code
produced from it (every stage of input a, the final scores of input b; provenance in the README
beside it). Tests, `crossearth demo` and the GPU benchmark compare our outputs with it.

Two layouts hold the same content:

- *expanded*: the files as the official run wrote them (`small_ref2.pth`, `small_ref2_*.npy`,
  PNG inputs and predictions, `small_ref2_config.json`, `small_ref2_run_info.json`);
- *compact* (in the repository, `tests/data/reference/`): the checkpoint's state dict as an
  xz-compressed safetensors file (`small_ref2.safetensors.xz`, its `meta` in the safetensors
  metadata), every `.npy` array in one LZMA-compressed `.npz` (`small_ref2_tensors.npz`, which
  `numpy.load` reads as it is), the PNG and JSON files as they are, and `manifest.json` with the
  sha256 of every checkpoint tensor.

`find_reference` returns an expanded folder: an override (an argument or `$CROSSEARTH_REFERENCE`,
either layout), else the repository's compact copy expanded once into the cache
(`~/.cache/crossearth/reference/<digest>`, or under `$CROSSEARTH_HOME`), else `../shared/reference`
beside the repository (the development layout). Expanding is lossless and checked: each `.npy`
file written matches the sha256 that the official run recorded in `small_ref2_run_info.json`, and
each checkpoint tensor the sha256 in `manifest.json`.

    python -m crossearth.reference pack SHARED_REFERENCE_DIR tests/data/reference
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

NAME = "small_ref2"
CHECKPOINT = f"{NAME}.pth"
PACKED_CHECKPOINT = f"{NAME}.safetensors.xz"
PACKED_TENSORS = f"{NAME}_tensors.npz"
MANIFEST = "manifest.json"
# Arrays equal to another stored array (checked when packing): not stored twice.
DUPLICATES = {"a_head_mask_logits_final": ("a_head_mask_logits_all_stages", -1)}


class ReferenceError(ValueError):
    """The reference files are incomplete or do not match their recorded checksums."""


def repository_copy() -> Path:
    """The compact copy inside a clone of the repository (may be absent in an installed wheel)."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "reference"


def is_expanded(folder: Path) -> bool:
    return (folder / CHECKPOINT).is_file()


def is_compact(folder: Path) -> bool:
    return (folder / PACKED_CHECKPOINT).is_file() and (folder / MANIFEST).is_file()


def find_reference(explicit: str | Path | None = None) -> Path | None:
    """The folder holding the expanded reference, or None where none can be found.

    Order: `explicit`, `$CROSSEARTH_REFERENCE` (each an expanded or compact folder: overrides),
    the repository's compact copy (expanded into the cache on first use), `../shared/reference`
    next to the repository or the working directory.

    Raises:
        ReferenceError: an override or the repository copy is present but damaged (a checksum
            differs or a file is missing).
    """
    overrides = [Path(explicit)] if explicit else []
    if os.environ.get("CROSSEARTH_REFERENCE"):
        overrides.append(Path(os.environ["CROSSEARTH_REFERENCE"]))
    repo = Path(__file__).resolve().parents[2]
    candidates = [
        *overrides,
        repository_copy(),
        repo.parent / "shared" / "reference",
        Path.cwd().parent / "shared" / "reference",
    ]
    for folder in candidates:
        if is_expanded(folder):
            return folder
        if is_compact(folder):
            return expand(folder)
    return None


def cache_root() -> Path:
    """`$CROSSEARTH_HOME`, else `~/.cache/crossearth` (as the model zoo's checkpoints)."""
    base = os.environ.get("CROSSEARTH_HOME")
    return Path(base) if base else Path.home() / ".cache" / "crossearth"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(compact: Path) -> str:
    """A short key of the compact copy's contents (its manifest names every file's sha256)."""
    return _sha256((compact / MANIFEST).read_bytes())[:16]


def expand(compact: Path, destination: Path | None = None) -> Path:
    """Write the expanded layout of a compact copy (once; later calls reuse it) and return it.

    The folder is built beside its final place and renamed into it, so a half-written copy is
    never used. Raises `ReferenceError` when a checksum differs.
    """
    destination = destination or cache_root() / "reference" / _digest(compact)
    if is_expanded(destination):
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".expanding-", dir=destination.parent))
    try:
        _expand_into(compact, work)
        try:
            work.rename(destination)
        except OSError:  # another process expanded it first
            if not is_expanded(destination):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return destination


def _expand_into(compact: Path, out: Path) -> None:
    import torch
    from safetensors.torch import load as load_safetensors

    manifest = json.loads((compact / MANIFEST).read_text())
    recorded = {}
    info_path = compact / f"{NAME}_run_info.json"
    if info_path.is_file():
        recorded = json.loads(info_path.read_text()).get("sha256", {})
    for name in manifest["files"]:
        src = compact / name
        if not src.is_file():
            raise ReferenceError(f"reference file missing: {src}")
        if _sha256(src.read_bytes()) != manifest["files"][name]:
            raise ReferenceError(f"reference file {src} does not match its checksum")
        if name not in (PACKED_CHECKPOINT, PACKED_TENSORS):
            shutil.copyfile(src, out / name)
    raw = lzma.decompress((compact / PACKED_CHECKPOINT).read_bytes())
    state = load_safetensors(raw)
    for key, digest in manifest["state_dict_sha256"].items():
        if key not in state or _sha256(state[key].numpy().tobytes()) != digest:
            raise ReferenceError(f"reference checkpoint tensor {key} does not match its checksum")
    meta = json.loads(manifest["meta"])
    torch.save({"state_dict": state, "meta": meta}, out / CHECKPOINT)
    arrays = dict(np.load(compact / PACKED_TENSORS)) if (compact / PACKED_TENSORS).is_file() else {}
    for name, (source, index) in DUPLICATES.items():
        if source in arrays:
            arrays[name] = arrays[source][index]
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array)
        filename = f"{NAME}_{name}.npy"
        expected = recorded.get(filename)
        if expected and _sha256(buffer.getvalue()) != expected:
            raise ReferenceError(f"expanded {filename} differs from the official run's checksum")
        (out / filename).write_bytes(buffer.getvalue())


def pack(expanded: Path, compact: Path, arrays: list[str] | None = None) -> dict[str, int]:
    """Write the compact copy of an expanded reference folder; returns each file's size in bytes.

    `arrays` limits the stored `.npy` arrays to those names (e.g. `["a_seg_logits"]` for a
    parity-only copy); by default all of them are stored. Raises `ReferenceError` where a
    duplicate listed in `DUPLICATES` is not in fact equal to its source.
    """
    import torch
    from safetensors.torch import save as save_safetensors

    compact.mkdir(parents=True, exist_ok=True)
    checkpoint = torch.load(expanded / CHECKPOINT, weights_only=True, map_location="cpu")
    state = {k: v.contiguous() for k, v in checkpoint["state_dict"].items()}
    meta = json.dumps(checkpoint.get("meta", {}), sort_keys=True)
    (compact / PACKED_CHECKPOINT).write_bytes(
        lzma.compress(save_safetensors(state), preset=9 | lzma.PRESET_EXTREME)
    )
    stored = {}
    for path in sorted(expanded.glob(f"{NAME}_*.npy")):
        name = path.stem[len(NAME) + 1 :]
        if arrays is None or name in arrays:
            stored[name] = np.load(path)
    for name, (source, index) in DUPLICATES.items():
        if name in stored and source in stored:
            if not np.array_equal(stored[name], stored[source][index]):
                raise ReferenceError(f"{name} is not {source}[{index}]")
            del stored[name]
    with zipfile.ZipFile(compact / PACKED_TENSORS, "w", zipfile.ZIP_LZMA) as archive:
        for name, array in stored.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, array)
    for path in sorted(expanded.glob(f"{NAME}_*")):
        if path.suffix in (".png", ".json"):
            shutil.copyfile(path, compact / path.name)
    for listing in sorted(expanded.glob("keys_vitl_*.json")):
        shutil.copyfile(listing, compact / listing.name)
    files = sorted(p.name for p in compact.iterdir() if p.name not in (MANIFEST, "README.md"))
    manifest = {
        "name": NAME,
        "files": {name: _sha256((compact / name).read_bytes()) for name in files},
        "state_dict_sha256": {k: _sha256(v.numpy().tobytes()) for k, v in state.items()},
        "meta": meta,
    }
    (compact / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return {p.name: p.stat().st_size for p in sorted(compact.iterdir())}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[0] != "pack":
        print("usage: python -m crossearth.reference pack EXPANDED_DIR COMPACT_DIR [ARRAY ...]")
        return 2
    sizes = pack(Path(args[1]), Path(args[2]), args[3:] or None)
    for name, size in sizes.items():
        print(f"{size / 2**20:8.2f} MiB  {name}")
    print(f"{sum(sizes.values()) / 2**20:8.2f} MiB  in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

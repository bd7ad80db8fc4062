"""What a would-be checkpoint file really is, from its first bytes: before any decoder sees it.

A web page saved in place of a download, a Git LFS pointer, an interrupted download: each gets a
message that says so and what to do, instead of a decoder's error (PyTorch's suggests disabling
`weights_only`, which is wrong for such files and unsafe to follow).
"""

from __future__ import annotations

import json
import struct
import zipfile
from enum import Enum
from pathlib import Path

from crossearth.errors import CheckpointError

_HEAD_BYTES = 4096
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own limit


class FileKind(Enum):
    TORCH_ZIP = "PyTorch zip checkpoint"
    TORCH_LEGACY = "PyTorch legacy (pickle) checkpoint"
    SAFETENSORS = "safetensors file"


def download_hint(path: Path) -> str:
    return (
        f"Download the file itself, not its web page: on the Hugging Face Hub the direct link "
        f"has /resolve/main/ in it (the /blob/main/ link is the HTML page). Then replace {path}"
    )


def sniff_checkpoint(path: Path) -> FileKind:
    """The format of `path` by content (not by suffix).

    Raises `CheckpointError` naming what the file is when it cannot be a checkpoint: empty, an
    HTML page, a Git LFS pointer, other text, a truncated zip or safetensors file, or unknown bytes.
    """
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the download or copy did not complete")
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if not zipfile.is_zipfile(path):
            raise CheckpointError(
                f"{path} is a truncated PyTorch checkpoint ({size} bytes; the zip archive has no "
                "end record): an interrupted download or copy. Download it again."
            )
        return FileKind.TORCH_ZIP
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return FileKind.TORCH_LEGACY  # pickle protocol 2-5: torch's legacy format starts so
    safetensors = _safetensors_check(path, head, size)
    if safetensors is not None:
        return safetensors
    text = _as_text(head)
    if text is not None:
        low = text.lstrip().lower()
        if low.startswith(("<!doctype html", "<html", "<head", "<?xml")) or "<html" in low[:1024]:
            raise CheckpointError(
                f"{path} is an HTML page (a web page saved in place of the file), not a "
                f"checkpoint. {download_hint(path)}"
            )
        if low.startswith("version https://git-lfs"):
            raise CheckpointError(
                f"{path} is a Git LFS pointer ({size} bytes of text), not the checkpoint it points "
                f"to. {download_hint(path)}"
            )
        raise CheckpointError(
            f"{path} is a text file ({size} bytes), not a checkpoint. {download_hint(path)}"
        )
    raise CheckpointError(
        f"{path} is not a PyTorch checkpoint (.pth, a zip or pickle) nor a safetensors file "
        f"(it starts with bytes {head[:8].hex(' ')})"
    )


def _safetensors_check(path: Path, head: bytes, size: int) -> FileKind | None:
    """SAFETENSORS if `head` starts a safetensors file; raises if one is cut short; else None."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > _MAX_SAFETENSORS_HEADER:
        return None
    if 8 + header_len > size:
        raise CheckpointError(
            f"{path} is a truncated safetensors file ({size} bytes, its header alone needs "
            f"{8 + header_len}): an interrupted download or copy. Download it again."
        )
    with open(path, "rb") as f:
        f.seek(8)
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # text that happens to look like a length and a brace: judged as text
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and len(v.get("data_offsets", ())) == 2
    ]
    needed = 8 + header_len + max(ends, default=0)
    if needed > size:
        raise CheckpointError(
            f"{path} is a truncated safetensors file ({size} of {needed} bytes): an interrupted "
            "download or copy. Download it again."
        )
    return FileKind.SAFETENSORS


def _as_text(head: bytes) -> str | None:
    """`head` decoded as UTF-8 text when it is text (no NUL, few control characters), else None."""
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a multi-byte character cut at the end
            return None
        text = head[: exc.start].decode("utf-8")
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f")
    return text if controls <= len(text) // 100 else None

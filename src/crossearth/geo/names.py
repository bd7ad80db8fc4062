"""File names that work on every file system: output names derived from inputs.

Output names come from input names that may hold anything: a URL's path (`%3A` decodes to a
colon), a host with its port (`127.0.0.1:8000`), a STAC item id (`..._20240601T10:30:00`), a
`/vsi...` path. `safe_name` turns such a text into a name that Windows, SMB/CIFS shares, macOS
and Linux all accept (the strictest rules are Windows'):

- each run of `< > : " / \\ | ? *` and control characters (U+0000-U+001F, U+007F) becomes `_`;
- trailing dots and spaces are removed (Windows drops them silently);
- a reserved device name (CON, PRN, AUX, NUL, COM0-COM9, LPT0-LPT9, also with superscript
  digits, any case, also before a dot: `nul.2020`) gets `_` appended (`NUL_`, `nul_.2020`);
- a name longer than `MAX_BYTES` UTF-8 bytes is cut and ends with 8 hex digits of a hash of the
  whole text (so two long names stay apart), leaving room for our endings (`_confidence.tif`)
  within the usual 255-byte limit;
- an empty result becomes `fallback`.

A name that is already safe is returned unchanged.
"""

from __future__ import annotations

import hashlib
import re

#: Characters no Windows or SMB file name may hold, and the control characters.
_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+')
_DIGITS = "0123456789¹²³"
#: Windows' reserved device names (a file may not be called so, whatever its extension).
RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{prefix}{d}" for prefix in ("COM", "LPT") for d in _DIGITS]
)
#: Longest name, in UTF-8 bytes, before our endings are appended (255 - room for them).
MAX_BYTES = 200


def safe_name(text: str, fallback: str = "scene") -> str:
    """`text` made into a file name (no folder) valid on Windows, SMB shares, macOS and Linux.

    E.g. `"S2A_T32UPU_20240601T10:30:00"` -> `"S2A_T32UPU_20240601T10_30_00"`,
    `"127.0.0.1:8000_scene"` -> `"127.0.0.1_8000_scene"`, `"con"` -> `"con_"`,
    `"scene. "` -> `"scene"`. See the module docstring for every rule."""
    name = _UNSAFE.sub("_", text).rstrip(" .")
    base, dot, rest = name.partition(".")
    if base.rstrip(" ").upper() in RESERVED:
        name = f"{base}_{dot}{rest}"
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cut = encoded[: MAX_BYTES - 9].decode("utf-8", "ignore").rstrip(" .")
        name = f"{cut}_{digest}"
    return name or fallback


def is_safe_name(name: str) -> bool:
    """Whether `name` is already valid everywhere (`safe_name` would return it unchanged)."""
    return bool(name) and safe_name(name) == name

"""Scene lists: a text file naming the inputs of a `predict` run, one per line.

As GDAL's `gdalbuildvrt -input_file_list`, a list is a plain text file (`.txt`, UTF-8) with
one input per line: a local raster or folder, a URL (`https://`, `s3://`, `gs://`, `az://`), a
GDAL `/vsi...` path, a GDAL subdataset name (`NETCDF:"scene.nc":var`, see
`crossearth.geo.containers`), or a STAC item or item collection (a `.json` file or URL,
`items.json#item-id` for one item of a collection). Blank lines and lines starting with `#`
are skipped (a `#` elsewhere is part of the name, as in `items.json#item-id`); leading and
trailing spaces are dropped. Relative local paths are relative to the folder of the list
file (also the file in a subdataset name), so a list can travel with its scenes.
"""

from __future__ import annotations

from pathlib import Path

from crossearth.errors import InputError, InputNotFoundError
from crossearth.geo.containers import container_file, is_subdataset, resolve_subdataset
from crossearth.geo.remote import SCHEMES, is_remote, mask_url
from crossearth.geo.stac import is_stac

#: Name endings of scene lists.
LIST_SUFFIXES = (".txt",)


def is_scene_list(item: str | Path) -> bool:
    """True for a path or URL ending in `.txt` (any case; a URL's query string ignored)."""
    return str(item).split("?", 1)[0].lower().endswith(LIST_SUFFIXES)


def read_scene_list(path: str | Path) -> list[tuple[int, str | Path]]:
    """The entries of the scene list at `path`: (line number, input) pairs in file order,
    URLs and `/vsi` paths as strings, local paths as absolute `Path`s.

    Raises:
        InputNotFoundError: (a `FileNotFoundError`) the list file does not exist.
        InputError: (a `ValueError`) the list is a URL, cannot be read as UTF-8 text, names
            nothing, or
            a line is bad: an unsupported URL scheme, another scene list, or a local path that
            does not exist. The message starts with `<list>:<line>:`.
    """
    if is_remote(path):
        raise InputError(f"scene list {mask_url(str(path))}: lists are read from local files")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputNotFoundError(f"scene list not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"scene list {path} is a folder") from None
    except UnicodeDecodeError:
        raise InputError(f"scene list {path} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read scene list {path}: {exc.strerror or exc}") from None
    entries: list[tuple[int, str | Path]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entries.append((number, _entry(path, number, line)))
    if not entries:
        raise InputError(f"scene list {path} names no scenes (only blank lines and # comments)")
    return entries


def _entry(path: Path, number: int, line: str) -> str | Path:
    where = f"{path}:{number}"
    if is_scene_list(line):
        raise InputError(f"{where}: a scene list cannot name another list ({mask_url(line)})")
    if is_remote(line):
        return line
    folder = path.resolve().parent
    if is_subdataset(line, folder):  # NETCDF:"scene.nc":var, HDF5:"scene.h5"://var, ...
        resolved = resolve_subdataset(line, folder)
        container = container_file(resolved)
        if container is not None and not container.exists():
            raise InputError(f"{where}: {line}: {container} not found")
        return resolved
    if "://" in line:
        scheme = line.split("://", 1)[0]
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise InputError(f"{where}: unsupported URL scheme {scheme}:// ({known} or /vsi... paths)")
    local = Path(line).expanduser()
    if not local.is_absolute():
        local = path.resolve().parent / local
    base = Path(str(local).split("#", 1)[0]) if is_stac(local) else local
    if not base.exists():
        raise InputError(
            f"{where}: {line} not found" + (f" ({base})" if base != Path(line) else "")
        )
    return local

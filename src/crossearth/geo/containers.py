"""Containers of several rasters: GDAL subdatasets (NetCDF and HDF variables, ...) as inputs.

A NetCDF, HDF5 or HDF4 file with several variables (or a GeoTIFF with several images, a
GeoPackage with several tile tables, ...) is a *container*: GDAL opens each raster in it by a
subdataset name that names the driver, the file and the raster, e.g.

    NETCDF:"scene.nc":reflectance
    HDF5:"scene.h5"://group/reflectance
    HDF4_EOS:EOS_GRID:"MOD09GA.hdf":MODIS_Grid_500m_2D:sur_refl_b01_1

Such a name is accepted wherever an image is (`predict`, scene lists, data set files): it stays
a string from the command line to GDAL (a `pathlib.Path` would turn HDF5's `://` into `:/`,
which GDAL does not open), and a relative file in it is relative to the working folder, or to
the scene list or data set file that names it. Given the container itself, the error lists its
subdatasets by the names to pass. Outputs are named after the file and the raster:
`NETCDF:"scene.nc":reflectance` -> `scene_reflectance_classes.tif`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from crossearth.errors import InputError, InputNotFoundError
from crossearth.geo.remote import mask_text

#: The driver part of a subdataset name: `NETCDF:`, `HDF5:`, `HDF4_EOS:EOS_GRID:`, ... (two
#: characters at least, so a Windows drive `C:` is never one, and never a URL's `https://`).
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:(?!//)")
#: Subdatasets listed in a message, at most.
MAX_LISTED = 30


@dataclass(frozen=True)
class SubdatasetName:
    """A GDAL subdataset name taken apart: `before` + the container file + `after`, the file
    quoted (`"..."`) or not, as it was written."""

    before: str  # e.g. 'NETCDF:'
    file: str  # e.g. 'data/scene.nc'
    after: str  # e.g. ':reflectance'
    quoted: bool

    @property
    def text(self) -> str:
        """The name as GDAL opens it."""
        quote = '"' if self.quoted else ""
        return f"{self.before}{quote}{self.file}{quote}{self.after}"

    @property
    def raster(self) -> str:
        """The raster's part of the name: `reflectance`, `group/reflectance` (no separators)."""
        return self.after.strip(":/")

    def with_file(self, file: str) -> SubdatasetName:
        """The same raster of another file path (quoted, so any path fits)."""
        return SubdatasetName(self.before, file, self.after, True)


def parse_subdataset(item: str | Path, base: Path | None = None) -> SubdatasetName | None:
    """`item` taken apart as a subdataset name, or None when it is not one.

    A name is a driver prefix (`NETCDF:`, `HDF5:`, ...) followed by the file, quoted or not, and
    the raster's part. An unquoted file is the longest run of the name between colons that is
    an existing file (relative files relative to `base`, default the working folder), else the
    first part that has a file-name suffix. An existing file of that name is a file, never a
    subdataset name.
    """
    text = str(item)
    base = base or Path()
    if not _PREFIX.match(text) or (base / text).exists():
        return None
    if '"' in text:
        start = text.index('"')
        end = text.find('"', start + 1)
        if end < 0:
            return None
        return SubdatasetName(text[:start], text[start + 1 : end], text[end + 1 :], True)
    parts = text.split(":")
    spans = [(i, j) for i in range(1, len(parts)) for j in range(len(parts), i, -1)]
    for i, j in spans:  # the longest run of parts that names an existing file
        candidate = ":".join(parts[i:j])
        if candidate and (base / candidate).is_file():
            return _unquoted(parts, i, j)
    for i in range(1, len(parts)):  # else the first part that looks like a file name
        if PurePosixPath(parts[i]).suffix:
            return _unquoted(parts, i, i + 1)
    return None


def _unquoted(parts: list[str], i: int, j: int) -> SubdatasetName:
    before = ":".join(parts[:i]) + ":"
    after = (":" + ":".join(parts[j:])) if j < len(parts) else ""
    return SubdatasetName(before, ":".join(parts[i:j]), after, False)


def short_name(item: str | Path) -> str | None:
    """A short name of a subdataset for progress lines and messages (`NETCDF:"d/s.nc":ndvi`
    -> `s.nc:ndvi`); None for other inputs."""
    name = parse_subdataset(item)
    if name is None:
        return None
    file = PurePosixPath(name.file.split("?", 1)[0]).name  # no query string (a signature)
    return f"{file}:{name.raster}" if name.raster else file


def is_subdataset(item: str | Path, base: Path | None = None) -> bool:
    """True for a GDAL subdataset name (`parse_subdataset`; relative files relative to
    `base`)."""
    return parse_subdataset(item, base) is not None


def resolve_subdataset(item: str, base: Path) -> str:
    """The subdataset name `item` with a relative local file made absolute against `base` (a
    scene list's or data set file's folder); other names unchanged."""
    name = parse_subdataset(item, base)
    if name is None or name.file.startswith("/vsi") or Path(name.file).is_absolute():
        return item
    return name.with_file(str((base / Path(name.file).expanduser()).resolve())).text


def naming_path(item: str) -> PurePosixPath:
    """A path-like name for output naming: the container's path with the raster's name added
    to its stem (`NETCDF:"data/s.nc":ndvi` -> `data/s_ndvi.nc`)."""
    name = parse_subdataset(item)
    if name is None:
        return PurePosixPath(item)
    file = PurePosixPath(name.file)
    raster = re.sub(r"[^A-Za-z0-9._-]+", "_", name.raster).strip("_")
    stem = f"{file.stem}_{raster}" if raster else file.stem
    return file.with_name(f"{stem}{file.suffix}")


def subdatasets(dataset: Any) -> list[tuple[str, str]]:
    """(name to pass, GDAL's description) of each subdataset of an open container, in GDAL's
    order (e.g. `('NETCDF:"s.nc":ndvi', '[50x60] ndvi (16-bit unsigned integer)')`)."""
    tags = dataset.tags(ns="SUBDATASETS") or {}
    out = []
    for k in range(1, len(tags) + 1):
        name = tags.get(f"SUBDATASET_{k}_NAME")
        if name is None:
            break
        out.append((name, tags.get(f"SUBDATASET_{k}_DESC", "")))
    return out


def container_error(shown: str, found: list[tuple[str, str]], asked: str | None = None) -> str:
    """The message for a container `shown` given as an image (or a subdataset name `asked` for
    that it does not hold): its subdatasets `found`, by the names that open them."""
    head = (
        f"{asked}: {shown} holds no such raster"
        if asked
        else f"{shown} holds {len(found)} rasters (GDAL subdatasets), not one image"
    )
    listed = "; ".join(f"{name} ({desc})" if desc else name for name, desc in found[:MAX_LISTED])
    more = f"; ... ({len(found) - MAX_LISTED} more)" if len(found) > MAX_LISTED else ""
    return f"{head}; pass one of its {len(found)} subdatasets as the input: {listed}{more}"


def open_subdataset(item: str) -> Any:
    """Open the subdataset named `item` with rasterio.

    Raises:
        InputNotFoundError: the container file does not exist.
        InputError: GDAL cannot open it: the container's subdatasets are listed when it opens.
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    name = parse_subdataset(item)
    assert name is not None
    try:
        return rasterio.open(item)
    except RasterioIOError as exc:
        error = str(exc)
    local = not name.file.startswith("/vsi")
    if local and not Path(name.file).exists():
        raise InputNotFoundError(f"input image not found: {name.file} (named by {item})")
    try:
        with rasterio.open(name.file) as container:
            found = subdatasets(container)
    except RasterioIOError:
        found = []
    if found:
        raise InputError(mask_text(container_error(name.file, found, asked=item)))
    raise InputError(f"cannot open {mask_text(item)}: {mask_text(error)}")


def container_file(item: str | Path) -> Path | None:
    """The local container file a subdataset name reads from (None for other inputs and for
    containers on `/vsi` file systems)."""
    name = parse_subdataset(item)
    if name is None or name.file.startswith("/vsi"):
        return None
    return Path(name.file).expanduser()

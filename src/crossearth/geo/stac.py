"""STAC items as inputs: per-band assets read as one stack through a GDAL VRT, never copied.

An input ending in `.json` (a local file or a URL) is read as a STAC item with pystac (the
optional extra `stac`); a file holding an item collection (a FeatureCollection of items) is a
list of scenes, each named after its item id.

The band assets of an item are the assets that hold one band with an `eo:bands` entry (or a
`bands` entry, STAC 1.1); each becomes one band of a VRT (GDAL's XML description of a virtual
raster, held in memory) whose band descriptions are the bands' common names (`red`, `green`,
`blue`, `nir`, ...; the asset key where a band has none; where several assets hold the same
band, e.g. `red` and `red-jp2` in Earth Search items, the GeoTIFF one). Each VRT band also
records every name the band goes by (common name, the `eo:bands`/`bands` name such as `B04`,
the asset keys) as the metadata item `STAC_NAMES`, so `crossearth.geo.bands` picks R, G,
B or NIR, R, G by those names and `--bands` chooses by any of them (`red,green,blue`,
`B04,B03,B02`). Only the assets of the chosen bands are read, window by window (remote ones
through GDAL's network file systems, see `crossearth.geo.remote`).

Pixel metadata: a band's nodata value, scale and offset are the asset file's own; where the
file carries none (no nodata value; scale 1 and offset 0), the item's are used, from the raster
extension's `raster:bands` (`nodata`, `scale`, `offset`) or STAC 1.1's `bands` (`nodata`,
`raster:scale`, `raster:offset`) or the same fields on the asset itself. They are written into
the VRT as the band's own (`NoDataValue`, `Scale`, `Offset`), so they act exactly as a file's:
nodata masks the pixel, and `crossearth.geo.scaling` turns values into `value * scale + offset`
before the model's scaling.

The stack is on the grid (CRS, transform, size) of the `red` band, else on the grid most band
assets share; bands on another grid (another resolution) are left out, and asking for one of
them by name is an error that names its resolution (`stack_info` tells which were left out).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import rasterio
from rasterio.io import MemoryFile

from crossearth.errors import InputError
from crossearth.geo.names import safe_name
from crossearth.geo.ranges import GDAL_NO_RANGES, range_message, require_range_requests
from crossearth.geo.remote import gdal_path, is_remote, mask_text, mask_url

#: Band metadata item of the stack's VRT bands: a JSON list of the names a band goes by.
NAMES_TAG = "STAC_NAMES"
_OPEN: dict[str, MemoryFile] = {}  # in-memory VRTs of open datasets (a few kB each)


@dataclass(frozen=True)
class BandAsset:
    """One band of a STAC item: its names, the asset file holding it and the item's pixel
    metadata for it (None where the item gives none)."""

    description: str  # the common name, else the asset key
    href: str  # absolute href of the asset file read
    names: tuple[str, ...]  # every name the band goes by: common name, band name, asset keys
    nodata: float | None = None
    scale: float | None = None
    offset: float | None = None


@dataclass(frozen=True)
class LeftOut:
    """A band of the item on another grid than the stack's: not in the stack."""

    names: tuple[str, ...]
    resolution: str  # e.g. "20 m"
    size: tuple[int, int]  # (width, height) in pixels


@dataclass(frozen=True)
class StackInfo:
    """What an opened STAC stack is: the item's name (URL masked) for messages, the grid it is
    on and the bands left out for being on another grid."""

    item: str
    resolution: str
    size: tuple[int, int]
    left_out: tuple[LeftOut, ...]


_STACKS: dict[str, StackInfo] = {}  # VRT dataset name (/vsimem/...) -> its item


def is_stac(item: str | Path) -> bool:
    """True for a `.json` file or URL (query string and `#item-id` ignored)."""
    return _split(str(item))[0].split("?", 1)[0].lower().endswith(".json")


def stack_info(dataset: Any) -> StackInfo | None:
    """The `StackInfo` of a dataset opened by `open_stac_item`, else None."""
    return _STACKS.get(getattr(dataset, "name", ""))


def _split(href: str) -> tuple[str, str | None]:
    """'items.json#id' -> ('items.json', 'id')."""
    base, _, fragment = href.partition("#")
    return base, fragment or None


def expand_stac(href: str | Path) -> list[str | Path]:
    """The scenes of a STAC input: an item is one scene; an item collection (a GeoJSON
    FeatureCollection of items) gives `<href>#<item id>` per item; `<href>#<item id>` is that
    one item (read when opened).

    Raises:
        InputError: the file cannot be read or is not JSON, or the collection is empty.
    """
    if _split(str(href))[1] is not None:  # `items.json#item-id`: that one item
        return [href]
    data = _read_json(str(href))
    if data.get("type") != "FeatureCollection":
        return [href]
    ids = [str(f.get("id")) for f in data.get("features", [])]
    if not ids:
        raise InputError(f"STAC item collection {mask_url(str(href))} holds no items")
    if isinstance(href, Path):
        return [Path(f"{href}#{i}") for i in ids]
    return [f"{href}#{i}" for i in ids]


def naming_name(href: str) -> str:
    """Name for output naming: `dir/items.json#S2A_x` -> `dir/S2A_x.json` (else unchanged)."""
    base, fragment = _split(href)
    if not fragment:
        return base
    name = safe_name(fragment, fallback="item")  # an id may hold '/' or ':'
    return f"{base.rsplit('/', 1)[0]}/{name}.json" if "/" in base else f"{name}.json"


def open_stac_item(href: str | Path) -> rasterio.io.DatasetReader:
    """Open the band assets of the STAC item at `href` (or `<collection>#<item id>`) as one
    multi-band dataset (a VRT in memory; `stack_info(dataset)` describes it).

    Raises:
        InputError: pystac is missing, the item cannot be read or is not a STAC item, it has no
            single-band assets with band names, a nodata, scale or offset is not a number, or
            its assets cannot be opened.
    """
    item = _read_item(href)
    shown = mask_url(str(href))
    bands = band_assets(item, shown)
    if not bands:
        raise InputError(f"STAC item {shown} has no single-band assets with eo:bands entries")
    xml, info = _vrt_xml(bands, shown)
    memfile = MemoryFile(xml.encode(), ext=".vrt")
    dataset = memfile.open()
    _OPEN[dataset.name] = memfile
    _STACKS[dataset.name] = info
    return dataset


def band_assets(item: Any, shown: str = "") -> list[BandAsset]:
    """The band assets of a pystac `Item`, one per band in asset order (module docstring).

    Raises:
        InputError: a nodata, scale or offset value of the item is not a number.
    """
    found: dict[str, tuple[bool, BandAsset]] = {}  # description -> (is a GeoTIFF, band)
    for key, asset in item.assets.items():
        fields = asset.extra_fields
        info = _single(fields.get("eo:bands")) or _single(fields.get("bands"))
        if info is None:
            continue
        common = info.get("common_name") or info.get("eo:common_name")
        description = str(common or key)
        href_abs = asset.get_absolute_href() or asset.href
        tiff = "tiff" in (asset.media_type or "") or href_abs.lower().endswith((".tif", ".tiff"))
        names = [str(n) for n in (common, info.get("name"), key) if n]
        where = f"STAC item {shown}: asset {key}"
        raster = _single(fields.get("raster:bands")) or {}
        band = BandAsset(
            description=description,
            href=href_abs,
            names=tuple(dict.fromkeys(names)),
            nodata=_number(where, "nodata", raster.get("nodata"), info.get("nodata"),
                           fields.get("nodata")),
            scale=_number(where, "scale", raster.get("scale"), info.get("raster:scale"),
                          fields.get("raster:scale")),
            offset=_number(where, "offset", raster.get("offset"), info.get("raster:offset"),
                           fields.get("raster:offset")),
        )  # fmt: skip
        if description in found:  # the same band again (e.g. `red-jp2` beside `red`)
            tiff_before, before = found[description]
            names = tuple(dict.fromkeys(before.names + band.names))
            if tiff and not tiff_before:  # one asset per band: the first GeoTIFF (COG) of it
                found[description] = (True, replace(band, names=names))
            else:
                found[description] = (tiff_before, replace(before, names=names))
            continue
        found[description] = (tiff, band)
    return [band for _, band in found.values()]


def _single(value: Any) -> dict | None:
    """The one entry of a one-band list (`eo:bands`, `bands`, `raster:bands`), else None."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    return None


def _number(where: str, field: str, *values: Any) -> float | None:
    """The first given value of a nodata/scale/offset field as a float (STAC writes NaN and
    infinities as the strings "nan", "inf", "-inf"); None when none is given."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            raise InputError(f"{where}: {field} {value!r} is not a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{where}: {field} {value!r} is not a number") from None
        if field != "nodata" and not math.isfinite(number):
            raise InputError(f"{where}: {field} {value!r} is not a finite number")
        return number
    return None


def _pystac():
    try:
        import pystac
    except ImportError:
        raise InputError("STAC inputs need pystac: pip install 'crossearth[stac]'") from None
    return pystac


def _absolute(text: str) -> str:
    return text if is_remote(text) else str(Path(text).resolve())


def _read_json(text: str) -> dict:
    pystac = _pystac()
    base = _split(text)[0]
    try:
        data = pystac.StacIO.default().read_json(_absolute(base))
    except FileNotFoundError:
        raise InputError(f"STAC item not found: {mask_url(base)}") from None
    except Exception as exc:  # urllib and JSON errors alike
        raise InputError(f"cannot read STAC item {mask_url(base)}: {mask_text(str(exc))}") from None
    if not isinstance(data, dict):
        raise InputError(f"{mask_url(base)} is not a STAC item (not a JSON object)")
    return data


def _read_item(href: str | Path):
    pystac = _pystac()
    base, wanted = _split(str(href))
    data = _read_json(str(href))
    if wanted is not None:  # one item of a collection
        data = next((f for f in data.get("features", []) if str(f.get("id")) == wanted), None)
        if data is None:
            raise InputError(f"no item {wanted!r} in {mask_url(base)}")
    try:
        item = pystac.Item.from_dict(data, href=_absolute(base))
    except Exception as exc:  # STAC validation errors
        raise InputError(f"{mask_url(base)} is not a STAC item ({mask_text(str(exc))})") from None
    item.set_self_href(_absolute(base))  # relative asset hrefs resolve against the file
    return item


def _source(href: str) -> str:
    return gdal_path(href) if is_remote(href) else str(Path(href).resolve())


@dataclass(frozen=True)
class _Grid:
    crs: Any
    transform: Any
    width: int
    height: int

    def resolution(self) -> str:
        """The pixel size in the CRS's units, e.g. "10 m", "20 m" or "0.0001 degree"."""
        size = abs(self.transform.a)
        units = "units"
        if self.crs is not None:
            units = "degree" if self.crs.is_geographic else (self.crs.linear_units or "units")
            units = {"metre": "m", "meter": "m", "foot": "ft", "US survey foot": "US ft"}.get(
                units, units
            )
        return f"{size:g} {units}"


def _vrt_xml(bands: list[BandAsset], shown: str) -> tuple[str, StackInfo]:
    """A VRT stacking the bands on the grid of the red band, else the grid most of them share
    (the finest on ties), and what it holds."""
    grids: dict[str, _Grid] = {}
    files: dict[str, tuple[str, float | None, float, float]] = {}  # dtype, nodata, scale, offset
    for band in bands:
        if is_remote(band.href):
            require_range_requests(band.href)
        try:
            with rasterio.open(_source(band.href)) as ds:
                grids[band.description] = _Grid(ds.crs, ds.transform, ds.width, ds.height)
                scale = ds.scales[0] if ds.scales else 1.0
                offset = ds.offsets[0] if ds.offsets else 0.0
                files[band.description] = (ds.dtypes[0], ds.nodata, scale, offset)
        except rasterio.errors.RasterioIOError as exc:
            if GDAL_NO_RANGES in str(exc):
                raise InputError(range_message(band.href)) from None
            raise InputError(
                f"STAC item {shown}: cannot open asset {band.description} "
                f"({mask_url(band.href)}): {mask_text(str(exc))}"
            ) from None
    counts = list(grids.values())
    # the red band's grid (10 m of Sentinel-2, not its more numerous 20 m bands; 30 m of Landsat,
    # not its 15 m panchromatic band), else the grid most bands share
    grid = grids.get("red") or max(set(counts), key=lambda g: (counts.count(g), g.width * g.height))
    parts = [f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">']
    if grid.crs is not None:
        parts.append(f"<SRS>{escape(grid.crs.to_wkt())}</SRS>")
    geotransform = ", ".join(repr(v) for v in grid.transform.to_gdal())
    parts.append(f"<GeoTransform>{geotransform}</GeoTransform>")
    index = 0
    left_out = []
    for band in bands:
        if grids[band.description] != grid:
            other = grids[band.description]
            left_out.append(LeftOut(band.names, other.resolution(), (other.width, other.height)))
            continue
        index += 1
        dtype, nodata, scale, offset = files[band.description]
        if nodata is None:  # the file's own values first, the item's where it has none
            nodata = band.nodata
        if (scale, offset) == (1.0, 0.0):
            scale = 1.0 if band.scale is None else band.scale
            offset = 0.0 if band.offset is None else band.offset
        gdal_type = {"uint8": "Byte", "int8": "Int8"}.get(dtype, dtype.capitalize())
        gdal_type = gdal_type.replace("Uint", "UInt")
        parts.append(f'<VRTRasterBand dataType="{gdal_type}" band="{index}">')
        parts.append(f"<Description>{escape(band.description)}</Description>")
        parts.append(f"<Metadata>{_items(band)}</Metadata>")
        if nodata is not None:
            parts.append(f"<NoDataValue>{nodata!r}</NoDataValue>")
        if (scale, offset) != (1.0, 0.0):
            parts.append(f"<Offset>{offset!r}</Offset><Scale>{scale!r}</Scale>")
        parts.append(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(_source(band.href))}'
            "</SourceFilename><SourceBand>1</SourceBand></SimpleSource>"
        )
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    info = StackInfo(shown, grid.resolution(), (grid.width, grid.height), tuple(left_out))
    return "".join(parts), info


def _items(band: BandAsset) -> str:
    """The VRT metadata item naming a band: `STAC_NAMES`, a JSON list of every name it goes by."""
    return f'<MDI key="{NAMES_TAG}">{escape(json.dumps(list(band.names)))}</MDI>'

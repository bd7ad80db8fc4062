"""STAC items as inputs: per-band assets read as one stack through a GDAL VRT, never copied.

An input ending in `.json` (a local file or a URL) is read as a STAC item with pystac (the
optional extra `stac`); a file holding an item collection (a FeatureCollection of items) is a
list of scenes, each named after its item id.

The band assets of an item are the assets that hold one band with an `eo:bands` entry (or a
`bands` entry, STAC 1.1); each becomes one band of a VRT (GDAL's XML description of a virtual
raster, held in memory) whose band descriptions are the bands' common names (`red`, `green`,
`blue`, `nir`, ...; the asset key where a band has none; where several assets hold the same
band, e.g. `red` and `red-jp2` in Earth Search items, the GeoTIFF one).
`crossearth.geo.bands` then picks R, G, B or NIR, R, G by those names, and
`--bands red,green,blue` chooses by name. Only the assets of the chosen bands are read, window
by window (remote ones through GDAL's network file systems, see `crossearth.geo.remote`).

The stack is on the grid (CRS, transform, size) of the `red` band, else on the grid most band
assets share; bands on another grid (another resolution) are left out, and asking for one of
them by name is an error.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import rasterio
from rasterio.io import MemoryFile

from crossearth.errors import InputError
from crossearth.geo.names import safe_name
from crossearth.geo.ranges import GDAL_NO_RANGES, range_message, require_range_requests
from crossearth.geo.remote import gdal_path, is_remote, mask_text, mask_url

_OPEN: dict[str, MemoryFile] = {}  # in-memory VRTs of open datasets (a few kB each)


def is_stac(item: str | Path) -> bool:
    """True for a `.json` file or URL (query string and `#item-id` ignored)."""
    return _split(str(item))[0].split("?", 1)[0].lower().endswith(".json")


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
    multi-band dataset.

    Raises:
        InputError: pystac is missing, the item cannot be read or is not a STAC item, it has no
            single-band assets with band names, or its assets cannot be opened.
    """
    item = _read_item(href)
    found: dict[str, tuple[bool, str]] = {}  # band name -> (is a GeoTIFF, absolute href)
    for key, asset in item.assets.items():
        info = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands")
        if not isinstance(info, list) or len(info) != 1 or not isinstance(info[0], dict):
            continue
        name = str(info[0].get("common_name") or info[0].get("eo:common_name") or key)
        href_abs = asset.get_absolute_href() or asset.href
        tiff = "tiff" in (asset.media_type or "") or href_abs.lower().endswith((".tif", ".tiff"))
        # one asset per band: the first GeoTIFF (COG) of it, e.g. `red` over `red-jp2`
        if name not in found or (tiff and not found[name][0]):
            found[name] = (tiff, href_abs)
    bands = [(name, href_abs) for name, (_, href_abs) in found.items()]
    if not bands:
        raise InputError(
            f"STAC item {mask_url(str(href))} has no single-band assets with eo:bands entries"
        )
    xml = _vrt_xml(bands, str(href))
    memfile = MemoryFile(xml.encode(), ext=".vrt")
    dataset = memfile.open()
    _OPEN[dataset.name] = memfile
    return dataset


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


def _vrt_xml(bands: list[tuple[str, str]], item_href: str) -> str:
    """A VRT stacking the bands on the grid most of them share (the finest on ties)."""
    grids = {}
    for name, href in bands:
        if is_remote(href):
            require_range_requests(href)
        try:
            with rasterio.open(_source(href)) as ds:
                grids[name] = (ds.crs, ds.transform, ds.width, ds.height, ds.dtypes[0], ds.nodata)
        except rasterio.errors.RasterioIOError as exc:
            if GDAL_NO_RANGES in str(exc):
                raise InputError(range_message(href)) from None
            raise InputError(
                f"STAC item {mask_url(item_href)}: cannot open asset {name} "
                f"({mask_url(href)}): {mask_text(str(exc))}"
            ) from None
    keys = {name: (g[0], g[1], g[2], g[3]) for name, g in grids.items()}
    counts = list(keys.values())
    # the red band's grid (10 m of Sentinel-2, not its more numerous 20 m bands; 30 m of Landsat,
    # not its 15 m panchromatic band), else the grid most bands share
    grid = keys.get("red") or max(set(counts), key=lambda k: (counts.count(k), k[2] * k[3]))
    crs, transform, width, height = grid
    parts = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">']
    if crs is not None:
        parts.append(f"<SRS>{escape(crs.to_wkt())}</SRS>")
    parts.append(f"<GeoTransform>{', '.join(repr(v) for v in transform.to_gdal())}</GeoTransform>")
    index = 0
    for name, href in bands:
        g = grids[name]
        if (g[0], g[1], g[2], g[3]) != grid:
            continue
        index += 1
        dtype = {"uint8": "Byte", "int8": "Int8"}.get(g[4], g[4].capitalize())
        dtype = dtype.replace("Uint", "UInt")
        parts.append(f'<VRTRasterBand dataType="{dtype}" band="{index}">')
        parts.append(f"<Description>{escape(name)}</Description>")
        if g[5] is not None:
            parts.append(f"<NoDataValue>{g[5]!r}</NoDataValue>")
        parts.append(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(_source(href))}'
            "</SourceFilename><SourceBand>1</SourceBand></SimpleSource>"
        )
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    return "".join(parts)

"""Remote rasters: URLs and GDAL virtual-file paths, read window by window, never downloaded.

An input is remote when it is an `http://`/`https://`, `s3://`, `gs://` or `az://` URL, or a
GDAL virtual-file path (`/vsicurl/...`, `/vsis3/...`, ...). Remote inputs stay strings from the
command line to `rasterio.open` (a `pathlib.Path` would collapse `https://` to `https:/`).
GDAL opens them through its network file systems, which fetch only the byte ranges that the
windows being read need (HTTP range requests), so a small window of a Cloud-Optimized GeoTIFF
costs a few requests, not the file.

Credentials are GDAL's usual environment variables, read by GDAL itself and never by us:
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`/`AWS_PROFILE` (S3),
`GOOGLE_APPLICATION_CREDENTIALS` or `GS_ACCESS_KEY_ID`/`GS_SECRET_ACCESS_KEY` (Google Cloud),
`AZURE_STORAGE_CONNECTION_STRING` or `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_ACCESS_KEY` /
`AZURE_STORAGE_SAS_TOKEN` (Azure), `GDAL_HTTP_USERPWD`/`GDAL_HTTP_HEADERS` (HTTP); public
buckets with `AWS_NO_SIGN_REQUEST=YES`. Signed URLs work as given. Messages show a URL with its
query string and user name/password replaced by `***` (`mask_url`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

#: URL schemes and the GDAL virtual file system that reads them.
SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}
SCHEMES |= {"az": "/vsiaz/"}
#: GDAL settings for remote reads: no directory listing on open (listing a bucket prefix or an
#: HTTP folder can cost more than the raster), a bounded wait for unreachable hosts.
REMOTE_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_CONNECTTIMEOUT": "20",
    "GDAL_HTTP_TIMEOUT": "60",
}
#: Network file systems: their files are probed by requests (HEAD), not by a directory read.
NETWORK_PREFIXES = ("/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/", "/vsiadls/", "/vsioss/")
NETWORK_PREFIXES += ("/vsiswift/", "/vsiwebhdfs/", "/vsihdfs/")
_URL = re.compile(r"\b(?:https?|s3|gs|az)://[^\s'\"<>]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(item: str | Path) -> bool:
    """True for a URL with one of `SCHEMES` or a GDAL `/vsi...` virtual-file path."""
    if isinstance(item, Path):
        return False
    text = str(item)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return scheme in SCHEMES or text.startswith("/vsi")


def gdal_path(item: str) -> str:
    """The path GDAL opens for a remote input: `https://h/a.tif` -> `/vsicurl/https://h/a.tif`,
    `s3://bucket/key.tif` -> `/vsis3/bucket/key.tif` (gs -> /vsigs/, az -> /vsiaz/); `/vsi...`
    paths unchanged."""
    if item.startswith("/vsi"):
        return item
    scheme, rest = item.split("://", 1)
    scheme = scheme.lower()
    prefix = SCHEMES[scheme]
    return f"{prefix}{item}" if prefix == "/vsicurl/" else f"{prefix}{rest}"


def remote_env(item: str) -> dict[str, str]:
    """GDAL settings to open the remote raster `item` as the same local file would open, with
    the sidecar files GDAL uses beside it: the `.aux.xml` PAM file (nodata, band descriptions,
    georeferencing), an external `.msk` mask and a world file (`.pgw`/`.pngw`/`.wld` for
    `x.png`, `.tfw`/`.tifw`/`.wld` for `x.tif`, ...).

    Sidecars are found by asking for them (`GDAL_DISABLE_READDIR_ON_OPEN=TRUE`, one HEAD per
    name, answers cached by GDAL for the process) and only for those names
    (`CPL_VSIL_CURL_ALLOWED_EXTENSIONS`): about 3 requests for absent sidecars per scene, where
    probing every name GDAL knows would cost about 9 and a directory listing could cost more
    than the raster. Not done (no sidecars, `REMOTE_ENV`) for URLs with a query string (a
    signed URL signs one object; its sidecars would need their own signatures), for
    file names without an extension, STAC items (`.json`), and for `/vsi` paths that are not
    network file systems.
    Rarer sidecars (RPC `.RPB`/`_rpc.txt`, `.aux`, external `.ovr` overviews) are not looked for.
    """
    path = gdal_path(item)
    name = path.rsplit("/", 1)[-1]
    suffix = PurePosixPath(name).suffix.lower()
    stac = suffix == ".json"  # a STAC item: its band assets are other files, of any name
    if not path.startswith(NETWORK_PREFIXES) or "?" in path or len(suffix) < 2 or stac:
        return dict(REMOTE_ENV)
    ext = suffix[1:]
    sidecars = [suffix, ".aux.xml", ".msk", f".{ext[0]}{ext[-1]}w", f".{ext}w", ".wld"]
    return {
        **REMOTE_ENV,
        "GDAL_DISABLE_READDIR_ON_OPEN": "TRUE",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ",".join(dict.fromkeys(sidecars)),
    }


def mask_url(item: str) -> str:
    """`item` with any user name/password and query string replaced by `***` (for messages)."""
    if "://" in item and not _SCHEME.match(item) and not item.startswith("/vsi"):
        return mask_text(item)  # URLs inside a name, e.g. NETCDF:"/vsicurl/https://...":var
    if "://" not in item:
        return item.split("?", 1)[0] + ("?***" if "?" in item else "")
    if item.startswith("/vsi"):  # e.g. /vsicurl/https://...
        start = item.rfind("/", 0, item.index("://")) + 1
        return item[:start] + mask_url(item[start:])
    parts = urlsplit(item)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def mask_text(text: str) -> str:
    """Every URL in `text` masked with `mask_url` (GDAL error messages quote the URL)."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


def naming_path(item: str) -> PurePosixPath:
    """A path-like name of a remote input for output naming: `/<host>/<path>` without the
    query string (`https://h/2020/a.tif?sig=..` -> `/h/2020/a.tif`)."""
    if item.startswith("/vsi"):
        inner = item.split("/", 2)[2]  # drop "/vsixxx/"
        if "://" in inner:
            return naming_path(inner)
        return PurePosixPath("/" + inner.split("?", 1)[0])
    parts = urlsplit(item)
    host = parts.netloc.rsplit("@", 1)[-1]
    return PurePosixPath("/", host, unquote(parts.path).lstrip("/"))


def display_name(item: str | Path) -> str:
    """A short name for progress lines: the file name (of the URL's path for remote inputs)."""
    if isinstance(item, Path) or not is_remote(item):
        from crossearth.geo.containers import short_name  # (it imports this module)

        return short_name(item) or Path(item).name
    return naming_path(item).name


#: HTTP headers that identify one version of an object (lower-case names).
IDENTITY_HEADERS = ("etag", "last-modified", "x-amz-version-id", "x-goog-generation")


def object_identity(item: str) -> dict[str, str] | None:
    """What identifies the current version of the remote object at `item` (a URL or `/vsi...`
    network path): its size and the `ETag`, `Last-Modified` (and S3 version id / GCS
    generation) headers the server gives, e.g. `{"size": "4242", "etag": '"9f1c"',
    "last-modified": "Mon, 30 Nov 2026 00:36:00 GMT"}`.

    The headers are fetched by GDAL (`VSIGetFileMetadata(..., "HEADERS")`: one HEAD request, or
    a small ranged GET where GDAL uses one, e.g. for signed URLs) through the same network file
    system and credentials that read the raster; GDAL's cached view of the object is dropped
    first, so a changed object is seen, and read, afresh. Without GDAL's C library at hand, an
    `http(s)` URL gets a plain HEAD request.

    Returns None when nothing identifies the object: not a network path (e.g. `/vsizip/`),
    unreachable, or no headers (callers then trust the URL alone).
    """
    path = gdal_path(item)
    headers = _gdal_headers(path)
    if headers is None and path.startswith("/vsicurl/http"):
        headers = _http_head(path[len("/vsicurl/") :])
    if not headers:
        return None
    size = headers.get("content-length")
    total = headers.get("content-range", "").rpartition("/")[2]
    if total.isdigit():  # the answer to a ranged GET: the object's size is after the slash
        size = total
    identity = {k: headers[k] for k in IDENTITY_HEADERS if headers.get(k)}
    if size:
        identity["size"] = size
    return identity or None


def _gdal_headers(path: str) -> dict[str, str] | None:
    """The HTTP headers GDAL gets for a network path (lower-case names), or None."""
    import rasterio

    lib = _libgdal()
    if lib is None:
        return None
    headers: dict[str, str] = {}
    with rasterio.Env(**REMOTE_ENV):
        lib.VSICurlPartialClearCache(path.encode())
        array = lib.VSIGetFileMetadata(path.encode(), b"HEADERS", None)
        if not array:
            return None
        try:
            lines = ctypes.cast(array, ctypes.POINTER(ctypes.c_char_p))
            i = 0
            while lines[i] is not None:
                key, _, value = lines[i].decode("utf-8", "replace").partition("=")
                headers[key.strip().lower()] = value.strip()
                i += 1
        finally:
            lib.CSLDestroy(array)
    return headers


@functools.cache
def _libgdal() -> ctypes.CDLL | None:
    """The GDAL C library rasterio runs on (the same instance: its configuration and
    credentials apply), or None if it cannot be found."""
    import rasterio  # loads its GDAL

    candidates: list[str] = []
    maps = Path("/proc/self/maps")  # Linux: the library already loaded into this process
    if maps.exists():
        for line in maps.read_text().splitlines():
            name = line.rsplit(" ", 1)[-1]
            if "/libgdal" in name and name not in candidates:
                candidates.append(name)
    # rasterio's own before another package's bundled copy (e.g. pyogrio.libs/)
    candidates.sort(key=lambda name: ("rasterio" not in name, "-packages/" in name))
    root = Path(rasterio.__file__).parent
    for folder in (root.parent / "rasterio.libs", root / ".dylibs"):  # wheels
        candidates += [str(p) for p in sorted(folder.glob("*gdal*"))]
    if sys.platform != "win32" and (found := ctypes.util.find_library("gdal")):
        candidates.append(found)
    for candidate in candidates:
        try:
            lib = ctypes.CDLL(candidate)
            lib.VSIGetFileMetadata.restype = ctypes.c_void_p
            lib.VSIGetFileMetadata.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
            lib.VSICurlPartialClearCache.argtypes = [ctypes.c_char_p]
            lib.CSLDestroy.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError):
            continue
        return lib
    return None


def _http_head(url: str) -> dict[str, str] | None:
    """The headers of a HEAD request to `url` (lower-case names), or None on any failure."""
    import urllib.request

    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return {k.lower(): v for k, v in response.headers.items()}
    except (OSError, ValueError):
        return None

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

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

#: URL schemes and the GDAL virtual file system that reads them.
SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}
SCHEMES |= {"az": "/vsiaz/"}
#: GDAL settings for remote reads: no directory listing on open (one request instead of a
#: crawl for sidecar files), a bounded wait for unreachable hosts.
REMOTE_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_CONNECTTIMEOUT": "20",
    "GDAL_HTTP_TIMEOUT": "60",
}
_URL = re.compile(r"\b(?:https?|s3|gs|az)://[^\s'\"<>]+")


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


def mask_url(item: str) -> str:
    """`item` with any user name/password and query string replaced by `***` (for messages)."""
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
        return Path(item).name
    return naming_path(item).name

"""Whether an HTTP server answers range requests, which reading a remote raster needs.

GDAL reads a remote raster window by window, each window one or a few HTTP range requests
(`Range: bytes=a-b`, answered `206 Partial Content`). A server that ignores the `Range` header
(Python's `python -m http.server`, some static-file hosts) answers every request with the whole
file (`200 OK`): GDAL then stops with "Range downloading not supported by this server!" or, for
some files, reads the whole file for every window. `require_range_requests` asks once per URL
and process (a GET of byte 0 only; the answer's body is not read) and turns a server without
range requests into one clear `InputError` before GDAL opens the file.

The check is made for `http://` and `https://` URLs (and `/vsicurl/` paths holding one); object
stores (`s3://`, `gs://`, `az://`) always answer ranges. An answer that proves nothing (an
error status, a refused connection, a redirect loop, credentials GDAL adds from its environment
but the check does not have) gives no verdict: GDAL opens the file and reports what it finds.
"""

from __future__ import annotations

import functools
import http.client
import urllib.request
from urllib.parse import urlsplit

from crossearth.errors import InputError
from crossearth.geo.remote import mask_url

#: How long the check waits for the server's answer, seconds (GDAL's own connect timeout, 20 s,
#: then applies to the read itself).
TIMEOUT_S = 10.0
#: Text of GDAL's error for a server that ignores ranges (mapped to `range_message`).
GDAL_NO_RANGES = "Range downloading not supported"
#: How to serve a folder for a local try (also in README, "Cloud data and cluster runs").
SERVE_HINT = (
    "serve the files with a server that supports range requests (e.g. `pip install "
    "rangehttpserver` then `python -m RangeHTTPServer 8000` in the folder; nginx, Apache, caddy; "
    "not `python -m http.server`), or give the file's local path"
)


def http_url(item: str) -> str | None:
    """The `http(s)://` URL that `item` (a URL or a `/vsicurl/<url>` path) is read from, else
    None (object stores, other `/vsi` paths, `/vsicurl?url=` option syntax)."""
    text = item[len("/vsicurl/") :] if item.startswith("/vsicurl/") else item
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return text if scheme in {"http", "https"} else None


@functools.lru_cache(maxsize=1024)
def _answers_ranges(url: str, timeout: float) -> bool | None:
    request = urllib.request.Request(url, headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            length = response.headers.get("Content-Length")
    except (OSError, ValueError, http.client.HTTPException):
        return None  # unreachable, refused, 4xx/5xx, malformed: no verdict (GDAL will say)
    if status == 206:
        return True
    if status == 200:  # the whole object, whatever its Accept-Ranges header claims
        if length is not None and length.isdigit() and int(length) <= 1:
            return None  # a 0- or 1-byte object: its whole body is the range asked for
        return False
    return None


def answers_range_requests(item: str, timeout: float = TIMEOUT_S) -> bool | None:
    """Whether the HTTP server of `item` answers `Range: bytes=0-0` with `206 Partial Content`.

    `item`: an `http(s)://` URL or a `/vsicurl/` path. Returns True (it does), False (it sends
    the whole file, `200 OK`), or None when the answer proves
    nothing or `item` is not plain HTTP (see the module docstring). One request per URL and
    process; only the status line and headers are read. `timeout` in seconds."""
    url = http_url(item)
    if url is None or "@" in urlsplit(url).netloc:  # credentials in the URL: GDAL's business
        return None
    return _answers_ranges(url, float(timeout))


def range_message(item: str) -> str:
    """One line for a server that ignores range requests: the URL (masked), why, what to do."""
    url = http_url(item) or item
    parts = urlsplit(url)
    host = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
    return (
        f"{mask_url(url)}: the server at {host} does not support HTTP range requests (asked "
        "for 1 byte, it sent the whole file), which reading a raster window by window needs; "
        + SERVE_HINT
    )


def require_range_requests(item: str) -> None:
    """Raise `InputError` (`range_message`) when the HTTP server of `item` ignores range
    requests; return quietly when it answers them, when `item` is not plain HTTP, or when the
    check gives no verdict."""
    if answers_range_requests(item) is False:
        raise InputError(range_message(item))

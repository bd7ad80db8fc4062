"""Hugging Face Hub sources: `hf-hub:owner/name[/file][@revision]` -> a cached local file.

Files go to the Hugging Face cache, which keys them by repository and revision (two repositories
with the same file name never collide). Offline (`HF_HUB_OFFLINE=1`) the cached copy is used; if
there is none the error says so. The default file is our single-file format, `model.safetensors`.

Without a network a download fails in seconds with one line: before downloading, one request for
the file's metadata (huggingface_hub's `get_hf_file_metadata`, no retries, waiting at most
`HF_HUB_ETAG_TIMEOUT` seconds, 10 by default) tells an unreachable Hub from a missing file, so
huggingface_hub's own backoff (5 retries, about 30 s of warnings) never starts.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crossearth.errors import CheckpointError, CrossEarthError, WeightsUnavailableError

PREFIX = "hf-hub:"
DEFAULT_FILENAME = "model.safetensors"
REPO_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class HubError(CrossEarthError):
    """An upload to the Hub failed (not logged in, no write access, offline, ...)."""


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    filename: str = DEFAULT_FILENAME
    revision: str | None = None

    def __str__(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{PREFIX}{self.repo_id}/{self.filename}{rev}"


def is_hub_source(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def parse_hub_source(source: str) -> HubSource:
    """Parse `hf-hub:owner/name`, optionally followed by `/path/in/repo` and `@revision`.

    Raises `CheckpointError` for a malformed id."""
    rest = source[len(PREFIX) :]
    revision = None
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
        if not revision:
            raise CheckpointError(f"{source}: empty revision after '@'")
    parts = rest.split("/")
    repo_id = "/".join(parts[:2])
    if len(parts) < 2 or not REPO_ID_PATTERN.match(repo_id):
        raise CheckpointError(
            f"{source} is not a Hub model id; use hf-hub:owner/name (optionally /file and @revision)"
        )
    filename = "/".join(parts[2:]) or DEFAULT_FILENAME
    return HubSource(repo_id, filename, revision)


def offline() -> bool:
    """Offline mode as huggingface_hub sees it, or as the environment asks now."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or flag in {"1", "ON", "YES", "TRUE"}


def endpoint() -> str:
    """The Hub address huggingface_hub talks to (`HF_ENDPOINT`, default https://huggingface.co)."""
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def _network_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the server could not be reached or did not answer in time", from the
    HTTP clients huggingface_hub uses (httpx/httpx2 in 1.x, requests in 0.x) when loaded."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror]
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None:
            types += [module.TimeoutException, module.NetworkError]
            types += [getattr(module, "ProxyError", module.NetworkError)]
    requests_exceptions = sys.modules.get("requests.exceptions")
    if requests_exceptions is not None:
        types += [requests_exceptions.ConnectionError, requests_exceptions.Timeout]
    return tuple(types)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then its cause (or context), and so on, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def network_failure(exc: BaseException) -> BaseException | None:
    """The exception in `exc`'s chain (itself, its cause or context) that says the server could
    not be reached (refused, unknown host, timed out, proxy failure), else None."""
    kinds = _network_error_types()
    return next((e for e in exception_chain(exc) if isinstance(e, kinds)), None)


def describe(exc: BaseException) -> str:
    """`Type: first line of the message` (for one-line errors)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else "no details"
    return f"{type(exc).__name__}: {first}"


def unreachable_message(what: str, exc: BaseException, address: str | None = None) -> str:
    """One line for a Hub that cannot be reached: what failed, the address (default
    `endpoint()`), the reason; the caller appends what to do."""
    return (
        f"cannot reach the Hugging Face Hub at {address or endpoint()} to {what} ({describe(exc)})"
    )


def download(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """Download one Hub file into the Hugging Face cache and return its local path.

    One metadata request first (no retries, at most `HF_HUB_ETAG_TIMEOUT` seconds): an
    unreachable Hub fails at once. Raises `WeightsUnavailableError` when the Hub cannot be
    reached, the download fails or `HF_HUB_OFFLINE` is set, and `CheckpointError` when the repository, revision or file
    does not exist (or is gated and needs a login)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    name = f"{PREFIX}{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    if offline():
        raise WeightsUnavailableError(
            f"{name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; download it once "
            "online (or copy the cache folder) first"
        )
    missing = (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError)
    try:
        url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint())
        get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except missing as exc:
        raise CheckpointError(f"{name}: {describe(exc)}") from None
    except Exception as exc:
        cause = network_failure(exc)
        if cause is not None:
            raise WeightsUnavailableError(
                unreachable_message(f"download {name}", cause)
                + "; check the network connection (or proxy), or use a model file on disk"
            ) from None
        raise WeightsUnavailableError(f"could not download {name} ({describe(exc)})") from None


def cached_hub_file(source: str | HubSource) -> Path | None:
    """The local path of a Hub file already in the Hugging Face cache, else None (no network)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    src = parse_hub_source(source) if isinstance(source, str) else source
    kwargs = {"repo_id": src.repo_id, "filename": src.filename, "revision": src.revision}
    try:
        return Path(hf_hub_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        return None


def hub_file(source: str | HubSource) -> Path:
    """The local path of a Hub file: the cached copy, else downloaded (unless offline).

    Raises `WeightsUnavailableError` when offline without a cached copy, when the Hub cannot be
    reached (within `HF_HUB_ETAG_TIMEOUT` seconds, one line) or the download fails, and
    `CheckpointError` when the repository or file does not exist."""
    src = parse_hub_source(source) if isinstance(source, str) else source
    cached = cached_hub_file(src)
    if cached is not None:
        return cached
    return download(src.repo_id, src.filename, src.revision)

"""Hugging Face Hub sources: `hf-hub:owner/name[/file][@revision]` -> a cached local file.

Files go to the Hugging Face cache, which keys them by repository and revision (two repositories
with the same file name never collide). Offline (`HF_HUB_OFFLINE=1`) the cached copy is used; if
there is none the error says so. The default file is our single-file format, `model.safetensors`.
"""

from __future__ import annotations

import os
import re
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


def hub_file(source: str | HubSource) -> Path:
    """The local path of a Hub file: the cached copy, else downloaded (unless offline).

    Raises `WeightsUnavailableError` when offline without a cached copy, or when the download
    fails, and `CheckpointError` when the repository or file does not exist."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    src = parse_hub_source(source) if isinstance(source, str) else source
    kwargs = {"repo_id": src.repo_id, "filename": src.filename, "revision": src.revision}
    try:
        return Path(hf_hub_download(**kwargs, local_files_only=True))
    except LocalEntryNotFoundError:
        pass  # not cached
    if offline():
        raise WeightsUnavailableError(
            f"{src} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; download it once "
            "online (or copy the cache folder) first"
        )
    try:
        return Path(hf_hub_download(**kwargs))
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        raise CheckpointError(f"{src}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:
        raise WeightsUnavailableError(
            f"could not download {src} ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None

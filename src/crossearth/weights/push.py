"""`push_model`: upload one single-file model and its generated card to a Hub repository."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from crossearth.errors import CheckpointError
from crossearth.weights.card import model_card
from crossearth.weights.checkpoint_io import NATIVE_FORMAT
from crossearth.weights.hub import (
    DEFAULT_FILENAME,
    REPO_ID_PATTERN,
    HubError,
    describe,
    exception_chain,
    network_failure,
    unreachable_message,
)


def is_native_file(path: Path) -> bool:
    """True for a `.safetensors` file in our single-file format (config in its metadata)."""
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == NATIVE_FORMAT
    except Exception:
        return False


def push_model(
    model: Any,
    repo_id: str,
    *,
    weights_file: Path | None = None,
    private: bool | None = None,
    message: str | None = None,
    extra: dict | None = None,
    api: Any = None,
) -> dict[str, str]:
    """Upload `model` (a loaded `CrossEarth`) as `model.safetensors` plus `README.md` in one commit.

    `weights_file`: an existing file in our format to upload as is (otherwise the model is saved
    to a temporary file first). `extra`: descriptive fields for the card. `api`: an `HfApi`
    (default: a new one, which uses the token of `hf auth login` / `HF_TOKEN`).
    Returns the repository URL and the card text. Raises `CheckpointError` for a malformed id
    and `HubError` when the Hub cannot be reached (the message names the network and the Hub's
    address) or refuses the upload (the message says how to log in).
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    if not REPO_ID_PATTERN.match(repo_id):
        raise CheckpointError(f"--repo must be owner/name, got {repo_id!r}")
    api = api or HfApi()
    card = model_card(model.config, repo_id, filename=DEFAULT_FILENAME, extra=extra)
    with tempfile.TemporaryDirectory(prefix="crossearth-push-") as work:
        if weights_file is None or not is_native_file(weights_file):
            from crossearth.weights.native import save_model

            weights_file = save_model(model, Path(work) / DEFAULT_FILENAME)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True)
            api.create_commit(
                repo_id,
                operations=[
                    CommitOperationAdd(
                        path_in_repo=DEFAULT_FILENAME, path_or_fileobj=str(weights_file)
                    ),
                    CommitOperationAdd(
                        path_in_repo="README.md", path_or_fileobj=card.encode("utf-8")
                    ),
                ],
                commit_message=message
                or f"Upload CrossEarth model ({model.config.num_classes} classes)",
            )
        except Exception as exc:  # HTTP, authentication, offline: one clear line for the user
            if _blocked_offline(exc):
                raise HubError(
                    f"upload to {repo_id} not tried: HF_HUB_OFFLINE is set, and an upload needs "
                    "the network; unset HF_HUB_OFFLINE and try again (nothing was uploaded)"
                ) from None
            cause = network_failure(exc)
            if cause is not None:
                raise HubError(
                    unreachable_message(
                        f"upload to {repo_id}", cause, getattr(api, "endpoint", None)
                    )
                    + "; check the network connection (or proxy); nothing was uploaded"
                ) from None
            raise HubError(
                f"upload to {repo_id} failed ({describe(exc)}); log in with `hf auth login` "
                "(or set HF_TOKEN) and check write access"
            ) from None
    return {"url": str(url), "card": card}


def _blocked_offline(exc: BaseException) -> bool:
    """Whether huggingface_hub refused the request because `HF_HUB_OFFLINE` is set (its
    `OfflineModeIsEnabled`, anywhere in the exception's chain)."""
    return any(type(e).__name__ == "OfflineModeIsEnabled" for e in exception_chain(exc))

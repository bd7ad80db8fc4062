"""Where a run's outputs go: a local folder, or a folder on object storage (`s3://`, `gs://`,
`az://`).

A `LocalStore` is the output folder itself: outputs are renamed into it when complete (temporary
files live in `OUT/.crossearth/tmp/`, see `crossearth.fileio.staging`). An `ObjectStore` is
written through fsspec (s3fs, gcsfs, adlfs): every output is made in a local temporary folder
and uploaded once complete, one object per file, so a reader never sees half a file (an S3/GCS/
Azure object appears whole when its upload completes); the run manifest lives there too.

Credentials and endpoints come from the standard environment: for S3 botocore's
(`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `AWS_PROFILE`,
`AWS_ENDPOINT_URL`), and GDAL's names for the same things, which a user reading with GDAL has
set already (`AWS_S3_ENDPOINT` with `AWS_HTTPS=NO` for plain HTTP, `AWS_VIRTUAL_HOSTING=FALSE`
for path-style addressing, `AWS_NO_SIGN_REQUEST=YES`). Messages never show them: URLs are
masked (`crossearth.geo.remote.mask_url`) and any secret of the environment is replaced by `***`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from crossearth.errors import InputError
from crossearth.fileio import atomic_path, publish
from crossearth.geo.remote import mask_text, mask_url

#: URL schemes of object stores an output folder may be on, and the package fsspec needs.
OBJECT_SCHEMES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
#: Environment variables whose values never appear in a message.
SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
           "AZURE_STORAGE_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN")  # fmt: skip
_FALSE = {"NO", "FALSE", "OFF", "0"}


def is_object_url(text: str | Path) -> bool:
    """True for `s3://`, `gs://`, `gcs://`, `az://` and `abfs://` URLs (outputs on object storage)."""
    return (
        isinstance(text, str)
        and text.split("://", 1)[0].lower() in OBJECT_SCHEMES
        and ("://" in text)
    )


def masked(text: str) -> str:
    """`text` with URLs masked and the values of secret environment variables replaced by ***."""
    text = mask_text(text)
    for name in SECRETS:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def s3_options(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """s3fs options from the environment: the endpoint (`AWS_ENDPOINT_URL_S3`,
    `AWS_ENDPOINT_URL`, else GDAL's `AWS_S3_ENDPOINT` host with `AWS_HTTPS`), path-style
    addressing (GDAL's `AWS_VIRTUAL_HOSTING=FALSE`) and anonymous access
    (`AWS_NO_SIGN_REQUEST=YES`); keys and profiles botocore reads by itself."""
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint and env.get("AWS_S3_ENDPOINT"):
        host = env["AWS_S3_ENDPOINT"]
        https = env.get("AWS_HTTPS", "YES").upper() not in _FALSE
        endpoint = host if "://" in host else f"{'https' if https else 'http'}://{host}"
    if endpoint:
        options["endpoint_url"] = endpoint
    if env.get("AWS_VIRTUAL_HOSTING", "").upper() in _FALSE:
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    if env.get("AWS_NO_SIGN_REQUEST", "").upper() in {"YES", "TRUE", "ON", "1"}:
        options["anon"] = True
    return options


class LocalStore:
    """An output folder on a local or shared file system."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def url(self, name: str) -> str:
        """The full name of `name` (relative to the folder): an absolute path."""
        return str((self.root / name).resolve())

    def exists(self, url: str) -> bool:
        return Path(url).exists()

    def read_text(self, name: str) -> str | None:
        try:
            return (self.root / name).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def write_text(self, name: str, text: str) -> None:
        """Write `name` atomically (its folder is made)."""
        with atomic_path(self.root / name) as tmp:
            tmp.write_text(text)

    def put(self, local: Path, name: str) -> str:
        """Move the finished file `local` to `name` (same file system: a rename); its url."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        publish(local, target)
        return self.url(name)

    def get(self, name: str, local: Path) -> Path:
        """The local path of `name` (a local store has it already)."""
        return self.root / name

    def remove(self, name: str) -> None:
        """Remove the folder or file `name`, if any."""
        path = self.root / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def check_writable(self) -> None:
        """Nothing to check here: the output folder is checked by the CLI."""


class ObjectStore:
    """An output folder on object storage, written through fsspec."""

    remote = True

    def __init__(self, url: str, fs: Any = None) -> None:
        self.base = url.rstrip("/")
        self.scheme, self.path = self.base.split("://", 1)
        self._fs = fs

    def __repr__(self) -> str:
        return f"ObjectStore({mask_url(self.base)!r})"

    def __getstate__(self) -> dict[str, Any]:  # sent to Dask workers: they make their own client
        return {"base": self.base, "scheme": self.scheme, "path": self.path, "_fs": None}

    @property
    def fs(self) -> Any:
        """The fsspec file system (made on first use, in each process)."""
        if self._fs is None:
            self._fs = open_filesystem(self.base)
        return self._fs

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def _key(self, url_or_name: str) -> str:
        return (
            url_or_name.split("://", 1)[1] if "://" in url_or_name else f"{self.path}/{url_or_name}"
        )

    def exists(self, url: str) -> bool:
        return bool(self.fs.exists(self._key(url)))

    def read_text(self, name: str) -> str | None:
        try:
            return self.fs.cat_file(self._key(name)).decode()
        except (OSError, UnicodeDecodeError):  # FileNotFoundError included
            return None

    def write_text(self, name: str, text: str) -> None:
        """One PUT: the object appears whole or not at all."""
        self.fs.pipe_file(self._key(name), text.encode())

    def put(self, local: Path, name: str) -> str:
        """Upload the finished file `local` to `name`, then remove `local`; its url."""
        self.fs.put_file(str(local), self._key(name))
        local.unlink(missing_ok=True)
        return self.url(name)

    def get(self, name: str, local: Path) -> Path:
        """Download `name` to `local`."""
        self.fs.get_file(self._key(name), str(local))
        return local

    def remove(self, name: str) -> None:
        key = self._key(name)
        try:
            if self.fs.exists(key):
                self.fs.rm(key, recursive=True)
        except FileNotFoundError:
            pass

    def check_writable(self) -> None:
        """Write and remove a probe object, so a bucket that does not exist or refuses writes
        stops the run before any work.

        Raises:
            InputError: naming the (masked) URL and the store's answer.
        """
        probe = f".crossearth/probe-{uuid.uuid4().hex}"
        try:
            self.write_text(probe, "")
            self.fs.rm(self._key(probe))
        except Exception as exc:  # botocore/aiohttp/gcsfs errors of every kind: all mean "cannot"
            reason = str(exc) or type(exc).__name__
            raise InputError(
                f"cannot write outputs to {mask_url(self.base)}: {masked(reason)} (a bucket "
                "that does not exist, refused writes, or a wrong endpoint or credentials)"
            ) from None


def open_filesystem(url: str) -> Any:
    """The fsspec file system for `url`, configured from the environment (`s3_options`).

    Raises:
        InputError: fsspec or the scheme's package (s3fs, gcsfs, adlfs) is not installed.
    """
    scheme = url.split("://", 1)[0].lower()
    package = OBJECT_SCHEMES[scheme]
    try:
        import fsspec

        return fsspec.filesystem(scheme, **(s3_options() if scheme == "s3" else {}))
    except ImportError:
        extra = "crossearth[dask]" if package == "s3fs" else package
        raise InputError(
            f"outputs on {scheme}:// need fsspec and {package}: pip install '{extra}'"
        ) from None


def open_store(output: str | Path) -> LocalStore | ObjectStore:
    """The store of an output folder (a path, or an object-storage URL)."""
    if is_object_url(str(output)):
        return ObjectStore(str(output))
    return LocalStore(Path(output))

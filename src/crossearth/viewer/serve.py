"""Serve a folder of maps over HTTP on this machine only (127.0.0.1 by default)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from crossearth.errors import InputError


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def start_server(
    folder: str | Path, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve `folder` read-only from a background thread; returns (server, base URL).

    `port` 0 picks a free port. Stop it with `server.shutdown(); server.server_close()`.
    Raises InputError when the folder does not exist or the port cannot be bound.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise InputError(f"cannot serve on {host}:{port}: {exc}") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = f"[{host}]" if ":" in host else host
    return server, f"http://{name}:{server.server_address[1]}/"


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `folder` until Ctrl-C (blocking)."""
    server, _ = start_server(folder, host, port)
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
        server.server_close()

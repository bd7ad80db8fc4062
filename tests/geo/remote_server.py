"""A small range-capable HTTP server on 127.0.0.1 for remote-input tests.

Serves the files of one folder (GET with or without `Range: bytes=a-b`, HEAD) with `ETag`
(a digest of the bytes) and `Last-Modified` (the file's modification time) headers, answers 404
for anything else, logs every request and the body bytes it sends, and stops itself after
`lifetime_s` even if a test forgets to stop it. With `ranges=False` it ignores `Range` headers
and answers every GET with the whole file (`200 OK`), as `python -m http.server` does.

The server runs in a child process: GDAL may hold Python's GIL while it opens a file (it does
when it probes sidecar files), which would deadlock a server thread in the test's own process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeServer:
    """`with RangeServer(folder) as server:` -> `server.url("a.tif")`, `server.sent["/a.tif"]`,
    `server.requests` ([(method, path, range header), ...] in arrival order). With
    `versions=False` no ETag or Last-Modified header is sent (as some servers do); with
    `ranges=False` the `Range` header is ignored (the whole file, status 200)."""

    def __init__(
        self, root: Path, lifetime_s: float = 120.0, versions: bool = True, ranges: bool = True
    ) -> None:
        self.root = Path(root)
        self.lifetime_s = lifetime_s
        self.versions = versions
        self.ranges = ranges
        self._log = Path(tempfile.mkdtemp(prefix="range_server_")) / "requests.jsonl"
        self._process: subprocess.Popen | None = None
        self.port = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def _entries(self) -> list[list]:
        try:
            lines = self._log.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.endswith("]")]

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        return [(m, p, r) for m, p, r, _ in self._entries()]

    @property
    def sent(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for _, path, _, size in self._entries():
            counts[path] += size
        return counts

    def start(self) -> RangeServer:
        args = [sys.executable, __file__, str(self.root), str(self._log), str(self.lifetime_s)]
        args += [] if self.versions else ["--no-versions"]
        args += [] if self.ranges else ["--no-ranges"]
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.port = int(self._process.stdout.readline())
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process.stdout.close()
            self._process = None

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    root: Path, log: Path, lifetime_s: float, versions: bool = True, ranges: bool = True
) -> None:
    """Serve `root` on a free port of 127.0.0.1 (printed on stdout), logging to `log`."""
    import threading

    log_file = log.open("a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _note(self, path: str, rng: str | None, size: int) -> None:
            # logged before the response goes out, so a client that has it sees the entry
            with lock:
                log_file.write(json.dumps([self.command, path, rng, size]) + "\n")

        def _serve(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            rng = self.headers.get("Range")
            file = root / unquote(path).lstrip("/")  # %3A -> ':' as a web server does
            if not path.strip("/") or not file.is_file():
                self._note(path, rng, 0)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = file.read_bytes()
            size = len(data)
            start, end = 0, size - 1
            match = _RANGE.match(rng or "")
            partial = ranges and bool(match and (match.group(1) or match.group(2)))
            if partial:
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2) or size - 1), size - 1)
                else:  # suffix range: the last N bytes
                    start = max(size - int(match.group(2)), 0)
            self._note(path, rng, end - start + 1 if body else 0)
            if partial:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            if ranges:
                self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if versions:
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()[:16]}"')
                mtime = file.stat().st_mtime
                self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
            self.end_headers()
            if body:
                # the client may close once it has what it wanted (e.g. the status line only)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data[start : end + 1])

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    timer = threading.Timer(lifetime_s, httpd.shutdown)
    timer.daemon = True
    timer.start()
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


def closed_port() -> int:
    """A local port with nothing listening on it (connections are refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    serve(
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        float(sys.argv[3]),
        versions="--no-versions" not in sys.argv,
        ranges="--no-ranges" not in sys.argv,
    )

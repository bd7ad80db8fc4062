"""Headless Chromium (Debian's `chromium` package) for the viewer tests.

Every run resolves no host name but 127.0.0.1 (`--host-resolver-rules`), so nothing can leave the
machine even if a page asked for it, and logs its network activity (`--log-net-log`) so the tests
can check what the page asked for.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (apt-get install chromium; .ci/run installs it)",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
BROWSER_INTERNAL = "not an origin"  # initiator of the browser's own requests and of navigation


@dataclass
class PageRun:
    screenshot: np.ndarray | None  # H x W x 3 uint8
    dom: str | None
    requests: list[tuple[str, str]]  # (url, initiator) of every URL request Chromium started

    def page_requests(self) -> list[str]:
        """URLs the page itself asked for (initiated by a document, not by the browser)."""
        return [url for url, initiator in self.requests if initiator != BROWSER_INTERNAL]


def run_page(
    url: str,
    work: Path,
    *,
    screenshot: bool = True,
    size: tuple[int, int] = (1000, 700),
    budget_ms: int = 4000,
) -> PageRun:
    """Load `url`, let it run for `budget_ms` of virtual time, take a screenshot or dump the DOM."""
    work.mkdir(parents=True, exist_ok=True)
    profile = work / f"profile-{len(list(work.iterdir()))}"
    netlog = work / f"{profile.name}-net.json"
    shot = work / f"{profile.name}.png"
    cmd = [
        CHROMIUM,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        f"--virtual-time-budget={budget_ms}",
        f"--log-net-log={netlog}",
        f"--screenshot={shot}" if screenshot else "--dump-dom",
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    image = None
    if screenshot:
        with Image.open(shot) as im:
            image = np.asarray(im.convert("RGB"))
    return PageRun(image, None if screenshot else done.stdout, _url_requests(netlog))


def _url_requests(netlog: Path) -> list[tuple[str, str]]:
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        (e["params"]["url"], str(e["params"].get("initiator")))
        for e in log["events"]
        if e["type"] == start_job and "url" in e.get("params", {})
    ]


def is_local(url: str) -> bool:
    """Whether a request stays on this machine: file:, data:, blob: or a loopback HTTP server."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme in {"file", "data", "blob"}:
        return True
    return parts.scheme in {"http", "https"} and parts.hostname in {"127.0.0.1", "localhost", "::1"}

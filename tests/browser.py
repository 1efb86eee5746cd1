"""A real headless Chromium, driven through chromedriver's W3C WebDriver protocol over HTTP, for
the HTML reports radsynth writes (`evaluate`, `probe`): a page is opened from disk as a reader
would open it, and what the browser made of it is returned: its images (loaded or broken), every
resource it asked for, its visible text, the console's errors and a screenshot.

Debian's `chromium` and `chromium-driver` packages (`scripts/install_system_packages.sh` installs
them as root); tests that need them are skipped with that reason where they are absent."""

from __future__ import annotations

import base64
import contextlib
import io
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = (
    None
    if CHROMIUM and CHROMEDRIVER
    else "needs Debian's chromium and chromium-driver (scripts/install_system_packages.sh, as root)"
)
# The flags of a headless Chromium on a machine without network: no sandbox as root, no GPU, and
# none of the background connections that a closed network refuses.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]

_PAGE_STATE = """
return {
  images: Array.from(document.images).map(i => ({
    src: i.getAttribute('src') || '', loaded: i.complete && i.naturalWidth > 0,
    width: i.naturalWidth, height: i.naturalHeight, alt: i.getAttribute('alt') || ''})),
  resources: performance.getEntriesByType('resource').map(e => e.name),
  text: document.body ? document.body.innerText : '',
  title: document.title,
  overflow_px: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  tables: Array.from(document.querySelectorAll('table')).map(t =>
    Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim()))),
};
"""


@dataclass
class RenderedPage:
    """What Chromium showed for one page."""

    url: str
    title: str
    text: str
    tables: list[list[list[str]]]  # each table's rows of cell texts, as shown
    images: list[dict[str, Any]]
    resources: list[str]
    console_errors: list[str]
    screenshot: np.ndarray  # (H, W, 3) uint8
    overflow_px: int  # how far the page runs past the window's width (a sideways scroll bar)

    @property
    def broken_images(self) -> list[str]:
        return [i["src"][:80] for i in self.images if not i["loaded"]]

    @property
    def blank(self) -> bool:
        """True when the screenshot is one flat colour (nothing drawn)."""
        return bool(self.screenshot.std() < 1.0)

    @property
    def outside_requests(self) -> list[str]:
        """Resources fetched from anywhere but the report's own files (a CDN, a web font)."""
        return [r for r in self.resources if not r.startswith(("file://", "data:"))]


class Browser:
    """One chromedriver and one Chromium session; `open` loads a page and waits for it."""

    def __init__(self) -> None:
        if MISSING:
            raise RuntimeError(MISSING)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._profile = tempfile.TemporaryDirectory(prefix="radsynth-chromium-")
        self._driver = subprocess.Popen(
            [str(CHROMEDRIVER), f"--port={port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._base = f"http://127.0.0.1:{port}"
        self._wait_ready()
        options = {
            "binary": CHROMIUM,
            "args": [*FLAGS, f"--user-data-dir={self._profile.name}"],
        }
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        reply = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self._session = f"/session/{reply['sessionId']}"

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if requests.get(self._base + "/status", timeout=2).json()["value"]["ready"]:
                    return
            except (requests.ConnectionError, KeyError, ValueError):
                pass
            if self._driver.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("chromedriver did not start")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        reply = requests.request(method, self._base + path, json=body, timeout=60)
        value = reply.json()["value"]
        if reply.status_code != 200:
            raise RuntimeError(f"WebDriver {path}: {value.get('message', value)}")
        return value

    def _run(self, script: str) -> Any:
        return self._call("POST", f"{self._session}/execute/sync", {"script": script, "args": []})

    def open(self, path: Path) -> RenderedPage:
        url = Path(path).resolve().as_uri()
        self._call("POST", f"{self._session}/url", {"url": url})
        script = "return document.readyState === 'complete' && " + (
            "Array.from(document.images).every(i => i.complete);"
        )
        deadline = time.monotonic() + 30
        while not self._run(script):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not finish loading in 30 s")
            time.sleep(0.05)
        state = self._run(_PAGE_STATE)
        logs = self._call("POST", f"{self._session}/se/log", {"type": "browser"})
        errors = [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]
        png = base64.b64decode(self._call("GET", f"{self._session}/screenshot"))
        screenshot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        return RenderedPage(
            url=url,
            title=state["title"],
            text=state["text"],
            tables=state["tables"],
            images=state["images"],
            resources=state["resources"],
            console_errors=errors,
            screenshot=screenshot,
            overflow_px=state["overflow_px"],
        )

    def close(self) -> None:
        with contextlib.suppress(requests.RequestException, AttributeError):
            requests.delete(self._base + self._session, timeout=30)
        self._driver.terminate()
        try:
            self._driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._driver.kill()
        self._profile.cleanup()

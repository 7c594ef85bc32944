"""Real browsers for the tests: Debian's headless Chromium and Firefox ESR, no driver.

A page is served from a loopback server the test owns; its script POSTs what it saw
(`naturalWidth` of every image, ...) back to that server, and the browser is then
stopped. No WebDriver is needed, so Firefox ESR from Debian works as it is (Playwright
drives only its own patched Firefox, which cannot be downloaded here).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BROWSERS = {
    "chromium": shutil.which("chromium") or shutil.which("chromium-browser"),
    "firefox": shutil.which("firefox-esr") or shutil.which("firefox"),
}
# What every Chromium start needs on a machine with no network (see README, "Tests").
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "app.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "network.captive-portal-service.enabled": False,
    "browser.startup.homepage_override.mstone": "ignore",
}


def require(name: str) -> str:
    """The browser's executable; CI must have it (`.ci/run` installs both), elsewhere the test skips."""
    path = BROWSERS[name]
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {name}: .ci/run installs Debian's chromium and firefox-esr")
        pytest.skip(f"no {name} on this machine (`apt-get install chromium firefox-esr`)")
    return path


# What a report server answers a GET with: (status, headers, body), from the path and the request's headers.
Answer = Callable[[str, Mapping[str, str]], tuple[int, dict[str, str], bytes]]


@contextmanager
def report_server(answer: Answer, path: str = "/") -> Iterator[tuple[str, threading.Event, dict[str, Any]]]:
    """Serve GETs with `answer` on loopback; yields (url of `path`, reported, report) where the page
    POSTs its findings as JSON (any path)."""
    reported = threading.Event()
    report: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = answer(self.path, self.headers)
            self.send_response(status)
            for name, value in headers.items():
                if value:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            report.update(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()
            reported.set()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{path}", reported, report
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def page_server(html: str) -> Iterator[tuple[str, threading.Event, dict[str, Any]]]:
    """Serve `html` at / on loopback; yields (url, reported, report) where the page POSTs /report."""
    body = html.encode()
    with report_server(lambda path, headers: (200, {"Content-Type": "text/html; charset=utf-8"}, body)) as served:
        yield served


def open_page(browser: str, url: str, profile: Path) -> subprocess.Popen[bytes]:
    """Start a headless browser on `url` with a fresh profile in `profile`."""
    executable = require(browser)
    profile.mkdir(parents=True, exist_ok=True)
    if browser == "chromium":
        command = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url]
    else:
        prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items())
        (profile / "user.js").write_text(prefs)
        command = [executable, "--headless", "--no-remote", "--profile", str(profile), url]
    env = {**os.environ, "HOME": str(profile), "MOZ_HEADLESS": "1"}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def report_from(browser: str, html: str, profile: Path, timeout: float = 180) -> dict[str, Any]:
    """Load `html` in the browser and return what its script reported (POST /report)."""
    with page_server(html) as (url, reported, report):
        process = open_page(browser, url, profile)
        try:
            if not reported.wait(timeout):
                pytest.fail(f"{browser} did not report within {timeout} s")
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return dict(report)


REPORT_SCRIPT = """<script>
const settled = [...document.images].map(img => img.complete ? Promise.resolve() :
  new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); }));
Promise.all(settled).then(() => fetch("/report", {method: "POST", body: JSON.stringify({
  userAgent: navigator.userAgent,
  images: [...document.images].map(img => ({src: img.getAttribute("src"), naturalWidth: img.naturalWidth,
    naturalHeight: img.naturalHeight, complete: img.complete}))})}));
</script>"""


def images_page(sources: list[str]) -> str:
    """A page of `<img>`s that reports each one's natural size once all have settled."""
    tags = "\n".join(f'<img src="{src}" alt="">' for src in sources)
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>\n{tags}\n{REPORT_SCRIPT}\n</body></html>"

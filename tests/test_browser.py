"""A real browser: headless Chromium opens the gallery; every image must decode, and the
emulator must have seen Chromium's own Accept header and answered it with AVIF."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from localcdn import samples
from localcdn.process import Emulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
def test_headless_chromium_sees_every_image_and_gets_avif(tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium: .ci/run installs Debian's chromium")
        pytest.skip("no chromium on this machine (CI installs it; `apt-get install chromium` here)")
    (tmp_path / "home").mkdir()
    emulator = Emulator(home=tmp_path / "home")
    try:
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=30000",
                "--dump-dom",
                emulator.base + "/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        match = re.search(r'<pre id="report"[^>]*>(.*?)</pre>', dom, re.S)
        assert match, "the page's load handler did not run"
        report = json.loads(html.unescape(match.group(1)))
        assert sorted(item["key"] for item in report) == sorted(samples.originals())
        assert all(item["complete"] and item["naturalWidth"] > 0 for item in report), report

        seen = [
            entry
            for entry in emulator.get("/_localcdn/requests").json()
            if entry["canonical"] and "HeadlessChrome" in (entry["user_agent"] or "")
        ]
        assert {entry["uri"] for entry in seen} == {f"/{key}" for key in samples.originals()}
        for entry in seen:
            assert "image/avif" in entry["accept"]  # Chromium's own header, not one we wrote
            assert entry["status"] == 200 and entry["content_type"] == "image/avif"
            assert entry["canonical"].endswith(".avif")
    finally:
        emulator.stop()

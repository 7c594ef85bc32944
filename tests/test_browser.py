"""Real browsers: what the service answers must decode where people see it.

Headless Chromium and Firefox ESR (Debian's `chromium` and `firefox-esr`, which `.ci/run`
installs) load the emulator's images: the gallery with Chromium's own Accept header, a
colour corpus in every output format, and the gallery at a phone's width.
"""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
from pathlib import Path

import pytest
from browsers import CHROMIUM_FLAGS, images_page, report_from, require
from PIL import Image

from edge.settings import FORMATS
from localcdn import colour, samples
from localcdn.process import Emulator

WIDTHS = (160, 640)


@pytest.mark.browser
def test_headless_chromium_sees_every_image_and_gets_avif(tmp_path: Path) -> None:
    chromium = require("chromium")
    (tmp_path / "home").mkdir()
    emulator = Emulator(home=tmp_path / "home")
    try:
        dom = subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
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


@pytest.fixture(scope="module")
def colour_cdn(tmp_path_factory: pytest.TempPathFactory) -> Emulator:
    folder = tmp_path_factory.mktemp("corpus")
    for key, data in colour.corpus().items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(data)
    emulator = Emulator("--originals", str(folder), home=tmp_path_factory.mktemp("home"))
    yield emulator  # type: ignore[misc]
    emulator.stop()


@pytest.fixture(scope="module")
def colour_answers(colour_cdn: Emulator) -> dict[str, int]:
    """Every corpus image at two widths in every format, asked once over HTTP: URL -> status."""
    answers = {}
    for key in colour.corpus():
        for width in WIDTHS:
            for fmt in FORMATS:
                path = f"/{key}?w={width}&fm={fmt}"
                reply = colour_cdn.get(path)
                answers[colour_cdn.base + path] = reply.status
                if reply.status == 200:
                    image = Image.open(io.BytesIO(reply.body))
                    assert "icc_profile" not in image.info, path
    return answers


@pytest.mark.browser
@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_every_colour_case_decodes_in_a_real_browser(
    colour_answers: dict[str, int], browser: str, tmp_path: Path
) -> None:
    served = [url for url, status in colour_answers.items() if status == 200]
    assert len(served) == len(colour_answers)  # a valid image is always served
    report = report_from(browser, images_page(served), tmp_path / "profile")
    decoded = {image["src"]: image["naturalWidth"] for image in report["images"]}
    broken = sorted(url for url in served if decoded.get(url, 0) == 0)
    assert broken == [], f"{report['userAgent']} could not decode {broken}"


@pytest.mark.browser
def test_the_gallery_fits_a_phone(tmp_path: Path) -> None:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    (tmp_path / "home").mkdir()
    emulator = Emulator(home=tmp_path / "home")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
            try:
                page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
                page.goto(emulator.base + "/", wait_until="load")
                page.wait_for_function("[...document.images].every(img => img.complete)")
                boxes = page.evaluate(
                    "[...document.images].map(img => {const r = img.getBoundingClientRect();"
                    " return {x: r.x, y: r.y, width: r.width, height: r.height, natural: img.naturalWidth}})"
                )
                overflow = page.evaluate("document.documentElement.scrollWidth")
                shot = tmp_path / "gallery-390.png"
                page.screenshot(path=str(shot))
            finally:
                browser.close()
    finally:
        emulator.stop()
    assert overflow <= 390  # nothing wider than the phone
    for box in boxes:
        assert box["natural"] > 0 and box["width"] >= 300, box  # each picture spans the column
    screenshot = Image.open(shot).convert("RGB")
    assert screenshot.size == (390, 844)
    first = boxes[0]
    if first["y"] + first["height"] <= 844:  # the first picture is on screen: it shows, not a blank
        region = screenshot.crop(
            (int(first["x"]), int(first["y"]), int(first["x"] + first["width"]), int(first["y"] + first["height"]))
        )
        assert len(region.getcolors(maxcolors=1 << 20) or []) > 50

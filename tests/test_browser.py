"""Real browsers: what the service answers must decode where people see it.

Headless Chromium and Firefox ESR (Debian's `chromium` and `firefox-esr`, which `.ci/run`
installs) load the emulator's images: the gallery with Chromium's own Accept header, a
colour corpus in every output format, and the gallery at a phone's width.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browsers import CHROMIUM_FLAGS, images_page, report_from, require
from PIL import Image

from components.config import from_stack_file
from edge.settings import DEFAULT_FORMATS
from localcdn import colour, samples
from localcdn.process import Emulator

WIDTHS = (160, 640)
DEV_DEFAULT_IMAGE = from_stack_file("dev").default_image


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
        assert sorted(item["key"] for item in report) == sorted(samples.originals(DEV_DEFAULT_IMAGE))
        assert all(item["complete"] and item["naturalWidth"] > 0 for item in report), report

        seen = [
            entry
            for entry in emulator.get("/_localcdn/requests").json()
            if entry["canonical"] and "HeadlessChrome" in (entry["user_agent"] or "")
        ]
        assert {entry["uri"] for entry in seen} == {f"/{key}" for key in samples.originals(DEV_DEFAULT_IMAGE)}
        for entry in seen:
            assert "image/avif" in entry["accept"]  # Chromium's own header, not one we wrote
            # The tiny animated GIF fits every width asked as it is and is smaller than its AVIF: it is
            # served as itself (never larger than the source, edge/passthrough.py).
            served = "image/gif" if entry["uri"] == "/samples/bouncing.gif" else "image/avif"
            assert entry["status"] == 200 and entry["content_type"] == served, entry
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
            for fmt in DEFAULT_FORMATS:
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
                    "[...document.querySelectorAll('picture img')].map(img => {const r = img.getBoundingClientRect();"
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


@pytest.mark.browser
def test_an_upload_through_the_gallery_is_listed_with_its_placeholder_and_served_by_the_cdn(tmp_path: Path) -> None:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    photo = tmp_path / "Sunset at the beach.jpg"
    photo.write_bytes(samples.camera_jpeg(samples.photo(2000, 1500, seed=31)))
    (tmp_path / "home").mkdir()
    emulator = Emulator(home=tmp_path / "home")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(emulator.base + "/", wait_until="load")
                page.wait_for_selector("#images li")  # the catalogue lists the samples
                page.set_input_files("#upload input[type=file]", str(photo))
                page.fill("#upload input[name=tags]", "Sunset, beach")
                page.click("#upload button")
                page.wait_for_function(
                    "/^(uploaded|failed)/.test(document.getElementById('upload-status').value)", timeout=60_000
                )
                status = page.eval_on_selector("#upload-status", "o => o.value")
                assert status == "uploaded Sunset at the beach.jpg", status
                card = page.locator("#images li").first
                image_id = card.get_attribute("data-id")
                page.wait_for_function(
                    "id => { const img = document.querySelector(`#images li[data-id='${id}'] img`);"
                    " return img && img.complete && img.naturalWidth > 0; }",
                    arg=image_id,
                )
                shown = card.locator("img").evaluate(
                    "img => ({src: img.currentSrc, natural: img.naturalWidth, placeholder: img.dataset.placeholder,"
                    " ratio: img.style.aspectRatio})"
                )
                caption = card.locator("figcaption").inner_text()
                page.fill("#filter input[name=tag]", "sunset")
                page.click("#filter button")
                page.wait_for_function("document.querySelectorAll('#images li').length === 1")
                filtered = page.locator("#images li").first.get_attribute("data-id")
            finally:
                browser.close()
        served = [
            entry
            for entry in emulator.get("/_localcdn/requests").json()
            if entry["uri"] == f"/{image_id}/Sunset-at-the-beach.jpg"
            and "HeadlessChrome" in (entry["user_agent"] or "")
        ]
    finally:
        emulator.stop()
    assert shown["src"].startswith(f"{emulator.base}/{image_id}/Sunset-at-the-beach.jpg?w=")
    assert shown["natural"] > 0 and shown["ratio"] == "2000 / 1500"
    preview = Image.open(io.BytesIO(base64.b64decode(shown["placeholder"].split(",", 1)[1])))
    assert preview.format == "PNG" and preview.size == (16, 12)  # the photo's shape, tiny
    assert "sunset" in caption and "beach" in caption and "2000×1500" in caption
    assert filtered == image_id
    assert served and all(e["status"] == 200 and e["content_type"] == "image/avif" for e in served)


@pytest.mark.browser
@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_a_missing_original_shows_the_default_image_in_a_real_browser(browser: str, tmp_path: Path) -> None:
    """The stand-in comes with a 404: browsers still draw it (and say it is missing to scripts)."""
    (tmp_path / "home").mkdir()
    emulator = Emulator(home=tmp_path / "home")
    try:
        missing = f"{emulator.base}/samples/gone.jpg?w=320"
        present = f"{emulator.base}/samples/logo.png?w=320"
        report = report_from(browser, images_page([missing, present]), tmp_path / "profile")
        log = [e for e in emulator.get("/_localcdn/requests").json() if e["uri"] == "/samples/gone.jpg"]
    finally:
        emulator.stop()
    sizes = {image["src"]: (image["naturalWidth"], image["naturalHeight"]) for image in report["images"]}
    assert sizes == {missing: (320, 240), present: (320, 240)}, report["userAgent"]
    assert log and {e["status"] for e in log} == {404}


@pytest.mark.browser
@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_presets_crops_and_signed_urls_draw_in_a_real_browser(browser: str, tmp_path: Path) -> None:
    """What the gallery's features section shows: presets, every crop (faces through the labelled
    stand-in), a signed URL; a forged one does not draw (403). With signing required, in both engines."""
    (tmp_path / "home").mkdir()
    emulator = Emulator("--set", "signing=required", home=tmp_path / "home")
    try:

        def signed(path: str) -> str:
            body = json.dumps({"url": path}).encode()
            return emulator.base + emulator.request("POST", "/_localcdn/sign", body).json()["url"]

        people = "/samples/people.jpg"
        wanted = {
            signed(f"{people}?preset=thumb"): (160, 160),
            signed(f"{people}?preset=thumb&dpr=2"): (320, 320),
            **{signed(f"{people}?w=300&h=300&crop={crop}"): (320, 320) for crop in ("entropy", "attention", "faces")},
        }
        good = signed(f"{people}?w=480")
        forged = good.replace("w=480", "w=2560")
        unsigned = f"{emulator.base}{people}?w=480"
        report = report_from(browser, images_page([*wanted, good, forged, unsigned]), tmp_path / "profile")
        page = emulator.get("/").body.decode()
    finally:
        emulator.stop()
    sizes = {image["src"]: (image["naturalWidth"], image["naturalHeight"]) for image in report["images"]}
    for url, size in wanted.items():
        assert sizes[url] == size, (url, sizes[url], report["userAgent"])
    assert sizes[good][0] == 480
    assert sizes[forged] == (0, 0) and sizes[unsigned] == (0, 0)  # refused with a 403: nothing to draw
    assert 'data-feature="crop-faces"' in page and 'data-feature="forged"' in page and "?preset=thumb" in page


@pytest.fixture(scope="module")
def gallery_cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator with its samples, for tests that only look at the gallery."""
    emulator = Emulator(home=tmp_path_factory.mktemp("home"))
    try:
        yield emulator
    finally:
        emulator.stop()


PAGE_BACKGROUND = (0, 170, 0)  # no colour of the logo, its placeholder or the catalogue's cards


def corner_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Four squares of an image, 4% of each side, inset 1% from each corner."""
    return [
        (int(fx * width), int(fy * height), int((fx + 0.04) * width), int((fy + 0.04) * height))
        for fx in (0.01, 0.95)
        for fy in (0.01, 0.95)
    ]


@pytest.mark.browser
def test_a_transparent_image_in_the_catalogue_shows_the_page_through_once_loaded(gallery_cdn: Emulator) -> None:
    """The dominant colour and the preview stand in while the image loads (its request is held here
    until the placeholder has been seen); once it has loaded, its transparent pixels show the page."""
    chromium = require("chromium")
    from playwright.sync_api import Route, sync_playwright

    logo = samples.logo()
    for box in corner_boxes(*logo.size):  # the sample's corners are fully transparent
        assert logo.getchannel("A").crop(box).getextrema() == (0, 0)
    listed = gallery_cdn.get("/_localcdn/app/images?limit=50").json()["images"]
    entry = next(image for image in listed if image["key"] == "originals/samples/logo.png")
    assert entry["alpha"] is True
    dominant = tuple(int(entry["colour"][i : i + 2], 16) for i in (1, 3, 5))
    assert dominant != PAGE_BACKGROUND

    card = "#images img[data-key='originals/samples/logo.png']"
    held: list[Route] = []

    def is_logo(url: str) -> bool:
        return urlsplit(url).path == "/samples/logo.png"

    def hold(route: Route) -> None:
        held.append(route)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=1)
            page.route(is_logo, hold)
            page.goto(gallery_cdn.base + "/", wait_until="domcontentloaded")
            page.add_style_tag(content=f"html, body {{ background: rgb{PAGE_BACKGROUND} !important; }}")
            page.wait_for_selector(card)
            wanted = set(page.eval_on_selector(card, "img => img.srcset.split(', ').map(c => c.split(' ')[0])"))
            while not any(route.request.url in wanted for route in held):  # the card's own request, held
                page.wait_for_timeout(50)
            pending = page.eval_on_selector(
                card, "img => ({complete: img.complete, colour: getComputedStyle(img).backgroundColor})"
            )
            loading = page.locator(card).screenshot()
            for route in held:
                route.continue_()
            page.unroute(is_logo)  # a request held since goes on too
            page.wait_for_function(
                "selector => { const img = document.querySelector(selector);"
                " return img.complete && img.naturalWidth > 0 && !img.classList.contains('pending'); }",
                arg=card,
            )
            loaded = page.locator(card).screenshot()
            whole = page.screenshot()
        finally:
            browser.close()
    assert Image.open(io.BytesIO(whole)).convert("RGB").getpixel((2, 2)) == PAGE_BACKGROUND  # the known page
    assert not pending["complete"] and pending["colour"] == "rgb({}, {}, {})".format(*dominant)
    before = Image.open(io.BytesIO(loading)).convert("RGB")
    after = Image.open(io.BytesIO(loaded)).convert("RGB")
    assert before.size == after.size
    for box in corner_boxes(*after.size):
        # while loading: the placeholder, not the page; loaded: the page, not the dominant colour
        assert PAGE_BACKGROUND not in {colour for _, colour in before.crop(box).getcolors(1 << 16) or []}
        region = after.crop(box)
        assert region.getcolors(1 << 16) == [(region.width * region.height, PAGE_BACKGROUND)], box
    drawn = after.getpixel((int(0.2 * after.width), after.height // 2))  # inside the logo's opaque shape
    assert isinstance(drawn, tuple) and sum(abs(a - b) for a, b in zip(drawn, (220, 40, 90), strict=True)) < 30, drawn


@pytest.mark.browser
def test_a_refused_tag_reads_as_a_sentence_in_the_gallery(gallery_cdn: Emulator, tmp_path: Path) -> None:
    """The API refuses a tag with JSON naming the parameter, what it expected and what it received;
    the gallery says that in words: no JSON, no escaped quotes."""
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    refused = gallery_cdn.request(
        "POST",
        "/_localcdn/app/uploads",
        json.dumps({"filename": "a.png", "content_type": "image/png", "tags": ["bad tag!"], "bytes": 100}).encode(),
        {"Content-Type": "application/json"},
    )
    assert refused.status == 400 and refused.json()["parameter"] == "tags"
    expected = refused.json()["expected"]
    picture = tmp_path / "pixel.png"
    picture.write_bytes(samples.png(samples.logo(64, 48)))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.goto(gallery_cdn.base + "/", wait_until="load")
            page.wait_for_selector("#images li")
            status = page.locator("#upload-status")
            page.set_input_files("#upload input[type=file]", str(picture))
            page.fill("#upload input[name=tags]", "Bad Tag!, fine")
            page.click("#upload button")
            page.wait_for_function("/^(uploaded|failed)/.test(document.getElementById('upload-status').value)")
            upload = status.inner_text()
            page.fill("#filter input[name=tag]", "Bad Tag!")
            page.click("#filter button")
            page.wait_for_function("before => document.getElementById('upload-status').value !== before", arg=upload)
            search = status.inner_text()
            listed = page.locator("#images li").count()
        finally:
            browser.close()
    assert upload == f"failed: tags: “bad tag!” is not accepted; expected {expected}"
    assert search == f"tag: “bad tag!” is not accepted; expected {expected}"
    assert listed > 0  # a refused filter leaves the list as it was

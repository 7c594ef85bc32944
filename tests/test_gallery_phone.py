"""The gallery on a phone: every element fits its box at 390 CSS pixels, in Chromium and Firefox.

Chromium is driven by Playwright with a phone's viewport (390×844, touch, `isMobile`, so the
page's `<meta name="viewport">` applies). Debian's Firefox ESR cannot be driven, and its window is
never narrower than 500 pixels: it loads the gallery in a 390-pixel frame (a phone's viewport, with
overlay scrollbars as phones have) through a loopback proxy of the emulator that adds the same
probe to the page, which POSTs what it measured (tests/browsers.py's way of hearing from a browser).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import browsers
import pytest
from browsers import CHROMIUM_FLAGS, open_page, require

from localcdn.process import Emulator

PHONE_WIDTH, PHONE_HEIGHT = 390, 844

# True once the page has settled: every image loaded or failed, the variant tables filled from
# /_localcdn/variants, the q=60 / q=auto comparisons measured, the catalogue listed.
READY = """() => document.readyState === "complete"
  && [...document.images].every(img => img.complete)
  && document.querySelectorAll("table[data-key]").length > 0
  && ![...document.querySelectorAll("table[data-key] td")].some(td => td.textContent === "loading…")
  && document.querySelectorAll(".compare figcaption").length > 0
  && ![...document.querySelectorAll(".compare figcaption")].some(c => c.textContent.endsWith("measuring…"))
  && document.querySelectorAll("#images li").length > 0"""

# Each original's comparison as the page shows it: the captions' text, bytes and score.
COMPARISONS = """() => [...document.querySelectorAll(".compare[data-key]")].map(box => ({
  key: box.dataset.key,
  shown: [...box.querySelectorAll("figure")].map(figure => ({
    label: figure.querySelector("figcaption").dataset.quality, text: figure.querySelector("figcaption").textContent,
    bytes: Number(figure.querySelector("figcaption").dataset.bytes),
    score: Number(figure.querySelector("figcaption").dataset.score),
    loaded: figure.querySelector("img").naturalWidth }))}))"""

# Every rendered element against its container (the nearest ancestor that is not inline): wider
# than the container's client width, or reaching outside it, is a fault unless the container is a
# scroll box on purpose (overflow-x auto or scroll). A clipping container (overflow-x hidden) is no
# excuse. Also: how wide the page is, and each variant table against its box.
PROBE = """() => {
  const scrollBox = el => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const container = el => {
    let box = el.parentElement;
    while (box && ["inline", "contents"].includes(getComputedStyle(box).display)) box = box.parentElement;
    return box;
  };
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : "")
    + (el.dataset && el.dataset.key ? `[data-key="${el.dataset.key}"]` : "");
  const faults = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.ownerSVGElement) continue;  // drawn inside an <svg>, which is itself checked
    if (el.getClientRects().length === 0) continue;  // not rendered
    const box = container(el);
    if (!box || scrollBox(box)) continue;
    const rect = el.getBoundingClientRect();
    const width = scrollBox(el) ? rect.width : Math.max(el.scrollWidth, rect.width);
    const left = box.getBoundingClientRect().left + box.clientLeft, right = left + box.clientWidth;
    if (width > box.clientWidth + 0.5 || rect.left < left - 0.5 || rect.right > right + 0.5)
      faults.push({element: name(el), container: name(box), width, room: box.clientWidth,
        outside: [Math.round(left - rect.left), Math.round(rect.right - right)]});
  }
  const tables = [...document.querySelectorAll("table[data-key]")].map(table => ({
    key: table.dataset.key, width: table.scrollWidth, room: table.parentElement.clientWidth,
    scrollBox: scrollBox(table.parentElement)}));
  return {viewport: window.innerWidth, client: document.documentElement.clientWidth,
    page: document.documentElement.scrollWidth, faults, tables};
}"""


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    # q=auto on: the gallery's comparison shows it beside q=60.
    emulator = Emulator("--set", "qualityTarget=good", home=tmp_path_factory.mktemp("home"))
    try:
        yield emulator
    finally:
        emulator.stop()


def check_fits(measured: dict[str, Any], width: int, *, tables_whole: bool) -> None:
    assert measured["viewport"] == width and measured["client"] == width, measured
    assert measured["page"] <= width, measured  # no sideways scrolling of the page
    assert measured["faults"] == [], measured["faults"]
    assert measured["tables"], "no variant tables on the page"
    for table in measured["tables"]:
        assert table["scrollBox"], table  # a table that cannot fit scrolls inside its own box
        if tables_whole:  # at a phone's width every column shows: nothing cut off to scroll to
            assert table["width"] <= table["room"], table


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 320])
def test_every_element_of_the_gallery_fits_a_phone_in_chromium(cdn: Emulator, width: int) -> None:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
        try:
            page = browser.new_page(
                viewport={"width": width, "height": PHONE_HEIGHT}, device_scale_factor=3, is_mobile=True, has_touch=True
            )
            page.goto(cdn.base + "/", wait_until="load")
            page.wait_for_function(READY, timeout=120_000)
            measured = page.evaluate(PROBE)
            comparisons = page.evaluate(COMPARISONS)
        finally:
            browser.close()
    check_fits(measured, width, tables_whole=width >= 390)
    check_comparisons(cdn, comparisons)


def check_comparisons(cdn: Emulator, comparisons: list[dict[str, Any]]) -> None:
    """Every original shows q=60 beside q=auto, each loaded, with the bytes the CDN served and a score."""
    originals = list(cdn.get("/_localcdn/variants").json())
    assert sorted(c["key"] for c in comparisons) == sorted(originals)
    for comparison in comparisons:
        assert [shown["label"] for shown in comparison["shown"]] == ["q=60", "q=auto"], comparison
        for shown in comparison["shown"]:
            assert shown["loaded"] > 0, comparison
            assert shown["bytes"] > 0 and 0 < shown["score"] <= 100, comparison
            assert f"{shown['bytes'] / 1024:.1f} KB" in shown["text"], comparison
            assert f"SSIMULACRA 2 {shown['score']:.1f}" in shown["text"], comparison


@contextmanager
def probing_proxy(emulator: Emulator, probe: str) -> Iterator[tuple[str, threading.Event, dict[str, Any]]]:
    """The emulator at an origin of our own on loopback, its gallery (`/`) with `probe` added, and
    `/_phone`: a page holding the gallery in a phone-sized frame. Yields (phone url, reported, report)."""
    frame = (
        "<!doctype html><html><head><meta charset='utf-8'></head><body style='margin:0'>"
        f"<iframe src='/' style='border:0;width:{PHONE_WIDTH}px;height:{PHONE_HEIGHT}px'></iframe>"
        "</body></html>"
    ).encode()

    def answer(path: str, asked: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        if path == "/_phone":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, frame
        accept = {"Accept": asked["Accept"]} if asked.get("Accept") else {}
        reply = emulator.request("GET", path, headers=accept)
        body = reply.body
        if path == "/":
            body = body.replace(b"</body>", probe.encode() + b"</body>", 1)
        return reply.status, {name: reply.header(name) or "" for name in ("Content-Type", "Cache-Control")}, body

    with browsers.report_server(answer, "/_phone") as served:
        yield served


@pytest.mark.browser
def test_every_element_of_the_gallery_fits_a_phone_in_firefox(
    cdn: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("firefox")
    monkeypatch.setitem(browsers.FIREFOX_PREFS, "ui.useOverlayScrollbars", 1)  # as on a phone
    script = (
        "<script>(async () => {\n"
        f"  const ready = {READY}, probe = {PROBE};\n"
        "  while (!ready()) await new Promise(next => setTimeout(next, 100));\n"
        "  await fetch('/_report', {method: 'POST', body: JSON.stringify(probe())});\n"
        "})();</script>"
    )
    with probing_proxy(cdn, script) as (url, reported, report):
        process = open_page("firefox", url, tmp_path / "profile")
        try:
            if not reported.wait(180):
                pytest.fail("firefox did not report within 180 s")
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    check_fits(dict(report), PHONE_WIDTH, tables_whole=True)

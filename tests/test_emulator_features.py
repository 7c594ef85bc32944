"""Signed URLs, presets, DPR, client hints and crops through `make serve` (the dev stack), and
`python -m ops sign` against it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from localcdn.process import ROOT, Emulator
from tests.test_emulator import CHROMIUM, image_of


@pytest.fixture(scope="module")
def required(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The dev stack with signing required and a watermark (its key uploaded at start-up below)."""
    emulator = Emulator("--set", "signing=required", home=tmp_path_factory.mktemp("home"))
    yield emulator
    emulator.stop()


def sign(cdn: Emulator, url: str, expires_in: int | None = None) -> str:
    body = json.dumps({"url": url, **({"expires_in": expires_in} if expires_in else {})}).encode()
    reply = cdn.request("POST", "/_localcdn/sign", body)
    assert reply.status == 200, reply.body
    return str(reply.json()["url"])


def test_optional_signing_passes_unsigned_urls_and_checks_signed_ones(cdn: Emulator) -> None:
    assert cdn.get("/samples/landscape.jpg?w=300", CHROMIUM).status == 200
    signed = sign(cdn, "/samples/landscape.jpg?w=300")
    assert cdn.get(signed, CHROMIUM).status == 200
    forged = signed.replace("w=300", "w=2500")
    refused = cdn.get(forged, CHROMIUM)
    assert refused.status == 403 and refused.json()["parameter"] == "sig"
    assert refused.header("X-Cache") == "FunctionGeneratedResponse"


def test_required_signing_refuses_unsigned_and_expired_urls(required: Emulator) -> None:
    unsigned = required.get("/samples/landscape.jpg?w=300", CHROMIUM)
    assert unsigned.status == 403 and unsigned.json()["error"] == "InvalidSignature"
    canonical = required.get("/samples/landscape.jpg/w_320_q_60.webp", CHROMIUM)
    assert canonical.status == 403  # a canonical path is a URL like any other
    short = sign(required, "/samples/landscape.jpg?w=300", expires_in=60)
    assert required.get(short, CHROMIUM).status == 200
    required.request("POST", "/_localcdn/clock", b"61")
    expired = required.get(short, CHROMIUM)
    assert expired.status == 403 and expired.json()["parameter"] == "expires"


def test_a_rotation_keeps_yesterdays_urls_working(required: Emulator) -> None:
    before = sign(required, "/samples/landscape.jpg?w=160")
    state = required.request("POST", "/_localcdn/signing").json()
    assert state["current"] == "2" and state["kids"] == ["1", "2"]
    after = sign(required, "/samples/landscape.jpg?w=160")
    assert "kid=2" in after and "kid=1" in before
    assert required.get(before, CHROMIUM).status == 200 and required.get(after, CHROMIUM).status == 200
    assert required.request("POST", "/_localcdn/signing").json()["kids"] == ["2", "3"]
    gone = required.get(before, CHROMIUM)
    assert gone.status == 403 and gone.json()["parameter"] == "kid"


def test_a_signed_url_too_large_to_return_redirects_to_itself(required: Emulator) -> None:
    signed = sign(required, "/samples/landscape.jpg?w=2560&fm=png")
    reply = required.get(signed, CHROMIUM)
    assert reply.status == 302 and reply.header("Location") == signed
    retry = required.get(signed, CHROMIUM)
    assert retry.status == 200 and retry.header("X-Origin") == "primary" and len(retry.body) > 1_000_000


def test_ops_sign_reads_the_stack_secret_like_on_aws(cdn: Emulator) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops", "sign", "/samples/portrait.jpg?w=480", "--stack", "dev", "--emulator", cdn.base],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith("/samples/portrait.jpg?w=480&kid=1&sig=")
    assert cdn.get(url, CHROMIUM).status == 200
    assert cdn.get(url[:-1] + ("0" if url[-1] != "0" else "1"), CHROMIUM).status == 403


def test_ops_sign_with_the_emulator_expires_on_the_emulators_clock(required: Emulator) -> None:
    # The README's own steps: move the emulator's clock, then sign with an expiry.
    assert required.request("POST", "/_localcdn/clock", json.dumps({"advance": 61}).encode()).status == 200
    command = [sys.executable, "-m", "ops", "sign", "/samples/portrait.jpg?w=320", "--stack", "dev"]
    done = subprocess.run(
        [*command, "--emulator", required.base, "--expires-in", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert required.get(url, CHROMIUM).status == 200  # not expired on the clock that checks it
    assert required.request("POST", "/_localcdn/clock", json.dumps({"advance": 121}).encode()).status == 200
    expired = required.get(url, CHROMIUM)
    assert expired.status == 403 and expired.json()["parameter"] == "expires"


def test_presets_dpr_and_client_hints_land_on_snapped_keys(cdn: Emulator) -> None:
    thumb = cdn.get("/samples/landscape.jpg?preset=thumb", CHROMIUM)
    assert thumb.status == 200 and image_of(thumb).size == (160, 160)
    retina = cdn.get("/samples/landscape.jpg?preset=thumb&dpr=2", CHROMIUM)
    assert image_of(retina).size == (320, 320)
    hinted = cdn.request(
        "GET", "/samples/landscape.jpg", headers={"Accept": CHROMIUM, "Sec-CH-DPR": "2", "Sec-CH-Viewport-Width": "300"}
    )
    assert image_of(hinted).width == 640  # 300 CSS px x 2 = 600, snapped up
    assert hinted.header("Accept-CH") == "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width"
    assert "Sec-CH-DPR" in (hinted.header("Vary") or "")
    bad = cdn.get("/samples/landscape.jpg?preset=thumb&w=10", CHROMIUM)
    assert bad.status == 400 and bad.json()["parameter"] == "width"


@pytest.mark.parametrize("crop", ["entropy", "attention", "faces"])
def test_each_crop_strategy_renders_its_own_variant(cdn: Emulator, crop: str) -> None:
    reply = cdn.get(f"/samples/landscape.jpg?w=300&h=300&crop={crop}", CHROMIUM)
    assert reply.status == 200 and image_of(reply).size == (320, 320)
    assert f"crop_{crop}" in " ".join(cdn.request("GET", "/_localcdn/cache").json())


def test_faces_with_the_detector_down_fall_back_to_attention(cdn: Emulator) -> None:
    cdn.request("PUT", "/_localcdn/faces", b"down")
    try:
        reply = cdn.get("/samples/portrait.jpg?w=200&h=200&crop=faces", CHROMIUM)
        assert reply.status == 200
        attention = cdn.get("/samples/portrait.jpg?w=200&h=200&crop=attention", CHROMIUM)
        assert image_of(reply).tobytes() == image_of(attention).tobytes()
    finally:
        cdn.request("PUT", "/_localcdn/faces", b"up")


def test_the_catalogue_hands_out_signed_urls_that_pass(required: Emulator) -> None:
    listing = required.get("/_localcdn/app/images?limit=5").json()
    ready = [image for image in listing["images"] if image.get("status") == "ready"]
    assert ready, listing
    for image in ready:
        for url in [image["url"], *image["widths"].values()]:
            path = url[len(required.base) :]
            assert "&sig=" in path or "?kid=" in path, path
            assert required.get(path, CHROMIUM).status == 200, path

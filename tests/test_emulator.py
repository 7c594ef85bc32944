"""The emulator end to end, through HTTP: `python -m localcdn` started as a user would."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from components.config import from_stack_file
from edge.settings import Settings
from localcdn import samples
from localcdn.distribution import Distribution, Response
from localcdn.process import Emulator, Reply, listening
from localcdn.storage import LocalS3

CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def stored(cdn: Emulator) -> dict[str, Any]:
    return dict(cdn.get("/_localcdn/variants").json())


def image_of(reply: Reply) -> Image.Image:
    return Image.open(io.BytesIO(reply.body))


def test_miss_then_hit(cdn: Emulator) -> None:
    first = cdn.get("/samples/landscape.jpg?w=480&q=50", CHROMIUM)
    second = cdn.get("/samples/landscape.jpg?w=480&q=50", CHROMIUM)
    assert (first.status, first.header("X-Cache"), first.header("X-Origin")) == (200, "Miss", "primary")
    assert (second.status, second.header("X-Cache"), second.header("X-Origin")) == (200, "Hit", "primary")
    assert first.body == second.body
    timing = first.header("Server-Timing") or ""
    assert all(f"{name};dur=" in timing for name in ("download", "transform", "upload"))
    assert first.header("Vary") == "Accept" and "immutable" in (first.header("Cache-Control") or "")


def test_nearby_widths_share_one_variant(cdn: Emulator) -> None:
    first = cdn.get("/samples/portrait.jpg?w=1000", CHROMIUM)
    second = cdn.get("/samples/portrait.jpg?w=1024", CHROMIUM)
    assert first.header("X-Cache") == "Miss" and second.header("X-Cache") == "Hit"
    assert first.body == second.body
    log = cdn.get("/_localcdn/requests").json()
    canonical = {
        entry["canonical"]
        for entry in log
        if entry["uri"] == "/samples/portrait.jpg" and entry["query"] in ("w=1000", "w=1024")
    }
    assert canonical == {"/samples/portrait.jpg/w_1024_q_60.avif"}


@pytest.mark.parametrize(
    ("accept", "fmt"), [(CHROMIUM, "AVIF"), ("image/webp", "WEBP"), ("*/*", "JPEG"), (None, "JPEG")]
)
def test_the_accept_header_picks_the_format(cdn: Emulator, accept: str | None, fmt: str) -> None:
    reply = cdn.get("/samples/landscape.jpg?w=320", accept)
    assert reply.status == 200
    assert image_of(reply).format == fmt
    assert reply.header("Content-Type") == f"image/{fmt.lower()}"
    assert image_of(reply).width == 320


@pytest.mark.parametrize(
    ("query", "parameter"), [("w=-3", "width"), ("q=500", "quality"), ("fm=gif", "format"), ("h=100&fit=x", "fit")]
)
def test_bad_input_is_a_400_json_and_nothing_is_stored(cdn: Emulator, query: str, parameter: str) -> None:
    before = stored(cdn)
    reply = cdn.get(f"/samples/logo.png?{query}", CHROMIUM)
    assert reply.status == 400
    body = reply.json()
    assert body["parameter"] == parameter and body["message"].startswith("Expected ")
    assert stored(cdn) == before


def test_a_path_outside_the_grammar_is_a_400(cdn: Emulator) -> None:
    assert cdn.get("/samples/../originals/samples/logo.png", CHROMIUM).status == 400
    assert cdn.get("/samples//logo.png", CHROMIUM).json()["parameter"] == "key"


def test_missing_original_is_a_404(cdn: Emulator) -> None:
    reply = cdn.get("/samples/nope.jpg?w=320", CHROMIUM)
    assert reply.status == 404 and reply.json()["error"] == "NotFound"


def test_a_big_variant_is_stored_then_redirected_and_the_retry_is_an_s3_hit(cdn: Emulator) -> None:
    reply = cdn.get("/samples/landscape.jpg?w=2560&fm=png", CHROMIUM)
    assert reply.status == 302 and reply.header("Cache-Control") == "no-store"
    location = reply.header("Location") or ""
    assert location == "/samples/landscape.jpg/w_2560_q_60.png"
    retry = cdn.get(location, CHROMIUM)
    assert retry.status == 200 and retry.header("X-Origin") == "primary"
    assert image_of(retry).size == (2400, 1600) and len(retry.body) > 1_000_000
    assert "transform" not in (retry.header("Server-Timing") or "")  # served by S3, not rendered again


@pytest.mark.parametrize("outage", ["down", "error"])
def test_an_outage_fails_over_to_the_fallback_and_back(cdn: Emulator, outage: str) -> None:
    standard = "/samples/landscape.jpg?w=640&fm=webp"
    assert cdn.get(standard, CHROMIUM).status == 200  # built; written through to the fallback
    cdn.invalidate()
    cdn.primary(outage)
    try:
        served = cdn.get(standard, CHROMIUM)
        assert (served.status, served.header("X-Origin")) == (200, "fallback")
        assert image_of(served).format == "WEBP" and image_of(served).width == 640
        nearby = cdn.get("/samples/landscape.jpg?w=600&q=90", CHROMIUM)  # avif q90: not in the fallback
        assert (nearby.status, nearby.header("X-Origin")) == (200, "fallback")
        assert image_of(nearby).format == "WEBP" and image_of(nearby).width == 640
        never_built = cdn.get("/samples/portrait.jpg?w=160", CHROMIUM)
        assert (never_built.status, never_built.header("X-Origin")) == (404, "fallback")
    finally:
        cdn.primary("up")
    cdn.invalidate("/samples/landscape.jpg/*")
    back = cdn.get(standard, CHROMIUM)
    assert (back.status, back.header("X-Origin")) == (200, "primary")


def test_control_endpoints_refuse_nonsense(cdn: Emulator) -> None:
    reply = cdn.request("PUT", "/_localcdn/primary", b"sideways")
    assert reply.status == 400 and reply.json()["parameter"] == "primary"
    assert cdn.request("POST", "/samples/logo.png").status == 403


def test_the_gallery_lists_every_original_in_a_picture(cdn: Emulator) -> None:
    page = cdn.get("/").body.decode()
    for key in samples.originals():
        assert f'data-key="{key}"' in page
    assert page.count("<picture>") == len(samples.originals()) and "srcset=" in page


def test_ctrl_c_stops_everything_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    status_before = _git_status()
    emulator = Emulator(home=home)
    s3_port = int(emulator.s3_endpoint.rsplit(":", 1)[1])
    assert emulator.get("/samples/logo.png?w=160").status == 200
    output = emulator.stop()
    assert emulator.process.returncode == 0, output
    assert "localcdn: stopped" in output
    assert not listening(emulator.port) and not listening(s3_port)
    assert list(home.iterdir()) == []
    assert _git_status() == status_before


def _git_status() -> str:
    if shutil.which("git") is None or not (Path(__file__).parents[1] / ".git").exists():
        return ""
    return subprocess.run(
        ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=Path(__file__).parents[1], check=False
    ).stdout


def test_originals_come_from_a_folder_when_given(tmp_path: Path) -> None:
    folder = tmp_path / "photos" / "summer"
    folder.mkdir(parents=True)
    (folder / "beach.jpg").write_bytes(samples.jpeg(samples.photo(900, 600)))
    (folder / "notes.txt").write_text("not an image")
    emulator = Emulator("--originals", str(tmp_path / "photos"), home=tmp_path)
    try:
        assert list(stored(emulator)) == ["summer/beach.jpg"]
        assert image_of(emulator.get("/summer/beach.jpg?w=320", "image/webp")).size == (320, 213)
    finally:
        emulator.stop()


def test_a_generated_response_over_one_megabyte_is_a_502() -> None:
    settings = from_stack_file("dev").edge_settings()
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=1)
        answer = {"status": "200", "headers": {}, "body": "A" * settings.response_limit_bytes, "bodyEncoding": "text"}
        response = distribution._generated(answer, "primary")
        assert isinstance(response, Response) and response.status == 502
        assert json.loads(response.body)["error"] == "LambdaValidationError"
    finally:
        storage.stop()


def test_errors_are_cached_only_for_the_error_ttl() -> None:
    now = [0.0]
    settings = Settings(primary_bucket="clock-origin", fallback_bucket="clock-fallback")
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=5, clock=lambda: now[0])
        assert distribution.request("GET", "/late.jpg", "w=160", {}).status == 404
        storage.put_original("late.jpg", samples.jpeg(samples.photo(320, 240)))
        assert distribution.request("GET", "/late.jpg", "w=160", {}).headers["X-Cache"] == "Hit"
        now[0] = 6.0
        assert distribution.request("GET", "/late.jpg", "w=160", {}).status == 200
    finally:
        storage.stop()

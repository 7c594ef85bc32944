"""The sync job inside the emulator: after a sync, an outage costs no standard variant."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from components.config import from_stack_file
from localcdn import samples
from localcdn.process import Emulator

SETTINGS = from_stack_file("dev").edge_settings()
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def test_after_a_sync_every_standard_variant_survives_an_outage(cdn: Emulator) -> None:
    summary = cdn.request("POST", "/_localcdn/sync").json()
    originals = samples.originals()
    assert summary["complete"] and summary["failed"] == 0
    assert summary["built"] == len(originals) * len(SETTINGS.widths)
    upright = {key: ImageOps.exif_transpose(Image.open(io.BytesIO(data))).width for key, data in originals.items()}
    cdn.primary("down")
    try:
        for key in originals:
            for width in SETTINGS.widths:
                reply = cdn.get(f"/{key}?w={width}&fm=webp", CHROMIUM)
                assert (reply.status, reply.header("X-Origin")) == (200, "fallback"), (key, width)
                image = Image.open(io.BytesIO(reply.body))
                assert image.format == "WEBP"
                assert image.width == min(width, upright[key])
            odd = cdn.get(f"/{key}?w=700&h=300&q=90", CHROMIUM)  # avif, cropped, q90: never pre-built
            assert (odd.status, odd.header("X-Origin")) == (200, "fallback")
            assert Image.open(io.BytesIO(odd.body)).format == "WEBP"
    finally:
        cdn.primary("up")


def test_an_upload_builds_its_standard_set_and_a_delete_removes_it(cdn: Emulator) -> None:
    photo = samples.jpeg(samples.photo(1000, 700, seed=5))
    created = cdn.request("PUT", "/_localcdn/originals/new/summer%20sea.jpg", photo).json()
    assert created["key"] == "new/summer sea.jpg" and created["built"] == len(SETTINGS.widths)
    cdn.primary("error")
    try:
        reply = cdn.get("/new/summer%20sea.jpg?w=480", CHROMIUM)
        assert (reply.status, reply.header("X-Origin")) == (200, "fallback")
        assert Image.open(io.BytesIO(reply.body)).width == 480
    finally:
        cdn.primary("up")
    removed = cdn.request("DELETE", "/_localcdn/originals/new/summer%20sea.jpg").json()
    assert removed["deleted"] >= len(SETTINGS.widths)
    assert cdn.get("/new/summer%20sea.jpg?w=480", CHROMIUM).status == 404


def test_a_bad_upload_lands_in_the_dead_letter_queue(cdn: Emulator) -> None:
    result = cdn.request("PUT", "/_localcdn/originals/fake.jpg", b"<svg><script/></svg>").json()
    assert result["failed"] == 1 and result["built"] == 0
    (letter,) = [entry for entry in cdn.get("/_localcdn/dlq").json() if entry["key"] == "fake.jpg"]
    assert letter["reason"].startswith("415")
    cdn.request("DELETE", "/_localcdn/originals/fake.jpg")

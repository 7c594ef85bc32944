"""The sync job inside the emulator: after a sync, an outage costs no standard variant."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from components.config import from_stack_file
from localcdn import samples
from localcdn.process import Emulator, Reply

SETTINGS = from_stack_file("dev").edge_settings()
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def test_the_startup_uploads_fill_the_fallback_and_a_sync_then_builds_nothing(cdn: Emulator) -> None:
    # the samples were uploaded through the ObjectCreated handler, as S3's notification runs it
    summary = cdn.request("POST", "/_localcdn/sync").json()
    originals = samples.originals(SETTINGS.default_image)
    assert summary["failed"] == 0
    assert summary["built"] == 0
    assert summary["skipped"] == len(originals) * len(SETTINGS.widths) * len(SETTINGS.standard_formats)


def webp_or_original(reply: Reply, original: bytes) -> str:
    """WebP, or the original's own format where its bytes were smaller (never larger than the source,
    edge/passthrough.py: the tiny GIF sample), which the response says."""
    if reply.header("X-Image-Cdn-Source") == "original":
        return str(Image.open(io.BytesIO(original)).format)
    return "WEBP"


def test_every_standard_variant_survives_an_outage(cdn: Emulator) -> None:
    originals = samples.originals(SETTINGS.default_image)
    upright = {key: ImageOps.exif_transpose(Image.open(io.BytesIO(data))).width for key, data in originals.items()}
    cdn.primary("down")
    try:
        for key in originals:
            for width in SETTINGS.widths:
                reply = cdn.get(f"/{key}?w={width}&fm=webp", CHROMIUM)
                assert (reply.status, reply.header("X-Origin")) == (200, "fallback"), (key, width)
                image = Image.open(io.BytesIO(reply.body))
                assert image.format == webp_or_original(reply, originals[key])
                assert image.width == min(width, upright[key])
            odd = cdn.get(f"/{key}?w=700&h=300&q=90", CHROMIUM)  # avif, cropped, q90: never pre-built
            assert (odd.status, odd.header("X-Origin")) == (200, "fallback")
            assert Image.open(io.BytesIO(odd.body)).format == webp_or_original(odd, originals[key])
            assert odd.header("X-Image-Cdn-Substitute") == f"/{key}/w_768_q_60.webp"
            plain = cdn.get(f"/{key}?w=300", "*/*")  # a client that names no modern format: JPEG, never WebP
            assert (plain.status, plain.header("X-Origin")) == (200, "fallback")
            assert Image.open(io.BytesIO(plain.body)).format == "JPEG"
    finally:
        cdn.primary("up")


def test_an_upload_builds_its_standard_set_and_a_delete_removes_it(cdn: Emulator) -> None:
    photo = samples.jpeg(samples.photo(1000, 700, seed=5))
    created = cdn.request("PUT", "/_localcdn/originals/new/summer%20sea.jpg", photo).json()
    assert created["key"] == "new/summer sea.jpg"
    assert created["built"] == len(SETTINGS.widths) * len(SETTINGS.standard_formats)
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


def test_replacements_wait_for_cloudfronts_invalidation_slots_and_none_is_lost(cdn: Emulator) -> None:
    keys = [f"busy/{n}.jpg" for n in range(3)]
    for n, key in enumerate(keys):
        assert (
            cdn.request("PUT", f"/_localcdn/originals/{key}", samples.jpeg(samples.photo(320, 240, seed=n))).status
            == 200
        )
        assert cdn.get(f"/{key}?w=160", CHROMIUM).status == 200  # cached at the edge
    cdn.request("POST", "/_localcdn/clock", b'{"advance": 120}')  # earlier tests' invalidations complete
    for n in range(15):  # an operator's invalidations take every wildcard slot CloudFront allows
        assert cdn.request("POST", "/_localcdn/invalidate", f'["/elsewhere-{n}/*"]'.encode()).status == 201
    assert cdn.request("POST", "/_localcdn/invalidate", b'["/one-more/*"]').status == 400
    for n, key in enumerate(keys):
        replaced = samples.jpeg(samples.photo(320, 240, seed=50 + n))
        assert cdn.request("PUT", f"/_localcdn/originals/{key}", replaced).status == 200
    queued = cdn.get("/_localcdn/invalidations").json()["queued"]
    assert sorted(path for message in queued for path in message["paths"]) == [f"/{key}/*" for key in keys]
    stale = cdn.get(f"/{keys[0]}?w=160", CHROMIUM)
    assert stale.header("X-Cache") == "Hit"  # still the old picture: CloudFront had no room yet
    cdn.request("POST", "/_localcdn/clock", b'{"advance": 61}')  # slots free up; the queue is retried
    state = cdn.get("/_localcdn/invalidations").json()
    letters = cdn.get("/_localcdn/dlq").json()
    assert state["queued"] == [] and not [letter for letter in letters if "invalidations" in letter]
    fresh = cdn.get(f"/{keys[0]}?w=160", CHROMIUM)
    assert fresh.header("X-Cache") == "Miss" and fresh.body != stale.body

"""Never larger than the source: an original that fits the box, in a format the client decodes, is
served as its own bytes (metadata stripped) when the encode would be larger; and attacks on that."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import FakeS3
from moto import mock_aws
from PIL import Image, ImageCms, PngImagePlugin

from edge import imaging, passthrough, resize, rewrite
from edge.settings import SOURCE_HEADER, Settings
from localcdn import colour, events, samples
from localcdn.distribution import Distribution
from localcdn.storage import LocalS3
from sync.job import Sync

PRIMARY = "test-origin.s3.eu-west-1.amazonaws.com"
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SECRET = b"GPS-and-a-secret-note"


def tiny_gif() -> bytes:
    """The emulator's sample `bouncing.gif` (320x240, 8 frames, looping), with a comment carrying a secret."""
    image = Image.open(io.BytesIO(samples.animation()))
    frames = [frame.copy() for frame in _frames(image)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0, duration=80, comment=SECRET)
    return out.getvalue()


def _frames(image: Image.Image) -> Iterator[Image.Image]:
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        yield image


def small_png() -> bytes:
    """A small optimised palette PNG (16 colours), with text, time and EXIF chunks."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>" + SECRET.decode() + "</x:xmpmeta>", zip=True)
    exif = Image.Exif()
    exif[0x010E] = SECRET.decode()  # ImageDescription
    out = io.BytesIO()
    samples.photo(200, 150).quantize(16).save(out, "PNG", optimize=True, pnginfo=info, exif=exif)
    return out.getvalue()


def small_jpeg(**options: Any) -> bytes:
    """A small optimised JPEG (q40, 200x150) with EXIF (GPS) and a comment."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 0.0), 3: "E", 4: (4.0, 53.0, 0.0)}
    exif[0x010E] = SECRET.decode()
    out = io.BytesIO()
    samples.photo(200, 150).save(out, "JPEG", quality=40, optimize=True, exif=exif.tobytes(), comment=SECRET, **options)
    return out.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def miss(settings: Settings, s3: FakeS3, uri: str) -> dict[str, Any]:
    """origin-response for a primary 404: resize renders (or passes through) and stores the variant."""
    domain = f"{settings.primary_bucket}.s3.{settings.primary_region}.amazonaws.com"
    forwarded = rewrite.handle(events.origin_request(uri, domain, settings.primary_region), settings)
    return resize.handle(events.origin_response(forwarded, 404), settings, s3.factory)


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {values[0]["key"]: values[0]["value"] for values in response["headers"].values()}


def served(response: dict[str, Any]) -> bytes:
    assert response["status"] == "200", response
    return base64.b64decode(response["body"])


def stored(settings: Settings, s3: FakeS3, uri: str) -> dict[str, Any]:
    return s3.get(settings.primary_bucket, "variants" + uri)


def encoded(data: bytes, fmt: str, width: int = 320) -> bytes:
    return imaging.transform(data, width=width, height=None, fit="cover", quality=60, fmt=fmt)[0]


# -- the three originals through resize -----------------------------------------------------


@pytest.mark.parametrize(
    ("make", "key", "fmt", "kind"),
    [
        (tiny_gif, "bouncing.gif", "avif", "image/gif"),
        (tiny_gif, "bouncing.gif", "webp", "image/gif"),
        (small_png, "logo.png", "png", "image/png"),
        (small_jpeg, "small.jpg", "jpeg", "image/jpeg"),
        (small_jpeg, "small.jpg", "avif", "image/jpeg"),
    ],
)
def test_an_original_smaller_than_its_encode_is_served_as_itself_without_metadata(
    settings: Settings, s3: FakeS3, make: Any, key: str, fmt: str, kind: str
) -> None:
    original = make()
    uri = f"/{key}/w_320_q_60.{fmt}"
    s3.put_original(key, original)
    response = miss(settings, s3, uri)
    body = served(response)
    headers = headers_of(response)
    assert headers["Content-Type"] == kind
    assert headers[SOURCE_HEADER] == "original"
    assert len(body) < len(encoded(original, fmt)), "served only when the encode would be larger"
    assert len(body) <= len(original)
    assert SECRET not in body and b"Exif\x00\x00" not in body
    if kind == "image/png":
        assert [kind for kind, _ in _chunks(body)] == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]
    # The same pixels as the original: nothing was decoded and encoded again.
    assert np.array_equal(pixels(body), pixels(original))
    again = Image.open(io.BytesIO(body))
    assert not again.getexif() and "comment" not in again.info and "icc_profile" not in again.info
    if kind == "image/gif":  # still animated, still looping forever
        assert getattr(again, "n_frames", 1) == 8 and again.info.get("loop") == 0
    kept = stored(settings, s3, uri)
    assert kept["ContentType"] == kind and kept["Metadata"]["source"] == "original"
    assert kept["Body"].read() == body


def test_an_encode_smaller_than_the_original_is_the_variant(settings: Settings, s3: FakeS3) -> None:
    original = samples.jpeg(samples.photo(300, 200), quality=92)
    s3.put_original("big.jpg", original)
    response = miss(settings, s3, "/big.jpg/w_320_q_60.avif")
    body = served(response)
    headers = headers_of(response)
    assert headers["Content-Type"] == "image/avif" and SOURCE_HEADER not in headers
    assert len(body) < len(original)
    assert "source" not in stored(settings, s3, "/big.jpg/w_320_q_60.avif")["Metadata"]


def test_a_hit_from_s3_carries_the_header_from_the_objects_metadata(settings: Settings, s3: FakeS3) -> None:
    s3.put_original("bouncing.gif", tiny_gif())
    miss(settings, s3, "/bouncing.gif/w_320_q_60.webp")
    kept = stored(settings, s3, "/bouncing.gif/w_320_q_60.webp")
    # What CloudFront hands origin-response when S3 answers: the object's user metadata as x-amz-meta-*.
    forwarded = rewrite.handle(events.origin_request("/bouncing.gif/w_320_q_60.webp", PRIMARY, "eu-west-1"), settings)
    answer = {"Content-Type": kept["ContentType"], "x-amz-meta-source": kept["Metadata"]["source"]}
    response = resize.handle(events.origin_response(forwarded, 200, answer), settings, s3.factory)
    assert headers_of(response)[SOURCE_HEADER] == "original"
    plain = events.origin_response(forwarded, 200, {"Content-Type": "image/webp"})
    assert SOURCE_HEADER not in headers_of(resize.handle(plain, settings, s3.factory))


# -- when the original's bytes cannot stand for the variant --------------------------------


def test_a_box_smaller_than_the_original_is_rendered(settings: Settings, s3: FakeS3) -> None:
    s3.put_original("small.jpg", small_jpeg())
    response = miss(settings, s3, "/small.jpg/w_160_q_60.jpeg")
    assert SOURCE_HEADER not in headers_of(response)
    assert Image.open(io.BytesIO(served(response))).size == (160, 120)


def test_a_rotated_original_is_rendered_upright(settings: Settings, s3: FakeS3) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    samples.photo(150, 200).save(out, "JPEG", quality=30, optimize=True, exif=exif.tobytes())
    original = out.getvalue()
    assert len(encoded(original, "avif")) > len(original)  # smaller, but its pixels must turn
    s3.put_original("turned.jpg", original)
    response = miss(settings, s3, "/turned.jpg/w_320_q_60.avif")
    assert SOURCE_HEADER not in headers_of(response)
    assert Image.open(io.BytesIO(served(response))).size == (200, 150)


def test_a_wide_gamut_original_is_converted_not_passed_through(settings: Settings, s3: FakeS3) -> None:
    original = small_jpeg(icc_profile=colour.display_p3())
    without_profile = passthrough.strip(original, "jpeg")
    assert without_profile is not None and without_profile.icc == colour.display_p3()
    assert len(without_profile.body) < len(encoded(original, "jpeg"))  # smaller, but its colours must convert
    s3.put_original("p3.jpg", original)
    response = miss(settings, s3, "/p3.jpg/w_320_q_60.jpeg")
    assert SOURCE_HEADER not in headers_of(response) and headers_of(response)["Content-Type"] == "image/jpeg"
    # An sRGB profile says nothing an untagged image does not: it is dropped and the bytes pass.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = small_jpeg(icc_profile=srgb)
    choice = passthrough.Original(tagged).choose(encoded(tagged, "jpeg"), "jpeg", width=320, height=None, fit="cover")
    assert choice is not None and b"ICC_PROFILE" not in choice[0]


def test_formats_a_client_may_not_decode_and_watermarks_are_rendered() -> None:
    png = small_png()
    original = passthrough.Original(png)
    big = b"\x00" * (len(png) * 4)  # an encode larger than the original
    assert original.choose(big, "png", width=320, height=None, fit="cover") is not None
    # A PNG variant asked for as JPEG, WebP or AVIF: not every client that asks for those decodes... PNG is
    # never a stand-in for them (the fallback's rule, edge/settings.py SUBSTITUTES).
    for fmt in ("jpeg", "webp", "avif"):
        assert original.choose(big, fmt, width=320, height=None, fit="cover") is None
    # PNG is asked for by name: a JPEG original does not stand in for it (nor for anything but JPEG,
    # WebP and AVIF).
    jpeg = small_jpeg()
    assert passthrough.Original(jpeg).choose(big, "png", width=320, height=None, fit="cover") is None
    assert passthrough.Original(jpeg).choose(big, "webp", width=320, height=None, fit="cover") is not None
    # A GIF as a JPEG or PNG variant is its first frame.
    gif = passthrough.Original(tiny_gif())
    assert gif.choose(big * 4, "jpeg", width=320, height=None, fit="cover") is None
    # A watermark from 160 px on: a 200 px original would carry it.
    assert original.choose(big, "png", width=320, height=None, fit="cover", watermark_from=160) is None
    assert original.choose(big, "png", width=320, height=None, fit="cover", watermark_from=640) is not None
    # A box that crops (cover with another shape) or pads (contain) changes pixels.
    assert original.choose(big, "png", width=320, height=320, fit="cover") is None
    assert original.choose(big, "png", width=320, height=320, fit="contain") is None
    assert original.choose(big, "png", width=320, height=320, fit="inside") is not None


# -- attacks: nothing but the image leaves through passthrough ----------------------------


PAYLOAD = b"<script>alert(document.domain)</script>PK\x03\x04payload"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    at, found = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        found.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return found


def _with_chunks(data: bytes, before_iend: list[bytes], after: bytes = b"") -> bytes:
    end = data.rindex(b"IEND") - 4
    return data[:end] + b"".join(before_iend) + data[end:] + after


def test_bytes_after_a_jpegs_end_are_not_served(settings: Settings, s3: FakeS3) -> None:
    original = small_jpeg() + PAYLOAD * 20
    s3.put_original("polyglot.jpg", original)
    body = served(miss(settings, s3, "/polyglot.jpg/w_320_q_60.jpeg"))
    assert PAYLOAD not in body and body.endswith(b"\xff\xd9")


def test_a_payload_in_jpeg_segments_is_not_served() -> None:
    clean = small_jpeg()
    app = b"\xff\xeb" + struct.pack(">H", len(PAYLOAD) + 2) + PAYLOAD  # APP11, and a comment
    com = b"\xff\xfe" + struct.pack(">H", len(PAYLOAD) + 2) + PAYLOAD
    crafted = clean[:2] + app + com + clean[2:]
    found = passthrough.strip(crafted, "jpeg")
    assert found is not None and PAYLOAD not in found.body
    assert found.body == passthrough.strip(clean, "jpeg").body  # type: ignore[union-attr]


def test_a_truncated_or_unknown_jpeg_is_not_passed_through() -> None:
    clean = small_jpeg()
    assert passthrough.strip(clean[:-2], "jpeg") is None  # no EOI
    assert passthrough.strip(clean[:2] + b"\xff\xc8\x00\x04ab" + clean[2:], "jpeg") is None  # JPG marker
    huge = clean[:2] + b"\xff\xe1\xff\xff" + clean[2:]  # a length past the end
    assert passthrough.strip(huge[:200], "jpeg") is None


def test_png_chunks_and_bytes_after_iend_are_not_served(settings: Settings, s3: FakeS3) -> None:
    original = small_png()
    crafted = original + _chunk(b"tEXt", b"Comment\x00" + PAYLOAD) + PAYLOAD
    s3.put_original("polyglot.png", crafted)
    body = served(miss(settings, s3, "/polyglot.png/w_320_q_60.png"))
    assert PAYLOAD not in body and body.endswith(_chunk(b"IEND", b""))
    assert [kind for kind, _ in _chunks(body)] == [b"IHDR", b"PLTE", b"IDAT", b"IEND"]


def test_huge_png_metadata_is_dropped_and_the_image_passes(settings: Settings, s3: FakeS3) -> None:
    noise = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    crafted = _with_chunks(small_png(), [_chunk(b"tEXt", b"Comment\x00" + PAYLOAD + noise)])
    s3.put_original("heavy.png", crafted)
    response = miss(settings, s3, "/heavy.png/w_320_q_60.png")
    body = served(response)
    assert headers_of(response)[SOURCE_HEADER] == "original"
    assert PAYLOAD not in body and len(body) < 10_000 < 300_000 < len(crafted)


def test_a_payload_inside_png_image_data_refuses_passthrough() -> None:
    original = small_png()
    kinds = _chunks(original)
    idat = b"".join(body for kind, body in kinds if kind == b"IDAT")
    header = next(body for kind, body in kinds if kind == b"IHDR")
    palette = next(body for kind, body in kinds if kind == b"PLTE")
    # After the zlib stream's end, inside IDAT: decoders ignore it, a polyglot reads it.
    after_stream = b"\x89PNG\r\n\x1a\n" + b"".join(
        _chunk(kind, body)
        for kind, body in ((b"IHDR", header), (b"PLTE", palette), (b"IDAT", idat + PAYLOAD), (b"IEND", b""))
    )
    assert passthrough.strip(after_stream, "png") is None
    # Extra rows beyond the image's height, compressed into the stream.
    rows = zlib.decompress(idat) + b"\x00" + PAYLOAD.ljust(200, b"\x00")[:100]
    extra_rows = b"\x89PNG\r\n\x1a\n" + b"".join(
        _chunk(kind, body)
        for kind, body in ((b"IHDR", header), (b"PLTE", palette), (b"IDAT", zlib.compress(rows)), (b"IEND", b""))
    )
    assert passthrough.strip(extra_rows, "png") is None
    assert passthrough.strip(original, "png") is not None


def test_bytes_after_the_zlib_stream_of_a_large_png_refuse_passthrough() -> None:
    """Image data that inflates to megabytes (read a megabyte at a time) with bytes after its stream."""
    out = io.BytesIO()
    Image.new("L", (1500, 1000), 128).save(out, "PNG")
    clean = out.getvalue()
    kinds = _chunks(clean)
    idat = b"".join(body for kind, body in kinds if kind == b"IDAT")
    header = next(body for kind, body in kinds if kind == b"IHDR")
    for extra in (b"x", PAYLOAD):
        crafted = b"\x89PNG\r\n\x1a\n" + b"".join(
            _chunk(kind, body) for kind, body in ((b"IHDR", header), (b"IDAT", idat + extra), (b"IEND", b""))
        )
        assert passthrough.strip(crafted, "png") is None
    assert passthrough.strip(clean, "png") is not None


def test_broken_or_unknown_png_chunks_refuse_passthrough() -> None:
    original = small_png()
    bad_crc = original[:-4] + b"\x00\x00\x00\x00"
    assert passthrough.strip(bad_crc, "png") is None
    unknown_critical = _with_chunks(original, [_chunk(b"ZZZZ", PAYLOAD)])
    assert passthrough.strip(unknown_critical, "png") is None
    apng = _with_chunks(original, [])
    apng = apng[:33] + _chunk(b"acTL", struct.pack(">II", 1, 0)) + apng[33:]
    assert passthrough.strip(apng, "png") is None


def test_gif_comments_application_blocks_and_trailing_bytes_are_not_served(settings: Settings, s3: FakeS3) -> None:
    clean = tiny_gif()
    xmp = b"\x21\xff\x0bXMP DataXMP" + bytes([len(PAYLOAD)]) + PAYLOAD + b"\x00"
    crafted = clean[:-1].replace(b"\x21\xff\x0bNETSCAPE2.0", xmp + b"\x21\xff\x0bNETSCAPE2.0", 1) + b";" + PAYLOAD
    assert xmp in crafted
    s3.put_original("polyglot.gif", crafted)
    response = miss(settings, s3, "/polyglot.gif/w_320_q_60.avif")
    body = served(response)
    assert headers_of(response)[SOURCE_HEADER] == "original"
    assert PAYLOAD not in body and SECRET not in body and body.endswith(b";")
    assert b"NETSCAPE2.0" in body and Image.open(io.BytesIO(body)).info.get("loop") == 0


def test_a_truncated_gif_or_plain_text_block_refuses_passthrough() -> None:
    clean = tiny_gif()
    assert passthrough.strip(clean[:-1], "gif") is None  # no trailer
    text = b"\x21\x01\x0c" + bytes(12) + b"\x03abc\x00"
    at = clean.index(b"\x21\xf9")
    assert passthrough.strip(clean[:at] + text + clean[at:], "gif") is None


@pytest.mark.parametrize(("make", "fmt"), [(tiny_gif, "gif"), (small_png, "png"), (small_jpeg, "jpeg")])
def test_mangled_originals_never_raise_and_never_pass_more_than_an_image(make: Any, fmt: str) -> None:
    clean = make()
    random = np.random.default_rng(11)
    for _ in range(300):
        data = bytearray(clean)
        for at in random.integers(0, len(data), int(random.integers(1, 8))):
            data[at] = int(random.integers(0, 256))
        cut = bytes(data[: int(random.integers(len(data) // 2, len(data) + 1))]) + PAYLOAD
        found = passthrough.strip(cut, fmt)
        assert found is None or PAYLOAD not in found.body
        passthrough.Original(cut).choose(b"\x00" * 10**6, "avif", width=320, height=None, fit="cover")


# -- the sync job agrees with resize; and the emulator, once --------------------------------

SET = Settings(
    widths=(160, 320, 640),
    qualities=(60,),
    default_quality=60,
    standard_formats=("webp", "jpeg"),
    primary_bucket="pass-origin",
    primary_region="eu-west-1",
    fallback_bucket="pass-fallback",
    fallback_region="eu-central-1",
)


def test_the_sync_jobs_fallback_set_passes_the_same_originals_through() -> None:
    with mock_aws():
        s3 = FakeS3(SET)
        s3.put_original("bouncing.gif", tiny_gif())
        Sync(SET, s3.factory).reconcile()
        kept = {
            spec: s3.get(SET.fallback_bucket, f"bouncing.gif/{spec}")
            for spec in ("w_160_q_60.webp", "w_320_q_60.webp", "w_640_q_60.webp", "w_320_q_60.jpeg")
        }
        bodies = {spec: answer["Body"].read() for spec, answer in kept.items()}
        for spec in ("w_320_q_60.webp", "w_640_q_60.webp"):  # the GIF fits both boxes as it is
            assert kept[spec]["ContentType"] == "image/gif" and kept[spec]["Metadata"]["source"] == "original"
        assert kept["w_160_q_60.webp"]["ContentType"] == "image/webp"  # scaled: rendered
        assert kept["w_320_q_60.jpeg"]["ContentType"] == "image/jpeg"  # a JPEG is the first frame
        assert "source" not in kept["w_160_q_60.webp"]["Metadata"]
        # resize decides the same for the same variant.
        response = miss(SET, s3, "/bouncing.gif/w_320_q_60.webp")
        assert served(response) == bodies["w_320_q_60.webp"]


def test_the_emulator_serves_the_original_with_the_header_on_a_miss_and_from_s3() -> None:
    settings = Settings(primary_bucket="pass-emulated", fallback_bucket="pass-emulated-fallback")
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=1)
        original = tiny_gif()
        storage.put_original("bouncing.gif", original)
        headers = {"accept": CHROMIUM}
        first = distribution.request("GET", "/bouncing.gif", "w=320", headers)
        assert (first.status, first.headers["X-Cache"]) == (200, "Miss")
        assert first.headers["Content-Type"] == "image/gif" and first.headers[SOURCE_HEADER] == "original"
        assert len(first.body) <= len(original) and SECRET not in first.body
        # Never sniffed as anything but what it says (the response headers policy), and readable by pages.
        assert first.headers["X-Content-Type-Options"] == "nosniff"
        assert SOURCE_HEADER in first.headers["Access-Control-Expose-Headers"]
        distribution.expire()  # CloudFront forgets it: S3 answers, origin-response reads the metadata
        second = distribution.request("GET", "/bouncing.gif", "w=320", headers)
        assert (second.headers["X-Cache"], second.headers["X-Origin"]) == ("Miss", "primary")
        assert second.headers[SOURCE_HEADER] == "original" and second.body == first.body
        third = distribution.request("GET", "/bouncing.gif", "w=320", headers)
        assert third.headers["X-Cache"] == "Hit" and third.headers[SOURCE_HEADER] == "original"
    finally:
        storage.stop()


# -- what a stranger tried after the first version (each was passed through, or cost seconds) ----


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def test_a_dnl_segment_a_profile_after_the_frame_or_a_profile_twice_refuse_passthrough() -> None:
    clean = small_jpeg()
    eoi = clean.rindex(b"\xff\xd9")
    # DNL: decoders skip it, so it could carry a ZIP or a PDF on the image's domain
    assert passthrough.strip(clean[:eoi] + _segment(0xDC, PAYLOAD) + clean[eoi:], "jpeg") is None
    profile = _segment(
        0xE2, b"ICC_PROFILE\x00\x01\x01" + ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    )
    sof = clean.index(b"\xff\xc0")
    assert passthrough.strip(clean[:2] + profile + clean[2:], "jpeg") is not None  # before the frame: read
    assert passthrough.strip(clean[:sof] + clean[sof:eoi] + profile + clean[eoi:], "jpeg") is None
    assert passthrough.strip(clean[:2] + profile + profile + clean[2:], "jpeg") is None


def test_a_jpeg_of_thousands_of_segments_fill_bytes_or_scans_refuses_passthrough() -> None:
    clean = small_jpeg()
    many = clean[:2] + _segment(0xE1, b"") * (passthrough.MAX_SEGMENTS + 1) + clean[2:]
    assert passthrough.strip(many, "jpeg") is None  # the walk stops at MAX_SEGMENTS, whatever follows
    fill = clean[:2] + b"\xff" * (passthrough.MAX_FILL + 2) + clean[3:]
    assert passthrough.strip(fill, "jpeg") is None
    progressive = small_jpeg(progressive=True)
    scan = progressive.index(b"\xff\xda")
    end = progressive.rindex(b"\xff\xd9")
    last_scan = progressive[progressive.rindex(b"\xff\xda") : end]
    bomb = progressive[:end] + last_scan * passthrough.MAX_SCANS + progressive[end:]
    assert scan < end and passthrough.strip(bomb, "jpeg") is None
    assert passthrough.strip(progressive, "jpeg") is not None


def test_gif_blocks_hold_exactly_what_they_are_for() -> None:
    clean = tiny_gif()
    control = clean.index(b"\x21\xf9\x04")
    padded = clean[: control + 7] + bytes([len(PAYLOAD)]) + PAYLOAD + clean[control + 7 :]  # a second sub-block
    assert passthrough.strip(padded, "gif") is None
    loop = clean.index(b"\x21\xff\x0bNETSCAPE2.0")
    extra = clean[: loop + 18] + bytes([len(PAYLOAD)]) + PAYLOAD + clean[loop + 18 :]
    assert passthrough.strip(extra, "gif") is None
    assert passthrough.strip(clean, "gif") is not None


def test_png_palette_and_transparency_hold_what_the_colour_type_reads() -> None:
    out = io.BytesIO()
    samples.photo(64, 48).save(out, "PNG")  # RGB
    rgb = out.getvalue()
    assert passthrough.strip(_with_chunks(rgb, [_chunk(b"tRNS", bytes(6))]), "png") is not None
    assert passthrough.strip(_with_chunks(rgb, [_chunk(b"tRNS", bytes(6) + PAYLOAD)]), "png") is None
    palette = small_png()
    assert passthrough.strip(_with_chunks(palette, [_chunk(b"tRNS", bytes(255))]), "png") is None  # > 16 entries


def test_a_tall_thin_image_is_refused_for_jpeg_xl_before_the_encoder() -> None:
    out = io.BytesIO()
    Image.new("RGB", (1, 300_000), (10, 20, 30)).save(out, "PNG")
    with pytest.raises(imaging.ImageError) as refused:
        imaging.transform(out.getvalue(), width=160, height=None, fit="cover", quality=60, fmt="jxl")
    assert "65536" in str(refused.value)


def test_only_an_original_a_variant_could_take_is_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    probed: list[bytes] = []
    real = imaging.probe
    monkeypatch.setattr(imaging, "probe", lambda data, limits=None: probed.append(data) or real(data, limits))
    png = passthrough.Original(small_png())
    assert png.choose(b"x" * 10**6, "webp", width=320, height=None, fit="cover") is None  # no PNG for WebP
    assert probed == []
    assert png.choose(b"x" * 10**6, "png", width=200, height=None, fit="cover") is not None
    assert png.choose(b"x" * 10**6, "png", width=200, height=None, fit="cover") is not None
    assert len(probed) == 1

"""What the metadata function reads from an original, and how little of it it reads."""

from __future__ import annotations

import base64
import io
import json
import struct
from pathlib import Path

import blurhash
import pytest
from PIL import Image, ImageOps

from catalog import metadata
from edge import imaging
from localcdn import samples

LIMITS = imaging.Limits(max_input_bytes=100 * 1024 * 1024, max_pixels=60_000_000)


class Reads:
    """An original read in ranges, as the function reads it from S3; remembers each range."""

    def __init__(self, data: bytes):
        self.data = data
        self.ranges: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.ranges.append((start, end))
        return self.data[start:end]

    @property
    def total(self) -> int:
        return sum(end - start for start, end in self.ranges)


def extract(data: bytes, limits: imaging.Limits = LIMITS) -> tuple[metadata.Facts, Reads]:
    reads = Reads(data)
    return metadata.extract(reads, len(data), limits), reads


def noisy_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Camera-like detail: a JPEG of it is megabytes, as a phone's is."""
    photo = samples.photo(width, height, seed=seed)
    return Image.blend(photo, Image.effect_noise((width, height), 60).convert("RGB"), 0.35)


@pytest.fixture(scope="module")
def camera() -> bytes:
    """A 12 MP phone photo stored sideways (EXIF orientation 6), with a thumbnail, capture time and GPS."""
    return samples.camera_jpeg(noisy_photo(4000, 3000, seed=3), orientation=6, quality=92)


def test_a_large_camera_jpeg_is_read_as_its_first_256_kb_only(camera: bytes) -> None:
    assert len(camera) > 4 * metadata.HEAD_BYTES
    facts, reads = extract(camera)
    assert reads.ranges == [(0, metadata.HEAD_BYTES)] and facts.bytes_read == metadata.HEAD_BYTES
    assert (facts.format, facts.width, facts.height) == ("jpeg", 3000, 4000)  # upright: orientation 6 swaps
    assert (facts.animated, facts.alpha) == (False, False)
    assert facts.captured_at == "2024-05-01T10:20:30+02:00"


def test_what_is_learnt_from_the_thumbnail_matches_the_photo_itself(camera: bytes) -> None:
    from_thumbnail, _ = extract(camera)
    decoded = ImageOps.exif_transpose(Image.open(io.BytesIO(camera))).convert("RGB")
    leading = [colour for _, colour in metadata.palette(decoded.resize((24, 32)))[:2]]
    assert min(_distance(from_thumbnail.colour, c) for c in leading) < 40
    # the placeholder is the photo's shape, and decodes to its colours
    assert blurhash.components(from_thumbnail.blurhash) == (3, 4)  # portrait, once upright
    preview = _data_uri_image(from_thumbnail.placeholder)
    assert preview.size == (12, 16) and preview.format == "PNG"


def test_gps_is_never_read_into_the_facts(camera: bytes) -> None:
    with Image.open(io.BytesIO(camera)) as image:
        assert image.getexif().get_ifd(0x8825)  # the photo carries a position...
    facts, _ = extract(camera)
    text = json.dumps(facts.as_item())
    assert "gps" not in text.lower() and "52" not in facts.as_item().get("captured_at", "")
    assert set(facts.as_item()) == {
        "format",
        "width",
        "height",
        "animated",
        "alpha",
        "captured_at",
        "colour",
        "blurhash",
        "placeholder",
    }


def test_a_jpeg_without_a_thumbnail_is_read_whole_and_says_the_same() -> None:
    photo = noisy_photo(1600, 1200, seed=5)
    with_thumbnail = samples.camera_jpeg(photo, quality=95)
    without = samples.camera_jpeg(photo, quality=95, thumbnail=False)
    assert len(without) > metadata.HEAD_BYTES
    quick, quick_reads = extract(with_thumbnail)
    whole, whole_reads = extract(without)
    assert quick_reads.total == metadata.HEAD_BYTES and whole_reads.total == len(without)
    assert (whole.width, whole.height, whole.captured_at) == (quick.width, quick.height, quick.captured_at)
    # sky and hills cover about as much of it: either may come out first, from either path
    leading = [colour for _, colour in metadata.palette(photo.resize((32, 24)))[:2]]
    assert min(_distance(quick.colour, c) for c in leading) < 40
    assert min(_distance(whole.colour, c) for c in leading) < 40


def test_a_stale_thumbnail_of_another_shape_is_not_trusted() -> None:
    """Edited elsewhere, rotated, thumbnail left as it was: the photo is decoded instead."""
    wide = noisy_photo(1200, 800, seed=6)
    with_wide_thumbnail = samples.camera_jpeg(wide, quality=95)
    start = with_wide_thumbnail.index(b"\xff\xe1")  # its EXIF segment, thumbnail and all
    length = struct.unpack(">H", with_wide_thumbnail[start + 2 : start + 4])[0]
    tall = samples.jpeg(wide.transpose(Image.Transpose.ROTATE_90), quality=95)
    stale = tall[:2] + with_wide_thumbnail[start : start + 2 + length] + tall[2:]
    with Image.open(io.BytesIO(stale)) as image:
        assert image.size == (800, 1200) and image.getexif().get_ifd(-1)
    facts, reads = extract(stale)
    assert (facts.width, facts.height) == (800, 1200) and reads.total == len(stale)


def test_headers_longer_than_the_head_are_read_whole() -> None:
    plain = samples.jpeg(noisy_photo(800, 600, seed=7), quality=90)
    # five 64 KB APP15 segments before the frame header: the first 256 KB hold no dimensions
    segment = b"\xff\xef" + struct.pack(">H", 65_002) + b"x" * 65_000
    data = plain[:2] + segment * 5 + plain[2:]
    facts, reads = extract(data)
    assert (facts.width, facts.height) == (800, 600) and reads.total == len(data)


@pytest.mark.parametrize(
    ("name", "fmt", "alpha", "animated"),
    [
        ("logo.png", "png", True, False),
        ("bouncing.gif", "gif", False, True),
        ("animated.webp", "webp", False, True),
        ("photo.avif", "avif", False, False),
        ("phone.heic", "heif", False, False),
        ("phone-alpha.heic", "heif", True, False),
    ],
)
def test_every_format_we_decode(name: str, fmt: str, alpha: bool, animated: bool) -> None:
    data = _sample(name)
    facts, reads = extract(data)
    assert (facts.format, facts.alpha, facts.animated) == (fmt, alpha, animated)
    with Image.open(io.BytesIO(samples.png(samples.logo()))) as logo:
        expected = logo.size if name.startswith("logo") else None
    if expected:
        assert (facts.width, facts.height) == expected
    assert facts.colour.startswith("#") and len(facts.colour) == 7
    assert facts.placeholder.startswith("data:image/png;base64,")
    assert reads.total == len(data)  # small files are read whole, in one range
    assert len(reads.ranges) == 1


def test_a_heic_is_decoded_upright_with_its_size() -> None:
    photo = samples.photo(640, 480, seed=8)
    facts, _ = extract(_heif(photo))
    assert (facts.format, facts.width, facts.height) == ("heif", 640, 480)
    leading = [colour for _, colour in metadata.palette(photo.resize((32, 24)))[:2]]
    assert min(_distance(facts.colour, c) for c in leading) < 40


def test_what_is_not_an_image_is_refused_with_the_reason() -> None:
    with pytest.raises(imaging.UnsupportedImage) as refused:
        extract(b"%PDF-1.7\n" + b"\0" * 100)
    assert "JPEG, PNG, GIF, WebP, AVIF or HEIF" in refused.value.message
    with pytest.raises(imaging.UndecodableImage):
        extract(samples.jpeg(samples.photo(400, 300))[:200])


def test_limits_are_checked_before_anything_is_read() -> None:
    tight = imaging.Limits(max_input_bytes=1000, max_pixels=10_000)
    reads = Reads(b"x" * 5000)
    with pytest.raises(imaging.InputTooLarge):
        metadata.extract(reads, 5000, tight)
    assert reads.ranges == []
    with pytest.raises(imaging.TooManyPixels):  # from the header of the first range
        extract(samples.camera_jpeg(samples.photo(400, 300)), imaging.Limits(max_pixels=10_000))


@pytest.mark.parametrize("taken", ["0000:00:00 00:00:00", "2024:13:45 10:00:00", "yesterday", "2024-05-01 10:20:30"])
def test_a_capture_time_that_is_not_one_is_left_out(taken: str) -> None:
    facts, _ = extract(samples.camera_jpeg(samples.photo(320, 240), taken=taken, offset=None))
    assert facts.captured_at is None


def test_a_capture_time_without_an_offset_is_local_time_as_written() -> None:
    facts, _ = extract(samples.camera_jpeg(samples.photo(320, 240), taken="2023:12:31 23:59:59", offset=None))
    assert facts.captured_at == "2023-12-31T23:59:59"


def test_real_photos_when_present(shared: Path | None) -> None:
    if shared is None:
        pytest.skip("../shared/images is not here; the generated photos above cover the same ground")
    for path in sorted(shared.glob("exif-orientation-*.jpg")):
        facts, _ = extract(path.read_bytes())
        upright = ImageOps.exif_transpose(Image.open(path))
        assert (facts.width, facts.height) == upright.size, path.name
    big = shared / "sharp-bench-2725x2225.jpg"
    facts, reads = extract(big.read_bytes())
    assert (facts.width, facts.height) == (2725, 2225) and reads.total == big.stat().st_size  # no thumbnail


# -- helpers ---------------------------------------------------------------------------------


def _distance(a: str, b: str) -> float:
    ra, ga, ba = (int(a[i : i + 2], 16) for i in (1, 3, 5))
    rb, gb, bb = (int(b[i : i + 2], 16) for i in (1, 3, 5))
    return float(((ra - rb) ** 2 + (ga - gb) ** 2 + (ba - bb) ** 2) ** 0.5)


def _data_uri_image(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :])))
    image.load()
    return image


def _heif(image: Image.Image) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    image.save(out, "HEIF", quality=70)
    return out.getvalue()


def _sample(name: str) -> bytes:
    photo = samples.photo(480, 360, seed=9)
    if name == "logo.png":
        return samples.png(samples.logo())
    if name == "bouncing.gif":
        return samples.animation(160, 120, frames=4)
    if name == "animated.webp":
        frames = [photo.rotate(angle) for angle in (0, 5, 10)]
        out = io.BytesIO()
        frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=80, loop=0)
        return out.getvalue()
    if name == "photo.avif":
        out = io.BytesIO()
        photo.save(out, "AVIF", quality=50)
        return out.getvalue()
    if name == "phone.heic":
        return _heif(photo)
    return _heif(samples.logo(320, 240))


def test_the_test_helper_builds_exif_pillow_can_read() -> None:
    data = samples.camera_jpeg(samples.photo(320, 240), orientation=3)
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        assert exif[0x0112] == 3 and exif.get_ifd(0x8769)[0x9003] == "2024:05:01 10:20:30"
        ifd1 = exif.get_ifd(-1)
        offset, length = ifd1[0x0201], ifd1[0x0202]
        raw = image.info["exif"]
        assert raw[6 + offset : 6 + offset + 2] == b"\xff\xd8" and length > 1000
        assert struct.unpack("<H", raw[6:8])[0] == 0x4949  # "II": little-endian TIFF

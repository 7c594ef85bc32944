"""A corpus of hostile images, made on the spot and deterministic.

Truncated and bit-flipped files of every format we decode (HEIC included: what phones upload), wrong magic bytes, empty
files, decompression bombs (huge declared dimensions in a tiny file, a PNG text bomb),
100k-pixel strips, thousands of animation frames, CMYK, 16-bit, palette transparency,
garbage EXIF and ICC, and SVG/HTML/PDF/ZIP disguised as images.

`python -m tests.hostile` runs every case through `imaging.transform` and prints how
each ended.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator

from PIL import Image

from localcdn import samples

Case = tuple[str, bytes]


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A few hundred bytes declaring width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 65536, 9))
        + _chunk(b"IEND", b"")
    )


def bases() -> dict[str, bytes]:
    photo = samples.photo(640, 480, seed=21)
    return {
        "jpeg": samples.jpeg(photo),
        "png": samples.png(samples.logo(320, 240)),
        "gif": samples.animation(160, 120, frames=4),
        "webp": _save(photo, "WEBP", quality=80),
        "avif": _save(photo.resize((320, 240)), "AVIF", quality=60),
        "heic": _heic(photo.resize((320, 240))),
    }


def _heic(image: Image.Image) -> bytes:
    """What iPhones upload (HEVC in HEIF), written by pillow-heif."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _save(image, "HEIF", quality=60)


def _heic_extents(data: bytes, width: int, height: int) -> bytes:
    """A HEIC whose `ispe` box (the image's declared size) says width x height."""
    at = data.index(b"ispe") + 8  # after the box type and its version/flags
    return data[:at] + struct.pack(">II", width, height) + data[at + 8 :]


def _flip(data: bytes, seed: int, count: int = 24) -> bytes:
    rng = random.Random(seed)
    mutable = bytearray(data)
    for _ in range(count):
        position = rng.randrange(16, len(mutable))
        mutable[position] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def _patch_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    start = data.index(b"\xff\xc0")
    return data[: start + 5] + struct.pack(">HH", height, width) + data[start + 9 :]


def _exif_jpeg(exif: bytes) -> bytes:
    return _save(samples.photo(320, 240, seed=3), "JPEG", quality=85, exif=exif)


def _frames(count: int, size: int = 8) -> list[Image.Image]:
    """Frames that all differ (encoders merge identical neighbours)."""
    frames = []
    for index in range(count):
        frame = Image.new("RGB", (size, size))
        frame.putpixel((index % size, (index // size) % size), (255, index % 256, (index // 256) % 256))
        frames.append(frame)
    return frames


def _animated(fmt: str, count: int) -> bytes:
    frames = _frames(count)
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=20, loop=0)


def _ztxt_bomb() -> bytes:
    image = png_bomb(1, 1)
    text = _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 50_000_000, 9))
    return image[:33] + text + image[33:]


def _webp_canvas(width: int, height: int) -> bytes:
    vp8x = bytes([0x10, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def cases() -> Iterator[Case]:
    base = bases()
    for fmt, data in base.items():
        for cut in (0.1, 0.5, 0.9, 0.99):
            yield f"truncated-{fmt}-{int(cut * 100)}%", data[: int(len(data) * cut)]
        for seed in range(3):
            yield f"bitflipped-{fmt}-{seed}", _flip(data, seed)
    yield "png-magic-on-jpeg", b"\x89PNG\r\n\x1a\n" + base["jpeg"][8:]
    yield "jpeg-magic-on-png", b"\xff\xd8\xff\xe0" + base["png"][4:]
    yield "gif-header-then-noise", b"GIF89a" + random.Random(1).randbytes(2000)
    yield "riff-webp-then-noise", b"RIFF\x00\x10\x00\x00WEBPVP8 " + random.Random(2).randbytes(4000)
    yield "avif-brand-then-noise", b"\x00\x00\x00\x1cftypavif" + random.Random(3).randbytes(3000)
    yield "heic-brand-then-noise", b"\x00\x00\x00\x18ftypheic" + random.Random(6).randbytes(3000)
    yield "heic-extents-65535x65535", _heic_extents(base["heic"], 65535, 65535)
    yield "heic-magic-on-jpeg", b"\x00\x00\x00\x18ftypheic" + base["jpeg"]
    yield "zero-bytes", b""
    yield "one-byte", b"\xff"
    yield "kilobyte-of-zeros", b"\0" * 1024
    yield "png-bomb-100000x100000", png_bomb(100_000, 100_000)
    yield "gif-screen-65535x65535", base["gif"][:6] + struct.pack("<HH", 65535, 65535) + base["gif"][10:]
    yield "jpeg-sof-65500x65500", _patch_jpeg_size(base["jpeg"], 65500, 65500)
    yield "webp-canvas-16384x16384", _webp_canvas(16384, 16384)
    yield "png-ztxt-bomb", _ztxt_bomb()
    yield "strip-100000x1", samples.png(Image.new("RGB", (100_000, 1), (10, 200, 30)))
    yield "strip-1x100000", samples.png(Image.new("RGB", (1, 100_000), (10, 200, 30)))
    yield "jpeg-strip-60000x2", _save(Image.new("RGB", (60_000, 2), (200, 10, 30)), "JPEG")
    yield "gif-3000-frames", _animated("GIF", 3000)
    yield "webp-1000-frames", _animated("WEBP", 1000)
    at_limit = [samples.photo(500, 500, seed=i % 7) for i in range(200)]  # 200 frames, 50 MP: just allowed
    yield (
        "gif-200-frames-at-the-limit",
        _save(
            at_limit[0].convert("P"),
            "GIF",
            save_all=True,
            append_images=[f.convert("P") for f in at_limit[1:]],
            duration=40,
        ),
    )
    photo = samples.photo(400, 300, seed=5)
    yield "cmyk-jpeg", _save(photo.convert("CMYK"), "JPEG")
    yield "grey-jpeg", _save(photo.convert("L"), "JPEG")
    yield "rgb-16-bit-png", _rgb16()
    yield "grey-16-bit-png", _save(photo.convert("I").point(lambda v: v * 256).convert("I;16"), "PNG")
    palette = samples.logo(200, 100).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    yield "palette-transparency-png", _save(palette, "PNG", transparency=0)
    yield "la-png", _save(samples.logo(200, 100).convert("LA"), "PNG")
    yield "one-bit-png", _save(photo.convert("1"), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 99
    yield "exif-orientation-99", _exif_jpeg(exif.tobytes())
    yield "exif-garbage-ifd", _exif_jpeg(b"Exif\0\0MM\0*\0\0\xff\xff\xff\xf0" + b"\xff" * 64)
    yield "exif-60kb-junk", _exif_jpeg(b"Exif\0\0" + random.Random(4).randbytes(60_000))
    yield "icc-garbage-jpeg", _save(photo, "JPEG", icc_profile=random.Random(5).randbytes(3000))
    yield "icc-garbage-cmyk-jpeg", _save(photo.convert("CMYK"), "JPEG", icc_profile=b"\0" * 128 + b"acsp" * 10)
    yield "svg-as-image", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9"/></svg>'
    yield "html-as-image", b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    yield "json-as-image", b'{"not": "an image"}'
    yield "pdf-as-image", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"
    yield "zip-as-image", b"PK\x03\x04" + b"\0" * 100
    yield "gif-javascript-polyglot", base["gif"] + b"\n/*<script>alert(1)</script>*/"


def _rgb16() -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow writes only 8-bit RGB, so by hand)."""
    width, height = 64, 48
    rows = b"".join(
        b"\0" + b"".join(struct.pack(">HHH", x * 1000, y * 1300, 40000) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


if __name__ == "__main__":
    import time
    from collections import Counter

    from edge import imaging

    outcomes: Counter[str] = Counter()
    for name, data in cases():
        for fmt in ("webp", "avif", "jpeg", "png"):
            started = time.perf_counter()
            try:
                imaging.transform(data, width=320, height=None, fit="cover", quality=70, fmt=fmt)
                outcome = "200 image"
            except imaging.ImageError as problem:
                outcome = f"{problem.status} {problem.error}"
            outcomes[outcome] += 1
            print(f"{name:32} {fmt:5} {outcome:24} {1000 * (time.perf_counter() - started):8.1f} ms")
    print(dict(outcomes))

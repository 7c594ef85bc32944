"""Images made on the spot: the emulator's default originals, and the tests' and the
benchmarks' inputs when the real photos (../shared/images) are not there.

Everything here is deterministic: the same call gives the same bytes.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]


def shared_images() -> Path | None:
    """The real photos beside the checkout, if present (IMAGE_CDN_SHARED_IMAGES overrides)."""
    configured = os.environ.get("IMAGE_CDN_SHARED_IMAGES")
    path = Path(configured) if configured else ROOT.parent / "shared" / "images"
    return path if path.is_dir() else None


def photo(width: int = 1600, height: int = 1200, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: sky gradient, sun, layered hills, fine grain."""
    sky = Image.linear_gradient("L").resize((width, height))
    red = sky.point(lambda v: 60 + v // 3 + seed % 20)
    green = sky.point(lambda v: 110 + v // 4)
    blue = sky.point(lambda v: 230 - v // 3)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    radius = max(4, min(width, height) // 9)
    cx, cy = width * (0.25 + (seed % 5) / 10), height * 0.3
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 222, 140))
    for layer in range(4):
        base = height * (0.55 + layer * 0.1)
        points: list[tuple[float, float]] = [(0, height)]
        for step in range(0, 41):
            x = width * step / 40
            wobble = ((step * (7 + layer) + seed * 13) % 11 - 5) * height / 90
            points.append((x, base + wobble))
        points.append((width, height))
        shade = 40 + layer * 25
        draw.polygon(points, fill=(shade // 2, 90 + shade, shade // 3))
    grain = Image.effect_noise((width, height), 18).convert("RGB")
    image = Image.blend(image, grain, 0.08).filter(ImageFilter.SMOOTH)
    return image


def jpeg(image: Image.Image, quality: int = 90, orientation: int | None = None, gps: bool = False) -> bytes:
    """JPEG bytes, optionally with an EXIF orientation and a GPS position (for stripping tests)."""
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 22.0, 0.0), 3: "E", 4: (4.0, 53.0, 0.0)}
        exif[0x010F] = "image-cdn test camera"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes() if len(exif) else b"")
    return out.getvalue()


def camera_jpeg(
    image: Image.Image,
    *,
    taken: str | None = "2024:05:01 10:20:30",
    offset: str | None = "+02:00",
    orientation: int | None = None,
    gps: bool = True,
    thumbnail: bool = True,
    quality: int = 90,
) -> bytes:
    """A JPEG as cameras and phones write it: EXIF with make, capture time, GPS position and,
    in the second IFD, a 160-pixel JPEG thumbnail (Pillow writes no IFD1, so the TIFF is built here).

    `image` is the stored pixels (before `orientation` is applied), as a camera stores them.
    """

    def ascii_(text: str) -> tuple[int, int, bytes]:
        return 2, len(text) + 1, text.encode() + b"\0"

    ifd0: dict[int, tuple[int, int, bytes]] = {0x010F: ascii_("image-cdn test camera")}
    if orientation is not None:
        ifd0[0x0112] = (3, 1, struct.pack("<H", orientation))
    exif: dict[int, tuple[int, int, bytes]] = {}
    if taken is not None:
        exif[0x9003] = ascii_(taken)
    if offset is not None:
        exif[0x9011] = ascii_(offset)
    gps_ifd = {
        0x0001: ascii_("N"),
        0x0002: (5, 3, struct.pack("<6I", 52, 1, 22, 1, 3070, 100)),
        0x0003: ascii_("E"),
        0x0004: (5, 3, struct.pack("<6I", 4, 1, 53, 1, 1234, 100)),
    }
    small = image.copy()
    small.thumbnail((160, 160))
    thumb = io.BytesIO()
    small.convert("RGB").save(thumb, "JPEG", quality=80)
    thumb_bytes = thumb.getvalue() if thumbnail else b""

    def block(entries: dict[int, tuple[int, int, bytes]], start: int, following: int) -> bytes:
        table, extra = struct.pack("<H", len(entries)), b""
        data_at = start + 2 + 12 * len(entries) + 4
        for tag in sorted(entries):
            kind, count, payload = entries[tag]
            if len(payload) <= 4:
                table += struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\0")
            else:
                table += struct.pack("<HHII", tag, kind, count, data_at + len(extra))
                extra += payload + b"\0" * (len(payload) % 2)
        return table + struct.pack("<I", following) + extra

    def layout(pointers: dict[str, int]) -> tuple[bytes, dict[str, int]]:
        ifd0[0x8769] = (4, 1, struct.pack("<I", pointers.get("exif", 0)))
        if gps:
            ifd0[0x8825] = (4, 1, struct.pack("<I", pointers.get("gps", 0)))
        ifd1 = {0x0103: (3, 1, struct.pack("<H", 6))}
        if thumbnail:
            ifd1[0x0201] = (4, 1, struct.pack("<I", pointers.get("thumb", 0)))
            ifd1[0x0202] = (4, 1, struct.pack("<I", len(thumb_bytes)))
        found: dict[str, int] = {}
        out = b"II*\0" + struct.pack("<I", 8)
        parts = [("ifd0", ifd0), ("exif", exif)] + ([("gps", gps_ifd)] if gps else []) + [("ifd1", ifd1)]
        for name, entries in parts:
            found[name] = len(out)
            following = pointers.get("ifd1", 0) if name == "ifd0" else 0
            out += block(entries, len(out), following)
        found["thumb"] = len(out)
        return out + thumb_bytes, found

    _, pointers = layout({})
    tiff, again = layout(pointers)
    assert again == pointers
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=b"Exif\0\0" + tiff)
    return out.getvalue()


def logo(width: int = 800, height: int = 600) -> Image.Image:
    """An RGBA image with soft transparent edges (alpha must survive webp/avif/png)."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (width * 0.1, height * 0.1, width * 0.9, height * 0.9), radius=height // 6, fill=(220, 40, 90, 255)
    )
    draw.ellipse((width * 0.35, height * 0.3, width * 0.65, height * 0.7), fill=(255, 255, 255, 128))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def animation(width: int = 320, height: int = 240, frames: int = 8) -> bytes:
    """An animated GIF that loops forever."""
    pictures = []
    for index in range(frames):
        frame = Image.new("RGB", (width, height), (30, 30, 60))
        draw = ImageDraw.Draw(frame)
        x = (width - 60) * index / max(1, frames - 1)
        draw.ellipse((x, height / 2 - 30, x + 60, height / 2 + 30), fill=(250, 200, 40))
        pictures.append(frame.convert("P", palette=Image.Palette.ADAPTIVE))
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    return out.getvalue()


def missing_image(width: int = 1600, height: int = 1200) -> bytes:
    """A quiet grey "no image" picture: what the dev stack's defaultImage holds in the emulator."""
    image = Image.new("RGB", (width, height), (226, 228, 232))
    draw = ImageDraw.Draw(image)
    side = min(width, height) // 3
    cx, cy = width // 2, height // 2
    frame = (cx - side, cy - side * 3 // 4, cx + side, cy + side * 3 // 4)
    draw.rounded_rectangle(frame, radius=side // 8, outline=(160, 164, 172), width=max(2, side // 20))
    draw.ellipse((cx - side // 2, cy - side // 3, cx - side // 6, cy), fill=(160, 164, 172))
    hills = [(frame[0], frame[3]), (cx - side // 4, cy + side // 5), (cx + side // 6, cy + side // 2), (frame[2], cy)]
    draw.polygon([*hills, (frame[2], frame[3])], fill=(160, 164, 172))
    draw.line((frame[0], frame[3], frame[2], frame[1]), fill=(200, 90, 90), width=max(3, side // 14))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def people() -> bytes:
    """The crop demo's photo: sharp's benchmark photo when the real photos are here, else a
    generated landscape with a skin-toned figure right of centre (what the crops should find)."""
    shared = shared_images()
    real = shared / "sharp-bench-2725x2225.jpg" if shared is not None else None
    if real is not None and real.is_file():
        return real.read_bytes()
    image = photo(1800, 1200, seed=3)
    draw = ImageDraw.Draw(image)
    draw.ellipse((1300, 330, 1460, 530), fill=(224, 172, 140))  # a face
    draw.rounded_rectangle((1250, 540, 1510, 1000), radius=60, fill=(40, 80, 160))  # shoulders
    return jpeg(image)


def originals(default_image: str | None = None) -> dict[str, bytes]:
    """The emulator's sample originals, keyed as they sit below `originals/` (with the stack's
    default image, `missing_image()`, when it names one)."""
    made = {
        "samples/landscape.jpg": camera_jpeg(photo(2400, 1600, seed=1)),
        "samples/portrait.jpg": jpeg(photo(1200, 1600, seed=2).transpose(Image.Transpose.ROTATE_90), orientation=6),
        "samples/logo.png": png(logo()),
        "samples/bouncing.gif": animation(),
        "samples/people.jpg": people(),
    }
    if default_image:
        made[default_image] = missing_image()
    return made

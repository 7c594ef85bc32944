"""Images made on the spot: the emulator's default originals, and the tests' and the
benchmarks' inputs when the real photos (../shared/images) are not there.

Everything here is deterministic: the same call gives the same bytes.
"""

from __future__ import annotations

import io
import os
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


def originals() -> dict[str, bytes]:
    """The emulator's sample originals, keyed as they sit below `originals/`."""
    return {
        "samples/landscape.jpg": jpeg(photo(2400, 1600, seed=1), gps=True),
        "samples/portrait.jpg": jpeg(photo(1200, 1600, seed=2).transpose(Image.Transpose.ROTATE_90), orientation=6),
        "samples/logo.png": png(logo()),
        "samples/bouncing.gif": animation(),
    }

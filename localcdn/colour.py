"""Colour-managed test images made on the spot: ICC profiles and the corpus that exercises them.

The corpus is what the real-browser test loads through the emulator (greyscale with and
without a grey profile, grey+alpha in 8 and 16 bits, CMYK with and without a profile,
Display P3 and ProPhoto RGB, palette transparency, animated GIF and WebP), and the
gallery can show it too. Every profile is written here from its published parameters
(ICC.1:2001-04, version 2 profiles: matrix/TRC for RGB and grey, an `mft2` lookup table
for CMYK): nothing is read from the machine, so the same bytes come out everywhere.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from localcdn import samples

D50 = (0.9642, 1.0, 0.8249)
D65_XY = (0.3127, 0.3290)
D50_XY = (0.3457, 0.3585)
COPYRIGHT = "No copyright, generated for tests"
Primaries = tuple[tuple[float, float], ...]
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _text(value: str) -> bytes:
    return b"text\0\0\0\0" + value.encode("ascii") + b"\0"


def _description(value: str) -> bytes:
    ascii_ = value.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0) + b"\0\0" + b"\0" * 68


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, payload in tags:
        padded = payload + b"\0" * (-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(payload))
        data += padded
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"
        + struct.pack(">I", 0x02100000)
        + device_class
        + space
        + pcs
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)  # perceptual intent
        + b"".join(_s15(v) for v in D50)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def _xy_to_xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def _colorants(primaries: Primaries, white: tuple[float, float]) -> np.ndarray:
    """Columns: the XYZ (D50-adapted, Bradford) of each primary at full intensity."""
    matrix = np.column_stack([_xy_to_xyz(*xy) for xy in primaries])
    scale = np.linalg.solve(matrix, _xy_to_xyz(*white))
    rgb_to_xyz = matrix * scale
    source, target = BRADFORD @ _xy_to_xyz(*white), BRADFORD @ np.array(D50)
    adapt = np.linalg.inv(BRADFORD) @ np.diag(target / source) @ BRADFORD
    return np.asarray(adapt @ rgb_to_xyz)


def rgb_profile(name: str, primaries: Primaries, white: tuple[float, float], gamma: float) -> bytes:
    columns = _colorants(primaries, white)
    tags = [
        (b"desc", _description(name)),
        (b"cprt", _text(COPYRIGHT)),
        (b"wtpt", _xyz_tag(*D50)),
    ]
    for index, signature in enumerate((b"rXYZ", b"gXYZ", b"bXYZ")):
        tags.append((signature, _xyz_tag(*columns[:, index])))
    for signature in (b"rTRC", b"gTRC", b"bTRC"):
        tags.append((signature, _curve(gamma)))
    return _profile(b"mntr", b"RGB ", b"XYZ ", tags)


def display_p3() -> bytes:
    """Display P3: DCI-P3 primaries, D65, a 2.2 gamma standing in for the sRGB curve."""
    return rgb_profile("Display P3 (test)", ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65_XY, 2.2)


def prophoto() -> bytes:
    """ProPhoto RGB (ROMM): very wide primaries, D50, gamma 1.8."""
    return rgb_profile("ProPhoto RGB (test)", ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50_XY, 1.8)


def gray_gamma_22() -> bytes:
    """The "Gray Gamma 2.2" profile photo editors embed in greyscale JPEGs."""
    tags = [
        (b"desc", _description("Gray Gamma 2.2 (test)")),
        (b"cprt", _text(COPYRIGHT)),
        (b"wtpt", _xyz_tag(*D50)),
        (b"kTRC", _curve(2.2)),
    ]
    return _profile(b"mntr", b"GRAY", b"XYZ ", tags)


def _lab16(rgb: tuple[float, float, float]) -> bytes:
    """An sRGB colour (0..1) as ICC v2 16-bit Lab (L 0..100 -> 0..0xFF00, a/b +128 -> *256)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    srgb = ((0.6097, 0.2053, 0.1492), (0.3111, 0.6257, 0.0632), (0.0195, 0.0609, 0.7446))  # D50-adapted
    xyz = [sum(m * c for m, c in zip(row, linear, strict=True)) for row in srgb]

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    fx, fy, fz = (f(v / w) for v, w in zip(xyz, D50, strict=True))
    lightness, a, b = 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)
    return struct.pack(
        ">3H",
        round(max(0.0, min(100.0, lightness)) * 652.8),
        round((max(-128.0, min(127.99, a)) + 128) * 256),
        round((max(-128.0, min(127.99, b)) + 128) * 256),
    )


def cmyk_profile(grid: int = 5) -> bytes:
    """A press-like CMYK profile: an `mft2` table from CMYK to Lab (naive ink model)."""
    lut = b"mft2\0\0\0\0" + bytes([4, 3, grid, 0])
    lut += b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut += struct.pack(">HH", 2, 2)
    lut += struct.pack(">2H", 0, 65535) * 4
    steps = [i / (grid - 1) for i in range(grid)]
    for c in steps:
        for m in steps:
            for y in steps:
                for k in steps:
                    # inks absorb a little less than ideal, so black is not pure 0
                    lut += _lab16(tuple(0.04 + 0.96 * (1 - ink) * (1 - k) for ink in (c, m, y)))  # type: ignore[arg-type]
    lut += struct.pack(">2H", 0, 65535) * 3
    tags = [
        (b"desc", _description("Press CMYK (test)")),
        (b"cprt", _text(COPYRIGHT)),
        (b"wtpt", _xyz_tag(*D50)),
        (b"A2B0", lut),
    ]
    return _profile(b"prtr", b"CMYK", b"Lab ", tags)


# -- the corpus ----------------------------------------------------------------------


def _grey(width: int = 480, height: int = 320) -> Image.Image:
    return samples.photo(width, height, seed=3).convert("L")


def _png16_grey_alpha(width: int = 96, height: int = 64) -> bytes:
    """A 16-bit greyscale+alpha PNG (Pillow cannot write one)."""
    rows = []
    for y in range(height):
        grey = np.linspace(0, 65535, width).astype(">u2")
        alpha = np.full(width, int(65535 * (0.25 + 0.75 * y / (height - 1))), dtype=">u2")
        rows.append(b"\0" + np.column_stack([grey, alpha]).tobytes())
    raw = b"".join(rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _animated(fmt: str) -> bytes:
    frames = []
    for index in range(6):
        frame = Image.new("RGB", (160, 120), (20, 40, 90))
        ImageDraw.Draw(frame).ellipse((index * 20, 30, index * 20 + 50, 80), fill=(250, 190, 40))
        frames.append(frame)
    if fmt == "GIF":
        frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) for f in frames]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=90, loop=0)


def corpus() -> dict[str, bytes]:
    """Every colour case the service must turn into something every browser decodes."""
    photo = samples.photo(480, 320, seed=4)
    grey = _grey()
    cmyk = photo.convert("CMYK")
    palette = samples.logo(320, 240).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    grey_alpha = Image.merge("LA", (grey, grey.point(lambda v: 255 if v > 90 else 60)))
    return {
        "colour/grey.jpg": _save(grey, "JPEG", quality=90),
        "colour/grey-gray-gamma-22.jpg": _save(grey, "JPEG", quality=90, icc_profile=gray_gamma_22()),
        "colour/grey-alpha-8bit.png": _save(grey_alpha, "PNG"),
        "colour/grey-alpha-16bit.png": _png16_grey_alpha(),
        "colour/cmyk.jpg": _save(cmyk, "JPEG", quality=90),
        "colour/cmyk-profiled.jpg": _save(cmyk, "JPEG", quality=90, icc_profile=cmyk_profile()),
        "colour/display-p3.jpg": _save(photo, "JPEG", quality=90, icc_profile=display_p3()),
        "colour/prophoto.png": _save(photo, "PNG", icc_profile=prophoto()),
        "colour/palette-transparency.png": _save(palette, "PNG", transparency=0),
        "colour/animated.gif": _animated("GIF"),
        "colour/animated.webp": _animated("WEBP"),
    }

"""What the catalogue knows about an original, read from as few of its bytes as will do.

A JPEG says everything asked here in its first few hundred KB: size and orientation in
its frame header, capture time in EXIF, and (from every camera and phone) a thumbnail
in EXIF's second IFD, which is enough for a placeholder and a dominant colour. So a
JPEG is read as its first `HEAD_BYTES` only, unless those do not hold the headers and
a thumbnail. Every other format, and a JPEG without a thumbnail, is read whole (within
the stack's byte limit) and decoded once, small.

Every decision about whether bytes are an image, and what they may cost, is
`edge.imaging`'s and its table of limits' (`edge/limits.py`): the same verdict as the resize
function and the sync job, in the same order and with the same reason, so the catalogue never
accepts what the CDN would refuse to render, nor rejects what it renders. GPS is never read.

The placeholder is a BlurHash (the `blurhash` library: the reference algorithm, pure
Python, ~1 ms on a 32-pixel image) and, for pages that want an `<img>` or a CSS
background without a decoder, the same hash decoded by the same library into a PNG
data URI of at most `PREVIEW_SIDE` pixels a side.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image

from edge import imaging
from edge import limits as table

HEAD_BYTES = 256 * 1024
# The image the placeholder and the colour come from, and the placeholder's own size.
SAMPLE_SIDE = 32
PREVIEW_SIDE = 16

_EXIF_DATETIME = re.compile(r"(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"[+-](0\d|1[0-4]):[0-5]\d")
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED, _OFFSET_ORIGINAL = 0x9003, 0x9004, 0x9011
_THUMBNAIL_OFFSET, _THUMBNAIL_LENGTH = 0x0201, 0x0202

# (start, end) -> the bytes [start, end) of the original: a ranged GET in AWS.
Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Facts:
    """What the bytes of one original say (one catalogue item holds these)."""

    format: str
    width: int
    height: int
    animated: bool
    alpha: bool
    captured_at: str | None
    colour: str
    blurhash: str
    placeholder: str
    bytes_read: int
    """How many bytes of the original were read to learn the rest (not stored)."""

    def as_item(self) -> dict[str, Any]:
        item = asdict(self)
        del item["bytes_read"]
        return item


def extract(read: Reader, size: int, limits: imaging.Limits) -> Facts:
    """The facts of one original of `size` bytes; raises `imaging.ImageError` for what is not an image we take."""
    table.check_size(size, limits)  # the edge's own check, before a byte is read
    head = read(0, min(size, HEAD_BYTES))
    if len(head) < size and head.startswith(b"\xff\xd8\xff"):
        facts = _from_jpeg_head(head, size, limits)
        if facts is not None:
            return facts
    data = head + read(len(head), size) if len(head) < size else head
    found = imaging.probe(data, limits)
    sample, _ = imaging.transform(
        data, width=SAMPLE_SIDE, height=SAMPLE_SIDE, fit="inside", quality=90, fmt="png", limits=limits
    )
    with Image.open(io.BytesIO(sample)) as small:
        return _facts(found, small.convert("RGBA"), len(data))


def _from_jpeg_head(head: bytes, size: int, limits: imaging.Limits) -> Facts | None:
    """A JPEG's facts from its first bytes and its EXIF thumbnail, or None when those do not hold them."""
    try:
        found = imaging.probe(head, limits, size=size)
    except imaging.UndecodableImage:
        return None  # headers longer than the head (a huge XMP or ICC block): read it all
    thumbnail = _exif_thumbnail(found.exif, head)
    if thumbnail is None:
        return None
    try:
        with Image.open(io.BytesIO(thumbnail), formats=("JPEG",)) as image:
            image.draft("RGB", (SAMPLE_SIDE, SAMPLE_SIDE))
            small = imaging.upright(image.convert("RGB"), found.orientation)
            small.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE))
    except Exception:  # a broken thumbnail: decode the photo instead
        return None
    if (small.width > small.height) != (found.width > found.height) and found.width != found.height:
        return None  # a thumbnail that is not of this photo (edited elsewhere, thumbnail left stale)
    return _facts(found, small.convert("RGBA"), len(head))


def _exif_thumbnail(exif: Image.Exif, head: bytes) -> bytes | None:
    """The JPEG in EXIF's IFD1 (offsets count from the TIFF header, after `Exif\\0\\0`), if all of it is in `head`."""
    try:
        ifd1 = exif.get_ifd(ExifTags.IFD.IFD1)
        offset, length = int(ifd1[_THUMBNAIL_OFFSET]), int(ifd1[_THUMBNAIL_LENGTH])
    except Exception:
        return None
    marker = head.find(b"Exif\x00\x00")
    if marker < 0 or length <= 0:
        return None
    start = marker + 6 + offset
    thumbnail = head[start : start + length]
    return thumbnail if len(thumbnail) == length and thumbnail.startswith(b"\xff\xd8") else None


def _facts(found: imaging.Probe, small: Image.Image, bytes_read: int) -> Facts:
    # "Has alpha": the header allows it and the pixels use it (an animated WebP decodes as RGBA either way).
    alpha_low = small.getchannel("A").getextrema()[0]
    assert isinstance(alpha_low, int)
    flat = Image.new("RGB", small.size, (255, 255, 255))
    flat.paste(small, mask=small.getchannel("A"))
    code = placeholder_hash(flat)
    return Facts(
        format=found.format,
        width=found.width,
        height=found.height,
        animated=found.animated,
        alpha=found.alpha and alpha_low < 255,
        captured_at=captured_at(found.exif),
        colour=dominant_colour(flat),
        blurhash=code,
        placeholder=preview_uri(code, found.width, found.height),
        bytes_read=bytes_read,
    )


def captured_at(exif: Image.Exif) -> str | None:
    """EXIF DateTimeOriginal (else DateTimeDigitized) as ISO 8601, with its offset when the camera wrote one."""
    try:
        tags = exif.get_ifd(ExifTags.IFD.Exif)
    except Exception:
        return None
    for tag in (_DATETIME_ORIGINAL, _DATETIME_DIGITIZED):
        value = tags.get(tag)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value or "")
        match = _EXIF_DATETIME.fullmatch(text.strip("\x00 "))
        if match is None:
            continue
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        try:
            moment = datetime(year, month, day, hour, minute, second)
        except ValueError:  # 0000:00:00 00:00:00 and friends
            continue
        offset = str(tags.get(_OFFSET_ORIGINAL) or "").strip("\x00 ")
        return moment.isoformat() + (offset if _EXIF_OFFSET.fullmatch(offset) else "")
    return None


def palette(image: Image.Image, colours: int = 5) -> list[tuple[int, str]]:
    """(pixels, #rrggbb) of the image's median-cut colours, the most common first."""
    quantized = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    histogram = quantized.histogram()  # pixels per palette index
    entries = quantized.getpalette() or []
    found = [
        (histogram[index], "#{:02x}{:02x}{:02x}".format(*entries[3 * index : 3 * index + 3]))
        for index in range(min(len(histogram), len(entries) // 3))
        if histogram[index]
    ]
    return sorted(found, key=lambda entry: -entry[0])


def dominant_colour(image: Image.Image) -> str:
    """The most common of five median-cut colours, as #rrggbb."""
    found = palette(image)
    return found[0][1] if found else "#000000"


def placeholder_hash(image: Image.Image) -> str:
    """A BlurHash: 4x3 components for a landscape image, 3x4 for a portrait one."""
    import blurhash

    rows = [[list(image.getpixel((x, y))) for x in range(image.width)] for y in range(image.height)]  # type: ignore[arg-type]
    across, down = (4, 3) if image.width >= image.height else (3, 4)
    return str(blurhash.encode(rows, components_x=across, components_y=down))


def preview_uri(code: str, width: int, height: int) -> str:
    """The BlurHash decoded to a PNG data URI of the image's aspect ratio, PREVIEW_SIDE pixels on its long side."""
    import blurhash

    scale = PREVIEW_SIDE / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    rows = blurhash.decode(code, w, h)
    image = Image.new("RGB", (w, h))
    image.putdata([tuple(int(max(0, min(255, c))) for c in pixel[:3]) for row in rows for pixel in row])
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")

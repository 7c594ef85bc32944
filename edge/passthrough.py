"""Never larger than the source: a variant that would need no pixel changed, served as the original.

When the original fits the asked box as it is (no resize, no crop, no padding, no rotation, no
watermark, no colour conversion) and is in a format every client that asks for the variant's format
decodes, its own bytes with the metadata stripped are the variant whenever they are smaller than the
encode: the same pixels (or, for a lossy original, the pixels our encode would only have degraded),
fewer bytes. The stored object and the response then say so (`X-Image-Cdn-Source: original`).

What a client that asks for a format decodes is `SUBSTITUTES` (edge/settings.py: every browser that
decodes AVIF decodes WebP and JPEG), plus GIF for AVIF and WebP: only browsers negotiate those, and
every browser plays GIF (an animated GIF asked for as AVIF or WebP stays animated either way). PNG is
the exception: it is asked for by name only (`fm=png`; the viewer function never picks it), so whoever
asked wants a PNG, and only a PNG original stands in for it.

Stripping is lossless and keeps only what rendering needs: a whitelist of JPEG segments, PNG chunks
and GIF blocks is copied, nothing after the image's end (a JPEG's EOI, a PNG's IEND, a GIF's trailer)
is kept, and anything this walker does not understand means no passthrough (the encode is served).
Our own code, not a library: the lossless strippers on PyPI either wrap a C++ metadata parser
(pyexiv2: exiv2, a large native bundle and a parser of untrusted input with its own CVE history,
and it keeps trailing data), re-render the pixels (mat2 draws PNGs again through cairo), or cover
EXIF alone (piexif, unmaintained since 2019). The walker is bounded by the original's size, which
edge/limits.py has already checked, and reads every length before it trusts it.

Not passed through: WebP and AVIF originals (their containers hold orientation and colour in boxes
and chunks we would have to rewrite), HEIF (no browser but Safari decodes it), CMYK JPEGs, PNGs
deeper than 8 bits, animated PNGs (a PNG variant is the first frame), and any original with a colour
profile that is not sRGB (the output converts to sRGB; the original's bytes would keep its colours).
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import NamedTuple

from edge.limits import Limits
from edge.settings import SUBSTITUTES

# The stored object's user metadata that marks a passed-through original. S3 returns user metadata
# as `x-amz-meta-<name>` ("Working with object metadata", S3 User Guide); origin-response turns it
# into SOURCE_HEADER (edge/settings.py) for viewers, on a variant from either bucket.
SOURCE_METADATA = "source"
ORIGINAL = "original"

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif"}
_MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF8"}
# Which originals each variant format may be answered with (see the module's docstring).
ACCEPTED = {
    fmt: (*formats, "gif") if fmt in ("avif", "webp") else ("png",) if fmt == "png" else formats
    for fmt, formats in SUBSTITUTES.items()
}


class Stripped(NamedTuple):
    """An original without its metadata, and the colour profile it carried (checked by the caller)."""

    body: bytes
    icc: bytes | None


def strip(data: bytes, fmt: str) -> Stripped | None:
    """`data` (a `fmt` image) without metadata and without anything after its end; None when the
    walker meets anything it does not understand (no passthrough then)."""
    try:
        if fmt == "jpeg":
            return _jpeg(data)
        if fmt == "png":
            return _png(data)
        if fmt == "gif":
            return _gif(data)
    except (IndexError, struct.error, ValueError, zlib.error):
        return None  # a length that points past the end, a broken stream: not ours to pass on
    return None


# -- JPEG: markers (ITU-T T.81, B.1) -------------------------------------------------------------

# Segments a decoder needs: DQT, DHT, DAC, DRI, DNL, and the frame headers (SOF0-SOF15, less
# DHT/JPG/DAC, which share the range). SOS is handled on its own (entropy-coded data follows it).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# DHT, DAC, DQT, DRI. Not DNL (0xDC): decoders skip it, so it could carry anything.
_JPEG_KEEP = _SOF | {0xC4, 0xCC, 0xDB, 0xDD}
# Bounds on what a passthrough candidate may hold (a camera's JPEG has a few dozen markers and at
# most a dozen scans): past them the walker stops and the encode is served, so a file of millions
# of empty segments, fill bytes or scans costs a bounded walk (and a scan bomb is never passed on).
MAX_SEGMENTS, MAX_SCANS, MAX_FILL = 256, 64, 16
_SCAN_END = re.compile(rb"\xff+(?=[^\x00\xd0-\xd7\xff])")
_SOS, _EOI, _APP0, _APP2, _APP14, _COM = 0xDA, 0xD9, 0xE0, 0xE2, 0xEE, 0xFE
_ICC_HEADER = b"ICC_PROFILE\x00"


def _jpeg(data: bytes) -> Stripped | None:
    if data[:2] != b"\xff\xd8":
        return None
    out = [b"\xff\xd8"]
    icc: dict[int, bytes] = {}
    frames = scans = segments = 0
    at = 2
    while True:
        if data[at] != 0xFF:
            return None
        start = at
        while data[at] == 0xFF:  # fill bytes before a marker (T.81 B.1.1.2)
            at += 1
            if at - start > MAX_FILL:
                return None
        segments += 1
        if segments > MAX_SEGMENTS:
            return None
        marker = data[at]
        at += 1
        if marker == _EOI:
            out.append(b"\xff\xd9")
            break  # anything after the image's end (a polyglot's payload, an MPO's second picture) stays out
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn or TEM outside a scan: not a file we know
            return None
        (length,) = struct.unpack(">H", data[at : at + 2])
        if length < 2 or at + length > len(data):
            return None
        segment = data[at - 2 : at + length]
        payload = data[at + 2 : at + length]
        at += length
        if marker in _SOF:
            frames += 1
            out.append(segment)
        elif marker in _JPEG_KEEP:
            out.append(segment)
        elif marker == _APP0 and payload.startswith(b"JFIF\x00") and length == 16:
            out.append(segment)  # JFIF without a thumbnail: how decoders know the colour is YCbCr
        elif marker == _APP14 and payload.startswith(b"Adobe") and length == 14:
            out.append(segment)  # Adobe's transform flag: whether three components are RGB or YCbCr
        elif marker == _APP2 and payload.startswith(_ICC_HEADER) and len(payload) > 14:
            if frames or payload[12] in icc:
                return None  # a profile after the frame, or a chunk twice: what would decoders use?
            icc[payload[12]] = payload[14:]  # kept aside for the caller's colour check, then dropped
        elif 0xE0 <= marker <= 0xEF or marker == _COM:
            continue  # EXIF, XMP, IPTC, comments, thumbnails: dropped
        elif marker == _SOS:
            scans += 1
            if scans > MAX_SCANS:
                return None
            end = _scan_end(data, at)
            out.append(segment + data[at:end])
            at = end
        else:
            return None  # JPGn, hierarchical or reserved markers: not a file we pass on
    if frames != 1:
        return None
    profile = b"".join(icc[index] for index in sorted(icc)) if icc else None
    return Stripped(b"".join(out), profile)


def _scan_end(data: bytes, at: int) -> int:
    """Where a scan's entropy-coded data ends: the last 0xFF before the first marker that is not a
    stuffed 0xFF00 nor RSTn (one regular expression: C speed over millions of stuffed bytes)."""
    found = _SCAN_END.search(data, at)
    if found is None:
        raise ValueError("no marker after the scan: no EOI")
    return found.end() - 1


# -- PNG: chunks (PNG specification, third edition, 5.6 and 11) ---------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks rendering needs; everything ancillary besides transparency is metadata to a service that
# writes untagged sRGB (gAMA, cHRM, sRGB and iCCP are what our own output drops too: a render of the
# same pixels would read exactly as this).
_PNG_KEEP = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")
# An animated PNG: a PNG variant is the first frame only, so no passthrough.
_APNG = (b"acTL", b"fcTL", b"fdAT")
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png(data: bytes) -> Stripped | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    out = [_PNG_SIGNATURE]
    icc = None
    idat = []
    header = b""
    palette = transparency = -1  # PLTE's and tRNS's lengths, -1 when absent
    at = len(_PNG_SIGNATURE)
    while True:
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        end = at + 12 + length
        if end > len(data):
            return None
        body = data[at + 8 : at + 8 + length]
        if struct.unpack(">I", data[end - 4 : end])[0] != zlib.crc32(kind + body):
            return None  # a broken chunk: browsers may refuse what Pillow read
        chunk = data[at:end]
        at = end
        if kind in _APNG:
            return None
        if kind == b"IHDR":
            header = body
        if kind == b"iCCP":
            name_end = body.index(b"\x00")
            icc = zlib.decompressobj().decompress(body[name_end + 2 :], 1 << 22)  # a profile is a few KB
        elif kind in _PNG_KEEP:
            out.append(chunk)
            if kind == b"PLTE":
                palette = len(body)
            if kind == b"tRNS":
                transparency = len(body)
            if kind == b"IDAT":
                idat.append(body)
            if kind == b"IEND":
                break  # nothing after the image's end
        elif not kind[0] & 0x20:
            return None  # an unknown critical chunk: not a file we pass on
    if len(header) != 13 or not idat:
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth > 8 or colour not in _CHANNELS:
        return None  # 16-bit: our output is 8-bit
    # PLTE and tRNS hold exactly what the colour type reads (PNG 11.2.3, 11.3.2.1): no room to hide
    # bytes past it. (A palette's unused entries stay: at most 768 bytes, served as an image.)
    if palette >= 0 and (palette % 3 or palette > 3 * 2**depth or colour not in (2, 3, 6)):
        return None
    if transparency >= 0 and not (
        (colour == 0 and transparency == 2)
        or (colour == 2 and transparency == 6)
        or (colour == 3 and 0 < transparency <= palette // 3)
    ):
        return None
    if not _idat_exact(b"".join(idat), _raw_size(width, height, depth * _CHANNELS[colour], interlace)):
        return None
    return Stripped(b"".join(out), icc)


def _raw_size(width: int, height: int, bits: int, interlace: int) -> int:
    """The bytes the image data inflates to: each row's filter byte and packed samples, per Adam7 pass."""

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return rows(width, height)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    return sum(rows((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in passes)


def _idat_exact(stream: bytes, expected: int) -> bool:
    """Whether the image data is one zlib stream holding exactly the image: no bytes after its end and
    no rows beyond the last, where a polyglot could hide a payload inside IDAT. Bounded: inflates at
    most a megabyte more than the image (whose pixels edge/limits.py has counted), holding a megabyte."""
    inflater = zlib.decompressobj()
    produced, pending = 0, stream
    # A megabyte at a time, counted and let go: never the whole image at once. It stops at the stream's
    # end: past it, zlib keeps the input's rest as an unconsumed tail that would never shrink.
    while produced <= expected and not inflater.eof:
        chunk = inflater.decompress(pending, 1 << 20)
        produced += len(chunk)
        pending = inflater.unconsumed_tail
        if not chunk and not pending:
            break
    return produced == expected and inflater.eof and not inflater.unused_data and not inflater.unconsumed_tail


# -- GIF: blocks (GIF89a specification) ---------------------------------------------------------


def _gif(data: bytes) -> Stripped | None:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    flags = data[10]
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    out = [data[:at]]
    while True:
        introducer = data[at]
        if introducer == 0x3B:  # the trailer: nothing after the image's end
            out.append(b"\x3b")
            break
        if introducer == 0x2C:  # an image: descriptor, local colour table, LZW code size, data
            local = data[at + 9]
            start = at
            at += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
            at = _sub_blocks(data, at)
            out.append(data[start:at])
        elif introducer == 0x21:
            label = data[at + 1]
            start = at
            at = _sub_blocks(data, at + 2)
            block = data[start:at]
            if label == 0xF9:  # graphic control: delay, disposal, transparency
                if len(block) != 8 or block[2] != 4:
                    return None  # exactly one 4-byte sub-block (GIF89a 23): more is a hiding place
                out.append(block)
            elif label == 0xFF and block[3:14] in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                if len(block) != 19 or block[2] != 11 or block[14] != 3:
                    return None  # the loop count is one 3-byte sub-block
                out.append(block)  # the loop count
            elif label == 0x01:
                return None  # plain text is rendered (in theory), and a graphic control may belong to it
            # comments and every other application block (XMP, ICC): dropped
        else:
            return None
    return Stripped(b"".join(out), None)


def _sub_blocks(data: bytes, at: int) -> int:
    """The position after a chain of data sub-blocks (each a length byte, then that many bytes)."""
    while True:
        size = data[at]
        at += 1 + size
        if size == 0:
            if at > len(data):
                raise IndexError("past the end")
            return at


def fits(size: tuple[int, int], width: int | None, height: int | None, fit: str) -> bool:
    """Whether the box asked for takes the original as it is: no scale, crop or padding."""
    from edge.imaging import plan

    geometry = plan(size, width, height, fit)
    return not geometry.pad and geometry.scaled == size and geometry.box == size


def is_srgb(icc: bytes) -> bool:
    """A readable RGB profile that says it is sRGB (dropping it changes nothing: untagged is sRGB)."""
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False
    described = (profile.profile.profile_description or "").lower()
    return bool(profile.profile.xcolor_space == "RGB " and "srgb" in described)


class Original:
    """An original as a passthrough candidate: its header read once, its bytes stripped only when a
    variant could take them (the box fits), then kept for the other variants of the same original."""

    def __init__(self, data: bytes, limits: Limits | None = None):

        self.data = data
        self.limits = limits
        # From the magic bytes: what no variant could take is never probed (a probe may decode a
        # PNG whole, for its EXIF), and what could is probed once, on the first variant that asks.
        self.format = next((fmt for fmt, magic in _MAGIC.items() if data.startswith(magic)), "")
        self.size = (0, 0)
        self._probed = False
        self._stripped: Stripped | bool | None = False  # False: not stripped yet

    def _probe(self) -> None:
        from edge import imaging

        if self._probed:
            return
        self._probed = True
        sniffed, self.format = self.format, ""
        try:
            probed = imaging.probe(self.data, self.limits)
        except imaging.ImageError:
            return
        if probed.orientation != 1:
            return  # a rotated original needs its pixels turned
        if probed.animated and probed.format != "gif":
            return  # an animated PNG's variant is its first frame
        if probed.format == sniffed:
            self.format, self.size = probed.format, (probed.width, probed.height)

    def stripped(self) -> bytes | None:
        """The original without metadata, or None when it cannot be passed on (colour, structure)."""
        if self._stripped is False:
            self._stripped = None
            try:
                if self.format == "jpeg" and _jpeg_mode(self.data) not in ("L", "RGB"):
                    return None  # CMYK: browsers disagree on it, and our output converts it
                found = strip(self.data, self.format)
            except Exception:  # whatever a crafted original does to a header read: the encode is served
                return None
            if found is not None and (found.icc is None or is_srgb(found.icc)):
                self._stripped = found
        return self._stripped.body if isinstance(self._stripped, Stripped) else None

    def choose(
        self,
        encoded: bytes,
        fmt: str,
        *,
        width: int | None,
        height: int | None,
        fit: str,
        watermark_from: int | None = None,
    ) -> tuple[bytes, str] | None:
        """The original's stripped bytes and content type when they can stand for the `fmt` variant
        (format, box, no watermark: `watermark_from` is the width from which one is composited) and
        are smaller than `encoded`; None: the encode it is."""
        if not self.format or self.format not in ACCEPTED.get(fmt, ()):
            return None
        if self.format == "gif" and fmt not in ("avif", "webp"):
            return None  # a JPEG or PNG variant of a GIF is its first frame
        self._probe()
        if not self.format:
            return None
        if watermark_from is not None and self.size[0] >= watermark_from:
            return None
        if not fits(self.size, width, height, fit):
            return None
        body = self.stripped()
        if body is None or len(body) >= len(encoded):
            return None
        return body, CONTENT_TYPES[self.format]


def _jpeg_mode(data: bytes) -> str:
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=("JPEG",)) as image:
        return str(image.mode)

"""Decode, orient, resize and encode images: the project's only image code.

Two entry points, one per purpose, over the same steps (open, decode, scale, finish,
encode): `transform` renders one variant (the resize handler, the emulator, the
benchmarks); `render_set` renders a set of widths x formats from one decode (the sync
job's standard set). Both raise `ImageError` (one subclass per reason, each with its
HTTP status) for anything they cannot or will not process, and nothing else.

What it promises:
- every original gets one verdict, whatever variant is asked for and whoever asks (resize, the
  sync job, the catalogue): bytes, pixels and frames are checked from the headers before anything
  is decoded (edge/limits.py, counted without letting Pillow walk every frame), and then only the
  first frame must decode (a later broken frame ends an animation early);
- JPEGs are DCT-scaled on decode (draft mode) when shrinking;
- EXIF orientation is applied, then every piece of metadata is dropped (no EXIF, no
  GPS, no XMP, no comments, no colour profile);
- one colour policy for every output format: 8-bit sRGB (RGB, or RGBA where alpha
  survives), converted through the embedded profile when it describes another space
  (Display P3, ProPhoto, Adobe RGB, a grey gamma, CMYK), untagged (browsers read an
  untagged image as sRGB; a profile that does not match the pixels, such as a grey one
  on RGB output, is what Chromium refuses to decode);
- alpha survives webp, avif, png and jxl, and is flattened onto white for jpeg;
- an animated GIF or WebP asked for as webp or avif stays animated (browsers that
  send image/avif all play animated AVIF); jpeg, png and jxl get the first frame (jxl: the
  encoder we carry, pillow-jxl-plugin, writes stills only);
- nothing is ever upscaled (see edge/variants.py for what each fit does);
- `fit=cover` crops where the `Crop` says: the centre, the busiest window (entropy), the
  window that draws the eye (attention), or around faces a caller found (Pillow alone:
  no model, no new dependency in the bundle);
- a `Watermark` is composited onto every output at least its minimum width wide;
- `quality=AUTO` (`q_auto`): per variant, the smallest encode whose SSIMULACRA 2 score against
  the finished pixels (edge/perceptual.py) meets the stack's target, found in at most
  `AUTO_ENCODES` encodes (`choose`); an animation takes the target's calibrated quality.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from PIL import Image, ImageChops, ImageCms, ImageFilter, UnidentifiedImageError

from edge import limits as table

# The refusals and the table of limits live in edge/limits.py (shared with the catalogue and the
# sync job without Pillow); imported here under their old names, which callers use.
from edge.limits import ImageError as ImageError
from edge.limits import InputTooLarge as InputTooLarge
from edge.limits import InvalidTransform as InvalidTransform
from edge.limits import Limits as Limits
from edge.limits import TooManyFrames as TooManyFrames
from edge.limits import TooManyPixels as TooManyPixels
from edge.limits import UndecodableImage as UndecodableImage
from edge.limits import UnencodableImage as UnencodableImage
from edge.limits import UnsupportedImage as UnsupportedImage
from edge.settings import AUTO, CONTENT_TYPES, FITS, POSITIONS, Settings

# Decoders we let near untrusted bytes; anything else is refused before decoding.
DECODERS = ("JPEG", "PNG", "GIF", "WEBP", "AVIF", "HEIF")
_NOT_HEIF = tuple(name for name in DECODERS if name != "HEIF")
# How each of them starts: bytes that claim a format but do not parse are 422, not 415.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
# ISO BMFF brands of HEIF files (what iPhones upload); HEIF is decoded, never encoded.
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
# Our pixel limit (stack config, checked from the header) replaces Pillow's global one,
# which would otherwise refuse large-but-allowed images before we get to count them.
Image.MAX_IMAGE_PIXELS = None

# EXIF orientation -> the transpose that makes the image upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
# libaom speed for AVIF (0 slowest .. 10 fastest); bench/ compares it with sharp's default.
# Animations encode every frame, so they take the fastest setting to stay inside the
# 30 s origin-response budget.
AVIF_SPEED = 6
AVIF_ANIMATION_SPEED = 10
ANIMATED_FORMATS = ("webp", "avif")
# The largest side each encoder writes (WebP's format limit, libjpeg's, AV1's, PNG's).
# JPEG XL's own limit is 2^30, but libjxl's encode time grows faster than the pixels on a tall,
# thin image (measured: 1 x 100,000 px 1 s, 1 x 600,000 px 28 s): AVIF's side bounds it.
MAX_SIDE = {"webp": 16383, "jpeg": 65500, "avif": 65536, "png": 2**31 - 1, "jxl": 65536}
WEBP_METHOD = 4
# libjxl's effort for JPEG XL (1 fastest .. 9; cjxl's default is 7): at the same SSIMULACRA 2 score
# effort 7's files were within 3% of effort 5's either way on bench/quality_auto.py's photos, for
# more encoding work per miss (`make bench`'s cold misses time a jxl miss beside AVIF's). One
# thread, as AVIF. A quality q is cjxl's `-q q`: libjxl maps it to a butteraugli distance
# (JxlEncoderDistanceFromQuality: 0.1 + (100 - q) * 0.09 from q 30 up), so q60 is distance 3.7.
JXL_EFFORT = 5


@dataclass(frozen=True)
class Plan:
    """Geometry in the upright orientation: scale to `scaled`, then crop or pad to `box`."""

    scaled: tuple[int, int]
    box: tuple[int, int]
    pad: bool


def plan(size: tuple[int, int], width: int | None, height: int | None, fit: str) -> Plan:
    """Where an upright `size` image ends up; never larger than the source."""
    src_w, src_h = size
    if width is None and height is None:
        return Plan(size, size, False)
    if width is None or height is None:
        scale = min(1.0, width / src_w if width is not None else height / src_h)  # type: ignore[operator]
        scaled = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
        return Plan(scaled, scaled, False)
    if fit == "inside":
        scale = min(1.0, width / src_w, height / src_h)
        scaled = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
        return Plan(scaled, scaled, False)
    # cover, contain and fill keep the box's aspect ratio; a box larger than the image
    # (in the dimension that decides) shrinks until it fits, so nothing is upscaled.
    decide = max if fit in ("cover", "fill") else min
    scale = decide(width / src_w, height / src_h)
    shrink = max(1.0, scale)
    box = (max(1, round(width / shrink)), max(1, round(height / shrink)))
    scale = min(scale, 1.0)
    if fit == "fill":
        return Plan(box, box, False)
    scaled = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
    if fit == "cover":
        scaled = (max(scaled[0], box[0]), max(scaled[1], box[1]))
        return Plan(scaled, box, False)
    return Plan(scaled, box, True)


def _check_request(width: int | None, height: int | None, fit: str, quality: int, fmt: str) -> None:
    if fmt not in CONTENT_TYPES:
        raise InvalidTransform("one of " + ", ".join(CONTENT_TYPES), fmt, parameter="format")
    if fit not in FITS:
        raise InvalidTransform("one of " + ", ".join(FITS), fit, parameter="fit")
    if quality != AUTO and not 1 <= quality <= 100:
        raise InvalidTransform("integer between 1 and 100 or auto", quality, parameter="quality")
    for name, value in (("width", width), ("height", height)):
        if value is not None and value < 1:
            raise InvalidTransform("positive integer", value, parameter=name)


def is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


_heif_ready = False


def _heif() -> None:
    """Register pillow-heif's decoder the first time a HEIF file comes (it costs a cold start ~30 ms)."""
    global _heif_ready
    if not _heif_ready:
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False)
        _heif_ready = True


class Opened(NamedTuple):
    """An image whose header passed every limit: Pillow's image (nothing decoded yet) and its frame count."""

    image: Image.Image
    frames: int


@functools.cache
def _jxl() -> None:
    """Register the JPEG XL encoder (pillow-jxl-plugin) on first use: only stacks that serve jxl carry
    it (components/bundle.py), and importing it costs every other cold start nothing. Its decoder is
    registered too, but `_open` never lets it near an original (DECODERS)."""
    try:
        import pillow_jxl  # noqa: F401 - registers "JXL" with Pillow
    except ImportError:  # a bundle without it: the stack does not list jxl in its formats
        raise UnencodableImage("a stack that serves jxl (formats lists it)", "jxl") from None


def _open(data: bytes, limits: Limits, size: int | None = None) -> Opened:
    """Open (header only) and check the limits; `size`: the whole file's, when `data` is its start.

    The one verdict on an original (edge/limits.py): its bytes, what its container declares (before
    Pillow reads it), then what Pillow's header read says. Resize, the sync job and the catalogue
    all come through here, so an original is refused by all three or by none, for the same reason.
    """
    table.check_size(len(data) if size is None else size, limits)
    declared = table.inspect(data, limits)
    table.check_image(declared.width, declared.height, declared.frames, limits, exact=declared.exact)
    heif = is_heif(data)
    if heif:
        _heif()  # its decoder is registered on first use, so the others are tried without it
    try:
        image = Image.open(io.BytesIO(data), formats=("HEIF",) if heif else _NOT_HEIF)
    except UnidentifiedImageError:
        if _claims_supported_format(data):
            raise UndecodableImage("a decodable image", f"a broken header: {_sniff(data)}") from None
        raise UnsupportedImage("a JPEG, PNG, GIF, WebP, AVIF or HEIF image", _sniff(data)) from None
    except Exception as error:  # a header Pillow cannot even parse
        raise UndecodableImage("a decodable image", f"a broken header: {_said(error)}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise UndecodableImage("an image with positive dimensions", f"{width}x{height}")
    if image.format == "GIF":
        # Counted by `table.inspect` (to max_frames + 1, the frame's largest extent too); Pillow's own
        # `n_frames` would walk every frame, in Python, however many there are.
        frames, exact = declared.frames or 1, declared.exact
    else:
        # PNG (acTL), WebP (demuxed at open), AVIF, HEIF (parsed at open), MPO: a number Pillow holds.
        try:
            frames, exact = max(int(getattr(image, "n_frames", 1)), declared.frames or 1), True
        except Exception as error:
            raise UndecodableImage("a decodable image", f"broken frames: {_said(error)}") from None
    table.check_image(width, height, frames, limits, exact=exact)
    return Opened(image, frames)


def _said(error: BaseException) -> str:
    """What a decoder said, for a refusal's `received`: its error's name and message, bounded (the
    message may quote the file's bytes)."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= 120 else text[:119] + "…"


def _claims_supported_format(data: bytes) -> bool:
    return (
        data.startswith(_MAGIC)
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or (data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"))
        or is_heif(data)
    )


def _sniff(data: bytes) -> str:
    head = data[:16]
    if not head:
        return "0 bytes"
    printable = head.decode("latin-1")
    return printable if printable.isprintable() else head.hex()


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # garbage EXIF: treat as upright rather than refuse the photo
        return 1
    return value if value in _TRANSPOSE else 1


class Probe(NamedTuple):
    """What an image's header says, upright (EXIF orientation applied to the sides)."""

    format: str
    """jpeg, png, gif, webp, avif or heif"""
    width: int
    height: int
    alpha: bool
    animated: bool
    orientation: int
    exif: Image.Exif


def probe(data: bytes, limits: Limits | None = None, *, size: int | None = None) -> Probe:
    """Read the header only, with the same refusals as `transform`; nothing is decoded.

    `data` may be the first bytes of a larger file (`size` bytes): a JPEG's headers come
    before its pixels, so its first few hundred KB say everything asked here. Counting a
    GIF's or WebP's frames reads all of it: pass the whole file for those.
    """
    limits = limits or Limits()
    image, frames = _open(data, limits, size)
    with _refusals(image):
        orientation = _orientation(image)
        fmt = "heif" if image.format == "HEIF" else str(image.format).lower()
        if fmt in ("jpeg", "heif"):
            frames = 1  # a HEIF's other top-level images (a burst) are not an animation to the catalogue
        width, height = _stored_size(image.size, orientation)
        alpha = "A" in image.mode or "transparency" in image.info
        try:
            exif = image.getexif()
        except Exception:  # garbage EXIF is no EXIF
            exif = Image.Exif()
        return Probe(fmt, width, height, alpha, frames > 1, orientation, exif)
    raise AssertionError("unreachable")  # _refusals re-raises every failure


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """`image` turned as EXIF orientation `orientation` says (e.g. a thumbnail stored beside the photo)."""
    transpose = _TRANSPOSE.get(orientation)
    return image if transpose is None else image.transpose(transpose)


def _workable(image: Image.Image) -> Image.Image:
    """A mode the resampler and the colour transform take: L, LA, RGB, RGBA or CMYK, 8 bits."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grey: scale into 8 bits instead of clipping everything above 255 to white
        return image.convert("I").point([index // 256 for index in range(65536)], "L")
    if mode in ("F", "1"):
        return image.convert("L")
    transparent = "transparency" in image.info
    if mode in ("P", "PA", "RGBa") or (mode == "RGB" and transparent):
        return image.convert("RGBA" if transparent or mode in ("PA", "RGBa") else "RGB")
    if mode in ("La",) or (mode == "L" and transparent):
        return image.convert("LA")
    if mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image.convert("RGB")
    return image


# The colour space an embedded profile must describe for these pixels, by mode.
_SPACES = {"L": "GRAY", "LA": "GRAY", "RGB": "RGB ", "RGBA": "RGB ", "CMYK": "CMYK"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=16)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from an embedded profile to sRGB; None when there is nothing to do.

    Nothing to do: no readable profile, a profile that says it is sRGB, or one that does
    not describe pixels of this mode (an RGB profile on a greyscale JPEG is ignored, not
    trusted). Relative colorimetric with black point compensation, as libvips (sharp)
    converts to sRGB.
    """
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space
        described = (profile.profile.profile_description or "").lower()
        if space != _SPACES[mode] or (space == "RGB " and "srgb" in described):
            return None
        return ImageCms.buildTransform(
            profile,
            _SRGB,
            "L" if mode == "LA" else "RGB" if mode == "RGBA" else mode,
            "RGB",
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile: the pixels are taken as sRGB rather than the photo refused


def _srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """8-bit sRGB, RGB or RGBA, converted through the embedded profile when there is one.

    The colour policy (as sharp's default): every output is sRGB and carries no profile.
    A profile that does not match the output's colour mode (a grey profile on RGB pixels)
    is what some browsers refuse to decode, and an untagged image is read as sRGB.
    """
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    transform = _transform(icc, image.mode) if icc else None
    if transform is not None:
        opaque = image.convert(transform.inputMode) if image.mode != transform.inputMode else image
        converted = ImageCms.applyTransform(opaque, transform)
        image = converted if converted is not None else opaque.convert("RGB")
    elif image.mode != "RGB":
        image = image.convert("RGB")
    if alpha is not None:
        image.putalpha(alpha)
    return image


# -- where cover crops ------------------------------------------------------------------

# Strategies look at a copy at most this long on the overflowing side: enough to find a
# subject, cheap enough for every miss (a few ms on a 2560 px variant).
_LOOK_PIXELS = 256
# A face box: left, top, width, height as fractions of the image (Rekognition's BoundingBox).
FaceBox = tuple[float, float, float, float]
FaceFinder = Callable[[bytes], Sequence[FaceBox] | None]


class Crop:
    """Where `fit=cover` cuts: one of `CROP_STRATEGIES`, decided once per image (every
    frame of an animation is cut at the same place).

    `faces` asks `find_faces` (given the scaled, upright image as a JPEG) for face boxes
    and falls back to attention when it finds none, fails or is not given.
    """

    def __init__(self, strategy: str = "center", find_faces: FaceFinder | None = None):
        if strategy not in CROP_STRATEGIES:
            raise InvalidTransform("one of " + ", ".join(CROP_STRATEGIES), strategy, parameter="crop")
        self.strategy = strategy
        self.find_faces = find_faces
        self.used = strategy  # what decided in the end (faces may fall back to attention)
        self._origin: tuple[int, int] | None = None

    def origin(self, image: Image.Image, box: tuple[int, int]) -> tuple[int, int]:
        if self._origin is None:
            self._origin = self._decide(image, box)
        return self._origin

    def _decide(self, image: Image.Image, box: tuple[int, int]) -> tuple[int, int]:
        over = (image.width - box[0], image.height - box[1])
        centre = (max(0, over[0]) // 2, max(0, over[1]) // 2)
        if self.strategy == "center" or max(over) <= 0:
            return centre
        axis = 0 if over[0] >= over[1] else 1  # cover overflows on one side (the other by rounding only)
        best: int | None = None
        if self.strategy == "faces":
            best = self._faces(image, box, axis)
            if best is None:
                self.used = "attention"
        if best is None:
            best = _best_window(image, box[axis], axis, "entropy" if self.strategy == "entropy" else "attention")
        return (best, centre[1]) if axis == 0 else (centre[0], best)

    def _faces(self, image: Image.Image, box: tuple[int, int], axis: int) -> int | None:
        if self.find_faces is None:
            return None
        sample = io.BytesIO()
        image.convert("RGB").save(sample, "JPEG", quality=80)
        try:
            faces = self.find_faces(sample.getvalue())
        except Exception:  # a detector that fails must cost the viewer nothing but the faces
            faces = None
        faces = [f for f in faces or () if len(f) == 4 and f[2] > 0 and f[3] > 0]
        if not faces:
            return None
        length = image.size[axis]
        low = min(f[axis] for f in faces) * length
        high = max(f[axis] + f[axis + 2] for f in faces) * length
        window = box[axis]
        if high - low > window:  # every face does not fit: centre on the largest one
            largest = max(faces, key=lambda f: f[2] * f[3])
            low, high = largest[axis] * length, (largest[axis] + largest[axis + 2]) * length
        return _clamp(round((low + high) / 2 - window / 2), length - window)


CROP_STRATEGIES = ("center", "entropy", "attention", "faces")


def _clamp(value: int, highest: int) -> int:
    return max(0, min(value, highest))


# Skin in YCbCr (Chai and Ngan's ranges), whatever the complexion; the lookup tables are built once.
SKIN_CB = (77, 127)
SKIN_CR = (133, 173)
_SKIN_CB_LUT = [255 if SKIN_CB[0] <= v <= SKIN_CB[1] else 0 for v in range(256)]
_SKIN_CR_LUT = [255 if SKIN_CR[0] <= v <= SKIN_CR[1] else 0 for v in range(256)]
_HALF = [v // 2 for v in range(256)]
_QUARTER = [v // 4 for v in range(256)]


def _saliency(image: Image.Image) -> Image.Image:
    """What draws the eye, 0-255 per pixel: edges (half), saturation and skin tones (a quarter each)."""
    rgb = image.convert("RGB")
    edges = rgb.convert("L").filter(ImageFilter.FIND_EDGES)
    saturation = rgb.convert("HSV").getchannel("S")
    _, cb, cr = rgb.convert("YCbCr").split()
    skin = ImageChops.multiply(cb.point(_SKIN_CB_LUT), cr.point(_SKIN_CR_LUT))
    quarters = ImageChops.add(saturation.point(_QUARTER), skin.point(_QUARTER))
    return ImageChops.add(edges.point(_HALF), quarters)


def _best_window(image: Image.Image, window: int, axis: int, strategy: str) -> int:
    """The offset along `axis` of the `window`-long cut that scores highest; ties go to the centre."""
    length = image.size[axis]
    factor = min(1.0, _LOOK_PIXELS / length)
    small = image.resize(
        (max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.Resampling.BOX
    )
    span = small.size[axis]
    cut = max(1, min(span, round(window * factor)))
    positions = range(span - cut + 1)
    if strategy == "entropy":
        grey = small.convert("L")
        step = max(1, (span - cut) // 32)
        positions = range(0, span - cut + 1, step)

        def score(at: int) -> float:
            region = (at, 0, at + cut, grey.height) if axis == 0 else (0, at, grey.width, at + cut)
            return float(grey.crop(region).entropy())

    else:
        profile = _saliency(small).resize((span, 1) if axis == 0 else (1, span), Image.Resampling.BOX)
        weights = list(profile.tobytes())  # one 8-bit L value per position
        sums = [0.0]
        for weight in weights:
            sums.append(sums[-1] + weight)

        def score(at: int) -> float:
            return sums[at + cut] - sums[at]

    middle = (span - cut) / 2
    best = max(positions, key=lambda at: (round(score(at), 6), -abs(at - middle)))
    return _clamp(round(best / factor), length - window)


# -- the watermark ------------------------------------------------------------------------------


class Watermark:
    """An image composited onto every output at least `min_width` wide (stack option `watermark`)."""

    def __init__(
        self,
        image: Image.Image,
        *,
        min_width: int = 640,
        position: str = "bottom-right",
        margin: int = 16,
        opacity: float = 0.5,
        scale: float = 0.2,
    ):
        if position not in POSITIONS:
            raise InvalidTransform("one of " + ", ".join(POSITIONS), position, parameter="position")
        self.image = image
        self.min_width, self.position, self.margin = min_width, position, margin
        self.opacity, self.scale = opacity, scale

    @classmethod
    def load(cls, data: bytes, settings: Settings) -> Watermark:
        """The stack's watermark from its original's bytes (sRGB, upright, RGBA); an `ImageError` if unusable."""
        image, _ = _open(data, Limits.of(settings))
        with _refusals(image):
            icc = image.info.get("icc_profile") or None
            orientation = _orientation(image)
            pixels = upright(_srgb(_workable(image), icc), orientation).convert("RGBA")
            return cls(
                pixels,
                min_width=settings.watermark_min_width,
                position=settings.watermark_position,
                margin=settings.watermark_margin,
                opacity=settings.watermark_opacity,
                scale=settings.watermark_scale,
            )
        raise AssertionError("unreachable")

    def applies(self, width: int) -> bool:
        return width >= self.min_width

    def onto(self, image: Image.Image) -> Image.Image:
        """`image` (RGB or RGBA) with the watermark composited, if it is wide enough for one."""
        if not self.applies(image.width):
            return image
        room = (image.width - 2 * self.margin, image.height - 2 * self.margin)
        width = min(round(image.width * self.scale), room[0])
        height = round(self.image.height * width / self.image.width)
        if height > room[1]:
            height, width = room[1], round(self.image.width * room[1] / self.image.height)
        if width < 1 or height < 1:
            return image
        mark = self.image.resize((width, height), Image.Resampling.LANCZOS)
        mark.putalpha(mark.getchannel("A").point([round(a * self.opacity) for a in range(256)]))
        left = {"left": self.margin, "right": image.width - self.margin - width}
        top = {"top": self.margin, "bottom": image.height - self.margin - height}
        if self.position == "center":
            at = ((image.width - width) // 2, (image.height - height) // 2)
        else:
            vertical, horizontal = self.position.split("-")
            at = (left[horizontal], top[vertical])
        if image.mode == "RGBA":
            layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
            layer.paste(mark, at)
            return Image.alpha_composite(image, layer)
        marked = image.copy()
        marked.paste(mark.convert("RGB"), at, mark.getchannel("A"))
        return marked


def _stored_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """An upright size as the pixels are stored (EXIF 5-8 swap the sides)."""
    return size[::-1] if orientation in (5, 6, 7, 8) else size


def _decode(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    """The pixels to scale to `target` (stored orientation): JPEGs DCT-scaled on decode, in a workable mode."""
    if image.format == "JPEG" and target != image.size:
        image.draft(image.mode if image.mode in ("RGB", "L", "CMYK") else None, target)
    return _workable(image)


def _scale(image: Image.Image, target: tuple[int, int]) -> Image.Image:
    return image if image.size == target else image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _finish(
    image: Image.Image,
    icc: bytes | None,
    orientation: int,
    geometry: Plan,
    fmt: str,
    crop: Crop | None = None,
    watermark: Watermark | None = None,
) -> Image.Image:
    """Scaled pixels -> the output frame: sRGB, upright, cropped (where `crop` says) or padded
    to the box, watermarked, flat for JPEG."""
    image = _srgb(image, icc)  # after the resize: fewer pixels to convert
    transpose = _TRANSPOSE.get(orientation)
    if transpose is not None:
        image = image.transpose(transpose)
    box_w, box_h = geometry.box
    if geometry.pad:
        canvas = Image.new("RGBA", geometry.box, (255, 255, 255, 0))
        canvas.paste(image, ((box_w - image.width) // 2, (box_h - image.height) // 2))
        image = canvas
    elif image.size != geometry.box:
        left, top = crop.origin(image, geometry.box) if crop is not None else _centre(image, geometry.box)
        image = image.crop((left, top, left + box_w, top + box_h))
    if watermark is not None:
        image = watermark.onto(image)
    if fmt == "jpeg" and image.mode == "RGBA":
        flat = Image.new("RGB", image.size, (255, 255, 255))
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    return image


def _centre(image: Image.Image, box: tuple[int, int]) -> tuple[int, int]:
    return (image.width - box[0]) // 2, (image.height - box[1]) // 2


def _render_frame(
    image: Image.Image, orientation: int, geometry: Plan, fmt: str, crop: Crop | None, watermark: Watermark | None
) -> Image.Image:
    icc = image.info.get("icc_profile") or None
    target = _stored_size(geometry.scaled, orientation)
    return _finish(_scale(_decode(image, target), target), icc, orientation, geometry, fmt, crop, watermark)


def _encode(frames: list[Image.Image], durations: list[int], loop: int, quality: int, fmt: str) -> bytes:
    first = frames[0]
    first.info = {}  # nothing from the source rides along (EXIF, XMP, comments, ICC)
    out = io.BytesIO()
    options: dict[str, object] = {"quality": quality}
    if fmt == "jpeg":
        options.update(optimize=True)
        first.save(out, "JPEG", **options)
    elif fmt == "png":
        first.save(out, "PNG", compress_level=6)
    elif fmt == "webp":
        options.update(method=WEBP_METHOD)
        if len(frames) > 1:
            options.update(save_all=True, append_images=frames[1:], duration=durations, loop=loop)
        first.save(out, "WEBP", **options)
    elif fmt == "jxl":
        _jxl()
        # exif=b"": the plugin would otherwise write the frame's own EXIF (getexif) into the file.
        first.save(out, "JXL", quality=quality, effort=JXL_EFFORT, num_threads=1, exif=b"", lossless_jpeg=False)
    else:
        options.update(speed=AVIF_SPEED, max_threads=1)
        if len(frames) > 1:
            options.update(
                save_all=True, append_images=frames[1:], duration=durations, loop=loop, speed=AVIF_ANIMATION_SPEED
            )
        first.save(out, "AVIF", **options)
    return out.getvalue()


# -- q=auto: the smallest encode that looks as good as the target ------------------------------

# What each target means in each format. A target is a look: today's WebP at q80 (`high`), q60
# (`good`), q40 (`low`), as libjxl's butteraugli sees it (the 90th percentile of its max distance
# over the calibration photos at 320 px). Per format, `score` is the SSIMULACRA 2 at which that
# format reaches that look (the formats' artefacts differ: AVIF blurs, JPEG blocks, so the same
# look is not quite the same score); `start` the quality the search starts from, `slope` the score
# points per quality step there; `ceiling` the most the search spends: WebP's is today's quality
# for the target, so auto is never larger than today's WebP at it; the others' the quality at which
# the format reaches the look on every calibration photo. Made by `python -m bench.quality_calibrate`
# and pasted as printed; a format without a row (e.g. a new one) starts from WebP's.


class Calibrated(NamedTuple):
    score: float
    start: int
    slope: float
    ceiling: int


AUTO_TABLE: dict[str, dict[str, Calibrated]] = {
    "avif": {
        "high": Calibrated(80.0, 69, 0.48, 74),
        "good": Calibrated(66.5, 49, 1.07, 58),
        "low": Calibrated(61.0, 44, 1.22, 46),
    },
    "webp": {
        "high": Calibrated(78.5, 80, 0.84, 80),
        "good": Calibrated(68.5, 60, 0.35, 60),
        "low": Calibrated(62.0, 40, 0.55, 40),
    },
    "jpeg": {
        "high": Calibrated(80.0, 82, 0.61, 90),
        "good": Calibrated(70.5, 63, 0.48, 80),
        "low": Calibrated(58.0, 39, 0.66, 40),
    },
    "jxl": {
        "high": Calibrated(80.0, 80, 0.85, 80),
        "good": Calibrated(68.0, 66, 0.69, 70),
        "low": Calibrated(62.5, 57, 0.66, 60),
    },
}
# At most this many encodes per miss: the prediction and one step along the calibrated slope. A
# third (a secant between the two) took AVIF's misses from 1.85 to 2.23 encodes on average on
# bench/quality_auto.py's corpus for 1.3% of its bytes and no photo's look: an AVIF encode costs
# about what a whole miss at a fixed quality does, so the third put AVIF past twice that.
AUTO_ENCODES = 2
# A probe that meets the target by less than this many quality steps (`slope`) is taken as it is:
# one encode and one score for most misses, at the price of a few per cent of bytes.
AUTO_CLOSE_STEPS = 2
AUTO_FORMATS = ("avif", "webp", "jpeg", "jxl")
_LOWEST = 5


class Choice(NamedTuple):
    """What `choose` settled on: the bytes, their quality and score, and how many encodes it took."""

    body: bytes
    quality: int
    score: float
    encodes: int


def calibrated(fmt: str, target: str) -> Calibrated:
    """The AUTO_TABLE entry of a format (WebP's for a format without a row) and target."""
    return AUTO_TABLE.get(fmt, AUTO_TABLE["webp"])[target]


def auto_quality(fmt: str, target: str) -> int:
    """The calibrated quality for a target and format: the search's start, and an animation's quality."""
    entry = calibrated(fmt, target)
    return min(entry.start, entry.ceiling)


def choose(image: Image.Image, fmt: str, target: str) -> Choice:
    """The smallest encode of `image` (a finished still) in `fmt` whose SSIMULACRA 2 score meets
    the target's score for that format, in at most AUTO_ENCODES encodes and never above the
    format's ceiling.

    Start at the calibrated quality. A probe that meets the score by less than AUTO_CLOSE_STEPS
    quality steps ends the search, and so does one below it at the ceiling. Otherwise the second probe is a
    step along the calibrated slope to where the score should be met (at least one quality step,
    within the ceiling). The smallest encode that meets the score wins; when none does (an image
    far from the calibration set, or the ceiling), the best-looking one.
    """
    import numpy as np

    from edge import perceptual  # numpy: paid only by q_auto misses

    entry = calibrated(fmt, target)
    goal, ceiling = entry.score, entry.ceiling
    mode = "RGBA" if image.mode == "RGBA" else "RGB"
    reference = perceptual.Reference(np.asarray(image.convert(mode)))
    tried: dict[int, tuple[bytes, float]] = {}

    def probe(quality: int) -> float:
        if quality not in tried:
            body = _encode([image], [], 0, quality, fmt)
            decoded = Image.open(io.BytesIO(body)).convert(mode)
            tried[quality] = (body, reference.score(np.asarray(decoded)))
        return tried[quality][1]

    def clamp(quality: int) -> int:
        return max(_LOWEST, min(ceiling, quality))

    def settled(quality: int) -> bool:
        score = tried[quality][1]
        return goal <= score < goal + AUTO_CLOSE_STEPS * entry.slope or (score < goal and quality >= ceiling)

    first = auto_quality(fmt, target)
    score = probe(first)
    if not settled(first):
        # Where the slope says the score is met, rounded up (to the side that meets it): at least
        # one quality step, towards the target (a score above it means smaller can do).
        step = math.ceil((goal - score) / entry.slope)
        probe(clamp(first + (step if score < goal else min(-1, step))))
    passing = [(len(body), quality) for quality, (body, value) in tried.items() if value >= goal]
    quality = min(passing)[1] if passing else max(tried, key=lambda q: tried[q][1])
    body, value = tried[quality]
    return Choice(body, quality, value, len(tried))


def _encode_auto(
    frames: list[Image.Image], durations: list[int], loop: int, quality: int, fmt: str, target: str
) -> bytes:
    """`_encode`, with AUTO resolved: a still in a lossy format is searched, anything else takes the
    target's calibrated quality (an animation: every probe would encode every frame)."""
    if quality != AUTO:
        return _encode(frames, durations, loop, quality, fmt)
    if len(frames) == 1 and fmt in AUTO_FORMATS:
        return choose(frames[0], fmt, target).body
    return _encode(frames, durations, loop, auto_quality(fmt, target), fmt)


def _play_count(image: Image.Image) -> int:
    """The output's loop count (0 = forever; WebP and AVIF count plays).

    A GIF's NETSCAPE block counts repeats after the first play, and a GIF without one
    plays once.
    """
    loop = int(image.info.get("loop", 0 if image.format != "GIF" else -1))
    if image.format == "GIF":
        return 1 if loop < 0 else loop + 1 if loop > 0 else 0
    return loop


def _check_side(geometry: Plan, fmt: str) -> None:
    if max(geometry.box) > MAX_SIDE[fmt]:
        raise UnencodableImage(
            f"a result of at most {MAX_SIDE[fmt]} pixels per side for {fmt}", f"{geometry.box[0]}x{geometry.box[1]}"
        )


# What ends an animation early: a later frame that does not decode (a truncated upload).
_BROKEN_FRAME = (EOFError, OSError, SyntaxError, ValueError, IndexError, struct.error)


def _each_frame(image: Image.Image, count: int) -> Iterator[Image.Image]:
    """The first `count` frames (the number `_open` checked), each loaded, as far as they decode.

    The first frame must decode (it is all a still output or the catalogue's placeholder uses):
    its failure is the original's refusal. A later frame that does not decode ends the animation
    there, as browsers play a truncated GIF: so whether an original is refused never depends on
    the format asked for, and resize, the sync job and the catalogue give it one verdict.
    """
    for index in range(count):
        if index:
            try:
                image.seek(index)
                image.load()
            except _BROKEN_FRAME:
                return
        yield image.copy()


@contextlib.contextmanager
def _refusals(image: Image.Image) -> Iterator[None]:
    """Whatever goes wrong inside becomes an ImageError with its status, never anything else."""
    try:
        yield
    except ImageError:
        raise
    except MemoryError:
        raise TooManyPixels("an image that fits in memory", f"{image.width}x{image.height}") from None
    except Exception as error:  # truncated, corrupt, or lying about itself
        raise UndecodableImage("a decodable image", _said(error)) from None


def transform(
    data: bytes,
    *,
    width: int | None,
    height: int | None,
    fit: str,
    quality: int,
    fmt: str,
    limits: Limits | None = None,
    crop: Crop | None = None,
    watermark: Watermark | None = None,
    target: str = "good",
) -> tuple[bytes, str]:
    """Render one variant of an image: returns (image bytes, content type).

    `crop` decides where `fit=cover` cuts (the centre without one); `watermark` is
    composited when the output is at least its minimum width; `target` is what `quality=AUTO`
    aims at (one of edge.settings.QUALITY_TARGETS).
    """
    limits = limits or Limits()
    _check_request(width, height, fit, quality, fmt)
    image, count = _open(data, limits)
    with _refusals(image):
        orientation = _orientation(image)
        geometry = plan(_stored_size(image.size, orientation), width, height, fit)
        _check_side(geometry, fmt)
        if fmt in ANIMATED_FORMATS and count > 1:
            frames, durations = [], []
            for frame in _each_frame(image, count):
                durations.append(int(frame.info.get("duration", 100)) or 100)
                frames.append(_render_frame(frame, orientation, geometry, fmt, crop, watermark))
            loop = _play_count(image)
        else:
            frames, durations, loop = [_render_frame(image, orientation, geometry, fmt, crop, watermark)], [], 0
        return _encode_auto(frames, durations, loop, quality, fmt, target), CONTENT_TYPES[fmt]
    raise AssertionError("unreachable")  # _refusals re-raises every failure


class Rendition(NamedTuple):
    """One variant of a set: its width and format, the encoded bytes and their content type."""

    width: int
    fmt: str
    body: bytes
    content_type: str


def render_set(
    data: bytes,
    *,
    widths: Sequence[int],
    formats: Sequence[str],
    quality: int,
    limits: Limits | None = None,
    watermark: Watermark | None = None,
    target: str = "good",
) -> Iterator[Rendition]:
    """Every width x format of one image (width only, no crop), from one decode: the sync job's set.

    The same steps as `transform`, run once where they can be: the image is opened,
    checked and decoded once (DCT-scaled to the largest width), then scaled to each
    width, largest first, each from the previous scaled pixels (a Lanczos step from a
    larger Lanczos result; `tests/test_imaging.py` holds the SSIM to `transform`'s within
    0.002), and encoded in each format. Widths that come out the same size (an image
    narrower than several of them) are rendered once. Renditions are yielded as they are
    encoded, so the caller can store one while the next renders; a refusal (an
    `ImageError`) comes before the first one, or stops the set.
    """
    limits = limits or Limits()
    for fmt in formats:
        _check_request(max(widths), None, "cover", quality, fmt)
    image, count = _open(data, limits)
    with _refusals(image):
        orientation = _orientation(image)
        upright = _stored_size(image.size, orientation)
        plans = {width: plan(upright, width, None, "cover") for width in widths}
        for geometry in plans.values():
            for fmt in formats:
                _check_side(geometry, fmt)
        animated = any(fmt in ANIMATED_FORMATS for fmt in formats) and count > 1
        icc = image.info.get("icc_profile") or None
        largest = _stored_size(max(p.scaled for p in plans.values()), orientation)
        if animated:
            stills = list(_each_frame(image, count))
            durations = [int(frame.info.get("duration", 100)) or 100 for frame in stills]
            frames, loop = [_decode(frame, largest) for frame in stills], _play_count(image)
        else:
            frames, durations, loop = [_decode(image, largest)], [], 0
        by_size: dict[tuple[int, int], list[int]] = {}
        for width in sorted(widths, reverse=True):
            by_size.setdefault(plans[width].scaled, []).append(width)
        for size, same in by_size.items():  # largest first
            stored = _stored_size(size, orientation)
            frames = [_scale(frame, stored) for frame in frames]
            for fmt in formats:
                moving = frames if fmt in ANIMATED_FORMATS else frames[:1]
                finished = [_finish(frame, icc, orientation, plans[same[0]], fmt, None, watermark) for frame in moving]
                body = _encode_auto(finished, durations if len(moving) > 1 else [], loop, quality, fmt, target)
                for width in same:
                    yield Rendition(width, fmt, body, CONTENT_TYPES[fmt])

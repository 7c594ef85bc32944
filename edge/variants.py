"""The variant grammar: the one owner of the canonical variant path.

    /<key>/w_<W>[_h_<H>]_q_<Q>[_fit_<F>|_crop_<C>].<fmt>

`<key>` is the original's key below `originals/`, percent-encoded per segment the
way JavaScript's encodeURIComponent does it, so the viewer function and this module
produce byte-identical paths. The canonical path is the only cache key and the only
storage key: the primary stores it under `variants/`, the fallback bucket holds the
standard set under the path itself.

Canonical means snapped: W and H in the allowed widths, Q in the allowed qualities,
`fit` written only with a height and only when it is not the default (cover), and
PNG (lossless) always at the default quality. `q_auto` (`q=auto`, quality `AUTO` in a
`Variant`) is one more quality: the renderer picks, per variant, the smallest encode that
looks as good as the stack's `qualityTarget` says (edge/imaging.py). Everything else is an error value
(`VariantError`) naming the parameter, what was expected and what came.

Fits, for a box W x H (never upscaling; when the box is larger than the image it is
shrunk, keeping its aspect ratio, until it fits):
    cover    fill the box exactly, cropping the overflow around the centre (default)
    contain  fit inside the box and pad to exactly W x H (transparent, or white in JPEG)
    inside   fit inside the box, no padding: the output is at most W x H
    fill     stretch to exactly W x H, ignoring the aspect ratio
Without H only the width bounds the output, so `fit` has no meaning and is dropped.

Crops, for `fit=cover` with a height (written only when not the default, center):
    center     the middle of the overflow
    entropy    the window with the most detail (grey-level entropy)
    attention  the window that draws the eye (edges, saturation, skin tones)
    faces      the window around the faces Amazon Rekognition finds (else attention)

Named presets (`preset=thumb`) fix width, height, quality, fit and crop; `dpr=1..4`
multiplies the box before snapping; with client hints on, `Sec-CH-DPR` stands in for a
missing `dpr` and `Sec-CH-Width` / `Sec-CH-Viewport-Width` for a missing width. None of
them reaches the path: the snapped box does, so they add no cache keys of their own.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left

from edge.problems import Problem
from edge.settings import AUTO, FITS, ORIGINAL_PREFIX, SUBSTITUTES, VARIANT_PREFIX, Settings

DEFAULT_FIT = "cover"
DEFAULT_CROP = "center"

# The longest name stored below a key; a key must leave room for it under S3's 1024-byte key
# limit: a variant under `variants/`, a refusal's marker under `variants/` (edge/resize.py), and the
# sync job's set marker in the fallback (`_set.<etag>.<watermark fingerprint>`; an ETag is 32 hex
# digits, and `-<parts>` for a multipart upload of up to 10,000 parts).
_LONGEST_SPEC = "/w_99999_h_99999_q_auto_crop_attention.jpeg"
_LONGEST_ETAG = "0" * 32 + "-10000"
_LONGEST_NAMES = (
    VARIANT_PREFIX + _LONGEST_SPEC,
    VARIANT_PREFIX + "/_refused." + _LONGEST_ETAG,
    "/_set." + _LONGEST_ETAG + "." + "0" * 12,
    "/_failed." + _LONGEST_ETAG,
)
MAX_KEY_BYTES = 1024 - max(len(name) for name in _LONGEST_NAMES)

SPEC = re.compile(
    r"w_([1-9][0-9]{0,4})(?:_h_([1-9][0-9]{0,4}))?_q_([1-9][0-9]{0,2}|auto)"
    r"(?:_fit_(cover|contain|inside|fill))?(?:_crop_(center|entropy|attention|faces))?\.(avif|webp|jpeg|png|jxl)"
)
_DPR = re.compile(r"[1-4](?:\.[0-9]{1,3})?")
_HINT_DPR = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,6})?")
_HINT_WIDTH = re.compile(r"[0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_INTEGER = re.compile(r"[0-9]{1,9}")
_TOO_LONG = re.compile(r"0*[1-9][0-9]{9,}")  # a number, but not one this service takes: said so
_ZERO_Q = re.compile(r"q=0(?:\.0{0,3})?")
_ALIASES = {
    "w": "width",
    "width": "width",
    "h": "height",
    "height": "height",
    "q": "quality",
    "quality": "quality",
    "fm": "format",
    "format": "format",
    "fit": "fit",
    "crop": "crop",
    "dpr": "dpr",
    "preset": "preset",
    "hints": "hints",
}
# What a signed URL's signature covers (edge/signing.py): every parameter above, and the
# signature's own expiry and key id.
_SIGNED = {**_ALIASES, "expires": "expires", "kid": "kid"}


def signed_names() -> dict[str, str]:
    """Lower-case parameter name -> the long name it is signed under."""
    return _SIGNED


QUALITY_EXPECTED = "integer between 1 and 100 or auto"
QUALITY_NUMBER = "integer between 1 and 100 (auto needs qualityTarget)"  # a stack serves q=auto only with one


class VariantError(Problem):
    """A path or query the grammar refuses (always a 400)."""


class Variant:
    """One rendition of one original (immutable; a plain class, as dataclasses cost a
    cold start ~10 ms of imports)."""

    __slots__ = ("crop", "fit", "fmt", "height", "key", "quality", "width")
    _FIELDS = ("key", "width", "height", "quality", "fmt", "fit", "crop")
    key: str
    width: int
    height: int | None
    quality: int
    fmt: str
    fit: str
    crop: str

    def __init__(
        self,
        key: str,
        width: int,
        height: int | None,
        quality: int,
        fmt: str,
        fit: str = DEFAULT_FIT,
        crop: str = DEFAULT_CROP,
    ) -> None:
        for name, value in zip(self._FIELDS, (key, width, height, quality, fmt, fit, crop), strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Variant is immutable: {name}")

    def _values(self) -> tuple[str, int, int | None, int, str, str, str]:
        return (self.key, self.width, self.height, self.quality, self.fmt, self.fit, self.crop)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Variant) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Variant(" + ", ".join(f"{n}={v!r}" for n, v in zip(self._FIELDS, self._values(), strict=True)) + ")"

    @property
    def spec(self) -> str:
        height = f"_h_{self.height}" if self.height is not None else ""
        fit = f"_fit_{self.fit}" if self.height is not None and self.fit != DEFAULT_FIT else ""
        cropped = self.height is not None and self.fit == DEFAULT_FIT and self.crop != DEFAULT_CROP
        crop = f"_crop_{self.crop}" if cropped else ""
        return f"w_{self.width}{height}_q_{quality_name(self.quality)}{fit}{crop}.{self.fmt}"

    @property
    def object_path(self) -> str:
        """The decoded `<key>/<spec>`: the fallback bucket's key, below `variants/` in the primary."""
        return f"{self.key}/{self.spec}"

    @property
    def primary_key(self) -> str:
        return VARIANT_PREFIX + self.object_path

    @property
    def original_key(self) -> str:
        return ORIGINAL_PREFIX + self.key


# -- keys and percent-encoding -------------------------------------------------


# encodeURIComponent leaves these alone and escapes every other UTF-8 byte (and "/",
# which encode_key puts back between segments). `*` is escaped too: a CloudFront invalidation
# path may hold `*` only at its end ("Specifying the files to invalidate"), and `/<key>/*`
# must name one original whatever its key.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~'()")


def encode_key(key: str) -> str:
    """Percent-encode each segment like encodeURIComponent, and `*` as well (normalize.js's encodeKey)."""
    return "/".join(
        "".join(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in segment.encode("utf-8"))
        for segment in key.split("/")
    )


def decode(text: str, parameter: str) -> str:
    """Strict percent-decoding: a stray `%` or bytes that are not UTF-8 are refused."""
    if _BAD_ESCAPE.search(text):
        raise VariantError(parameter, "valid percent-encoding", text)
    if "%" not in text:
        return text
    pieces = text.split("%")
    try:
        raw = bytearray(pieces[0].encode("utf-8"))
        for piece in pieces[1:]:
            raw.append(int(piece[:2], 16))
            raw += piece[2:].encode("utf-8")
        return raw.decode("utf-8")
    except UnicodeError:  # bytes that are not UTF-8, or a lone surrogate in the text itself
        raise VariantError(parameter, "percent-encoded UTF-8", text) from None


def validate_key(key: str) -> str:
    """A key we are willing to read an original from and store variants under."""
    if not key:
        raise VariantError("key", "a non-empty image key", key)
    if _CONTROL.search(key):
        raise VariantError("key", "a key without control characters", key)
    segments = key.split("/")
    if any(segment == "" for segment in segments):
        raise VariantError("key", "a key without empty segments", key)
    if any(segment in (".", "..") for segment in segments):
        raise VariantError("key", "a key without '.' or '..' segments", key)
    if len(segments) > 1 and SPEC.fullmatch(segments[-1]):
        # Its URL would read as a variant of the folder: no request could ever reach it.
        raise VariantError("key", "a key whose last segment is not a variant name", key)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise VariantError("key", "a key in UTF-8", key) from None
    if size > MAX_KEY_BYTES:
        raise VariantError("key", f"a key of at most {MAX_KEY_BYTES} UTF-8 bytes", key)
    return key


# -- parse and format ----------------------------------------------------------


def parse(uri: str) -> Variant:
    """Read a variant path (syntax only: values are not checked against the settings).

    The path is decoded before it is split, as the viewer function routes it: `%2F` and `%2E`
    cannot make one path (what a signature covers) name another variant or original."""
    if not uri.startswith("/"):
        raise VariantError("path", "a path starting with '/'", uri)
    head, _, last = decode(uri, "key").rpartition("/")
    match = SPEC.fullmatch(last)
    if not match or not head:
        raise VariantError("path", "/<key>/w_<W>[_h_<H>]_q_<Q>[_fit_<F>|_crop_<C>].<avif|webp|jpeg|png|jxl>", uri)
    key = validate_key(head[1:])
    width, height, quality, fit, crop, fmt = match.groups()
    return Variant(
        key=key,
        width=int(width),
        height=int(height) if height else None,
        quality=AUTO if quality == "auto" else int(quality),
        fmt=fmt,
        fit=fit or DEFAULT_FIT,
        crop=crop or DEFAULT_CROP,
    )


def format(variant: Variant) -> str:  # noqa: A001 - the grammar's inverse of parse
    """The percent-encoded canonical URI of a variant."""
    return f"/{encode_key(variant.key)}/{variant.spec}"


# -- snapping ------------------------------------------------------------------


def snap_width(width: int, widths: tuple[int, ...]) -> int:
    """Up to the nearest allowed width; past the largest, the largest."""
    index = bisect_left(widths, width)
    return widths[min(index, len(widths) - 1)]


def quality_name(quality: int) -> str:
    """How a quality is written in a path: its number, or `auto`."""
    return "auto" if quality == AUTO else str(quality)


def snap_quality(quality: int, qualities: tuple[int, ...]) -> int:
    """To the nearest allowed quality; a tie goes to the higher one. `auto` stays auto."""
    if quality == AUTO:
        return AUTO
    return min(qualities, key=lambda allowed: (abs(allowed - quality), -allowed))


def snap(variant: Variant, settings: Settings) -> Variant:
    """The canonical form of a variant (idempotent, monotonic in width and quality)."""
    height = snap_width(variant.height, settings.widths) if variant.height is not None else None
    quality = settings.default_quality if variant.fmt == "png" else snap_quality(variant.quality, settings.qualities)
    fit = variant.fit if height is not None else DEFAULT_FIT
    return Variant(
        variant.key,
        snap_width(variant.width, settings.widths),
        height,
        quality,
        variant.fmt,
        fit,
        variant.crop if height is not None and fit == DEFAULT_FIT else DEFAULT_CROP,
    )


def _allowed(variant: Variant, settings: Settings) -> Variant:
    if variant.quality == AUTO and not settings.quality_auto:
        raise VariantError("quality", QUALITY_NUMBER, "auto")
    if variant.fmt not in settings.formats:
        raise VariantError("format", "one of " + ", ".join(settings.formats), variant.fmt)
    if variant.crop not in settings.crops:
        raise VariantError("crop", "one of " + ", ".join(settings.crops), variant.crop)
    return variant


def canonical(uri: str, settings: Settings) -> Variant:
    """The variant of a URI that must already be canonical (what origin-request gets)."""
    variant = _allowed(parse(uri), settings)
    if format(snap(variant, settings)) != uri:
        raise VariantError("path", "a canonical variant path", uri)
    return variant


# -- the standard set ------------------------------------------------------------


def is_standard(variant: Variant, settings: Settings) -> bool:
    return (
        variant.height is None
        and variant.quality == settings.default_quality
        and variant.fmt in settings.standard_formats
        and variant.width in settings.widths
    )


def substitute_format(fmt: str, settings: Settings) -> str | None:
    """The standard format the fallback serves for `fmt`: one every client asking for `fmt` decodes."""
    for candidate in SUBSTITUTES[fmt]:
        if candidate in settings.standard_formats:
            return candidate
    return None


def nearest_standard(variant: Variant, settings: Settings) -> Variant | None:
    """The pre-built variant the fallback bucket serves in place of this one (None: nothing it may serve)."""
    fmt = substitute_format(variant.fmt, settings)
    if fmt is None:
        return None
    return Variant(
        key=variant.key,
        width=snap_width(variant.width, settings.widths),
        height=None,
        quality=settings.default_quality,
        fmt=fmt,
    )


def standard_set(key: str, settings: Settings) -> list[Variant]:
    """Every variant the fallback bucket must hold for one original."""
    return [
        Variant(key=key, width=width, height=None, quality=settings.default_quality, fmt=fmt)
        for fmt in settings.standard_formats
        for width in settings.widths
    ]


# -- the viewer normalization (mirrored by normalize.js) -------------------------


# What `auto` prefers, first to last, among the formats a stack serves and the client lists
# (JPEG for the rest). AVIF before JPEG XL for a client that lists both (Safari 17+, Chromium 156):
# at the same SSIMULACRA 2 score AVIF was 2-25% smaller on the calibration photos (README "JPEG XL"
# has the numbers), and it keeps animations, which our JPEG XL encoder does not. JPEG XL before
# WebP: at the same score about as small at 320 px and 10-20% smaller at 1280 px.
AUTO_ORDER = ("avif", "jxl", "webp")


def choose_format(accept: str | None, settings: Settings) -> str:
    """The first of AUTO_ORDER the stack serves and the Accept header lists (`q=0` means refused),
    else jpeg. jxl only when the Accept also lists the format the fallback serves in its place
    (`Settings.jxl_companion`): during an outage such a client gets a format it said it decodes."""
    acceptable = set()
    for item in (accept or "").split(","):
        media, *params = (part.strip(" \t").lower() for part in item.split(";"))
        if not any(_ZERO_Q.fullmatch(param) for param in params):
            acceptable.add(media)
    companion = settings.jxl_companion
    for fmt in AUTO_ORDER:
        if fmt in settings.formats and f"image/{fmt}" in acceptable:
            if fmt == "jxl" and companion and f"image/{companion}" not in acceptable:
                continue
            return fmt
    return "jpeg" if "jpeg" in settings.formats else settings.formats[0]


def _integer(parameter: str, value: str, expected: str, upper: int | None = None) -> int:
    if upper is None and _TOO_LONG.fullmatch(value):
        raise VariantError(parameter, f"a smaller {expected} (at most 9 digits)", value)
    if not _INTEGER.fullmatch(value) or int(value) == 0 or (upper is not None and int(value) > upper):
        raise VariantError(parameter, expected, value)
    return int(value)


def query_params(querystring: str, names: dict[str, str] = _ALIASES) -> dict[str, str]:
    """First value of each parameter `names` knows, any case, under its long name, decoded
    (normalize.js's `collect`): what the grammar reads and, with `signed_names()`, what is signed."""
    found: dict[str, str] = {}
    for pair in querystring.split("&") if querystring else []:
        name, _, value = pair.partition("=")
        canonical_name = names.get(name.lower())
        if canonical_name is not None and canonical_name not in found:
            found[canonical_name] = decode(value, canonical_name)
    return found


def _hint(hints: dict[str, str], name: str, pattern: re.Pattern[str]) -> float | None:
    """A client hint's value, or None when it is absent or malformed (hints are never a 400)."""
    value = hints.get(name, "").strip()
    return float(value) if pattern.fullmatch(value) and float(value) > 0 else None


def normalize(
    uri: str,
    querystring: str,
    accept: str | None,
    settings: Settings,
    hints: dict[str, str] | None = None,
    *,
    signed: bool = False,
) -> str:
    """Viewer request -> canonical URI (the Python twin of edge/normalize.js).

    A path that already ends in a variant spec is canonicalized as it stands (the
    302 that resize answers for big bodies points there); otherwise the query
    decides, and the Accept header picks the format when none is asked for. `hints`
    are the request's lower-cased headers, read for client hints when the stack has them on;
    on a `signed` URL only when the signer opted in with `hints=on` (a signed parameter), so
    that a signed URL without it is one variant per format whatever the headers say.
    """
    if not uri.startswith("/"):
        raise VariantError("path", "a path starting with '/'", uri)
    path = decode(uri, "key")
    head, _, last = path.rpartition("/")
    if head and SPEC.fullmatch(last):
        if settings.presets_only:
            raise VariantError("preset", "a preset (this service serves presets only)", last)
        return format(snap(_allowed(parse(uri), settings), settings))

    key = validate_key(path[1:])
    params = query_params(querystring)
    if "hints" in params and params["hints"] != "on":
        raise VariantError("hints", "on", params["hints"])
    use_hints = settings.client_hints and hints is not None and (not signed or params.get("hints") == "on")
    dpr = 1.0
    if "dpr" in params:
        if not _DPR.fullmatch(params["dpr"]) or float(params["dpr"]) > 4:
            raise VariantError("dpr", "a number from 1 to 4", params["dpr"])
        dpr = float(params["dpr"])
    elif use_hints:
        dpr = min(4.0, max(1.0, _hint(hints or {}, "sec-ch-dpr", _HINT_DPR) or 1.0))
        if signed:  # whole multiples of what was signed: at most 4 boxes per signed URL
            dpr = float(math.ceil(dpr))
    width: int | None = None
    height = None
    quality = settings.default_quality
    fit, crop = DEFAULT_FIT, DEFAULT_CROP
    preset = None
    if "preset" in params:
        preset = settings.preset(params["preset"])
        if preset is None:
            names = ", ".join(p[0] for p in settings.presets) or "none (this stack has no presets)"
            raise VariantError("preset", "one of " + names, params["preset"])
        for name in ("width", "height", "quality", "fit", "crop"):
            if name in params:
                raise VariantError(name, f"no {name} with preset={preset[0]}", params[name])
        _, width, height, quality, fit, crop = preset
        width = math.ceil(width * dpr)
    elif settings.presets_only:
        raise VariantError("preset", "one of " + ", ".join(p[0] for p in settings.presets), "")
    else:
        if "width" in params:
            width = math.ceil(_integer("width", params["width"], "positive integer") * dpr)
        elif use_hints and not (signed and "height" in params):  # a signed height fixes the box
            hinted = _hint(hints or {}, "sec-ch-width", _HINT_WIDTH)
            viewport = _hint(hints or {}, "sec-ch-viewport-width", _HINT_WIDTH)
            if hinted is not None:
                width = int(hinted)
            elif viewport is not None:
                width = math.ceil(viewport * dpr)
        if "height" in params:
            height = _integer("height", params["height"], "positive integer")
        if "quality" in params:
            value = params["quality"]
            if settings.quality_auto and value.lower() == "auto":
                quality = AUTO
            else:
                expected = QUALITY_EXPECTED if settings.quality_auto else QUALITY_NUMBER
                quality = _integer("quality", value, expected, 100)
    if height is not None:
        height = math.ceil(height * dpr)
    requested = params.get("format", "auto").lower()
    fmt = {"jpg": "jpeg"}.get(requested, requested)
    if fmt == "auto":
        fmt = choose_format(accept, settings)
    elif fmt not in settings.formats:
        raise VariantError("format", "one of auto, " + ", ".join(settings.formats), params["format"])
    if preset is None:
        fit = params.get("fit", DEFAULT_FIT).lower()
        if fit not in FITS:
            raise VariantError("fit", "one of " + ", ".join(FITS), params["fit"])
        crop = params.get("crop", DEFAULT_CROP).lower()
        if crop not in settings.crops:
            raise VariantError("crop", "one of " + ", ".join(settings.crops), params["crop"])
    variant = Variant(key, width or settings.widths[-1], height, quality, fmt, fit, crop)
    return format(snap(variant, settings))

"""The configuration every edge function runs with.

At deploy time the stack config is turned into one `Settings` and written as
`config.json` into each bundle (Lambda@Edge takes no environment variables) and
into the viewer function's config block. Locally the emulator and the tests build
the same object from the same stack config.
"""

from __future__ import annotations

import json
import os

# What the rewrite path imports is paid on every cold start: no typing, dataclasses or
# pathlib here (mypy still sees the annotations).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Every format a stack may serve, and the ones it serves unless its `formats` says otherwise. JPEG XL
# (`jxl`) is opt-in: listing it in `formats` is what turns it on (the resize bundle then carries
# its encoder, pillow-jxl-plugin; components/bundle.py).
FORMATS = ("avif", "webp", "jpeg", "png", "jxl")
DEFAULT_FORMATS = ("avif", "webp", "jpeg", "png")
# `q=auto` (path `q_auto`): the quality a `Variant` and `default_quality` hold for it. 0 is no
# number quality takes (1-100), and the viewer function's config writes it as it is.
AUTO = 0
# What `q_auto` aims at, by name (stack config `qualityTarget`): a SSIMULACRA 2 score, the same
# look in every format (edge/imaging.py has the calibrated table, bench/quality_auto.py made it).
QUALITY_TARGETS = ("high", "good", "low")
FITS = ("cover", "contain", "inside", "fill")
# Where `fit=cover` crops: the centre (default), the busiest window (entropy), what draws
# the eye (attention: edges, saturation, skin tones), or the faces Rekognition finds.
CROPS = ("center", "entropy", "attention", "faces")
# Where a watermark sits on a variant.
POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "jxl": "image/jxl",
}

# How long CloudFront keeps a variant: the cache policy's maximum TTL. Variants are
# invalidated when their original changes, so CloudFront may keep them long; browsers
# cannot be reached by an invalidation and get the stack's `browserCacheSeconds` instead.
CDN_CACHE_SECONDS = 31_536_000

# A client that decodes the first format decodes every one after it: what the fallback
# may serve in place of a variant it does not hold. Every browser that decodes AVIF
# decodes WebP (AVIF came to each engine after WebP), and JPEG is what the viewer
# function serves a client that names neither (`*/*`). PNG is asked for by name only;
# JPEG is its universal stand-in (alpha flattened onto white). Every client that decodes JPEG XL
# decodes WebP (Safari has had WebP since 14, JPEG XL since 17; Chromium and Firefox had WebP long
# before their JPEG XL builds), but not every one is known to decode AVIF: JPEG XL's chain skips it.
# The viewer function's `auto` also picks jxl only for an Accept that lists the format the fallback
# would serve in its place (`Settings.jxl_companion`), so an `auto` client never depends on that claim.
SUBSTITUTES = {
    "avif": ("avif", "webp", "jpeg"),
    "webp": ("webp", "jpeg"),
    "jpeg": ("jpeg",),
    "png": ("png", "jpeg"),
    "jxl": ("jxl", "webp", "jpeg"),
}

# Headers the edge adds: the variant a fallback substitute stands in for, and the
# request header that carries the asked-for variant from origin-request to origin-response.
SUBSTITUTE_HEADER = "X-Image-Cdn-Substitute"
# A variant whose bytes are its original's, metadata stripped (edge/passthrough.py: never larger
# than the source); its value is `original`.
SOURCE_HEADER = "X-Image-Cdn-Source"
# The key a default image stands in for (edge/resize.py).
MISSING_HEADER = "X-Image-Cdn-Missing"
# What a cross-origin page may read of an image response (CORS): the response headers policy's list
# (components/distribution.py) and resize's own answers say the same.
EXPOSED_HEADERS = ("Server-Timing", SUBSTITUTE_HEADER, SOURCE_HEADER, MISSING_HEADER)
REQUESTED_HEADER = "X-Image-Cdn-Requested"

# Lambda@Edge caps a generated origin response at 1 MB, headers included. We count
# the whole JSON the handler returns against 1,000,000 bytes: a little under the
# quota whichever way "MB" is read, and the emulator enforces the same number.
RESPONSE_LIMIT_BYTES = 1_000_000

VARIANT_PREFIX = "variants/"
ORIGINAL_PREFIX = "originals/"


class Settings:
    """What the variant grammar, the handlers and the sync job need to know (immutable)."""

    __slots__ = (
        "browser_cache_seconds",
        "client_hints",
        "cors_origins",
        "crops",
        "default_image",
        "default_quality",
        "error_cache_seconds",
        "faces_region",
        "fallback_bucket",
        "fallback_cache_seconds",
        "fallback_region",
        "formats",
        "max_frames",
        "max_input_bytes",
        "max_pixels",
        "originals_location",
        "originals_source",
        "presets",
        "presets_only",
        "primary_bucket",
        "primary_domain",
        "primary_kind",
        "primary_path",
        "primary_region",
        "primary_template",
        "qualities",
        "quality_target",
        "response_limit_bytes",
        "service_key",
        "service_source",
        "signing",
        "standard_formats",
        "watermark",
        "watermark_margin",
        "watermark_min_width",
        "watermark_opacity",
        "watermark_position",
        "watermark_scale",
        "widths",
    )

    def __init__(
        self,
        *,
        widths: tuple[int, ...] = (160, 320, 480, 640, 768, 1024, 1280, 1600, 1920, 2560),
        qualities: tuple[int, ...] = (40, 50, 60, 70, 80, 90),
        default_quality: int = 60,
        quality_target: str = "",
        formats: tuple[str, ...] = DEFAULT_FORMATS,
        standard_formats: tuple[str, ...] = ("webp", "jpeg"),
        primary_bucket: str = "image-cdn-local-origin",
        primary_region: str = "us-east-1",
        fallback_bucket: str = "image-cdn-local-fallback",
        fallback_region: str = "us-west-2",
        max_input_bytes: int = 50 * 1024 * 1024,
        max_pixels: int = 50_000_000,
        max_frames: int = 200,
        browser_cache_seconds: int = 86_400,
        fallback_cache_seconds: int = 60,
        error_cache_seconds: int = 5,
        cors_origins: tuple[str, ...] = ("*",),
        response_limit_bytes: int = RESPONSE_LIMIT_BYTES,
        default_image: str = "",
        presets: tuple[tuple[str, int, int | None, int, str, str], ...] = (),
        presets_only: bool = False,
        client_hints: bool = False,
        crops: tuple[str, ...] = ("center", "entropy", "attention"),
        signing: str = "off",
        watermark: str = "",
        watermark_min_width: int = 640,
        watermark_position: str = "bottom-right",
        watermark_margin: int = 16,
        watermark_opacity: float = 0.5,
        watermark_scale: float = 0.2,
        faces_region: str = "",
        primary_kind: str = "s3",
        primary_template: str = "",
        primary_domain: str = "",
        primary_path: str = "",
        service_key: str = "",
        service_source: str = "",
        originals_source: str = "s3",
        originals_location: str = "",
    ) -> None:
        values = dict(locals())
        del values["self"]
        values["presets"] = tuple(tuple(preset) for preset in presets)
        for name in self.__slots__:
            value = values[name]
            object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)

    # The declared types, for mypy and readers (slots hold the values).
    widths: tuple[int, ...]
    qualities: tuple[int, ...]
    default_quality: int
    """A number from `qualities`, or AUTO (stack config `defaultQuality: auto`)."""
    quality_target: str
    """What `q_auto` aims at: one of QUALITY_TARGETS, or "" (the stack serves no `q=auto`: its resize
    bundle then carries no numpy, edge/perceptual.py's metric)."""
    formats: tuple[str, ...]
    standard_formats: tuple[str, ...]
    primary_bucket: str
    primary_region: str
    fallback_bucket: str
    fallback_region: str
    max_input_bytes: int
    max_pixels: int
    max_frames: int
    browser_cache_seconds: int
    fallback_cache_seconds: int
    error_cache_seconds: int
    cors_origins: tuple[str, ...]
    response_limit_bytes: int
    default_image: str
    """The key (below originals/) rendered in place of a missing original; "" for none."""
    presets: tuple[tuple[str, int, int | None, int, str, str], ...]
    """Named transformations: (name, width, height or None, quality, fit, crop)."""
    presets_only: bool
    """Refuse every request that does not name a preset."""
    client_hints: bool
    """Honour Sec-CH-DPR, Sec-CH-Width and Sec-CH-Viewport-Width; send Accept-CH."""
    crops: tuple[str, ...]
    """The crop strategies `crop=` may name (`faces` calls Amazon Rekognition)."""
    signing: str
    """off | optional (check URLs that carry sig) | required (refuse unsigned URLs)."""
    watermark: str
    """The key (below originals/) composited onto variants at least `watermark_min_width` wide; "" for none."""
    watermark_min_width: int
    watermark_position: str
    watermark_margin: int
    """Pixels between the watermark and the variant's edges."""
    watermark_opacity: float
    watermark_scale: float
    """The watermark's width as a fraction of the variant's width."""
    faces_region: str
    """Where resize calls Amazon Rekognition for `crop=faces` ("" = the primary region)."""
    primary_kind: str
    """s3 (our bucket and renderer) or http (a third-party image service as the primary origin)."""
    primary_template: str
    """With http: imgix, cloudinary, thumbor, imgproxy, or a template with placeholders (edge/templates.py)."""
    primary_domain: str
    """With http: the service's host name (HTTPS only)."""
    primary_path: str
    """With http: a path before every service URL (a Cloudinary cloud name: `/demo`)."""
    service_key: str
    """With thumbor or imgproxy: the URL signing secret. Written from Secrets Manager at deploy into
    the bundles that build service URLs (rewrite, sync) only; empty everywhere else."""
    service_source: str
    """With imgproxy: where it reads originals (`s3://bucket/originals`, `https://...`)."""
    originals_source: str
    """What lists the originals for the sync job: s3 (`originals/` in the primary bucket), jsonl or sitemap."""
    originals_location: str
    """With jsonl or sitemap: `s3://bucket/key` or an https:// URL."""

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Settings are immutable: {name}")

    @property
    def variant_cache_control(self) -> str:
        """A variant: CloudFront keeps it long (invalidated on change), browsers for the stack's lifetime.

        Never `immutable`: the viewer URL (`/x.jpg?w=800`) stays the same when its original is replaced.
        """
        return f"public, max-age={self.browser_cache_seconds}, s-maxage={self.variant_cdn_seconds}"

    @property
    def variant_cdn_seconds(self) -> int:
        """How long CloudFront may keep a variant (or a refusal): a year. Replacing or deleting the
        original invalidates its paths (sync/job.py), so nothing stale outlives the change."""
        return CDN_CACHE_SECONDS

    @property
    def substitute_cache_control(self) -> str:
        """A fallback response that is not the asked-for variant: gone soon after the outage is."""
        seconds = self.fallback_cache_seconds
        return f"public, max-age={seconds}, s-maxage={seconds}"

    @property
    def cors_any(self) -> bool:
        """CORS for every origin: the edge answers it itself (no CORS section in the headers policy)."""
        return self.cors_origins == ("*",)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().values()))

    def __repr__(self) -> str:
        # Never the signing secret: a repr ends up in logs and test reports.
        shown = self.as_dict() | ({"service_key": "<secret>"} if self.service_key else {})
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def to_json(self) -> str:
        """Stable JSON (sorted keys) so identical settings give identical bundles."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    def with_key(self, key: str) -> Settings:
        """These settings with the third-party service's signing secret (for the bundles that use it)."""
        return Settings.from_dict(self.as_dict() | {"service_key": key})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        return cls(**{name: value for name, value in data.items() if name in cls.__slots__})

    def origin_of(self, request: dict[str, Any]) -> str | None:
        """ "primary", "fallback" or None for the S3 origin a CloudFront request targets."""
        origin = request.get("origin") or {}
        custom = origin.get("custom") or {}
        if self.primary_kind == "http" and custom:
            return "primary" if str(custom.get("domainName", "")) == self.primary_domain else None
        s3 = origin.get("s3") or {}
        domain = str(s3.get("domainName", ""))
        for name, bucket in (("primary", self.primary_bucket), ("fallback", self.fallback_bucket)):
            if domain.startswith(bucket + ".s3."):
                return name
        return None

    def preset(self, name: str) -> tuple[str, int, int | None, int, str, str] | None:
        for preset in self.presets:
            if preset[0] == name:
                return preset
        return None

    @property
    def accept_ch(self) -> str:
        """The client hints the viewer function reads (sent as Accept-CH when `client_hints` is on)."""
        return "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width"

    @property
    def vary(self) -> str:
        """What a response varies on: the Accept header, and the client hints the viewer function reads."""
        return "Accept, " + self.accept_ch if self.client_hints else "Accept"

    @property
    def quality_auto(self) -> bool:
        """Whether `q=auto` is served: the stack names a `qualityTarget` (or `defaultQuality: auto`)."""
        return bool(self.quality_target)

    @property
    def jxl_companion(self) -> str:
        """What the fallback serves for a jxl variant when it holds no jxl (webp or jpeg; "" when it
        holds jxl, or the stack serves none): `auto` picks jxl only for an Accept that lists it too
        (jpeg needs no listing: it is what every client gets)."""
        if "jxl" not in self.formats:
            return ""
        served = next((fmt for fmt in SUBSTITUTES["jxl"] if fmt in self.standard_formats), "")
        return "" if served in ("jxl", "jpeg") else served

    def viewer_config(self) -> dict[str, Any]:
        """The subset the viewer CloudFront Function inlines (it must stay tiny): optional
        features appear only when they are on."""
        config: dict[str, Any] = {
            "widths": list(self.widths),
            "qualities": list(self.qualities),
            "defaultQuality": self.default_quality,
            "formats": list(self.formats),
            "preflight": self.cors_any,
            "crops": list(self.crops),
        }
        if self.presets:
            config["presets"] = {name: [w, h, q, fit, crop] for name, w, h, q, fit, crop in self.presets}
        if self.presets_only:
            config["presetsOnly"] = True
        if self.client_hints:
            config["hints"] = True
        if self.quality_auto:
            config["qualityAuto"] = True
        if self.signing != "off":
            config["signing"] = self.signing
        if self.jxl_companion:
            config["jxlWith"] = self.jxl_companion
        return config


_BUNDLED: Settings | None = None


def bundled() -> Settings:
    """The settings shipped beside the code (`config.json`), read once per container.

    A checkout without a generated `config.json` runs with the defaults above.
    """
    global _BUNDLED
    if _BUNDLED is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as config:
                _BUNDLED = Settings.from_dict(json.load(config))
        else:
            _BUNDLED = Settings()
    return _BUNDLED

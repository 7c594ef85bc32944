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

FORMATS = ("avif", "webp", "jpeg", "png")
FITS = ("cover", "contain", "inside", "fill")

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
}

# How long CloudFront keeps a variant: the cache policy's maximum TTL. Variants are
# invalidated when their original changes, so CloudFront may keep them long; browsers
# cannot be reached by an invalidation and get the stack's `browserCacheSeconds` instead.
CDN_CACHE_SECONDS = 31_536_000

# A client that decodes the first format decodes every one after it: what the fallback
# may serve in place of a variant it does not hold. Every browser that decodes AVIF
# decodes WebP (AVIF came to each engine after WebP), and JPEG is what the viewer
# function serves a client that names neither (`*/*`). PNG is asked for by name only;
# JPEG is its universal stand-in (alpha flattened onto white).
SUBSTITUTES = {
    "avif": ("avif", "webp", "jpeg"),
    "webp": ("webp", "jpeg"),
    "jpeg": ("jpeg",),
    "png": ("png", "jpeg"),
}

# Headers the edge adds: the variant a fallback substitute stands in for, and the
# request header that carries the asked-for variant from origin-request to origin-response.
SUBSTITUTE_HEADER = "X-Image-Cdn-Substitute"
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
        "cors_origins",
        "default_image",
        "default_quality",
        "error_cache_seconds",
        "fallback_bucket",
        "fallback_cache_seconds",
        "fallback_region",
        "formats",
        "max_frames",
        "max_input_bytes",
        "max_pixels",
        "primary_bucket",
        "primary_region",
        "qualities",
        "response_limit_bytes",
        "standard_formats",
        "widths",
    )

    def __init__(
        self,
        *,
        widths: tuple[int, ...] = (160, 320, 480, 640, 768, 1024, 1280, 1600, 1920, 2560),
        qualities: tuple[int, ...] = (40, 50, 60, 70, 80, 90),
        default_quality: int = 60,
        formats: tuple[str, ...] = FORMATS,
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
    ) -> None:
        values = dict(locals())
        del values["self"]
        for name in self.__slots__:
            value = values[name]
            object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)

    # The declared types, for mypy and readers (slots hold the values).
    widths: tuple[int, ...]
    qualities: tuple[int, ...]
    default_quality: int
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

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Settings are immutable: {name}")

    @property
    def variant_cache_control(self) -> str:
        """A variant: CloudFront keeps it long (invalidated on change), browsers for the stack's lifetime.

        Never `immutable`: the viewer URL (`/x.jpg?w=800`) stays the same when its original is replaced.
        """
        return f"public, max-age={self.browser_cache_seconds}, s-maxage={CDN_CACHE_SECONDS}"

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
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"

    def to_json(self) -> str:
        """Stable JSON (sorted keys) so identical settings give identical bundles."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        return cls(**{name: value for name, value in data.items() if name in cls.__slots__})

    def origin_of(self, request: dict[str, Any]) -> str | None:
        """ "primary", "fallback" or None for the S3 origin a CloudFront request targets."""
        s3 = (request.get("origin") or {}).get("s3") or {}
        domain = str(s3.get("domainName", ""))
        for name, bucket in (("primary", self.primary_bucket), ("fallback", self.fallback_bucket)):
            if domain.startswith(bucket + ".s3."):
                return name
        return None

    def viewer_config(self) -> dict[str, Any]:
        """The subset the viewer CloudFront Function inlines (it must stay tiny)."""
        return {
            "widths": list(self.widths),
            "qualities": list(self.qualities),
            "defaultQuality": self.default_quality,
            "formats": list(self.formats),
            "preflight": self.cors_any,
        }


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

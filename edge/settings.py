"""The configuration every edge function runs with.

At deploy time the stack config is turned into one `Settings` and written as
`config.json` into each bundle (Lambda@Edge takes no environment variables) and
into the viewer function's config block. Locally the emulator and the tests build
the same object from the same stack config.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

FORMATS = ("avif", "webp", "jpeg", "png")
FITS = ("cover", "contain", "inside", "fill")

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
}

# Lambda@Edge caps a generated origin response at 1 MB, headers included. We count
# the whole JSON the handler returns against 1,000,000 bytes: a little under the
# quota whichever way "MB" is read, and the emulator enforces the same number.
RESPONSE_LIMIT_BYTES = 1_000_000

VARIANT_PREFIX = "variants/"
ORIGINAL_PREFIX = "originals/"


@dataclass(frozen=True)
class Settings:
    """What the variant grammar, the handlers and the sync job need to know."""

    widths: tuple[int, ...] = (160, 320, 480, 640, 768, 1024, 1280, 1600, 1920, 2560)
    qualities: tuple[int, ...] = (40, 50, 60, 70, 80, 90)
    default_quality: int = 60
    formats: tuple[str, ...] = FORMATS
    standard_formats: tuple[str, ...] = ("webp",)
    primary_bucket: str = "image-cdn-local-origin"
    primary_region: str = "us-east-1"
    fallback_bucket: str = "image-cdn-local-fallback"
    fallback_region: str = "us-west-2"
    max_input_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000
    max_frames: int = 200
    variant_cache_control: str = "public, max-age=31536000, immutable"
    error_cache_seconds: int = 5
    response_limit_bytes: int = RESPONSE_LIMIT_BYTES

    def to_json(self) -> str:
        """Stable JSON (sorted keys) so identical settings give identical bundles."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)

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
        }


_BUNDLED: Settings | None = None


def bundled() -> Settings:
    """The settings shipped beside the code (`config.json`), read once per container.

    A checkout without a generated `config.json` runs with the defaults above.
    """
    global _BUNDLED
    if _BUNDLED is None:
        path = Path(__file__).with_name("config.json")
        _BUNDLED = Settings.from_dict(json.loads(path.read_text())) if path.exists() else Settings()
    return _BUNDLED

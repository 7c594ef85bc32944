"""What the catalogue's functions run with: the edge's bundled settings and a few environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from edge.settings import Settings, bundled

UPLOAD_SECONDS = 300
# The API's routes (catalog/api.py serves them; components/catalog.py puts each behind the authorizer).
ROUTES = ("POST /uploads", "GET /images", "GET /images/{id}", "PATCH /images/{id}", "DELETE /images/{id}")
PENDING_SECONDS = 86_400
DEFAULT_MAX_UPLOAD_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class CatalogConfig:
    settings: Settings
    """Buckets, regions, widths and image limits: the same as the edge's."""
    table: str
    cdn_url: str
    """Where viewers fetch images: https://<distribution or custom domain>."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    upload_seconds: int = UPLOAD_SECONDS
    pending_seconds: int = PENDING_SECONDS
    signing_secret: str = ""
    """With signing on: the Secrets Manager secret whose current key signs the URLs the API hands out."""
    secrets: Any = field(default=None, compare=False, repr=False)
    """A Secrets Manager client to read it with (None: boto3's, in the primary region)."""

    @classmethod
    def from_environment(cls) -> CatalogConfig:
        """The deployed functions' configuration (components/catalog.py sets these)."""
        return cls(
            settings=bundled(),
            table=os.environ["CATALOG_TABLE"],
            cdn_url=os.environ["CDN_URL"].rstrip("/"),
            max_upload_bytes=int(os.environ.get("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES)),
            upload_seconds=int(os.environ.get("UPLOAD_SECONDS", UPLOAD_SECONDS)),
            signing_secret=os.environ.get("SIGNING_SECRET", ""),
        )

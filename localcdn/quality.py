"""The gallery's comparison: today's q=60 beside q=auto, each with its bytes and its score.

Both variants are asked of the emulated distribution as a browser asks for them (`fm=` fixed, so
the page shows the same bytes it scores), and each is scored with SSIMULACRA 2 (edge/perceptual.py,
the metric q=auto aims with) against the resized reference: the original rendered losslessly (PNG)
at the same width, the pixels before any lossy encode, as tests/test_quality_auto.py scores. A score
is computed once per served body (keyed by its SHA-256) and kept for the emulator's life.

The scale (SSIMULACRA 2's own README, cloudinary/ssimulacra2): 100 identical, 90 visually lossless,
80 very high quality (no difference at 1:1 side by side), 70 high (artifacts hard to notice without
the original), 50 medium, 30 low, 10 very low; higher is better.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import TYPE_CHECKING, Any

from edge import variants
from edge.settings import CONTENT_TYPES, ORIGINAL_PREFIX

if TYPE_CHECKING:
    from localcdn.distribution import Distribution

METRIC = "SSIMULACRA 2"
WIDTH = 320
# The quality the comparison starts from: the stacks' default, what every variant gets today.
TODAY = 60
ENABLE = "python -m localcdn --stack dev --set qualityTarget=good"
# make serve's install leaves numpy out (tests/test_serve_install.py); the metric, and q=auto, need it.
NO_NUMPY = (
    "no score: the metric needs numpy, which make serve does not install (pip install numpy, or make test's install)"
)


class Scores:
    """Scores kept per served body, references per original version (both bounded by the originals)."""

    def __init__(self, distribution: Distribution):
        self.distribution = distribution
        self._scores: dict[str, float] = {}
        self._references: dict[tuple[str, int, str], Any] = {}
        self._lock = threading.Lock()

    def compare(self, key: str, fmt: str, width: int = WIDTH) -> dict[str, Any]:
        """What /_localcdn/quality/<key> answers: the metric, the target, and each variant's numbers."""
        settings = self.distribution.settings
        if fmt not in settings.formats:
            raise ValueError(f"one of {', '.join(settings.formats)}")
        data, etag = self._original(key)
        asked = [(f"q={TODAY}", f"q={TODAY}")]
        if settings.quality_target:
            asked.append(("q=auto", "q=auto"))
        rows = []
        unavailable = None
        for label, query in asked:
            url = f"/{variants.encode_key(key)}?w={width}&{query}&fm={fmt}"
            signer = self.distribution.signing
            if signer is not None and settings.signing == "required":
                url = signer.sign(url)  # as the page shows it, signed as an app would sign it
            path, _, signed_query = url.partition("?")
            answer = self.distribution.request("GET", path, signed_query, {"accept": CONTENT_TYPES[fmt]})
            row: dict[str, Any] = {
                "label": label,
                "url": url,
                "status": answer.status,
                "bytes": len(answer.body),
                "content_type": answer.headers.get("Content-Type", ""),
                "source": answer.headers.get("X-Image-Cdn-Source", "render"),
                "score": None,
            }
            if answer.status == 200 and unavailable is None:
                try:
                    row["score"] = self._score(key, etag, data, width, fmt, answer.body)
                except ModuleNotFoundError as error:
                    if error.name != "numpy":
                        raise
                    unavailable = NO_NUMPY
            rows.append(row)
        return {
            "key": key,
            "metric": METRIC,
            "width": width,
            "format": fmt,
            "target": settings.quality_target or None,
            "enable": None if settings.quality_target else ENABLE,
            "original_bytes": len(data),
            "unavailable": unavailable,
            "variants": rows,
        }

    def _original(self, key: str) -> tuple[bytes, str]:
        """The original's bytes and ETag; KeyError when there is none."""
        from botocore.exceptions import ClientError

        settings = self.distribution.settings
        try:
            answer = self.distribution.storage.client(settings.primary_region).get_object(
                Bucket=settings.primary_bucket, Key=ORIGINAL_PREFIX + key
            )
        except ClientError as error:
            raise KeyError(key) from error
        return answer["Body"].read(), str(answer.get("ETag", ""))

    def _score(self, key: str, etag: str, data: bytes, width: int, fmt: str, body: bytes) -> float:
        import numpy as np
        from PIL import Image

        from edge import imaging, perceptual

        digest = hashlib.sha256(body + f"|{key}|{width}|{fmt}".encode()).hexdigest()
        with self._lock:
            if digest in self._scores:
                return self._scores[digest]
            reference = self._references.get((etag, width, fmt))
        if reference is None:
            png, _ = imaging.transform(
                data,
                width=width,
                height=None,
                fit="cover",
                quality=90,
                fmt="png",
                limits=imaging.Limits.of(self.distribution.settings),
            )
            pixels = Image.open(io.BytesIO(png)).convert("RGBA")
            if fmt == "jpeg":  # a JPEG variant is flattened onto white: so is what it is compared with
                flat = Image.new("RGBA", pixels.size, (255, 255, 255, 255))
                pixels = Image.alpha_composite(flat, pixels)
            reference = np.asarray(pixels)
        distorted = Image.open(io.BytesIO(body)).convert("RGBA")  # an animation: its first frame
        score = round(float(perceptual.ssimulacra2(reference, np.asarray(distorted))), 1)
        with self._lock:
            self._references[(etag, width, fmt)] = reference
            self._scores[digest] = score
        return score

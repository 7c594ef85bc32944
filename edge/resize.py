"""Lambda@Edge origin-response: build a missing variant from its original.

On a 403/404 from the primary for a variant: read `originals/<key>`, render it with
`imaging.transform`, store it under `variants/` (and in the fallback bucket when it
is a standard variant), and answer with the image; for a missing original, the
stack's default image (if it has one) rendered as asked, with a 404 and the error
TTL (`missing`). Every other response passes
through with the service's headers set: `Cache-Control` (long for CloudFront, the
stack's lifetime for browsers; short for a fallback substitute, which also says what
it is), `Vary: Accept` and, for `corsOrigins: ["*"]`, CORS. A 5xx passes untouched:
it must stay a 5xx, or CloudFront would not fail over.

A `crop=faces` variant asks Amazon Rekognition (DetectFaces) where the faces are, with
a short timeout; no answer, an error or no face means the attention crop instead, never
a 5xx. A stack with a watermark composites it onto every variant at least its minimum
width wide, and refuses (503, not cached) rather than serve one without it.

Pillow is imported on the first miss, not at cold start: most responses this function
sees are hits passing through. S3 is reached through `edge.s3` (obstore), not boto3: a
fresh container's first miss would otherwise wait about 230 ms for boto3 before any work
(edge/s3.py has the numbers); boto3 is imported only for Rekognition.
"""

from __future__ import annotations

import base64
import json
import time

from edge import variants
from edge.problems import header_list, json_response, not_found, problem_response, set_headers
from edge.rewrite import requested_path
from edge.s3 import error_code
from edge.settings import ORIGINAL_PREFIX, SUBSTITUTE_HEADER, TYPE_CHECKING, Settings, bundled

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from edge.imaging import FaceBox, Watermark

    S3Factory = Callable[[str], Any]
    FaceClient = Callable[[str], Any]

EXPOSED_HEADERS = f"Server-Timing, {SUBSTITUTE_HEADER}"
# The URL a viewer asked for, set by the viewer function when the canonical path alone would
# not pass it again (signed URLs, presets only); forwarded by the origin request policy.
VIEWER_URL_HEADER = "x-image-cdn-url"
# How long a container keeps the watermark it read (a replaced watermark needs an invalidation
# of the variants that carry it anyway; README, "Presets, crops and the watermark").
WATERMARK_SECONDS = 300

_clients: dict[str, Any] = {}
_pool: ThreadPoolExecutor | None = None
_watermark: tuple[float, str, Watermark] | None = None


def default_rekognition(region: str) -> Any:
    """A 1 s connect and 3 s read budget, no retries: a slow DetectFaces costs the attention crop, not the viewer."""
    return _client(
        "rekognition", region, connect_timeout=1, read_timeout=3, retries={"max_attempts": 1, "mode": "standard"}
    )


def face_finder(settings: Settings, rekognition: FaceClient) -> Callable[[bytes], Sequence[FaceBox] | None]:
    """DetectFaces on a JPEG: the faces' bounding boxes (fractions of the image), or None on any error."""

    def find(jpeg: bytes) -> Sequence[FaceBox] | None:
        try:
            answer = rekognition(settings.faces_region or settings.primary_region).detect_faces(
                Image={"Bytes": jpeg}, Attributes=["DEFAULT"]
            )
        except Exception as error:  # timeout, throttling, access: the attention crop instead
            log(event="faces-unavailable", error=repr(error))
            return None
        boxes = []
        for face in answer.get("FaceDetails", []):
            box = face.get("BoundingBox", {})
            left, top = max(0.0, float(box.get("Left", 0))), max(0.0, float(box.get("Top", 0)))
            width = min(1.0 - left, float(box.get("Width", 0)))
            height = min(1.0 - top, float(box.get("Height", 0)))
            boxes.append((left, top, width, height))
        return boxes

    return find


def _client(service: str, region: str, **config: Any) -> Any:
    """One boto3 client per service and region, created on first use and kept for the container."""
    key = f"{service}:{region}"
    client = _clients.get(key)
    if client is None:
        import boto3
        from botocore.config import Config

        client = _clients[key] = boto3.client(service, region_name=region, config=Config(**config))
    return client


def default_s3(region: str) -> Any:
    """The S3 client for a region (`edge.s3`): a 2 s connect and 10 s request budget, one retry."""
    key = f"s3:{region}"
    client = _clients.get(key)
    if client is None:
        from edge.s3 import Client

        client = _clients[key] = Client(region, connect_timeout=2, timeout=10, retries=1)
    return client


def _uploads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="put")
    return _pool


def log(**fields: Any) -> None:
    """One JSON line per event, for CloudWatch Logs Insights."""
    print(json.dumps(fields, default=str, sort_keys=True))


def handle(
    event: dict[str, Any],
    settings: Settings,
    s3: S3Factory = default_s3,
    rekognition: FaceClient = default_rekognition,
) -> dict[str, Any]:
    """Return the origin's response (with this service's headers), or the response to send instead.

    origin-response sees every response either bucket gives CloudFront, so it is where
    the lifetimes and `Vary` are decided: a header on the response headers policy alone
    may be dropped (CloudFront's CORS handling owns `Vary`, ttoss/ttoss PR #1205), and
    an object's stored metadata would keep whatever the stack said when it was written.
    """
    cf = event["Records"][0]["cf"]
    request: dict[str, Any] = cf["request"]
    response: dict[str, Any] = cf["response"]
    status = str(response.get("status"))
    origin = settings.origin_of(request)
    if status.startswith("5") or origin is None:
        return response  # a 5xx must stay a 5xx, or CloudFront would not fail over
    uri = str(request.get("uri", ""))
    if origin == "primary" and settings.primary_kind == "http":
        # A third-party service renders its own variants: its answers pass through, with our lifetimes.
        if status in ("200", "304"):
            set_headers(response, {"Cache-Control": settings.variant_cache_control})
        elif status.startswith("4"):
            seconds = settings.error_cache_seconds
            set_headers(response, {"Cache-Control": f"public, max-age={seconds}" if seconds else "no-store"})
        return finish(response, settings)
    if status in ("403", "404"):
        if origin == "fallback":
            # The fallback holds no originals: a miss there is final (the default image, if any).
            return finish(fallback_miss(request, settings, s3), settings)
        try:
            variant = variants.canonical(uri, settings)
        except variants.VariantError as problem:
            return finish(problem_response(problem, cache_seconds=settings.error_cache_seconds), settings)
        return finish(build(variant, settings, s3, rekognition, viewer_url=_viewer_url(request)), settings)
    if status in ("200", "206", "304"):
        substitute = origin == "fallback" and requested_path(request, settings) != uri
        if origin == "fallback":
            # The fallback answering is the outage signal: a metric filter counts these lines
            # (components/monitoring.py), in every region the stack serves.
            log(event="fallback", path=uri, substitute=substitute)
        if substitute:
            set_headers(response, {"Cache-Control": settings.substitute_cache_control, SUBSTITUTE_HEADER: uri})
        else:
            set_headers(response, {"Cache-Control": settings.variant_cache_control})
    return finish(response, settings)


def finish(response: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Headers every response of this service carries, whichever origin or function made it."""
    headers = {"Vary": settings.vary}
    if settings.client_hints:
        # The viewer function read the hints into the URI: browsers must vary on them too, and learn
        # to send them (Accept-CH; a page must still delegate them to this host, README "The URL grammar").
        headers["Accept-CH"] = settings.accept_ch
    if settings.cors_any:
        # Without a CORS section in the headers policy (it would own Vary), `*` is answered here.
        headers.update({"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSED_HEADERS})
    return set_headers(response, headers)


def _viewer_url(request: dict[str, Any]) -> str | None:
    """The URL the viewer asked for (see VIEWER_URL_HEADER), if it is a path on this host."""
    values = (request.get("headers") or {}).get(VIEWER_URL_HEADER) or []
    url = str(values[0].get("value", "")) if values else ""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else None


def watermark(settings: Settings, s3: S3Factory) -> Watermark | None:
    """The stack's watermark, read from originals/ at most every WATERMARK_SECONDS per container.

    Raises `imaging.ImageError` (from decoding) or returns None when it cannot be read:
    the caller refuses to render a variant that should carry it.
    """
    global _watermark
    from edge import imaging

    now = time.monotonic()
    if _watermark is not None and _watermark[1] == settings.watermark and now - _watermark[0] < WATERMARK_SECONDS:
        return _watermark[2]
    found = _read(s3, settings.primary_region, settings.primary_bucket, ORIGINAL_PREFIX + settings.watermark)
    if found is None:
        return None
    mark = imaging.Watermark.load(found[0], settings)
    _watermark = (now, settings.watermark, mark)
    return mark


def build(
    variant: variants.Variant,
    settings: Settings,
    s3: S3Factory = default_s3,
    rekognition: FaceClient = default_rekognition,
    *,
    viewer_url: str | None = None,
) -> dict[str, Any]:
    """Render and store one variant; the CloudFront response that carries it."""
    from edge import imaging

    started = time.perf_counter()
    primary = s3(settings.primary_region)
    try:
        original = primary.get_object(Bucket=settings.primary_bucket, Key=variant.original_key)
    except Exception as error:
        code = error_code(error)
        if code is None:  # not S3 refusing (edge.s3's S3Error or botocore's ClientError): a bug, raised
            raise
        if code in ("NoSuchKey", "404", "AccessDenied", "403"):
            # Without s3:ListBucket a missing key reads as AccessDenied; both mean "no original".
            return missing(variant, settings, s3)
        log(event="original-read-failed", key=variant.key, code=code)
        return json_response(503, {"error": "OriginalUnavailable", "message": code}, cache_seconds=0)
    size = int(original.get("ContentLength", 0))
    if size > settings.max_input_bytes:
        original["Body"].close()
        problem = imaging.InputTooLarge(f"at most {settings.max_input_bytes} bytes", f"{size} bytes")
        return problem_response(problem, cache_seconds=settings.error_cache_seconds)
    data = original["Body"].read()
    mark = None
    if settings.watermark and variant.width >= settings.watermark_min_width:
        try:
            mark = watermark(settings, s3)
        except imaging.ImageError as problem:
            log(event="watermark-unusable", key=settings.watermark, reason=problem.message)
        if mark is None:
            refusal = {"error": "WatermarkUnavailable", "message": f"cannot read the watermark {settings.watermark}"}
            return json_response(503, refusal, cache_seconds=0)
    downloaded = time.perf_counter()
    crop = imaging.Crop(variant.crop, face_finder(settings, rekognition) if variant.crop == "faces" else None)
    try:
        body, content_type = imaging.transform(
            data,
            width=variant.width,
            height=variant.height,
            fit=variant.fit,
            quality=variant.quality,
            fmt=variant.fmt,
            limits=imaging.Limits.of(settings),
            crop=crop,
            watermark=mark,
        )
    except imaging.ImageError as problem:
        log(event="refused", key=variant.key, status=problem.status, reason=problem.message)
        return problem_response(problem, cache_seconds=settings.error_cache_seconds)
    if crop.used != variant.crop:
        log(event="crop-fallback", key=variant.key, asked=variant.crop, used=crop.used)
    transformed = time.perf_counter()
    stored = store(variant, body, content_type, settings, s3, source_etag=str(original.get("ETag", "")))
    uploaded = time.perf_counter()
    timing = (
        f"download;dur={(downloaded - started) * 1000:.1f}, "
        f"transform;dur={(transformed - downloaded) * 1000:.1f}, "
        f"upload;dur={(uploaded - transformed) * 1000:.1f}"
    )
    log(event="built", path=variants.format(variant), bytes=len(body), stored=stored, timing=timing)
    answer = {
        "status": "200",
        "statusDescription": "OK",
        "headers": header_list(
            {
                "Content-Type": content_type,
                "Cache-Control": settings.variant_cache_control,
                "Server-Timing": timing,
            }
        ),
        "body": base64.b64encode(body).decode("ascii"),
        "bodyEncoding": "base64",
    }
    if len(json.dumps(answer)) <= settings.response_limit_bytes:
        return answer
    if not stored:
        return json_response(
            503, {"error": "VariantNotStored", "message": "too large to return and not stored"}, cache_seconds=0
        )
    # Too big for a Lambda@Edge response: the viewer asks again and S3 answers. Back to the
    # URL it asked for when the viewer function said which (a signed or preset URL: the
    # canonical path alone would be refused), else to the canonical path.
    return {
        "status": "302",
        "statusDescription": "Found",
        "headers": header_list(
            {
                "Location": viewer_url or variants.format(variant),
                "Cache-Control": "no-store",
                "Server-Timing": timing,
            }
        ),
    }


# -- a missing original: the stack's default image, if it has one ----------------------------


def stand_in(variant: variants.Variant, settings: Settings) -> variants.Variant | None:
    """The default image in the shape asked for; None without one (or when it is the default that is missing)."""
    if not settings.default_image or variant.key == settings.default_image:
        return None
    return variants.Variant(
        settings.default_image, variant.width, variant.height, variant.quality, variant.fmt, variant.fit
    )


def missing(variant: variants.Variant, settings: Settings, s3: S3Factory = default_s3) -> dict[str, Any]:
    """What a request for a missing original gets: the default image rendered as asked, with a 404.

    A 404 (not a 200): the URL names an image that does not exist, and says so to crawlers,
    monitors and `fetch`; browsers still draw the image an `<img>` gets with it. CloudFront
    keeps the answer for the error TTL only: the header says `errorCachingSeconds`, the same
    as the distribution's error caching minimum TTL, and CloudFront keeps an error for the
    larger of the two ("Control how long CloudFront caches errors"). The default's variant
    is stored under the default's own key, never under the missing one.
    """
    plain = not_found("original", variant.key, cache_seconds=settings.error_cache_seconds)
    default = stand_in(variant, settings)
    if default is None:
        return plain
    found = _read(s3, settings.primary_region, settings.primary_bucket, default.primary_key)
    if found is None:
        built = build(default, settings, s3)
        if built.get("status") != "200" or "body" not in built:
            log(event="default-image-unavailable", key=settings.default_image, status=built.get("status"))
            return plain
        content_type = built["headers"]["content-type"][0]["value"]
        found = (base64.b64decode(built["body"]), content_type)
    return _default_response(found, variant.key, settings) or plain


def fallback_miss(request: dict[str, Any], settings: Settings, s3: S3Factory = default_s3) -> dict[str, Any]:
    """A 403/404 from the fallback: the default image's nearest standard variant there, with a 404, or a JSON 404."""
    uri = str(request.get("uri", ""))
    plain = not_found("standard variant in the fallback bucket", uri, cache_seconds=settings.error_cache_seconds)
    try:
        asked = variants.canonical(requested_path(request, settings), settings)
    except variants.VariantError:
        return plain
    default = stand_in(asked, settings)
    nearest = variants.nearest_standard(default, settings) if default is not None else None
    if nearest is None:
        return plain
    found = _read(s3, settings.fallback_region, settings.fallback_bucket, nearest.object_path)
    return (_default_response(found, asked.key, settings) if found else None) or plain


def _read(s3: S3Factory, region: str, bucket: str, key: str) -> tuple[bytes, str] | None:
    """An object's bytes and content type, or None when it is not there (or cannot be read)."""
    try:
        answer = s3(region).get_object(Bucket=bucket, Key=key)
        return answer["Body"].read(), str(answer.get("ContentType", "application/octet-stream"))
    except Exception as error:  # missing, or storage trouble: the caller answers without it
        log(event="read-failed", bucket=bucket, key=key, error=repr(error))
        return None


def _default_response(found: tuple[bytes, str], missing_key: str, settings: Settings) -> dict[str, Any] | None:
    body, content_type = found
    seconds = settings.error_cache_seconds
    answer = {
        "status": "404",
        "statusDescription": "Not Found",
        "headers": header_list(
            {
                "Content-Type": content_type,
                "Cache-Control": f"public, max-age={seconds}, s-maxage={seconds}" if seconds > 0 else "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        ),
        "body": base64.b64encode(body).decode("ascii"),
        "bodyEncoding": "base64",
    }
    if len(json.dumps(answer)) > settings.response_limit_bytes:
        log(event="default-image-too-large", key=settings.default_image, bytes=len(body))
        return None
    log(event="default-image", missing=missing_key, bytes=len(body))
    return answer


def store(
    variant: variants.Variant,
    body: bytes,
    content_type: str,
    settings: Settings,
    s3: S3Factory = default_s3,
    *,
    source_etag: str = "",
) -> bool:
    """PUT the variant under `variants/` (and into the fallback when standard), in parallel.

    Returns whether the primary copy was stored. A failed fallback copy is logged,
    not fatal: the sync job fills the gap.
    """
    extra = {
        "ContentType": content_type,
        "CacheControl": settings.variant_cache_control,
        "Metadata": {"source-etag": source_etag.strip('"')},
    }
    targets = [(settings.primary_region, settings.primary_bucket, variant.primary_key)]
    if variants.is_standard(variant, settings):
        targets.append((settings.fallback_region, settings.fallback_bucket, variant.object_path))

    def put(target: tuple[str, str, str]) -> bool:
        region, bucket, key = target
        try:
            s3(region).put_object(Bucket=bucket, Key=key, Body=body, **extra)
            return True
        except Exception as error:  # storage trouble must not cost the viewer the image
            log(event="store-failed", bucket=bucket, key=key, error=repr(error))
            return False

    results = list(_uploads().map(put, targets))
    return results[0]


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: runs with the `config.json` bundled beside this file."""
    return handle(event, bundled())

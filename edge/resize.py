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

A refusal is paid for once. When an original cannot be rendered (any `ImageError` about the
original: its bytes, pixels or frames over the limits, not an image, not decodable), resize keeps
two small objects under `variants/<key>/`: the version's marker `_refused.<etag>` (the status and
the JSON body) and a tombstone at the refused variant's own path (the JSON body, user metadata
`refused: <status>`). A later miss of any variant of that version reads the marker before the
original's body and answers from it (and leaves a tombstone at its own path); a later request S3
answers with a tombstone becomes the refusal here. Nothing is decoded twice. Replacing the original
gives it a new ETag; the sync job then deletes everything under `variants/<key>/` and invalidates
those paths. A refusal about one variant only (its side too long for the format) keeps only its
tombstone.

Only images leave the image path: an answer from either bucket or a third-party service whose
Content-Type is not one this service produces (AVIF, WebP, JPEG, PNG, and GIF from a service that
answers an animated original as it is) is a 502, never passed on; SVG, which can carry script, is
not one of them. The service's own JSON errors (tombstones) are recognised by their metadata.

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
from urllib.parse import quote

from edge import variants
from edge.problems import REASONS, Problem, header_list, json_response, not_found, problem_response, set_headers
from edge.rewrite import requested_path
from edge.s3 import error_code
from edge.settings import (
    CONTENT_TYPES,
    MISSING_HEADER,
    ORIGINAL_PREFIX,
    SOURCE_HEADER,
    SUBSTITUTE_HEADER,
    TYPE_CHECKING,
    VARIANT_PREFIX,
    Settings,
    bundled,
)
from edge.settings import (
    EXPOSED_HEADERS as EXPOSED,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    from edge import limits as table
    from edge.imaging import FaceBox, Watermark

    S3Factory = Callable[[str], Any]
    FaceClient = Callable[[str], Any]

EXPOSED_HEADERS = ", ".join(EXPOSED)
# The URL a viewer asked for, set by the viewer function when the canonical path alone would
# not pass it again (signed URLs, presets only); forwarded by the origin request policy.
VIEWER_URL_HEADER = "x-image-cdn-url"
# What may leave the image path with a 200 or a 206: the formats this service writes, and GIF, which
# a third-party service (thumbor) answers for an animated original. Not image/svg+xml: it can carry
# script, and on this domain that would be stored XSS.
IMAGE_TYPES = (*CONTENT_TYPES.values(), "image/gif")
# resize's memory of a refused original version, `variants/<key>/_refused.<etag>` (sync/job.py
# lists, invalidates and deletes it with the original's variants), and the user metadata that marks
# a tombstone (S3 returns it as `x-amz-meta-refused`: "Working with object metadata", S3 User Guide).
REFUSED_MARKER = "_refused."
REFUSED_METADATA = "refused"
REFUSED_HEADER = "x-amz-meta-" + REFUSED_METADATA
SOURCE_ETAG_HEADER = "x-amz-meta-source-etag"
# A variant stored as its original's bytes (edge/passthrough.py) carries user metadata `source:
# original`, which S3 answers as this header; viewers get SOURCE_HEADER instead.
SOURCE_METADATA_HEADER = "x-amz-meta-source"
# The statuses a refusal can have (edge/limits.py): anything else in a tombstone's metadata is not ours.
REFUSAL_STATUSES = (400, 413, 415, 422)
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
    if status in ("200", "206", "304"):
        # Tombstones are S3 objects: a third-party service's headers are not our metadata.
        from_s3 = origin == "fallback" or settings.primary_kind != "http"
        refused = _header(response, REFUSED_HEADER) if from_s3 else ""
        if refused:
            return finish(tombstone(request, response, refused, settings, s3), settings)
        if status != "304":  # a 304 has no body: nothing to serve as anything
            came = _header(response, "content-type")
            if media_type(came) not in IMAGE_TYPES:
                return finish(not_an_image(uri, origin, came), settings)
    if origin == "primary" and settings.primary_kind == "http":
        # A third-party service renders its own variants: its images pass through, with our lifetimes.
        # Anything else it says (an HTML error page, a redirect to another site, a 204) never reaches
        # a viewer on the image domain as it came: its status with our JSON instead, or a 502.
        if status in ("200", "304"):
            set_headers(response, {"Cache-Control": settings.variant_cache_control})
        elif status.startswith("4"):
            log(event="service-refused", uri=uri, status=status)
            body = {"error": "ServiceRefused", "message": f"The image service answered {status}"}
            return finish(json_response(int(status), body, cache_seconds=settings.error_cache_seconds), settings)
        elif status != "206":
            return finish(not_an_image(uri, origin, f"a {status} answer"), settings)
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
        if _header(response, SOURCE_METADATA_HEADER) == "original":
            set_headers(response, {SOURCE_HEADER: "original"})
    return finish(response, settings)


class NotAnImage(Problem):
    """An origin answered 200 or 206 with something that is not an image this service serves."""

    status = 502
    error = "NotAnImage"


def media_type(value: str) -> str:
    """`image/jpeg; q=1` -> `image/jpeg` (lower case, parameters dropped)."""
    return value.split(";", 1)[0].strip().lower()


def _header(response: dict[str, Any], name: str) -> str:
    values = (response.get("headers") or {}).get(name) or []
    return str(values[0].get("value", "")) if values else ""


def not_an_image(uri: str, origin: str, came: str) -> dict[str, Any]:
    """The 502 for an answer that is not an image (nor our JSON): never cached, and logged.

    A 206 is judged the same way: from S3 it carries the object's own Content-Type (S3 answers one
    range per GET, "GetObject", S3 API Reference), and a service's `multipart/byteranges` hides
    its parts' types, so it is refused too.
    """
    log(event="not-an-image", uri=uri, origin=origin, content_type=came)
    problem = NotAnImage("content-type", "one of " + ", ".join(IMAGE_TYPES), came or "no Content-Type")
    return problem_response(problem, cache_control="no-store")


def refusal_cache_control(settings: Settings) -> str:
    """A refusal: browsers keep it briefly, CloudFront as long as a variant (its original's change
    invalidates it, and deletes its tombstone). CloudFront keeps a 4xx for the larger of the
    header's max-age or s-maxage and the distribution's error caching minimum TTL, within the
    cache behaviour's maximum TTL ("Control how long CloudFront caches errors"), but only for the
    4xx codes it caches: 413 and 422 are not among them, 415 is cached only with max-age or
    s-maxage ("How CloudFront processes and caches HTTP 4xx and 5xx status codes from your
    origin"). Uncached, a repeated request costs S3 one GET of the tombstone and no decode."""
    return f"public, max-age={settings.error_cache_seconds}, s-maxage={settings.variant_cdn_seconds}"


def tombstone(
    request: dict[str, Any], response: dict[str, Any], refused: str, settings: Settings, s3: S3Factory
) -> dict[str, Any]:
    """What S3 answered for a refused variant's path (a tombstone): the refusal again.

    A 200 keeps its body, the refusal's JSON as stored: an origin-response function that sets no
    body passes the origin's on ("Updating HTTP responses in origin-response triggers", CloudFront
    Developer Guide); only the status and the headers change. A 206 (CloudFront forwards a viewer's
    Range: "How CloudFront processes partial requests for an object (range GETs)") holds a piece of
    that JSON: the whole refusal is read back from the version's marker. A 304 has no body.
    """
    uri = str(request.get("uri", ""))
    status = int(refused) if refused.isdigit() else 0
    came = _header(response, "content-type")
    if status not in REFUSAL_STATUSES or media_type(came) != "application/json":
        return not_an_image(uri, settings.origin_of(request) or "", came)  # not a tombstone of ours
    cache = refusal_cache_control(settings)
    answered = str(response.get("status"))
    if answered == "304":
        return set_headers(response, {"Cache-Control": cache})
    if answered == "206":
        kept = None
        try:
            key = variants.canonical(uri, settings).key
            kept = recall(key, _header(response, SOURCE_ETAG_HEADER), settings, s3)
        except variants.VariantError:
            pass
        body = kept[1] if kept is not None and kept[0] == status else _refused_body(status)
        return json_response(status, body, cache_control=cache)
    response["status"] = str(status)
    response["statusDescription"] = REASONS.get(status, "Error")
    return set_headers(
        response, {"Content-Type": "application/json", "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    )


def _refused_body(status: int) -> dict[str, Any]:
    return {"error": "ImageRefused", "message": f"The original of this image was refused ({status})"}


def marker_key(key: str, etag: str) -> str:
    """`variants/<key>/_refused.<etag>`: the refusal of one version of an original."""
    return f"{VARIANT_PREFIX}{key}/{REFUSED_MARKER}{etag}"


def recall(key: str, etag: str, settings: Settings, s3: S3Factory) -> tuple[int, dict[str, Any]] | None:
    """The refusal kept for this version of the original (its status and JSON body), or None.

    One GET of a few hundred bytes. The role reads `variants/*/_refused.*` and may not list the
    bucket, so a missing marker is a 403 as well as a 404; either means none. A marker that cannot
    be read or is not ours means none too: the original is decoded, as before markers.
    """
    if not etag:
        return None
    try:
        answer = s3(settings.primary_region).get_object(Bucket=settings.primary_bucket, Key=marker_key(key, etag))
        kept = json.loads(answer["Body"].read())
        status, body = int(kept["status"]), kept["body"]
        if status in REFUSAL_STATUSES and isinstance(body, dict):
            return status, body
        raise ValueError(f"status {status}")
    except Exception as error:
        if error_code(error) not in ("NoSuchKey", "404", "AccessDenied", "403"):
            log(event="refusal-marker-unusable", key=key, etag=etag, error=repr(error))
        return None


def refuse(
    variant: variants.Variant,
    status: int,
    body: dict[str, Any],
    settings: Settings,
    s3: S3Factory,
    *,
    etag: str,
    remember: bool,
) -> dict[str, Any]:
    """Answer a refusal, and keep it: a tombstone at this variant's path (what S3 answers for it
    from now on) and, when the refusal is about the original (`remember`), the version's marker,
    which every other variant's miss reads before decoding. Both are written before answering: a
    Lambda@Edge container may be frozen as soon as it has. A failed write is logged, not fatal."""
    cache = refusal_cache_control(settings)
    text = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    version = {"source-etag": etag} if etag else {}
    puts = [
        (
            variant.primary_key,
            text,
            {
                "ContentType": "application/json",
                "CacheControl": cache,
                "Metadata": {REFUSED_METADATA: str(status)} | version,
            },
        )
    ]
    if remember and etag:
        kept = json.dumps({"status": status, "body": body}, ensure_ascii=False, sort_keys=True).encode()
        puts.append((marker_key(variant.key, etag), kept, {"ContentType": "application/json", "Metadata": {}}))

    def put(job: tuple[str, bytes, dict[str, Any]]) -> None:
        key, data, extra = job
        try:
            s3(settings.primary_region).put_object(Bucket=settings.primary_bucket, Key=key, Body=data, **extra)
        except Exception as error:  # storage trouble: the refusal still goes out
            log(event="store-failed", bucket=settings.primary_bucket, key=key, error=repr(error))

    list(_uploads().map(put, puts))
    return json_response(status, body, cache_control=cache)


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
    """Render and store one variant; the CloudFront response that carries it (or its refusal)."""
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
    etag = str(original.get("ETag", "")).strip('"')
    # Before the body is read (the GET's headers are here, its body not yet fetched) and before
    # anything is imported for decoding: was this version refused already?
    kept = recall(variant.key, etag, settings, s3)
    if kept is not None:
        original["Body"].close()
        log(event="refused-again", key=variant.key, etag=etag, status=kept[0])
        return refuse(variant, kept[0], kept[1], settings, s3, etag=etag, remember=False)
    from edge import limits as table  # not at cold start: most responses are hits passing through

    try:
        table.check_size(int(original.get("ContentLength", 0)), table.Limits.of(settings))
    except table.ImageError as problem:
        original["Body"].close()
        return _refused(variant, problem, settings, s3, etag)
    from edge import imaging

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
            target=settings.quality_target,
        )
    except imaging.ImageError as problem:
        return _refused(variant, problem, settings, s3, etag)
    if crop.used != variant.crop:
        log(event="crop-fallback", key=variant.key, asked=variant.crop, used=crop.used)
    original_bytes = _passthrough(data, body, variant, settings, mark)
    if original_bytes is not None:
        log(event="original-smaller", key=variant.key, encoded=len(body), original=len(original_bytes[0]))
        body, content_type = original_bytes
    transformed = time.perf_counter()
    stored = store(variant, body, content_type, settings, s3, source_etag=etag, original=original_bytes is not None)
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
            | ({SOURCE_HEADER: "original"} if original_bytes is not None else {})
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


def _passthrough(
    data: bytes, body: bytes, variant: variants.Variant, settings: Settings, mark: Watermark | None
) -> tuple[bytes, str] | None:
    """The original's bytes (metadata stripped) and type when they can stand for the variant and are
    smaller than `body`, the encode (edge/passthrough.py); the sync job decides the same way."""
    from edge import imaging, passthrough

    return passthrough.Original(data, imaging.Limits.of(settings)).choose(
        body,
        variant.fmt,
        width=variant.width,
        height=variant.height,
        fit=variant.fit,
        watermark_from=mark.min_width if mark is not None else None,
    )


def _refused(
    variant: variants.Variant, problem: table.ImageError, settings: Settings, s3: S3Factory, etag: str
) -> dict[str, Any]:
    log(event="refused", key=variant.key, etag=etag, status=problem.status, reason=problem.message)
    return refuse(variant, problem.status, problem.body(), settings, s3, etag=etag, remember=problem.of_original)


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
    if media_type(content_type) not in IMAGE_TYPES:  # a refused default's tombstone, or worse: not an image
        log(event="default-image-unusable", key=settings.default_image, content_type=content_type)
        return None
    seconds = settings.error_cache_seconds
    answer = {
        "status": "404",
        "statusDescription": "Not Found",
        "headers": header_list(
            {
                "Content-Type": content_type,
                "Cache-Control": f"public, max-age={seconds}, s-maxage={seconds}" if seconds > 0 else "no-store",
                "X-Content-Type-Options": "nosniff",
                # what was asked for and is not there (the viewer's own path: a typo shows itself),
                # percent-encoded as a header value must be
                MISSING_HEADER: quote(missing_key, safe="/"),
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
    original: bool = False,
) -> bool:
    """PUT the variant under `variants/` (and into the fallback when standard), in parallel.

    Returns whether the primary copy was stored. A failed fallback copy is logged,
    not fatal: the sync job fills the gap. `original`: the bytes are the original's (user metadata
    `source: original`, which origin-response reads back as SOURCE_HEADER).
    """
    metadata = {"source-etag": source_etag.strip('"')} | ({"source": "original"} if original else {})
    extra = {
        "ContentType": content_type,
        "CacheControl": settings.variant_cache_control,
        "Metadata": metadata,
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

"""The catalogue's HTTP API: an API Gateway HTTP API (payload format 2.0) in front of this handler.

    POST   /uploads        a presigned S3 POST for a new original (the bytes go straight to S3)
    GET    /images         ?tag= &after= &before= &min_width= &status= &limit= &cursor=
    GET    /images/{id}    one image, with the CDN URL of each standard width and a srcset
    PATCH  /images/{id}    {"tags": [...]}: its owner replaces its tags
    DELETE /images/{id}    its owner deletes it (an original uploaded through this API only)

Every route is behind the stack's authorizer (IAM or JWT); the caller's identity is the
owner of what it uploads. Every refusal is a JSON 4xx naming the parameter, what was
expected and what came (the edge's shape, `edge.problems`).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from catalog import keys
from catalog.config import CatalogConfig
from catalog.store import MAX_TAGS, STATUSES, BadCursor, Catalogue
from edge import signing, variants
from edge.problems import Problem
from edge.settings import ORIGINAL_PREFIX

TAG = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_BODY = 16 * 1024
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?")


class NotFound(Problem):
    status = 404
    error = "NotFound"


class Forbidden(Problem):
    status = 403
    error = "Forbidden"


class Conflicting(Problem):
    status = 409
    error = "Conflict"


class TooLarge(Problem):
    status = 413
    error = "PayloadTooLarge"


def now_iso(moment: float | None = None) -> str:
    """UTC, millisecond precision, fixed width: sorts as text the way it sorts in time."""
    stamp = datetime.fromtimestamp(time.time() if moment is None else moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def principal(event: dict[str, Any]) -> str | None:
    """Who is calling, as the authorizer established it: a JWT's `sub`, or an IAM principal.

    An assumed role's session name is dropped (`.../assumed-role/Role/session` owns what
    `.../assumed-role/Role` owns): sessions of one role are one owner.
    """
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    if claims.get("sub"):
        return f"jwt:{claims['sub']}"
    arn = str((authorizer.get("iam") or {}).get("userArn") or "")
    if arn:
        if ":assumed-role/" in arn:
            arn = arn.rsplit("/", 1)[0]
        return arn
    return None


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", **(headers or {})},
        "body": json.dumps(body, ensure_ascii=False, sort_keys=True),
    }


def handle(event: dict[str, Any], config: CatalogConfig, catalogue: Catalogue, s3: Any) -> dict[str, Any]:
    """Route one request; any Problem becomes its JSON 4xx."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method", "")).upper()
    path = str(event.get("rawPath") or http.get("path") or "")
    try:
        owner = principal(event)
        if owner is None:  # the authorizer lets no such request through; refuse it here too
            raise Forbidden("Authorization", "an authenticated caller", "none")
        if path == "/uploads":
            _allow(method, ("POST",))
            return respond(201, create_upload(_json_body(event), owner, config, catalogue, s3))
        if path == "/images":
            _allow(method, ("GET",))
            return respond(200, list_images(event.get("queryStringParameters") or {}, config, catalogue))
        match = re.fullmatch(r"/images/([^/]+)", path)
        if match:
            image_id = _image_id(unquote(match.group(1)))
            _allow(method, ("GET", "PATCH", "DELETE"))
            if method == "GET":
                return respond(200, show(_found(catalogue, image_id), config))
            if method == "PATCH":
                return respond(200, retag(image_id, _json_body(event), owner, config, catalogue))
            return respond(200, delete(image_id, owner, config, catalogue, s3))
        raise NotFound("path", "/uploads, /images or /images/{id}", path)
    except Problem as problem:
        headers = {"Allow": problem.allow} if isinstance(problem, _MethodNotAllowed) else None
        return respond(problem.status, problem.body(), headers)


class _MethodNotAllowed(Problem):
    status = 405
    error = "MethodNotAllowed"

    def __init__(self, allowed: tuple[str, ...], method: str):
        self.allow = ", ".join(allowed)
        super().__init__("method", "one of " + self.allow, method)


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise _MethodNotAllowed(allowed, method)


def _json_body(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        try:
            raw = base64.b64decode(raw).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise Problem("body", "a UTF-8 JSON object", "bytes that are not UTF-8") from None
    if len(raw) > MAX_BODY:
        raise TooLarge("body", f"a JSON object of at most {MAX_BODY} bytes", f"{len(raw)} bytes")
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise Problem("body", "a JSON object", raw) from None
    if not isinstance(data, dict):
        raise Problem("body", "a JSON object", raw)
    return data


def _image_id(text: str) -> str:
    if not keys.ID_PATTERN.fullmatch(text):
        raise Problem("id", "an image id (a lowercase UUID)", text)
    return text


def _found(catalogue: Catalogue, image_id: str) -> dict[str, Any]:
    item = catalogue.get(image_id)
    if item is None:
        raise NotFound("id", "the id of an image in the catalogue", image_id)
    return item


class _AsJson:
    """A received value shown as JSON (a string is shown JSON-quoted by Problem itself: not twice)."""

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return json.dumps(self.value, ensure_ascii=False, default=str)


def tags_of(value: Any, parameter: str = "tags") -> list[str]:
    """1 to MAX_TAGS distinct tags, each a lowercase word of letters, digits and hyphens (at most 32)."""
    expected = f"a list of at most {MAX_TAGS} tags, each 1-32 lowercase letters, digits or hyphens"
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise Problem(parameter, expected, _AsJson(value))
    tags: list[str] = []
    for tag in value:
        if not isinstance(tag, str) or not TAG.fullmatch(tag.strip().lower()):
            raise Problem(parameter, expected, tag if isinstance(tag, str) else _AsJson(tag))
        if tag.strip().lower() not in tags:
            tags.append(tag.strip().lower())
    return tags


# -- POST /uploads ---------------------------------------------------------------------------


MAX_FILENAME_BYTES = 1024


def create_upload(
    body: dict[str, Any], owner: str, config: CatalogConfig, catalogue: Catalogue, s3: Any
) -> dict[str, Any]:
    filename = body.get("filename")
    if not isinstance(filename, str) or not 0 < len(filename) <= 255 or any(ord(c) < 32 for c in filename):
        raise Problem("filename", "the file's name: 1 to 255 characters, no control characters", str(filename))
    # It travels percent-encoded in x-amz-meta-filename, and S3 limits all user-defined metadata
    # to 2 KB ("Working with object metadata"): the name takes at most half of that.
    if len(quote(filename, safe="")) > MAX_FILENAME_BYTES:
        raise Problem(
            "filename",
            f"the file's name: at most {MAX_FILENAME_BYTES} bytes percent-encoded (about 85 characters outside ASCII)",
            f"{len(quote(filename, safe=''))} bytes",
        )
    content_type = body.get("content_type")
    if content_type not in keys.UPLOAD_TYPES:
        raise Problem("content_type", "one of " + ", ".join(keys.UPLOAD_TYPES), str(content_type))
    tags = tags_of(body.get("tags", []))
    size = body.get("bytes")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise Problem("bytes", "the file's size in bytes, a positive integer", str(size))
        if size > config.max_upload_bytes:
            raise TooLarge("bytes", f"at most {config.max_upload_bytes} bytes", f"{size} bytes")
    image_id, key = keys.new_upload(filename, content_type)
    # Metadata values travel as headers: ASCII only, so the filename is percent-encoded.
    fields = {
        "Content-Type": content_type,
        "x-amz-meta-owner": quote(owner, safe=""),
        "x-amz-meta-tags": ",".join(tags),
        "x-amz-meta-filename": quote(filename, safe=""),
    }
    # Each field the form sends is pinned by an `eq` condition, so none can be changed
    # once signed; the key is pinned by boto3 itself.
    conditions: list[Any] = [{name: value} for name, value in fields.items()]
    conditions.append(["content-length-range", 1, config.max_upload_bytes])
    # The form's URL is the client's: `s3_client` makes it the bucket's regional endpoint.
    post = s3.generate_presigned_post(
        Bucket=config.settings.primary_bucket,
        Key=key,
        Fields=fields,
        Conditions=conditions,
        ExpiresIn=config.upload_seconds,
    )
    created = time.time()
    catalogue.put_pending(
        {
            "id": image_id,
            "key": key,
            "filename": filename,
            "owner": owner,
            "tags": tags,
            "content_type": content_type,
            "requested_at": now_iso(created),
            "expires_at": int(created) + config.pending_seconds,
        }
    )
    return {
        "id": image_id,
        "key": key,
        "status": "pending",
        "upload": {"url": post["url"], "fields": post["fields"], "method": "POST"},
        "max_bytes": config.max_upload_bytes,
        "expires_at": now_iso(created + config.upload_seconds),
        "image": f"/images/{image_id}",
    }


# -- GET /images -----------------------------------------------------------------------------


def _moment(value: str, parameter: str) -> str:
    """An ISO 8601 date or date-time -> the catalogue's UTC form."""
    if not _DATE.fullmatch(value):
        raise Problem(parameter, "an ISO 8601 date or date-time such as 2026-11-22 or 2026-11-22T10:00:00Z", value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(parameter, "a real date and time", value) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return now_iso(moment.timestamp())


def list_images(query: dict[str, str], config: CatalogConfig, catalogue: Catalogue) -> dict[str, Any]:
    known = ("tag", "after", "before", "min_width", "status", "limit", "cursor")
    for name in query:
        if name not in known:
            raise Problem(name, "no such parameter (known: " + ", ".join(known) + ")", query[name])
    tag = query.get("tag")
    if tag is not None:
        tag = tags_of([tag], "tag")[0]
    after = _moment(query["after"], "after") if "after" in query else None
    before = _moment(query["before"], "before") if "before" in query else None
    if after and before and after >= before:
        raise Problem("before", f"a time later than after ({after})", before)
    min_width = _integer(query, "min_width", 1, 65535)
    limit = _integer(query, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
    status = query.get("status", "ready")
    if status not in STATUSES:
        raise Problem("status", "one of " + ", ".join(STATUSES), status)
    if tag is not None and status != "ready":
        raise Problem("status", "ready (tags list ready images only)", status)
    try:
        page = catalogue.query(
            tag=tag,
            after=after,
            before=before,
            min_width=min_width,
            status=status,
            limit=limit,
            cursor=query.get("cursor"),
        )
    except BadCursor:
        raise Problem("cursor", "a cursor this query returned", query.get("cursor", "")) from None
    return {"images": [show(item, config) for item in page.items], "cursor": page.cursor}


def _integer(query: dict[str, str], name: str, low: int, high: int) -> int | None:
    if name not in query:
        return None
    text = query[name]
    if not re.fullmatch(r"[0-9]{1,6}", text) or not low <= int(text) <= high:
        raise Problem(name, f"an integer from {low} to {high}", text)
    return int(text)


# -- one image -------------------------------------------------------------------------------


# The signing key, read from Secrets Manager at most every SIGNING_KEY_SECONDS per container
# (a rotation reaches the API within that; the previous key keeps verifying meanwhile).
SIGNING_KEY_SECONDS = 300
_signing_key: tuple[float, str, str, str] | None = None


def forget_signing_key() -> None:
    """Read the key again on the next request (the emulator calls this when it rotates; on AWS a
    container re-reads within SIGNING_KEY_SECONDS, while the previous key still verifies)."""
    global _signing_key
    _signing_key = None


def signing_key(config: CatalogConfig) -> tuple[str, str] | None:
    """(kid, secret) of the stack's current signing key, or None when the stack does not sign."""
    global _signing_key
    if not config.signing_secret:
        return None
    now = time.monotonic()
    if _signing_key is None or _signing_key[1] != config.signing_secret or now - _signing_key[0] > SIGNING_KEY_SECONDS:
        secrets = config.secrets
        if secrets is None:
            import boto3

            secrets = boto3.client("secretsmanager", region_name=config.settings.primary_region)
        document = json.loads(secrets.get_secret_value(SecretId=config.signing_secret)["SecretString"])
        kid = str(document["current"])
        _signing_key = (now, config.signing_secret, kid, str(document["keys"][kid]))
    return _signing_key[2], _signing_key[3]


def urls(item: dict[str, Any], config: CatalogConfig) -> dict[str, Any]:
    """The CDN URL of each standard width the image has (never wider than itself), of each preset,
    and a srcset (of the presets without a height, with `presetsOnly`); signed with the stack's
    current key when the stack signs URLs."""
    path = "/" + variants.encode_key(str(item["key"])[len(ORIGINAL_PREFIX) :])
    width = int(item.get("width") or 0)
    widths = [w for w in config.settings.widths if w <= width] or list(config.settings.widths[:1])
    key = signing_key(config)

    def url(query: str) -> str:
        relative = f"{path}?{query}" if query else path
        return config.cdn_url + (signing.sign(relative, key[1], key[0]) if key else relative)

    presets = {name: url(f"preset={name}") for name, *_ in config.settings.presets}
    if config.settings.presets_only:
        # Only preset URLs pass the viewer function: the srcset is made of the presets without a height.
        free = sorted((w, name) for name, w, h, *_ in config.settings.presets if h is None)
        return {
            "url": presets[free[-1][1]] if free else next(iter(presets.values())),
            "widths": {},
            "presets": presets,
            "srcset": ", ".join(f"{presets[name]} {w}w" for w, name in free),
        }
    by_width = {str(w): url(f"w={w}") for w in widths}
    return {
        "url": url(""),
        "widths": by_width,
        "presets": presets,
        "srcset": ", ".join(f"{url} {w}w" for w, url in by_width.items()),
    }


def show(item: dict[str, Any], config: CatalogConfig) -> dict[str, Any]:
    shown = dict(item)
    if item.get("status") == "ready":
        shown.update(urls(item, config))
    return shown


def retag(image_id: str, body: dict[str, Any], owner: str, config: CatalogConfig, catalogue: Catalogue) -> Any:
    if set(body) != {"tags"}:
        raise Problem("body", 'a JSON object {"tags": [...]}', json.dumps(body))
    tags = tags_of(body["tags"])
    try:
        item = catalogue.set_tags(image_id, tags, owner)
    except PermissionError:
        raise Forbidden("id", "an image you uploaded", image_id) from None
    if item is None:
        raise NotFound("id", "the id of an image in the catalogue", image_id)
    return show(item, config)


def delete(image_id: str, owner: str, config: CatalogConfig, catalogue: Catalogue, s3: Any) -> dict[str, Any]:
    """The owner's original and its catalogue entry. The bucket is versioned: the bytes stay
    recoverable as a noncurrent version; the sync job drops the variants."""
    item = _found(catalogue, image_id)
    if item.get("owner") != owner:
        raise Forbidden("id", "an image you uploaded", image_id)
    key = str(item["key"])
    if keys.uploaded_id(key) != image_id:
        raise Conflicting("id", "an image uploaded through this API (delete others from the bucket)", image_id)
    s3.delete_object(Bucket=config.settings.primary_bucket, Key=key)
    catalogue.delete(image_id, key=key)
    return {"deleted": image_id, "key": key}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point."""
    return handle(event, *runtime())


def regional_endpoint(region: str) -> str:
    """S3's endpoint in `region` ("Making requests using the REST API", S3 API Reference:
    `s3.<Region>.amazonaws.com`; `.com.cn` in the China Regions)."""
    return f"https://s3.{region}.amazonaws.com" + (".cn" if region.startswith("cn-") else "")


def s3_client(region: str, **options: Any) -> Any:
    """The catalogue functions' S3 client, for a bucket in `region`: SigV4, and the bucket's regional
    virtual-hosted endpoint, so a presigned POST's URL is `https://<bucket>.s3.<region>.amazonaws.com/`.

    Not the global `https://<bucket>.s3.amazonaws.com/` boto3 gives by default: until S3's DNS
    knows where a new bucket lives, a request to the global endpoint goes to us-east-1 and is
    answered with an HTTP 307 Temporary Redirect to the bucket's Region (a 400 in Regions launched
    after March 20, 2019) ("Virtual hosting of general purpose buckets" and "Request routing", S3
    User Guide; up to 24 hours, says the AWS Knowledge Center article on S3's "307 Temporary
    Redirect", whose fix is the bucket's Regional endpoint). A browser's cross-origin multipart
    POST cannot follow that redirect: uploads would fail for a bucket's first day. The regional
    name is the bucket's from the start, in us-east-1 too.

    Path-style (`https://s3.<region>.amazonaws.com/<bucket>`) only where virtual hosting cannot
    work: S3's TLS wildcard certificate matches only bucket names without dots ("Virtual hosting of
    general purpose buckets"), and botocore falls back to path-style for such a name over HTTPS by
    itself. This project's buckets (`<namePrefix>-origin`) have no dots.

    SigV4: the newer Regions take nothing else ("Amazon Simple Storage Service endpoints and
    quotas", its signature versions column). `options`: credentials, for the emulator.
    """
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=region,
        endpoint_url=regional_endpoint(region),
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
        **options,
    )


_RUNTIME: tuple[CatalogConfig, Catalogue, Any] | None = None


def runtime() -> tuple[CatalogConfig, Catalogue, Any]:
    """The deployed functions' configuration, table and S3 client, made once per container (the API
    and the metadata function both run with these)."""
    global _RUNTIME
    if _RUNTIME is None:
        import boto3

        config = CatalogConfig.from_environment()
        region = config.settings.primary_region
        _RUNTIME = (
            config,
            Catalogue(boto3.client("dynamodb", region_name=region), config.table),
            s3_client(region),
        )
    return _RUNTIME

"""The HTTP front: the emulated distribution, the gallery and the `/_localcdn/` controls.

Served by uvicorn (h11, a strict HTTP/1.1 parser) as one ASGI callable built on
Starlette's Request and Response, so every method reaches the code below and every
refusal is a JSON 4xx: a malformed request line or header is uvicorn's to refuse, and
`JsonErrorsH11Protocol` only changes the body of that 400 to JSON. The viewer
function gets the request path exactly as it came (percent-encoding, `//` and all),
as CloudFront hands it over. Handlers that touch S3, V8 or Pillow run in Starlette's
thread pool.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, unquote

import h11
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.protocols.http.h11_impl import H11Protocol

from catalog import api as catalog_api
from edge import variants
from edge.problems import shown
from localcdn import gallery, quality, s3post
from localcdn.catalog import LocalCatalog, upload_signers
from localcdn.cloudfront import CloudFrontError
from localcdn.distribution import PRIMARY_STATES, Distribution
from localcdn.guard import Guard, Refused
from localcdn.jobs import LocalSync
from localcdn.thumbor import ThumborPrimary

CONTROL = "/_localcdn/"
API = "/api"
S3_FRONT = "/_s3/"
DISTRIBUTION_METHODS = ("GET", "HEAD", "OPTIONS")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


STACK_HEADER = "X-Localcdn-Stack"


class Service:
    """What the handler needs: the distribution, its storage, the catalogue, the stack's name, and
    where it listens (`listen`: the `--host` and the port, for the names it answers for)."""

    def __init__(
        self,
        distribution: Distribution,
        stack: str,
        *,
        listen: tuple[str, int],
        quiet: bool = False,
        catalog: LocalCatalog | None = None,
        thumbor: ThumborPrimary | None = None,
    ):
        self.distribution = distribution
        self.storage = distribution.storage
        self.stack = stack
        self.thumbor = thumbor
        self.sync = (
            LocalSync(distribution, service_base=thumbor.base, mirror=thumbor.mirror)
            if thumbor is not None
            else LocalSync(distribution)
        )
        self.quiet = quiet
        self.guard = Guard(*listen)
        self.catalog = catalog
        self.scores = quality.Scores(distribution)
        # Only the catalogue's API signs uploads: without it, S3 here knows no access key at all.
        self.upload_signers = upload_signers() if catalog is not None else s3post.Signers()
        if catalog is not None:
            self.sync.listeners.append(catalog.deliver)


class Refusal(Exception):
    """A request this front refuses: a JSON body in the project's one error shape."""

    def __init__(self, status: int, parameter: str, expected: str, received: object, error: str = "InvalidParameter"):
        self.status = status
        self.body = {
            "error": error,
            "parameter": parameter,
            "expected": expected,
            "received": shown(received),
            "message": f"Expected {expected} for {parameter} but received {shown(received)}",
        }
        super().__init__(self.body["message"])


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data, indent=1) + "\n",
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


class JsonErrorsH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with its 400 for an unparsable request written as JSON."""

    def send_400_response(self, msg: str) -> None:
        body = (
            json.dumps(
                {
                    "error": "BadRequest",
                    "parameter": "request",
                    "expected": "a well-formed HTTP/1.1 request",
                    "received": "a request the HTTP parser refused",
                    "message": msg,
                }
            )
            + "\n"
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"), h11.Data(data=body)):
            self.transport.write(self.conn.send(event))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


def application(service: Service) -> ASGIApp:
    """The ASGI callable uvicorn serves."""

    async def app(
        scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        refused = _guard(service.guard, scope)
        if refused is not None:
            # Answered without reading the body, so the connection closes after it: what was sent
            # as this request's body is never read as the next request.
            refusal = Refusal(refused.status, refused.parameter, refused.expected, refused.received, refused.error)
            await json_response(refusal.status, refusal.body, {"Connection": "close"})(scope, receive, send)
            return
        try:
            if request.method == "POST" and scope["path"].startswith(S3_FRONT):
                # A browser's upload form: multipart, parsed here (python-multipart, through Starlette).
                response = await run_in_threadpool(s3_post, service, scope["path"], await _form(request))
            else:
                body = await request.body()
                response = await run_in_threadpool(dispatch, service, request, body)
        except Refusal as refusal:
            response = json_response(refusal.status, refusal.body)
        await response(scope, receive, send)

    return app


def _guard(guard: Guard, scope: Scope) -> Refused | None:
    """The guard's checks (localcdn/guard.py) on the request's Host, then Origin and Sec-Fetch-Site."""
    headers: dict[bytes, list[str]] = {}
    for name, value in scope["headers"]:
        headers.setdefault(bytes(name).lower(), []).append(bytes(value).decode("latin-1"))
    hosts = headers.get(b"host", [])
    refused = guard.host(hosts)
    if refused is not None:
        return refused
    path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    return guard.origin(scope["method"], path, hosts[0], headers.get(b"origin", []), headers.get(b"sec-fetch-site", []))


async def _form(request: Request) -> list[tuple[str, Any]]:
    """The form's fields in the order sent, the file as bytes."""
    form = await request.form(max_files=1, max_fields=100)
    fields: list[tuple[str, Any]] = []
    for name, value in form.multi_items():
        fields.append((name, await value.read() if isinstance(value, UploadFile) else value))
    await form.close()
    return fields


def s3_post(service: Service, path: str, form: list[tuple[str, Any]]) -> Response:
    """`POST /_s3/<bucket>`: S3's browser upload, checked as S3 checks it, then stored and announced."""
    bucket = path[len(S3_FRONT) :].strip("/")
    if bucket != service.storage.settings.primary_bucket:
        refusal = s3post.PostRefused(404, "NoSuchBucket", "The specified bucket does not exist")
        return Response(refusal.xml(), status_code=refusal.status, media_type="application/xml")
    try:
        signers = service.upload_signers
        upload = s3post.check(bucket, form, signers.secret, may_put=signers.may_put)
    except s3post.PostRefused as refusal:
        return Response(refusal.xml(), status_code=refusal.status, media_type="application/xml")
    extra: dict[str, Any] = {"Metadata": upload.metadata}
    if upload.content_type:
        extra["ContentType"] = upload.content_type
    if "cache-control" in upload.headers:
        extra["CacheControl"] = upload.headers["cache-control"]
    stored = service.storage.client(service.storage.settings.primary_region).put_object(
        Bucket=bucket, Key=upload.key, Body=upload.body, **extra
    )
    service.sync.stored(upload.key)
    etag = str(stored.get("ETag", ""))
    headers = {"ETag": etag, "Location": f"/{bucket}/{upload.key}"}
    if upload.status == 201:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Bucket>{html.escape(bucket)}</Bucket><Key>{html.escape(upload.key)}</Key>"
            f"<ETag>{html.escape(etag)}</ETag></PostResponse>"
        )
        return Response(body, status_code=201, media_type="application/xml", headers=headers)
    return Response(b"", status_code=upload.status, headers=headers)


def dispatch(service: Service, request: Request, body: bytes) -> Response:
    """One request, in a worker thread."""
    service.sync.pump()  # the invalidation queue delivers what is due
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw_path.decode("latin-1")
    method = request.method
    query = request.scope.get("query_string", b"").decode("latin-1")
    if path.startswith(CONTROL):
        name = path[len(CONTROL) :]
        if name.startswith(("app/", "quality/")) and query:
            name += "?" + query  # the app backend passes the query on to the API
        return control(service, method, name, body)
    if path == API or path.startswith(API + "/"):
        if service.catalog is None:
            raise Refusal(404, "path", "a stack with the catalogue on (image-cdn:catalog)", path, "NotFound")
        url = f"{service.catalog.public_url}{path}" + (f"?{query}" if query else "")
        status, api_headers, api_body = service.catalog.request(method, url, dict(request.headers.items()), body)
        # which stack's config the emulator runs: `ops upload/images --stack` refuses another's
        return Response(api_body, status_code=status, headers={**api_headers, STACK_HEADER: service.stack})
    if path == "/" and method in ("GET", "HEAD"):
        page = gallery.render(
            service.stack,
            service.distribution.primary.state,
            service.storage.originals(),
            catalog=service.catalog is not None,
            settings=service.distribution.settings,
            sign=service.distribution.signing.sign if service.distribution.signing is not None else None,
            fmt=variants.choose_format(request.headers.get("accept"), service.distribution.settings),
        )
        return Response(page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
    if method not in DISTRIBUTION_METHODS:
        # CloudFront answers a method the cache behaviour does not allow with 403.
        raise Refusal(403, "method", "one of " + ", ".join(DISTRIBUTION_METHODS), method, "MethodNotAllowed")
    headers = {name: value for name, value in request.headers.items()}
    answer = service.distribution.request(method, path, query, headers)
    return Response(
        answer.body if method != "HEAD" else b"", status_code=answer.status, headers=_response_headers(answer)
    )


def _response_headers(answer: Any) -> dict[str, str]:
    # uvicorn writes the response's Date: an origin's own (thumbor's, S3's) would make two.
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "connection", "date")}
    headers["Content-Length"] = str(len(answer.body))
    return dict(headers)


ENDPOINTS: dict[str, tuple[str, ...]] = {
    "health": ("GET",),
    "primary": ("GET", "PUT"),
    "requests": ("GET",),
    "dlq": ("GET",),
    "variants": ("GET",),
    "invalidate": ("POST",),
    "invalidations": ("GET",),
    "cache": ("GET", "DELETE"),
    "clock": ("GET", "POST"),
    "sync": ("POST",),
    "originals/": ("PUT", "DELETE"),
    "catalog": ("GET",),
    "token": ("POST",),
    "app/": ("GET", "POST", "PATCH", "DELETE"),
    "sign": ("POST",),
    "signing": ("GET", "POST"),
    "faces": ("GET", "PUT"),
    "metrics": ("GET",),
    "quality/": ("GET",),
}


def control(service: Service, method: str, name: str, body: bytes) -> Response:
    """The `/_localcdn/` endpoints (README, "The local emulator")."""
    endpoint = next((e for e in ("originals/", "app/", "quality/") if name.startswith(e)), name)
    allowed = ENDPOINTS.get(endpoint)
    if allowed is None:
        raise Refusal(404, "path", "one of " + ", ".join(CONTROL + e for e in ENDPOINTS), CONTROL + name, "NotFound")
    if method not in allowed:
        refusal = Refusal(405, "method", "one of " + ", ".join(allowed), method, "MethodNotAllowed")
        return json_response(405, refusal.body, {"Allow": ", ".join(allowed)})
    distribution, sync = service.distribution, service.sync
    if endpoint == "health":
        return json_response(
            200,
            {
                "status": "ready",
                "stack": service.stack,
                "primary": distribution.primary.state,
                "s3_endpoint": service.storage.endpoint,
            },
        )
    if endpoint == "primary":
        if method == "PUT":
            state = _text(body).lower()
            if state not in PRIMARY_STATES:
                raise Refusal(400, "primary", "one of " + ", ".join(PRIMARY_STATES), state)
            distribution.set_primary(state)
        return json_response(200, {"primary": distribution.primary.state})
    if endpoint == "requests":
        return json_response(200, list(distribution.log))
    if endpoint == "metrics":
        return json_response(200, distribution.metrics.snapshot(distribution.wall()))
    if endpoint == "dlq":
        return json_response(200, list(sync.dead_letters))
    if endpoint == "variants":
        originals = service.storage.originals()
        stored = {key: service.storage.variants_of(key) for key, _ in originals}
        return json_response(200, gallery.variant_table(originals, stored))
    if endpoint == "invalidate":
        paths = invalidation_paths(body)
        try:
            created = distribution.invalidations.create_invalidation(
                DistributionId=distribution.invalidations.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": f"localcdn-{distribution.now():.6f}",
                },
            )
        except CloudFrontError as error:
            return json_response(
                error.status,
                {
                    "error": error.code,
                    "parameter": "paths",
                    "expected": INVALIDATION_RULES,
                    "received": error.message,
                    "message": error.message,
                },
            )
        return json_response(201, created["Invalidation"])
    if endpoint == "invalidations":
        listing = distribution.invalidations.list_invalidations(
            DistributionId=distribution.invalidations.distribution_id, MaxItems="1000"
        )
        wildcards, files = distribution.invalidations.in_progress()
        return json_response(
            200,
            {
                "in_progress": {"wildcard_paths": wildcards, "file_paths": files},
                "invalidations": listing["InvalidationList"]["Items"],
                "queued": sync.pending(),
            },
        )
    if endpoint == "cache":
        if method == "DELETE":
            return json_response(200, {"expired": distribution.expire()})
        return json_response(200, distribution.cached())
    if endpoint == "clock":
        if method == "POST":
            distribution.advance(_seconds(body))
            sync.pump()
        # Unix time as the edge sees it (a signed URL's `expires` is compared with it), and how far
        # the clock was moved forward in all
        return json_response(200, {"now": round(distribution.wall(), 3), "advanced": distribution.advanced})
    if endpoint == "sync":
        return json_response(200, sync.reconcile())
    if endpoint in ("catalog", "token", "app/"):
        return catalog_control(service, method, endpoint, name[len(endpoint) :], body)
    if endpoint in ("sign", "signing"):
        return signing_control(service, method, endpoint, body)
    if endpoint == "faces":
        if method == "PUT":
            state = _text(body).lower()
            if state not in ("up", "down"):
                raise Refusal(400, "faces", "up or down", state)
            distribution.faces.available = state == "up"
        faces = distribution.faces
        return json_response(
            200, {"faces": "up" if faces.available else "down", "calls": faces.calls, "what": faces.label}
        )
    if endpoint == "quality/":
        return quality_control(service, name[len(endpoint) :])
    key = name[len("originals/") :]
    status, result = sync.upload(key, body) if method == "PUT" else sync.remove(key)
    return json_response(status, result)


def quality_control(service: Service, rest: str) -> Response:
    """`GET /_localcdn/quality/<key>?fm=<format>`: the gallery's comparison of q=60 and q=auto
    (localcdn/quality.py), each variant's bytes and SSIMULACRA 2 score."""
    path, _, query = rest.partition("?")
    key = unquote(path)
    fmt = parse_qs(query).get("fm", [""])[0]
    settings = service.distribution.settings
    if fmt not in settings.formats:
        raise Refusal(400, "fm", "one of " + ", ".join(settings.formats), fmt)
    try:
        return json_response(200, service.scores.compare(key, fmt))
    except KeyError:
        raise Refusal(404, "key", "the key of an original", key, "NotFound") from None


def signing_control(service: Service, method: str, endpoint: str, body: bytes) -> Response:
    """`POST /_localcdn/sign` (body: a path and query, or JSON {"url", "expires_in"}): the URL signed
    with the current key; `GET /_localcdn/signing`: which keys the store holds; `POST` rotates."""
    signer = service.distribution.signing
    if signer is None:
        raise Refusal(409, "signing", "optional or required (image-cdn:signing)", "off")
    if endpoint == "signing":
        if method == "POST":
            state = signer.rotate()
            catalog_api.forget_signing_key()
            return json_response(200, state)
        return json_response(200, signer.state())
    text = _text(body)
    expires_in: object = None
    url: object = text
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        url, expires_in = data.get("url"), data.get("expires_in")
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        raise Refusal(400, "url", "a path on this host, such as /products/shoe.jpg?w=800", url)
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 1):
        raise Refusal(400, "expires_in", "a positive number of seconds", expires_in)
    expires = None if expires_in is None else int(service.distribution.wall()) + int(expires_in)
    return json_response(200, {"url": signer.sign(url, expires), "kid": signer.state()["current"], "expires": expires})


def catalog_control(service: Service, method: str, endpoint: str, rest: str, body: bytes) -> Response:
    """`/_localcdn/catalog` (the catalogue's state), `/_localcdn/token` (a JWT from the local issuer,
    catalogAuth jwt), `/_localcdn/app/<api path>` (your app's backend: the API called as user
    `gallery`, signed or with a token, for the gallery page)."""
    catalog = service.catalog
    if catalog is None:
        raise Refusal(404, "path", "a stack with the catalogue on (image-cdn:catalog)", CONTROL + endpoint, "NotFound")
    if endpoint == "catalog":
        return json_response(200, {"auth": catalog.auth, "api": catalog.api_base, "failures": catalog.failures})
    if endpoint == "token":
        if catalog.issuer is None:
            raise Refusal(409, "catalogAuth", "jwt (this stack's API takes IAM-signed requests)", catalog.auth)
        text = _text(body)
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("sub"), str) or not data["sub"]:
            raise Refusal(400, "sub", 'a JSON object {"sub": "<user>"}', text)
        token = catalog.issuer.token(data["sub"], scope=" ".join(catalog.scopes))
        return json_response(200, {"token": token, "issuer": catalog.issuer.issuer})
    path, _, query = rest.partition("?")
    status, headers, answer = catalog.signed(method, "/" + path + (f"?{query}" if query else ""), body)
    return Response(answer, status_code=status, headers={**headers, "Cache-Control": "no-store"})


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Refusal(400, "body", "UTF-8 text", body[:32].hex()) from None


def _seconds(body: bytes) -> float:
    """`{"advance": 61}` or a bare number: how far to move the clock forward."""
    text = _text(body)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    value = data.get("advance") if isinstance(data, dict) else data
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 10 * 365 * 86400:
        received = value if data is not None else text  # the number given, not the whole body
        raise Refusal(400, "advance", "a number of seconds from 0 to 315360000", received)
    return float(value)


# CloudFront's rules for an invalidation request, as the emulator applies them (localcdn/cloudfront.py).
INVALIDATION_RULES = (
    "paths that start with '/' with '*' only at the end, at most 3,000 in a request; at most 15 wildcard "
    "and 3,000 file paths in progress"
)


def invalidation_paths(body: bytes) -> list[str]:
    """An invalidation body: a JSON list of paths, {"paths": [...]}, or one path per line. Never empty."""
    text = _text(body)
    expected = 'a JSON list of paths, {"paths": [...]}, or one path per line (`/*` for everything)'
    if not text:
        raise Refusal(400, "paths", expected, text)
    if text[:1] in "[{":
        try:
            data = json.loads(text)
        except ValueError:
            raise Refusal(400, "paths", expected, text) from None
        paths = data.get("paths") if isinstance(data, dict) else data
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
            raise Refusal(400, "paths", expected, text)
        return list(paths)
    return [line.strip() for line in text.splitlines() if line.strip()]

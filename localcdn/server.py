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

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.protocols.http.h11_impl import H11Protocol

from edge.problems import shown
from localcdn import gallery
from localcdn.cloudfront import CloudFrontError
from localcdn.distribution import PRIMARY_STATES, Distribution
from localcdn.jobs import LocalSync

CONTROL = "/_localcdn/"
DISTRIBUTION_METHODS = ("GET", "HEAD", "OPTIONS")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class Service:
    """What the handler needs: the distribution, its storage, and the stack's name."""

    def __init__(self, distribution: Distribution, stack: str, *, quiet: bool = False):
        self.distribution = distribution
        self.storage = distribution.storage
        self.stack = stack
        self.sync = LocalSync(distribution)
        self.quiet = quiet


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
        body = await request.body()
        try:
            response = await run_in_threadpool(dispatch, service, request, body)
        except Refusal as refusal:
            response = json_response(refusal.status, refusal.body)
        await response(scope, receive, send)

    return app


def dispatch(service: Service, request: Request, body: bytes) -> Response:
    """One request, in a worker thread."""
    service.sync.pump()  # the invalidation queue delivers what is due
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    path = raw_path.decode("latin-1")
    method = request.method
    if path.startswith(CONTROL):
        return control(service, method, path[len(CONTROL) :], body)
    if path == "/" and method in ("GET", "HEAD"):
        page = gallery.render(service.stack, service.distribution.primary.state, service.storage.originals())
        return Response(page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})
    if method not in DISTRIBUTION_METHODS:
        # CloudFront answers a method the cache behaviour does not allow with 403.
        raise Refusal(403, "method", "one of " + ", ".join(DISTRIBUTION_METHODS), method, "MethodNotAllowed")
    query = request.scope.get("query_string", b"").decode("latin-1")
    headers = {name: value for name, value in request.headers.items()}
    answer = service.distribution.request(method, path, query, headers)
    return Response(
        answer.body if method != "HEAD" else b"", status_code=answer.status, headers=_response_headers(answer)
    )


def _response_headers(answer: Any) -> dict[str, str]:
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "connection")}
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
}


def control(service: Service, method: str, name: str, body: bytes) -> Response:
    """The `/_localcdn/` endpoints (README, "The local emulator")."""
    endpoint = "originals/" if name.startswith("originals/") else name
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
            return json_response(error.status, {"error": error.code, "parameter": "paths", "message": error.message})
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
        return json_response(200, {"now": distribution.now()})
    if endpoint == "sync":
        return json_response(200, sync.reconcile())
    key = name[len("originals/") :]
    status, result = sync.upload(key, body) if method == "PUT" else sync.remove(key)
    return json_response(status, result)


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
        raise Refusal(400, "advance", "a number of seconds from 0 to 315360000", text)
    return float(value)


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

"""The CloudFront distribution, emulated: viewer function, cache, origin group, edge functions.

It runs the same code and the same generated config as a deployed stack:
normalize.js in V8 with the stack's CONFIG line, then `edge.rewrite` and
`edge.resize` with CloudFront's event shapes, against S3 origins that answer like
OAC-fronted buckets. What CloudFront does around them is modelled here:

- cache keyed by the URI alone; Cache-Control honoured (no-store, max-age), objects
  without one kept for the cache policy's default TTL, errors for the stack's error
  caching TTL; function-generated 400s never cached;
- the origin group: the primary first; on a connection failure, or a 500/502/503/504
  after origin-response has run, the same request goes to the fallback, with
  origin-request and origin-response run again;
- Lambda@Edge rules: a generated response over 1 MB (headers and base64 body
  counted) is a 502, as CloudFront answers a LambdaValidationError;
- the response headers policy: Vary: Accept, HSTS, nosniff, CORS.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from components.bundle import viewer_code
from components.distribution import ERROR_CODES, FAILOVER_STATUS_CODES, ONE_DAY, ONE_YEAR
from edge import resize, rewrite
from edge.settings import VARIANT_PREFIX, Settings
from localcdn import events
from localcdn.storage import LocalS3
from localcdn.viewer import ViewerFunction

PRIMARY_STATES = ("up", "down", "error")


class OriginUnreachable(Exception):
    """The TCP connection to an origin failed (refused or timed out)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    origin: str | None = None
    timing: list[str] = field(default_factory=list)


@dataclass
class Origin:
    """One S3 origin of the group, as CloudFront reaches it through its OAC."""

    name: str
    bucket: str
    region: str
    readable_prefix: str
    storage: LocalS3
    state: str = "up"

    @property
    def domain(self) -> str:
        return f"{self.bucket}.s3.{self.region}.amazonaws.com"

    def get(self, uri: str) -> tuple[int, dict[str, str], bytes]:
        if self.state == "down":
            raise OriginUnreachable(f"{self.name}: connection refused")
        if self.state == "error":
            return 503, {"Content-Type": "application/xml"}, b"<Error><Code>ServiceUnavailable</Code></Error>"
        return self.storage.origin_get(self.bucket, uri, self.readable_prefix)


@dataclass
class Entry:
    response: Response
    expires: float


def cache_seconds(response: Response, error_ttl: int) -> float:
    """How long CloudFront keeps a response under our cache policy (min 0, default 1 day, max 1 year)."""
    if response.status in ERROR_CODES:
        return error_ttl
    directives = [part.strip().lower() for part in response.headers.get("Cache-Control", "").split(",")]
    if any(d in ("no-store", "no-cache", "private") for d in directives):
        return 0
    for prefix in ("s-maxage=", "max-age="):
        for directive in directives:
            if directive.startswith(prefix) and directive[len(prefix) :].isdigit():
                return min(int(directive[len(prefix) :]), ONE_YEAR)
    return ONE_DAY


def _plain_headers(cloudfront_headers: dict[str, list[dict[str, str]]]) -> dict[str, str]:
    return {values[0].get("key", name): values[0]["value"] for name, values in cloudfront_headers.items() if values}


class Distribution:
    """Everything between a viewer and the buckets."""

    def __init__(
        self,
        settings: Settings,
        storage: LocalS3,
        *,
        error_caching_seconds: int,
        cors_origins: tuple[str, ...] = ("*",),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.storage = storage
        self.viewer = ViewerFunction(viewer_code(settings))
        self.primary = Origin("primary", settings.primary_bucket, settings.primary_region, VARIANT_PREFIX, storage)
        self.fallback = Origin("fallback", settings.fallback_bucket, settings.fallback_region, "", storage)
        self.error_caching_seconds = error_caching_seconds
        self.cors_origins = cors_origins
        self.clock = clock
        self._cache: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)

    # -- control ---------------------------------------------------------------------

    def set_primary(self, state: str) -> None:
        if state not in PRIMARY_STATES:
            raise ValueError(state)
        self.primary.state = state

    def invalidate(self, paths: list[str] | None = None) -> int:
        """Drop cached objects: all, or those matching paths (a trailing * matches a prefix)."""
        with self._lock:
            if not paths:
                dropped = len(self._cache)
                self._cache.clear()
                return dropped
            doomed = {
                key
                for key in self._cache
                if any(key == path or (path.endswith("*") and key.startswith(path[:-1])) for path in paths)
            }
            for key in doomed:
                del self._cache[key]
            return len(doomed)

    # -- a viewer request --------------------------------------------------------------

    def request(self, method: str, uri: str, querystring: str, headers: dict[str, str]) -> Response:
        started = self.clock()
        lowered = {name.lower(): value for name, value in headers.items()}
        result = self.viewer.run(uri, querystring, {k: v for k, v in lowered.items() if k in ("accept", "host")})
        if "statusCode" in result:
            body = result.get("body", {})
            response = Response(
                int(result["statusCode"]),
                _plain_headers_function(result.get("headers", {})),
                str(body.get("data", "")).encode(),
            )
            response.headers["X-Cache"] = "FunctionGeneratedResponse"
            self._record(method, uri, querystring, lowered, None, response)
            return self._finish(response, lowered)
        key = str(result["uri"])
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and entry.expires <= self.clock():
                del self._cache[key]
                entry = None
        if entry is not None:
            response = Response(
                entry.response.status, dict(entry.response.headers), entry.response.body, entry.response.origin
            )
            response.headers["X-Cache"] = "Hit"
            response.timing = ["cdn-cache;desc=HIT"]
        else:
            response = self._from_origins(method, key)
            ttl = cache_seconds(response, self.error_caching_seconds)
            if ttl > 0:
                with self._lock:
                    self._cache[key] = Entry(response, self.clock() + ttl)
            response = Response(
                response.status,
                dict(response.headers),
                response.body,
                response.origin,
                ["cdn-cache;desc=MISS", *response.timing],
            )
            response.headers["X-Cache"] = "Miss"
        response.timing.append(f"cdn-total;dur={(self.clock() - started) * 1000:.1f}")
        self._record(method, uri, querystring, lowered, key, response)
        return self._finish(response, lowered)

    def _from_origins(self, method: str, uri: str) -> Response:
        """The origin group: primary, then (on failure) fallback, each with both edge functions."""
        response = Response(502, {"Content-Type": "application/json"}, b'{"error":"NoOrigin"}')
        for origin in (self.primary, self.fallback):
            request_event = events.origin_request(uri, origin.domain, origin.region, method=method)
            forwarded = rewrite.handle(request_event, self.settings)
            if "status" in forwarded:  # origin-request answered itself: no origin, no failover
                return self._generated(forwarded, origin.name)
            try:
                status, headers, body = origin.get(str(forwarded["uri"]))
            except OriginUnreachable:
                response = Response(
                    502, {"Content-Type": "application/json"}, b'{"error":"OriginUnreachable"}', origin.name
                )
                continue
            response_event = events.origin_response(forwarded, status, headers)
            original = response_event["Records"][0]["cf"]["response"]
            answered = resize.handle(response_event, self.settings, self.storage.client)
            if answered is original:
                response = Response(int(original["status"]), headers, body, origin.name)
            else:
                response = self._generated(answered, origin.name)
            if response.status not in FAILOVER_STATUS_CODES:
                return response
        return response

    def _generated(self, answer: dict[str, Any], origin: str) -> Response:
        """A Lambda@Edge generated response, checked as CloudFront checks it."""
        if len(json.dumps(answer)) > self.settings.response_limit_bytes:
            problem = {
                "error": "LambdaValidationError",
                "message": "generated response over the 1 MB Lambda@Edge limit",
            }
            return Response(502, {"Content-Type": "application/json"}, json.dumps(problem).encode(), origin)
        headers = _plain_headers(answer.get("headers", {}))
        raw = answer.get("body", "")
        body = base64.b64decode(raw) if answer.get("bodyEncoding") == "base64" else str(raw).encode()
        timing = [part.strip() for part in headers.pop("Server-Timing", "").split(",") if part.strip()]
        return Response(int(answer["status"]), headers, body, origin, timing)

    def _finish(self, response: Response, request_headers: dict[str, str]) -> Response:
        """The response headers policy, plus the emulator's own X-Origin and Server-Timing."""
        headers = response.headers
        headers["Vary"] = "Accept"
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        viewer_origin = request_headers.get("origin")
        if viewer_origin and ("*" in self.cors_origins or viewer_origin in self.cors_origins):
            headers["Access-Control-Allow-Origin"] = "*" if "*" in self.cors_origins else viewer_origin
            headers["Access-Control-Expose-Headers"] = "Server-Timing"
        if response.origin:
            headers["X-Origin"] = response.origin
        if response.timing:
            headers["Server-Timing"] = ", ".join(response.timing)
        return response

    def _record(
        self, method: str, uri: str, query: str, headers: dict[str, str], key: str | None, response: Response
    ) -> None:
        self.log.append(
            {
                "method": method,
                "uri": uri,
                "query": query,
                "accept": headers.get("accept"),
                "user_agent": headers.get("user-agent"),
                "canonical": key,
                "status": response.status,
                "content_type": response.headers.get("Content-Type"),
                "bytes": len(response.body),
                "x_cache": response.headers.get("X-Cache"),
                "origin": response.origin,
            }
        )


def _plain_headers_function(headers: dict[str, dict[str, str]]) -> dict[str, str]:
    """CloudFront Functions' `{"name": {"value": v}}` headers -> plain ones."""
    return {"-".join(word.capitalize() for word in name.split("-")): value["value"] for name, value in headers.items()}

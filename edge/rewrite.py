"""Lambda@Edge origin-request: the canonical variant path -> the key of the origin asked.

CloudFront runs it for the primary and, on failover, again for the fallback. The
primary stores every variant under `variants/`: the primary origin's path is
`/variants` (declared on the distribution, and set here again), so the URI itself
is never changed for it. The fallback holds only the standard set, so a request is
mapped to its nearest standard variant there, in a format the client decodes, and
the asked-for path travels along in a request header so that origin-response can
tell a substitute from the real thing. Anything that is not a canonical variant path
is answered here with a 400 and never forwarded.

Idempotent: AWS's documents say CloudFront "sends the same request to the secondary
origin" ("Optimizing high availability with CloudFront origin failover") without
saying whether that is the request as the viewer function left it or as this function
forwarded it to the primary. Neither reading changes the result: the primary's URI is
left as it came, and on the fallback a path that is already the nearest standard
variant of the asked-for one (named in the header) maps to itself.

With a third-party image service as the primary (`primary_kind` http, a custom origin),
the primary gets the service's own URL for the canonical variant (edge/templates.py)
instead, and the asked-for path travels in the same header, so that a failover to the
fallback still maps the variant the viewer asked for.

Imports nothing heavy (no boto3, no Pillow): this runs on every cache miss.
"""

from __future__ import annotations

from edge import templates, variants
from edge.problems import header_list, json_response, not_found, problem_response
from edge.settings import REQUESTED_HEADER, TYPE_CHECKING, VARIANT_PREFIX, Settings, bundled

if TYPE_CHECKING:
    from typing import Any

PRIMARY_ORIGIN_PATH = "/" + VARIANT_PREFIX.rstrip("/")


def requested_path(request: dict[str, Any], settings: Settings) -> str:
    """The variant the viewer asked for: the header this function set, when it is still true of the URI."""
    uri = str(request.get("uri", ""))
    values = (request.get("headers") or {}).get(REQUESTED_HEADER.lower()) or []
    if values:
        claimed = str(values[0].get("value", ""))
        try:
            nearest = variants.nearest_standard(variants.canonical(claimed, settings), settings)
        except variants.VariantError:
            return uri
        if nearest is not None and variants.format(nearest) == uri:
            return claimed
        if settings.primary_kind == "http":
            # CloudFront may resend to the fallback the request this function sent the service
            # (with the service's URL): the claim holds when that URL is exactly the claim's.
            query = str(request.get("querystring", ""))
            sent = uri + (f"?{query}" if query else "")
            if templates.service_url(variants.canonical(claimed, settings), settings) == sent:
                return claimed
    return uri


def handle(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Return the request to forward, or a generated response."""
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    origin = settings.origin_of(request)
    asked = requested_path(request, settings) if origin == "fallback" else str(request.get("uri", ""))
    try:
        variant = variants.canonical(asked, settings)
    except variants.VariantError as problem:
        return problem_response(problem, cache_seconds=settings.error_cache_seconds)
    if origin == "primary" and settings.primary_kind == "http":
        # A third-party service (a custom origin): its own URL for the variant.
        path, _, query = templates.service_url(variant, settings).partition("?")
        request["origin"]["custom"]["path"] = ""
        request["uri"] = path
        request["querystring"] = query
        request.setdefault("headers", {}).update(header_list({REQUESTED_HEADER: asked}))
        return request
    if origin == "primary":
        request["origin"]["s3"]["path"] = PRIMARY_ORIGIN_PATH
    elif origin == "fallback":
        substitute = variants.nearest_standard(variant, settings)
        if substitute is None:
            what = f"standard variant in a format a client asking for {variant.fmt} decodes"
            return not_found(what, variant.key, cache_seconds=settings.error_cache_seconds)
        request["uri"] = variants.format(substitute)
        request.setdefault("headers", {}).update(header_list({REQUESTED_HEADER: asked}))
    else:
        # An origin we do not know would be asked for a key we cannot vouch for.
        body = {"error": "UnknownOrigin", "message": "origin-request reached an origin that is neither bucket"}
        return json_response(502, body, cache_seconds=0)
    request["querystring"] = ""
    return request


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: runs with the `config.json` bundled beside this file."""
    return handle(event, bundled())

"""Lambda@Edge origin-request: the canonical variant path -> the key of the origin asked.

CloudFront runs it for the primary and, on failover, again for the fallback. The
primary stores every variant under `variants/`; the fallback holds only the standard
set, so a request is mapped to its nearest standard variant there. Anything that is
not a canonical variant path is answered here with a 400 and never forwarded.

Imports nothing heavy (no boto3, no Pillow): this runs on every cache miss.
"""

from __future__ import annotations

from edge import variants
from edge.problems import json_response, problem_response
from edge.settings import TYPE_CHECKING, VARIANT_PREFIX, Settings, bundled

if TYPE_CHECKING:
    from typing import Any


def handle(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Return the request to forward, or a generated response."""
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    try:
        variant = variants.canonical(str(request.get("uri", "")), settings)
    except variants.VariantError as problem:
        return problem_response(problem, cache_seconds=settings.error_cache_seconds)
    origin = settings.origin_of(request)
    if origin == "primary":
        request["uri"] = "/" + VARIANT_PREFIX.rstrip("/") + variants.format(variant)
    elif origin == "fallback":
        request["uri"] = variants.format(variants.nearest_standard(variant, settings))
    else:
        # An origin we do not know would be asked for a key we cannot vouch for.
        body = {"error": "UnknownOrigin", "message": "origin-request reached an origin that is neither bucket"}
        return json_response(502, body, cache_seconds=0)
    request["querystring"] = ""
    return request


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point: runs with the `config.json` bundled beside this file."""
    return handle(event, bundled())

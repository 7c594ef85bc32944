"""Client errors in one shape, and the CloudFront response objects that carry them.

Every 4xx the edge returns names the parameter, what was expected and what came,
in the style of sharp: `Expected positive integer for width but received "-3"`.
The viewer function (normalize.js) writes the same JSON body.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing costs a cold start ~10 ms; mypy still reads the block
if TYPE_CHECKING:
    from typing import Any

REASONS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

_SHOWN_CHARS = 64


def shown(value: object) -> str:
    """How a received value appears in a message: JSON-quoted, cut to 64 characters."""
    if isinstance(value, str):
        cut = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "..."
        return json.dumps(cut, ensure_ascii=False)
    return str(value)


class Problem(Exception):
    """A request or an input the service refuses; `status` is the HTTP answer."""

    status = 400
    error = "InvalidParameter"

    def __init__(self, parameter: str, expected: str, received: object, *, status: int | None = None):
        self.parameter = parameter
        self.expected = expected
        self.received = shown(received)
        if status is not None:
            self.status = status
        super().__init__(f"Expected {expected} for {parameter} but received {self.received}")

    @property
    def message(self) -> str:
        return str(self.args[0])

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "parameter": self.parameter,
            "expected": self.expected,
            "received": self.received,
            "message": self.message,
        }


def header_list(headers: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Plain headers -> CloudFront's `{"lower": [{"key": "Name", "value": v}]}` shape."""
    return {name.lower(): [{"key": name, "value": value}] for name, value in headers.items()}


def set_headers(response: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    """Set (replace) headers on a CloudFront response object, in place; returns it."""
    response.setdefault("headers", {}).update(header_list(headers))
    return response


def json_response(
    status: int, body: dict[str, Any], *, cache_seconds: int = 0, cache_control: str | None = None
) -> dict[str, Any]:
    """A generated Lambda@Edge response with a JSON body and a short cache lifetime (`cache_control`,
    when given, instead: a refusal that CloudFront may keep as long as a variant)."""
    cache = cache_control or (f"public, max-age={cache_seconds}" if cache_seconds > 0 else "no-store")
    return {
        "status": str(status),
        "statusDescription": REASONS.get(status, "Error"),
        "headers": header_list(
            {
                "Content-Type": "application/json",
                "Cache-Control": cache,
                "X-Content-Type-Options": "nosniff",
            }
        ),
        "body": json.dumps(body, ensure_ascii=False, sort_keys=True),
        "bodyEncoding": "text",
    }


def problem_response(problem: Problem, *, cache_seconds: int = 0, cache_control: str | None = None) -> dict[str, Any]:
    return json_response(problem.status, problem.body(), cache_seconds=cache_seconds, cache_control=cache_control)


def not_found(what: str, key: str, *, cache_seconds: int) -> dict[str, Any]:
    body = {
        "error": "NotFound",
        "parameter": "key",
        "expected": what,
        "received": shown(key),
        "message": f"No {what} for key {shown(key)}",
    }
    return json_response(404, body, cache_seconds=cache_seconds)

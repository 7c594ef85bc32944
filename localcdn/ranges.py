"""Range GETs, as CloudFront answers them.

From "How CloudFront processes partial requests for an object (range GETs)" (CloudFront
Developer Guide):

- "If the cache in that edge location already contains the entire object or the requested
  portion of the object, CloudFront immediately serves the requested range from the cache."
- On a miss, "CloudFront forwards the request to the origin. (To optimize performance,
  CloudFront may request a larger range than the client requested in the Range GET.)" An
  origin that supports ranges (Amazon S3 does) "returns the requested range. CloudFront serves
  the requested range and also caches it"; one that does not "returns the entire object.
  CloudFront serves the entire object and also caches the entire object", and answers later
  range requests from it. The emulator always asks for the largest range, the whole object
  (`WHOLE`): S3 answers it with a 206 of every byte, which is cached as the object, and the
  viewer gets the range asked for; an answer made by a function (resize's rendering on a miss)
  is the entire object, served whole with its 200, and later ranges come from the cache.
- "CloudFront generally follows the RFC specification for the Range header. However, if your
  Range headers don't adhere to the following requirements, CloudFront will return HTTP status
  code 200 with the full object instead of status code 206 with the specified ranges": the
  ranges in ascending order, not overlapping, and every range specification valid ("you can't
  specify a negative value as part of a range").

The rest is the RFC (RFC 9110, "Range Requests", which the document's RFC reference has
become): only GET takes a Range; only a 200 is cut into ranges; a unit other than `bytes` is
ignored; `first-last` (last clamped to the end), `first-` and the suffix `-n` (the last n
bytes); ranges that start past the end are dropped, and none left is 416 with `Content-Range:
bytes */<length>`; one range is a 206 with `Content-Range`, several a 206
`multipart/byteranges`.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from dataclasses import replace

from localcdn.response import Response

# What the emulator forwards to the origin for a range request: the largest range there is.
WHOLE = "bytes=0-"
_SPEC = re.compile(r"(\d*)-(\d*)")
_WHOLE_ANSWER = re.compile(r"bytes 0-(\d+)/(\d+)")

Spec = tuple[int | None, int | None]
"""One range as asked: (first, last); (None, n) is the suffix `-n`, (first, None) is `first-`."""


def asked(method: str, header: str | None) -> list[Spec] | None:
    """The ranges a request asks for, or None when it is answered as if it asked for none (not a
    GET, no Range, another unit, or a range specification that is not valid)."""
    if method != "GET" or header is None:
        return None
    unit, equals, ranges = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs: list[Spec] = []
    for part in ranges.split(","):
        match = _SPEC.fullmatch(part.strip())
        if match is None or match[1] == match[2] == "":
            return None  # "bytes=abc", "bytes=-", "bytes=-5-10" (a negative value)
        first = int(match[1]) if match[1] else None
        last = int(match[2]) if match[2] else None
        if first is not None and last is not None and last < first:
            return None
        specs.append((first, last))
    return specs


def whole(response: Response) -> Response:
    """An origin's 206 to `WHOLE` as the entire object it is (a 200, what the cache keeps); any other
    answer as it is."""
    match = _WHOLE_ANSWER.fullmatch(response.headers.get("Content-Range", ""))
    complete = match is not None and int(match[1]) + 1 == int(match[2]) == len(response.body)
    if response.status != 206 or not complete:
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-range"}
    return replace(response, status=200, headers=headers)


def honoured(response: Response) -> bool:
    """Whether an origin answered the forwarded range (206) rather than with the entire object."""
    return response.status == 206


def serve(response: Response, specs: list[Spec]) -> Response:
    """The asked ranges of an entire object (a 200), as CloudFront serves them."""
    if response.status != 200:
        return response
    length = len(response.body)
    resolved: list[tuple[int, int]] = []
    for first, last in specs:
        if first is None:  # the suffix -n: the last n bytes
            assert last is not None
            start, end = max(length - last, 0), length - 1
            if last == 0:
                start = length  # "-0" asks for nothing: never satisfiable
        else:
            start, end = first, length - 1 if last is None else min(last, length - 1)
        resolved.append((start, end))
    for (_, previous_end), (start, _) in itertools.pairwise(resolved):
        if start <= previous_end:  # not ascending, or overlapping: the whole object, 200
            return response
    satisfiable = [(start, end) for start, end in resolved if start < length and start <= end]
    if not satisfiable:
        problem = {
            "error": "InvalidRange",
            "parameter": "Range",
            "expected": f"a range that starts inside the object's {length} bytes",
            "received": ",".join("-".join("" if v is None else str(v) for v in spec) for spec in specs),
        }
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
        headers.update({"Content-Type": "application/json", "Content-Range": f"bytes */{length}"})
        return replace(response, status=416, headers=headers, body=json.dumps(problem).encode())
    if len(satisfiable) == 1:
        ((start, end),) = satisfiable
        headers = {**response.headers, "Content-Range": f"bytes {start}-{end}/{length}"}
        return replace(response, status=206, headers=headers, body=response.body[start : end + 1])
    boundary = secrets.token_hex(12)
    kind = response.headers.get("Content-Type", "application/octet-stream")
    parts = [
        f"--{boundary}\r\nContent-Type: {kind}\r\nContent-Range: bytes {start}-{end}/{length}\r\n\r\n".encode()
        + response.body[start : end + 1]
        + b"\r\n"
        for start, end in satisfiable
    ]
    headers = {**response.headers, "Content-Type": f"multipart/byteranges; boundary={boundary}"}
    return replace(response, status=206, headers=headers, body=b"".join(parts) + f"--{boundary}--\r\n".encode())

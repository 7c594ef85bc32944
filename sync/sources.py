"""Where the sync job learns which originals exist when they are not in our bucket.

`originalsSource` in the stack's config:

    s3       `originals/` in the primary bucket, listed page by page (sync/job.py)
    jsonl    a JSON-lines manifest, one original per line: `{"key": "products/shoe.jpg",
             "etag": "...", "size": 123}` (etag and size optional; `lastModified` stands in
             for a missing etag), or a bare JSON string `"products/shoe.jpg"`
    sitemap  an XML sitemap (or a sitemap index of them): each `<image:loc>` of Google's image
             extension, else each `<loc>`, is an original; its URL path is the key

at `s3://bucket/key` or an https:// URL. Every source is read as a stream, one line or one
XML element at a time, and yields originals as it goes (what `make` builds of a key, a version
and a size: sync/job.py's `Original.of`, so this module imports nothing of the job's): a
manifest of millions of lines never sits in memory. A line that cannot be read is reported (the dead-letter queue) and
skipped; the rest goes on.

The HTTP client is urllib3, which the Lambda runtime already carries (botocore depends on it):
no new dependency in the sync bundle.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

# One manifest line, at most (a key is at most 1 KB; the rest is a few fields).
MAX_LINE_BYTES = 64 * 1024
# Sitemap indexes nest only one level in the protocol; a loop of indexes stops here.
MAX_SITEMAP_DEPTH = 2
READ_BYTES = 64 * 1024
_SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_IMAGE = "{http://www.google.com/schemas/sitemap-image/1.1}"
Report = Callable[[dict[str, str]], None]
# What `make` builds of (key, version, size): the job's `Original`.
Original = TypeVar("Original")


class SourceError(RuntimeError):
    """The source itself cannot be read (not one bad line: those are reported and skipped)."""


def open_stream(location: str, s3: Callable[[str], Any], http: Any) -> IO[bytes]:
    """A readable stream of the source: an S3 object's body or an HTTP response, never read whole."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        try:
            return s3("").get_object(Bucket=bucket, Key=key)["Body"]  # type: ignore[no-any-return]
        except Exception as error:
            raise SourceError(f"cannot read {location}: {error}") from error
    answer = http.request("GET", location, preload_content=False, redirect=True)
    if answer.status != 200:
        answer.release_conn()
        raise SourceError(f"cannot read {location}: HTTP {answer.status}")
    return answer  # type: ignore[no-any-return]


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) from a stream, in bounded memory; an over-long line is yielded cut short."""
    number, pending = 0, b""
    while True:
        chunk = stream.read(READ_BYTES)
        if not chunk:
            break
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                break
            number += 1
            yield number, pending[:end]
            pending = pending[end + 1 :]
        if len(pending) > MAX_LINE_BYTES:
            number += 1
            yield number, pending[: MAX_LINE_BYTES + 1]
            # skip the rest of this line
            while b"\n" not in pending:
                pending = stream.read(READ_BYTES)
                if not pending:
                    return
            pending = pending[pending.find(b"\n") + 1 :]
    if pending.strip():
        yield number + 1, pending


def version_of(etag: str, last_modified: str) -> str:
    """The version an original is known by: its ETag, else a digest of its Last-Modified, else ""."""
    if etag:
        return etag.strip('"')
    if last_modified:
        return "lm-" + hashlib.sha256(last_modified.encode()).hexdigest()[:16]
    return ""


def jsonl(stream: IO[bytes], report: Report, make: Callable[[str, str, int], Original | None]) -> Iterator[Original]:
    for number, raw in _lines(stream):
        line = raw.strip()
        if not line:
            continue
        problem = None
        if len(line) > MAX_LINE_BYTES:
            problem = f"longer than {MAX_LINE_BYTES} bytes"
        else:
            try:
                entry = json.loads(line)
            except ValueError as error:
                problem = f"not JSON ({error})"
            else:
                if isinstance(entry, str):
                    entry = {"key": entry}
                if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                    problem = 'expected {"key": "...", "etag"?, "size"?} or a JSON string'
                else:
                    size = entry.get("size", 0)
                    version = version_of(str(entry.get("etag") or ""), str(entry.get("lastModified") or ""))
                    original = make(entry["key"].lstrip("/"), version, size if isinstance(size, int) else 0)
                    if original is None:
                        problem = f"not a usable key: {entry['key'][:200]!r}"
                    else:
                        yield original
        if problem:
            report({"source": "manifest", "line": str(number), "reason": problem})


def _key_of(url: str, path_prefix: str) -> str:
    path = unquote(urlsplit(url.strip()).path)
    if path_prefix and path.startswith(path_prefix.rstrip("/") + "/"):
        path = path[len(path_prefix.rstrip("/")) :]
    return path.lstrip("/")


def sitemap(
    stream: IO[bytes],
    report: Report,
    make: Callable[[str, str, int], Original | None],
    *,
    path_prefix: str = "",
    follow: Callable[[str], IO[bytes]] | None = None,
    depth: int = 0,
) -> Iterator[Original]:
    """Originals from a sitemap, element by element (`iterparse`, each element cleared once read).

    `<image:loc>` entries are the images of a page; a `<url>` without any has its `<loc>` taken as
    the image. A sitemap index's `<sitemap><loc>` children are followed (https only), one at a time.
    Python's XML parser resolves no external entities, and expat bounds entity expansion.
    """
    images: list[str] = []
    lastmod = ""
    try:
        root = None
        for event, element in ElementTree.iterparse(stream, events=("start", "end")):
            if event == "start":
                root = element if root is None else root
                continue
            tag = element.tag
            if tag == f"{_IMAGE}loc":
                images.append(element.text or "")
            elif tag == f"{_SITEMAP}lastmod":
                lastmod = (element.text or "").strip()
            elif tag == f"{_SITEMAP}url":
                page = element.find(f"{_SITEMAP}loc")
                for url in images or ([page.text or ""] if page is not None else []):
                    original = make(_key_of(url, path_prefix), version_of("", lastmod if not images else ""), 0)
                    if original is None:
                        report({"source": "sitemap", "url": url[:300], "reason": "not a usable key"})
                    else:
                        yield original
                images, lastmod = [], ""
                if root is not None:
                    root.clear()  # what was read is dropped: memory stays flat over a long sitemap
            elif tag == f"{_SITEMAP}sitemap":
                child = element.find(f"{_SITEMAP}loc")
                if root is not None:
                    root.clear()
                if child is None or follow is None:
                    continue
                url = (child.text or "").strip()
                if not url.startswith("https://") or depth + 1 >= MAX_SITEMAP_DEPTH:
                    report({"source": "sitemap", "url": url[:300], "reason": "not followed (https only, one level)"})
                    continue
                yield from sitemap(follow(url), report, make, path_prefix=path_prefix, follow=follow, depth=depth + 1)
    except ElementTree.ParseError as error:
        raise SourceError(f"the sitemap is not XML: {error}") from error

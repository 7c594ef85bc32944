"""The sync job: keeps the fallback bucket holding every original's standard variants.

A regional Lambda (not Lambda@Edge) in the primary region, and the engine behind the
operators' backfill command and the emulator's `/_localcdn/sync`. It uses the same
grammar (`edge.variants`) and the same image code (`edge.imaging.render_set`, one
decode per original for its whole standard set) as the edge.

- `originals/` ObjectCreated: build that original's standard set into the fallback
  (and drop its now stale `variants/` in the primary, and the cached copies).
- `originals/` ObjectRemoved: delete that original's variants, in the fallback and
  under `variants/`. Derived data only: nothing under `originals/` is ever written
  or deleted, and a key that is not one of our names is never touched.
- reconcile: `build_batch` takes a batch of originals (as the Step Functions
  Distributed Map hands them over, from a listing of `originals/` or an S3 Inventory
  manifest) and builds what is missing or stale, dropping variants of them that are no
  longer standard; then `sweep` walks the fallback bucket and deletes what is ours and
  has no original any more. The state machine (components/reconcile.py) fans the
  batches out and loops the sweep; locally, `sync/backfill.py` runs the same batches in
  a process pool. No invocation ever calls another: there is no chain for Lambda's
  recursive loop detection to cut.
- A third-party primary (`primaryOrigin` kind http): the standard set is fetched from the
  service (`edge.templates.service_url`, the URLs the distribution sends it) rather than
  rendered, streamed from the HTTP response into the fallback bucket in bounded memory,
  and only when missing or stale: a stored variant keeps the service's ETag and
  Last-Modified, and is asked for again with If-None-Match / If-Modified-Since (a 304
  leaves it alone). The originals come from `originalsSource` (sync/sources.py) when they
  are not in our bucket; the state machine first writes that listing to S3 as CSV
  (`write_listing`) and its Distributed Map reads the CSV.
- What is current is visible in a listing: after a set is written, an empty marker
  `<key>/_set.<etag>` records the version of the original it was built from; an
  original that is not a usable image gets `<key>/_failed.<etag>` (its reason inside)
  and is reported once to the dead-letter queue, not retried until it changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, unquote_plus

from botocore.exceptions import ClientError

from edge import limits, templates, variants
from edge.settings import CONTENT_TYPES, ORIGINAL_PREFIX, VARIANT_PREFIX, Settings, bundled
from sync import sources
from sync.invalidation import Invalidator, retry_delay

if TYPE_CHECKING:
    from edge.imaging import Watermark

S3Factory = Callable[[str], Any]
# Paths per message of the invalidation queue: a few KB, far below SQS's 256 KiB.
INVALIDATION_PATHS_PER_MESSAGE = 500
SET_MARKER = "_set."
FAILED_MARKER = "_failed."
# resize's memory of a refused original version, under variants/<key>/ (edge/resize.py)
REFUSED_MARKER = "_refused."
# Keys per listing page (S3's maximum): listings are streamed, never held whole.
PAGE_SIZE = 1000
# Originals per build batch: the state machine's default ItemBatcher size, and the local runner's.
BUILD_BATCH = 10
# The sweep for orphans stops between two pages when this much of the Lambda's time is left,
# and checks a page's originals on this many threads.
SWEEP_MARGIN_SECONDS = 90.0
SWEEP_THREADS = 16
# Stored variants in flight to S3 while the next one renders, on this many threads: a PUT to
# the fallback crosses regions (tens of milliseconds), rendering one variant takes about as long.
UPLOADS_IN_FLIGHT = 8
UPLOAD_THREADS = 4
# Fetching from a third-party service: variants of one original in flight at once, and how each
# response is streamed into S3. A part is held in memory while it uploads (S3's smallest part is
# 5 MiB), one part per fetch, so memory stays at about FETCH_THREADS x FETCH_PART_BYTES whatever
# the size of the responses.
FETCH_THREADS = 2
FETCH_PART_BYTES = 5 * 1024 * 1024
FETCH_CONNECT_SECONDS = 5.0
FETCH_READ_SECONDS = 60.0
LISTING_PREFIX = "listings"
# What the fallback stores of a service's answer: an image type. Usually the one asked for; a
# service may answer another for the same URL (thumbor keeps an animated GIF a GIF whatever the
# format filter says), and the fallback then holds what the primary serves, under its own
# Content-Type. An error page sent with 200 (text/html) is never stored.
SERVICE_TYPES = frozenset(CONTENT_TYPES.values()) | {"image/gif"}


@dataclass
class Summary:
    """What a run, a batch or one original did."""

    built: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    bytes_written: int = 0
    originals: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False

    def add(self, other: Summary) -> None:
        for name in ("built", "skipped", "deleted", "failed", "bytes_written", "originals"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


@dataclass(frozen=True, slots=True)
class Original:
    key: str
    etag: str
    size: int

    @classmethod
    def from_item(cls, item: dict[str, Any], *, encoded: bool = False) -> Original | None:
        """An original from a listing entry: boto3's, or a Distributed Map item (ListObjectsV2
        reader or S3 Inventory manifest). Field names differ in case between them (`ETag`,
        `Etag`), so both are read; None for anything that is not an original's key.

        `encoded`: the key is URL-encoded, as S3 Inventory writes keys in CSV; decoded the
        way botocore decodes S3's `url` encoding type and S3 event keys (`+` is a space)."""
        key = str(item.get("Key", ""))
        if encoded:
            key = unquote_plus(key)
        if not key.startswith(ORIGINAL_PREFIX) or key.endswith("/") or key == ORIGINAL_PREFIX:
            return None
        etag = str(item.get("ETag") or item.get("Etag") or item.get("eTag") or "").strip('"')
        return cls(key[len(ORIGINAL_PREFIX) :], etag, int(item.get("Size") or 0))

    @classmethod
    def of(cls, key: str, etag: str, size: int) -> Original | None:
        """An original named by a manifest or sitemap; None for a key the grammar refuses."""
        try:
            variants.validate_key(key)
        except variants.VariantError:
            return None
        return cls(key, etag, size)


class ServiceError(RuntimeError):
    """The third-party service failed in a way worth retrying (5xx, 429, no connection)."""


class _TooBig(Exception):
    """A response longer than it may be."""


class _Capped:
    """A response read as a file that raises `_TooBig` past `limit` bytes: the upload then fails
    (a multipart upload is aborted, a single PUT never starts) and nothing is stored. `_fetch`
    checks Content-Length first; this catches a service that sends none, or lies."""

    def __init__(self, stream: Any, limit: int):
        self.stream, self.limit, self.count = stream, limit, 0

    def read(self, amount: int | None = -1) -> bytes:
        want = self.limit + 1 - self.count
        data = self.stream.read(want if amount is None or amount < 0 else min(amount, want))
        self.count += len(data)
        if self.count > self.limit:
            raise _TooBig
        return data  # type: ignore[no-any-return]


def vanished(error: ClientError) -> bool:
    """Whether S3 said the key is not there. Without s3:ListBucket on a key, S3 answers a
    missing one with 403 AccessDenied rather than 404 ("GetObject": "If you don't have the
    s3:ListBucket permission, Amazon S3 returns an HTTP status code 403"), so both mean gone."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound", "AccessDenied", "403")


DENIED_CODES = ("AccessDenied", "403")

# What S3 answers when trying again may succeed ("Error responses" and "Retry behavior" in the S3 and
# SDK documents: 5xx, throttling, request timeouts). Any other 4xx about one original (InvalidObjectState
# for an archived object, KeyTooLongError, ...) is that original's: it is reported and the batch goes on.
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "503",
        "500",
        "ExpiredToken",
        "ExpiredTokenException",
        "TokenRefreshRequired",
    }
)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def permanent(error: ClientError) -> bool:
    """Whether S3's answer is about the object itself (a 4xx no retry changes), not the moment."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 400 <= status < 500 and status != 429 and _code(error) not in TRANSIENT_CODES


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most `size` items, consuming `items` lazily."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Uploads:
    """PUTs in a small thread pool, at most UPLOADS_IN_FLIGHT at once: S3's round trip overlaps
    the next render, and memory holds a handful of encoded variants, never the whole set."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="sync-put")
        self._slots = threading.BoundedSemaphore(UPLOADS_IN_FLIGHT)
        self._pending: list[Future[None]] = []

    def put(self, client: Any, **kwargs: Any) -> None:
        self._slots.acquire()

        def run() -> None:
            try:
                client.put_object(**kwargs)
            finally:
                self._slots.release()

        self._pending.append(self._pool.submit(run))

    def wait(self) -> None:
        """Every PUT done; the first failure is raised."""
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True)


class Sync:
    """The engine; the Lambda handler, the backfill command and the emulator drive it."""

    def __init__(
        self,
        settings: Settings,
        s3: S3Factory,
        *,
        report: Callable[[dict[str, str]], None] | None = None,
        invalidate: Callable[[list[str]], object] | None = None,
        dry_run: bool = False,
        service_base: str | None = None,
    ):
        self.settings = settings
        self.s3 = s3
        # Where the service answers: https://<domain> on AWS; the emulator's thumbor on loopback.
        self.service_base = service_base or f"https://{settings.primary_domain}"
        self._http: Any = None
        self.primary = s3(settings.primary_region)
        self.fallback = s3(settings.fallback_region)
        self.report = report or (lambda message: None)
        self.invalidate = invalidate or (lambda paths: None)
        self.dry_run = dry_run
        self.standard = [(v.width, v.fmt) for v in variants.standard_set("x", settings)]
        self._mark: tuple[str, Watermark | None] | None = None

    # -- the watermark -----------------------------------------------------------------

    def watermark(self) -> tuple[str, Watermark | None]:
        """(fingerprint, watermark) of the stack's watermark, read once per Sync; ("", None) without one.

        The fingerprint (the watermark's ETag and placement) is part of each set marker, so a
        replaced or moved watermark makes every set stale and the next reconcile rebuilds it.
        An unreadable watermark raises: a set must never be built without it.
        """
        from edge import imaging

        if self._mark is None:
            settings = self.settings
            if not settings.watermark:
                self._mark = ("", None)
            else:
                key = ORIGINAL_PREFIX + settings.watermark
                try:
                    answer = self.primary.get_object(Bucket=settings.primary_bucket, Key=key)
                    mark = imaging.Watermark.load(answer["Body"].read(), settings)
                except (ClientError, imaging.ImageError) as error:
                    raise RuntimeError(f"the watermark {key} cannot be used: {error}") from error
                placement = (
                    str(answer.get("ETag", "")).strip('"'),
                    settings.watermark_min_width,
                    settings.watermark_position,
                    settings.watermark_margin,
                    settings.watermark_opacity,
                    settings.watermark_scale,
                )
                fingerprint = hashlib.sha256(repr(placement).encode()).hexdigest()[:12]
                self._mark = (fingerprint, mark)
        return self._mark

    def set_marker(self, etag: str) -> str:
        fingerprint = self.watermark()[0] if self.settings.watermark else ""
        return f"{SET_MARKER}{etag}" + (f".{fingerprint}" if fingerprint else "")

    # -- listings --------------------------------------------------------------------

    def _pages(self, client: Any, bucket: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": PAGE_SIZE}, **kwargs):
            yield from page.get("Contents", [])

    def originals(self) -> Iterator[Original]:
        """Every original, streamed: page by page from `originals/`, or line by line (element by
        element) from the stack's manifest or sitemap."""
        kind = self.settings.originals_source
        if kind == "s3":
            for item in self._pages(self.primary, self.settings.primary_bucket, Prefix=ORIGINAL_PREFIX):
                original = Original.from_item(item)
                if original is not None:
                    yield original
            return
        stream = sources.open_stream(self.settings.originals_location, self.s3, self.http)
        try:
            if kind == "jsonl":
                yield from sources.jsonl(stream, self.report, Original.of)
            else:
                yield from sources.sitemap(
                    stream,
                    self.report,
                    Original.of,
                    path_prefix=self.settings.primary_path,
                    follow=lambda url: sources.open_stream(url, self.s3, self.http),
                )
        finally:
            stream.close()

    def write_listing(self, bucket: str, name: str) -> dict[str, Any]:
        """The originals as a CSV object (Key,ETag,Size) for the Distributed Map's CSV item reader.

        Written through a temporary file (Lambda's /tmp), so a listing of millions of lines is
        never in memory; returns where it is, the way the state machine's ItemReader takes it.
        """
        import csv
        import tempfile

        count = 0
        with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as spool:
            writer = csv.writer(spool, lineterminator="\n")  # as WorkListing: Step Functions splits records on \n
            writer.writerow(["Key", "ETag", "Size"])
            for original in self.originals():
                writer.writerow([encode_key(ORIGINAL_PREFIX + original.key), original.etag, original.size])
                count += 1
            spool.flush()
            key = f"{LISTING_PREFIX}/{name}.csv"
            with open(spool.fileno(), "rb", closefd=False) as raw:
                raw.seek(0)
                self.primary.upload_fileobj(raw, bucket, key, ExtraArgs={"ContentType": "text/csv"})
        return {"Bucket": bucket, "Key": key, "originals": count}

    @property
    def http(self) -> Any:
        """One urllib3 pool per Sync (connections to the service are kept alive across variants)."""
        if self._http is None:
            import urllib3

            self._http = urllib3.PoolManager(
                maxsize=FETCH_THREADS,
                timeout=urllib3.Timeout(connect=FETCH_CONNECT_SECONDS, read=FETCH_READ_SECONDS),
                # Connection errors and 502/503/504 are retried with backoff; what still fails
                # raises, and the batch goes to the dead-letter queue after its own retries.
                retries=urllib3.Retry(
                    total=3, backoff_factor=0.5, status_forcelist=(502, 503, 504), raise_on_status=False
                ),
            )
        return self._http

    def _stored(self, keys: list[str]) -> dict[str, set[str]]:
        """What the fallback holds for each of these originals: the names directly below `<key>/`.

        One listing per original, of its own prefix (`Delimiter` "/": a nested original's names
        are not read). Only originals that need work get here (the plan hands each batch what it
        saw in the fallback; an upload event asks for its one original), so this costs one LIST
        per original built, never one per original checked.
        """
        found: dict[str, set[str]] = {}
        for key in keys:
            prefix = key + "/"
            found[key] = {
                str(item["Key"])[len(prefix) :]
                for item in self._pages(self.fallback, self.settings.fallback_bucket, Prefix=prefix, Delimiter="/")
            }
        return found

    def _ours(self, key: str, name: str) -> variants.Variant | None:
        """The variant a stored name stands for, if it is one of our variant names at all."""
        try:
            return variants.parse(f"/{variants.encode_key(key)}/{name}")
        except variants.VariantError:
            return None

    @staticmethod
    def _marker(name: str) -> bool:
        return name.startswith((SET_MARKER, FAILED_MARKER, REFUSED_MARKER))

    # -- one original ------------------------------------------------------------------

    def build(self, original: Original, stored: set[str] | None = None, *, force: bool = False) -> Summary:
        """Bring one original's standard set in the fallback up to date.

        Current means: the marker of this version of the original is there, and so is
        every standard variant. Otherwise the whole set is rendered from one decode
        (the marker names a version, so a new version replaces every variant) and what
        is needed is written; the marker goes last, once everything is stored.
        """
        from edge import imaging, passthrough

        summary = Summary(dry_run=self.dry_run, originals=1)
        if stored is None:
            stored = self._stored([original.key])[original.key]
        try:
            variants.validate_key(original.key)
        except variants.VariantError as problem:
            # No URL can reach it (a key ending in a variant name reads as a variant of its folder,
            # one too long has no room for its variants' names): reported once, never built.
            if not force and f"{FAILED_MARKER}{original.etag}" in stored:
                summary.skipped += len(self.standard)
                return summary
            return self._failed(original, f"{problem.status} {problem.message}", stored, summary)
        specs = {
            (width, fmt): variants.Variant(original.key, width, None, self.settings.default_quality, fmt).spec
            for width, fmt in self.standard
        }
        retired = [  # ours, but no longer in the standard set (the stack's widths or formats changed)
            f"{original.key}/{name}"
            for name in stored
            if name not in specs.values() and self._ours(original.key, name) is not None
        ]
        self._delete(self.fallback, self.settings.fallback_bucket, retired)
        summary.deleted += len(retired)
        if self.settings.primary_kind == "http":
            return self._fetch_set(original, stored, specs, summary, force=force)
        made_from_this = self.set_marker(original.etag) in stored
        if not force and f"{FAILED_MARKER}{original.etag}" in stored:
            summary.skipped += len(specs)
            return summary
        wanted = {
            pair: spec
            for pair, spec in specs.items()
            if force or not made_from_this or spec not in stored or not original.etag
        }
        if not self._to_do(summary, specs, wanted):
            return summary
        try:  # one verdict for resize, the sync job and the catalogue (edge/limits.py), before a byte is read
            limits.check_size(original.size, limits.Limits.of(self.settings))
        except limits.ImageError as problem:
            return self._failed(original, f"{problem.status} {problem.message}", stored, summary)
        try:
            answer = self.primary.get_object(Bucket=self.settings.primary_bucket, Key=ORIGINAL_PREFIX + original.key)
        except ClientError as error:
            if not vanished(error):
                raise
            if _code(error) in DENIED_CODES and self._listed(original.key):
                # Listed but not readable (a KMS key we may not use, an object another account owns):
                # not gone, and no retry will change it. Reported once, remembered by its version.
                return self._failed(original, f"403 unreadable: {_code(error)}", stored, summary)
            return summary  # removed meanwhile: the ObjectRemoved event cleans up
        etag = str(answer.get("ETag", "")).strip('"') or original.etag  # the version actually read
        data = answer["Body"].read()
        uploads = _Uploads()
        mark = self.watermark()[1]
        # Never larger than the source: resize's rule (edge/passthrough.py), variant by variant.
        source = passthrough.Original(data, imaging.Limits.of(self.settings))
        try:
            for rendition in imaging.render_set(
                data,
                widths=sorted({width for width, _ in wanted}),
                formats=sorted({fmt for _, fmt in wanted}),
                quality=self.settings.default_quality,
                target=self.settings.quality_target,
                limits=imaging.Limits.of(self.settings),
                watermark=mark,
            ):
                spec = wanted.get((rendition.width, rendition.fmt))
                if spec is None:
                    continue
                body, kind, metadata = rendition.body, rendition.content_type, {"source-etag": etag}
                smaller = source.choose(
                    body,
                    rendition.fmt,
                    width=rendition.width,
                    height=None,
                    fit="cover",
                    watermark_from=mark.min_width if mark is not None else None,
                )
                if smaller is not None:
                    (body, kind), metadata = smaller, metadata | {passthrough.SOURCE_METADATA: passthrough.ORIGINAL}
                uploads.put(
                    self.fallback,
                    Bucket=self.settings.fallback_bucket,
                    Key=f"{original.key}/{spec}",
                    Body=body,
                    ContentType=kind,
                    CacheControl=self.settings.variant_cache_control,
                    Metadata=metadata,
                )
                summary.built += 1
                summary.bytes_written += len(body)
        except imaging.ImageError as problem:
            uploads.wait()
            return self._failed(
                Original(original.key, etag, original.size), f"{problem.status} {problem.message}", stored, summary
            )
        uploads.wait()
        marker = self.set_marker(etag)
        self.fallback.put_object(Bucket=self.settings.fallback_bucket, Key=f"{original.key}/{marker}", Body=b"")
        self._drop_markers(original.key, stored, keep=marker)
        return summary

    def _to_do(self, summary: Summary, specs: dict[Any, str], wanted: dict[Any, str]) -> bool:
        """Count what is current as skipped (and, in a dry run, the rest as built): whether work is left."""
        summary.skipped += len(specs) - len(wanted)
        if wanted and self.dry_run:
            summary.built += len(wanted)
            return False
        return bool(wanted)

    # -- a third-party primary: fetch, do not render ---------------------------------------

    def _fetch_set(
        self,
        original: Original,
        stored: set[str],
        specs: dict[tuple[int, str], str],
        summary: Summary,
        *,
        force: bool,
    ) -> Summary:
        """The standard set from the service: what is missing unconditionally, what is stored
        with a conditional request. With a known version of the original (its ETag from the
        listing or the manifest) a complete set marked with that version needs no request at all."""
        version = original.etag
        marker = self.set_marker(version) if version else ""
        if version and not force and f"{FAILED_MARKER}{version}" in stored:
            summary.skipped += len(specs)
            return summary
        current = bool(marker) and marker in stored and not force
        wanted = {pair: spec for pair, spec in specs.items() if not current or spec not in stored}
        if not self._to_do(summary, specs, wanted):
            return summary
        jobs = [
            (variants.Variant(original.key, width, None, self.settings.default_quality, fmt), spec)
            for (width, fmt), spec in sorted(wanted.items())
        ]
        with ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="sync-fetch") as pool:
            outcomes = list(
                pool.map(lambda job: self._fetch(job[0], f"{original.key}/{job[1]}", job[1] in stored), jobs)
            )
        problems = [outcome for outcome in outcomes if not isinstance(outcome, int)]
        for outcome in outcomes:
            if isinstance(outcome, int) and outcome >= 0:
                summary.built += 1
                summary.bytes_written += outcome
            elif isinstance(outcome, int):
                summary.skipped += 1  # 304: the stored copy is current
        if problems:
            reason = str(problems[0])
            if not version:
                # Nothing to remember it by: report it, and ask again next time.
                summary.failed += 1
                message = {"key": original.key, "etag": "", "reason": reason}
                summary.failures.append(message)
                self.report(message)
                return summary
            return self._failed(original, reason, stored, summary)
        if marker:
            self.fallback.put_object(Bucket=self.settings.fallback_bucket, Key=f"{original.key}/{marker}", Body=b"")
            self._drop_markers(original.key, stored, keep=marker)
        return summary

    def _fetch(self, variant: variants.Variant, name: str, stored: bool) -> int | str:
        """Fetch one variant into the fallback: its size when stored, -1 when the stored copy is
        current (304), or why the service's answer cannot be used. Errors worth retrying raise."""
        from boto3.s3.transfer import TransferConfig

        headers = {"Accept": CONTENT_TYPES[variant.fmt]}
        if stored:
            kept = self.fallback.head_object(Bucket=self.settings.fallback_bucket, Key=name).get("Metadata", {})
            if kept.get("service-etag"):
                headers["If-None-Match"] = kept["service-etag"]
            if kept.get("service-last-modified"):
                headers["If-Modified-Since"] = kept["service-last-modified"]
        url = self.service_base + templates.service_url(variant, self.settings)
        answer = self.http.request("GET", url, headers=headers, preload_content=False, redirect=False)
        try:
            if answer.status == 304:
                return -1
            if answer.status >= 500 or answer.status == 429:
                raise ServiceError(f"the service answered {answer.status} for {name}")
            if answer.status != 200:
                return f"{answer.status} from the service for {variants.format(variant)}"
            kind = str(answer.headers.get("Content-Type", "")).split(";")[0].strip().lower()
            if kind not in SERVICE_TYPES:
                return f"the service answered {kind or 'no Content-Type'} for {variants.format(variant)}"
            length = answer.headers.get("Content-Length")
            limit = self.settings.max_input_bytes
            if length is not None and int(length) > limit:
                return f"the service's {variants.format(variant)} is {length} bytes, over maxInputBytes"
            body = _Capped(answer, limit)
            metadata = {
                name: str(answer.headers[header])
                for name, header in (("service-etag", "ETag"), ("service-last-modified", "Last-Modified"))
                if answer.headers.get(header)
            }
            try:
                self.fallback.upload_fileobj(
                    body,
                    self.settings.fallback_bucket,
                    name,
                    ExtraArgs={
                        "ContentType": kind,
                        "CacheControl": self.settings.variant_cache_control,
                        "Metadata": metadata,
                    },
                    Config=TransferConfig(
                        multipart_threshold=FETCH_PART_BYTES,
                        multipart_chunksize=FETCH_PART_BYTES,
                        max_concurrency=1,
                        use_threads=False,
                    ),
                )
            except _TooBig:
                return f"the service's {variants.format(variant)} is over maxInputBytes"
            return body.count
        finally:
            answer.release_conn()

    def _drop_markers(self, key: str, stored: set[str], keep: str) -> None:
        stale = [name for name in stored if self._marker(name) and name != keep]
        if stale:
            self.fallback.delete_objects(
                Bucket=self.settings.fallback_bucket,
                Delete={"Objects": [{"Key": f"{key}/{name}"} for name in stale], "Quiet": True},
            )

    def _failed(self, original: Original, reason: str, stored: set[str], summary: Summary) -> Summary:
        """Report once (DLQ), remember (marker), and move on to the next original."""
        message = {"key": original.key, "etag": original.etag, "reason": reason}
        summary.failed += 1
        summary.failures.append(message)
        if not self.dry_run:
            self.report(message)
            marker = f"{FAILED_MARKER}{original.etag}"
            self.fallback.put_object(
                Bucket=self.settings.fallback_bucket,
                Key=f"{original.key}/{marker}",
                Body=json.dumps(message).encode(),
                ContentType="application/json",
            )
            self._drop_markers(original.key, stored, keep=marker)
        return summary

    def created(self, key: str) -> Summary:
        """An original was uploaded (or replaced): rebuild its set, drop stale copies."""
        summary = Summary(dry_run=self.dry_run)
        try:
            answer = self.primary.head_object(Bucket=self.settings.primary_bucket, Key=ORIGINAL_PREFIX + key)
        except ClientError as error:
            if vanished(error):
                return summary  # deleted again before this event was handled: ObjectRemoved cleans up
            raise
        original = Original(key, str(answer["ETag"]).strip('"'), int(answer["ContentLength"]))
        dropped = self._drop_rendered(key)
        summary.deleted += len(dropped)
        summary.add(self.build(original, force=True))
        # A replacement is known by what was rendered of the old original or by its older versions.
        if (dropped or self._replaced(key)) and not self.dry_run:
            self.invalidate(self.cached_paths(key))
        return summary

    def cached_paths(self, key: str) -> list[str]:
        """What to invalidate when one original changes: `/<key>/*`, every path of that original and
        of no other (but an original nested below it, `<key>/<more>`: a catalogue key never has one).

        One wildcard, not the exact paths: CloudFront prices invalidations per path requested (beyond
        the first 1,000 a month), and an original may have been answered under dozens of paths
        (variants, refusals, standard variants from the fallback, copies CloudFront keeps after
        `variants/` expired). Wildcards are limited to 15 in progress: a burst waits in the queue
        (sync/invalidation.py), it is never merged into a broader path."""
        return [f"/{variants.encode_key(key)}/*"]

    def _replaced(self, key: str) -> bool:
        """Whether the original had an earlier version (the primary bucket is versioned; originals never expire)."""
        answer = self.primary.list_object_versions(
            Bucket=self.settings.primary_bucket, Prefix=ORIGINAL_PREFIX + key, MaxKeys=3
        )
        found = [
            item
            for group in ("Versions", "DeleteMarkers")
            for item in answer.get(group, [])
            if item["Key"] == ORIGINAL_PREFIX + key
        ]
        return len(found) > 1

    def removed(self, key: str) -> Summary:
        """An original was deleted: its derived data goes too, and CloudFront's copies of it."""
        summary = Summary(dry_run=self.dry_run)
        if self._listed(key):
            # Uploaded again since: S3 does not deliver event notifications in order (why the event
            # carries a `sequencer`, which "provides a way to determine the sequence of events":
            # "Event message structure", S3 User Guide), so a late delete event must not drop the set
            # the new upload's event built.
            return summary
        summary.deleted += len(
            self._delete_variants(self.fallback, self.settings.fallback_bucket, key + "/", key, markers=True)
        )
        dropped = self._drop_rendered(key)
        summary.deleted += len(dropped)
        if not self.dry_run:
            self.invalidate(self.cached_paths(key))
        return summary

    def _listed(self, key: str) -> bool:
        """Whether the primary lists the original (one LIST, at most one key)."""
        answer = self.primary.list_objects_v2(
            Bucket=self.settings.primary_bucket, Prefix=ORIGINAL_PREFIX + key, MaxKeys=1
        )
        return any(item["Key"] == ORIGINAL_PREFIX + key for item in answer.get("Contents", []))

    def _drop_rendered(self, key: str) -> list[str]:
        """Drop what our renderer stored of `key` under `variants/` (variants, refusals' tombstones and
        markers; nothing with a third-party primary); the names of the variants and tombstones dropped."""
        if self.settings.primary_kind == "http":
            return []
        prefix = VARIANT_PREFIX + key + "/"
        dropped = self._delete_variants(self.primary, self.settings.primary_bucket, prefix, key, markers=True)
        return [name for name in dropped if not self._marker(name)]

    def _delete_variants(self, client: Any, bucket: str, prefix: str, key: str, *, markers: bool = False) -> list[str]:
        """Delete the variants of `key` stored directly below `prefix` (and its markers); their names."""
        doomed = [
            str(item["Key"])[len(prefix) :]
            for item in self._pages(client, bucket, Prefix=prefix, Delimiter="/")
            if self._ours(key, item["Key"][len(prefix) :]) is not None
            or (markers and self._marker(item["Key"][len(prefix) :]))
        ]
        self._delete(client, bucket, [prefix + name for name in doomed])
        return doomed

    def _delete(self, client: Any, bucket: str, keys: list[str]) -> None:
        if self.dry_run:
            return
        for start in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True}
            )

    # -- batches: what one Distributed Map child runs --------------------------------------

    def build_batch(self, originals: list[Original], stored: dict[str, frozenset[str] | None] | None = None) -> Summary:
        """Build what is missing or stale for a batch of originals.

        `stored`: what the plan saw in the fallback for each (names directly below `<key>/`), so
        that a batch makes no listing of its own; an original it has nothing for (None, or absent)
        is listed here, one LIST each.
        """
        summary = Summary(dry_run=self.dry_run)
        known = stored or {}
        unknown = [original.key for original in originals if known.get(original.key) is None]
        listed = self._stored(unknown) if unknown else {}
        for original in originals:
            seen = known.get(original.key)
            names = set(seen) if seen is not None else listed[original.key]
            try:
                summary.add(self.build(original, names))
            except ClientError as error:
                if not permanent(error):
                    raise  # the moment's, not the original's: the Map's retry runs the batch again
                # One original S3 refuses for good (InvalidObjectState, KeyTooLongError, ...) must not
                # fail the other originals of its batch: reported once and remembered by its version.
                summary.add(self._failed(original, f"{_code(error)} from S3", names, Summary(dry_run=self.dry_run)))
        return summary

    # -- the plan: one merge of two listings ---------------------------------------------------

    def plan(
        self,
        cursor: dict[str, Any] | None,
        work: Callable[[Original, frozenset[str] | None], None],
        time_left: Callable[[], float] = lambda: float("inf"),
        manifest: dict[str, str] | None = None,
    ) -> tuple[Summary, dict[str, Any] | None]:
        """One leg of the reconcile's plan: walk the originals and the fallback bucket side by side.

        Both listings come in key order ("List results are always returned in UTF-8 binary order",
        S3 User Guide, "Listing object keys programmatically"), so one pass over each is enough:
        every original is read once (a page of 1,000 per ListObjectsV2, or a line of an S3 Inventory
        report), every fallback key once (a page of 1,000). An original whose set is current (the
        marker of its version and every standard variant are there, or its failure is remembered)
        costs nothing more; one that is missing or stale goes to `work` with the names the fallback
        holds for it, and the Distributed Map's batches build it without listing again. A fallback
        key of ours whose original is not in the listing is an orphan and is deleted; so is a variant
        no longer in the standard set. Nothing else is read: a steady-state run makes ceil(N/1000)
        LISTs of `originals/` and ceil(F/1000) of the fallback (F: its keys, about 21 per original),
        and no GET, HEAD or PUT.

        A leg stops, between two pages of `originals/`, once less than SWEEP_MARGIN_SECONDS of the
        function's time is left, and answers the cursor to go on from (None: done). The cursor holds
        both listings' positions and the originals whose range of fallback keys it has not passed
        yet (keys below `<key>/` sort before `<key>0`: the ones still "open" are the prefixes of the
        position, a handful). With `manifest` (an S3 Inventory report's manifest.json) the originals
        come from the report instead of a listing.
        """
        summary = Summary(dry_run=self.dry_run)
        cursor = cursor or {}
        specs = frozenset(
            variants.Variant("x", width, None, self.settings.default_quality, fmt).spec for width, fmt in self.standard
        )
        bucket = self.settings.fallback_bucket
        opened: dict[str, _Open] = {
            str(key): _Open(Original(str(key), str(etag), int(size)), None if names is None else set(names))
            for key, etag, size, names in cursor.get("open", [])
        }
        position = cursor.get("originals") or {}
        source = (
            _InventoryOriginals(self, manifest, str(position.get("after", "")))
            if manifest
            else _ListedOriginals(self, str(position.get("after", "")), bool(position.get("done")))
        )
        last = str(cursor.get("fallback", ""))
        listing = _Listing(self.fallback, bucket, start_after=last, ahead=True)
        doomed: list[str] = []

        def close(before: str | None) -> None:
            for key in [key for key in opened if before is None or _past(key) <= before]:
                self._decide(opened.pop(key), specs, work, doomed, summary)

        done = moved = False
        try:
            steps = 0
            while True:
                steps += 1
                if len(doomed) >= 1000:
                    self._delete(self.fallback, bucket, doomed[:1000])
                    del doomed[:1000]
                if moved and (source.resumable or steps % 256 == 0):
                    left = time_left()
                    # Where the originals' listing resumes exactly (between two of its pages), stop once
                    # the margin is reached; anywhere else (a long run of orphans) only when nearly out.
                    if left < SWEEP_MARGIN_SECONDS and (source.resumable or left < SWEEP_MARGIN_SECONDS / 3):
                        break
                original, item = source.peek(), listing.peek()
                if original is None and item is None:
                    close(None)
                    done = True
                    break
                moved = True
                name = str(item["Key"]) if item is not None else ""
                if original is not None and (item is None or original.key <= name):
                    close(original.key)
                    opened[original.key] = _Open(original, set())
                    source.pop()
                    continue
                close(name)
                owner, _, child = name.rpartition("/")
                entry = opened.get(owner)
                if entry is not None:
                    if entry.names is not None:
                        entry.names.add(child)
                elif owner and not manifest and self._ours_or_marker(name):
                    # An orphan. Not with an inventory report: "All of your objects might not appear in each
                    # inventory list" (S3 User Guide, "Inventory consistency"), so an original it leaves out
                    # is not gone; the scheduled runs, which list originals/, delete orphans.
                    doomed.append(name)
                    summary.deleted += 1
                listing.pop()
                last = name
            self._delete(self.fallback, bucket, doomed)
        finally:
            listing.close()
        if done:
            return summary, None
        return summary, {
            "originals": {"after": source.position, "done": source.exhausted},
            "fallback": last,
            "open": _carried(opened),
        }

    def _decide(
        self,
        entry: _Open,
        specs: frozenset[str],
        work: Callable[[Original, frozenset[str] | None], None],
        doomed: list[str],
        summary: Summary,
    ) -> None:
        """An original whose fallback keys have all been seen: current, or work for a batch.

        The same test `build` makes: the set is current when the marker of this version and every
        standard variant are there, or when this version is remembered as failed."""
        original, names = entry.original, entry.names
        if names is None:
            work(original, None)  # what the fallback holds is not known here: the batch lists it
            return
        etag = original.etag
        if etag and (f"{FAILED_MARKER}{etag}" in names or (self.set_marker(etag) in names and specs <= names)):
            retired = [n for n in names if n not in specs and not self._marker(n) and self._ours(original.key, n)]
            doomed.extend(f"{original.key}/{n}" for n in retired)
            summary.deleted += len(retired)
            summary.skipped += len(specs)
            summary.originals += 1
            return
        work(original, frozenset(names))

    def _ours_or_marker(self, name: str) -> bool:
        key, _, child = name.rpartition("/")
        return bool(key) and (self._marker(child) or self._ours(key, child) is not None)

    def _resolve(self, raw: str) -> str | None:
        """An S3 Inventory report's key as the full key of an original (`originals/...`), or None.

        CSV reports URL-encode keys (S3 User Guide, "Amazon S3 Inventory list"), which encoding is
        not said (`/` may come as `%2F`); should a report ever hold a key as it is, the decoded
        reading would name another object. Both readings are taken: where they differ and both name
        an original (a `%` or `+` in the key), S3 is asked which exists (a HEAD each, for those keys
        only)."""
        candidates = [
            key
            for key in dict.fromkeys((unquote_plus(raw), raw))
            if key.startswith(ORIGINAL_PREFIX) and key != ORIGINAL_PREFIX
        ]
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        for candidate in candidates:
            try:
                self.primary.head_object(Bucket=self.settings.primary_bucket, Key=candidate)
                return candidate
            except ClientError as error:
                if not vanished(error):
                    raise
        return None

    def inventory(self, manifest: dict[str, str]) -> list[Original]:
        """The originals an S3 Inventory report lists, sorted by key.

        `manifest` names the report's manifest.json (or the manifest.checksum beside it, whose arrival
        starts a run: "receive notice when the manifest checksum file is created, which indicates that
        an inventory list has been added", S3 User Guide, "Inventory completion"); its `files` are
        gzipped CSV in the same bucket, with the columns its `fileSchema` names (S3 User Guide,
        "Locating your inventory list"). Held whole to sort it: about 250 bytes per original (250 MB
        for a million)."""
        import csv
        import gzip
        import io

        client = self.primary
        key = manifest["Key"]
        if key.endswith("manifest.checksum"):
            key = key.removesuffix("manifest.checksum") + "manifest.json"
        document = json.loads(client.get_object(Bucket=manifest["Bucket"], Key=key)["Body"].read())
        columns = [column.strip() for column in str(document.get("fileSchema", "Bucket, Key")).split(",")]
        found: dict[str, Original] = {}
        for part in document.get("files", []):
            body = client.get_object(Bucket=manifest["Bucket"], Key=part["key"])["Body"].read()
            with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(body)), encoding="utf-8", newline="") as text:
                for row in csv.reader(text):
                    item = dict(zip(columns, row, strict=False))
                    latest = item.get("IsLatest", "true").lower() == "true"
                    if item.get("IsDeleteMarker", "false").lower() == "true" or not latest:
                        continue
                    resolved = self._resolve(str(item.get("Key", "")))
                    original = None if resolved is None else Original.from_item({**item, "Key": resolved})
                    if original is not None:
                        found[original.key] = original
        return sorted(found.values(), key=lambda original: original.key)

    def reconcile(self) -> Summary:
        """The whole bucket, in this process: the plan's legs, each original that needs work built in
        batches as the plan finds them (tests and small stacks run it so; `sync/backfill.py` hands the
        batches to a process pool). A manifest source has no plan: every listed original is a batch
        item, as on AWS (components/reconcile.py)."""
        summary = Summary(dry_run=self.dry_run)
        if self.settings.originals_source != "s3":
            for batch in chunked(self.originals(), BUILD_BATCH):
                summary.add(self.build_batch(batch))
            return summary
        pending: list[tuple[Original, frozenset[str] | None]] = []

        def flush() -> None:
            if pending:
                summary.add(self.build_batch([o for o, _ in pending], {o.key: names for o, names in pending}))
                pending.clear()

        def work(original: Original, names: frozenset[str] | None) -> None:
            pending.append((original, names))
            if len(pending) >= BUILD_BATCH:
                flush()

        cursor: dict[str, Any] | None = None
        while True:
            planned, cursor = self.plan(cursor, work)
            summary.add(planned)
            if cursor is None:
                break
        flush()
        return summary


# -- the plan's parts ---------------------------------------------------------------------


# Every key below `<key>/` sorts before `<key>0` ("0" follows "/"), so a listing that has passed
# `<key>0` has shown all of them.
def _past(key: str) -> str:
    return key + "0"


# The most a cursor carries of the names of still-open originals (Step Functions passes at most
# 256 KiB between states, "Quotas related to state throttling"): past it, names are dropped and
# the batch lists those originals itself.
CURSOR_NAMES_BYTES = 32 * 1024


@dataclass
class _Open:
    """An original whose fallback keys are being collected; `names` None: not known (a batch lists them)."""

    original: Original
    names: set[str] | None


def _carried(opened: dict[str, _Open]) -> list[list[Any]]:
    carried: list[list[Any]] = []
    budget = CURSOR_NAMES_BYTES
    for key, entry in opened.items():
        names = sorted(entry.names) if entry.names is not None else None
        cost = sum(len(n) + 4 for n in names) if names is not None else 0
        if names is not None and cost > budget:
            names = None
        budget -= cost if names is not None else 0
        carried.append([key, entry.original.etag, entry.original.size, names])
    return carried


class _Listing:
    """One ListObjectsV2 page at a time, in key order; with `ahead`, the next page is asked for on a
    thread while this one is read (the fallback is in another region: its round trips are the
    plan's slowest part)."""

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", start_after: str = "", ahead: bool = False):
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.items: list[dict[str, Any]] = []
        self.index = 0
        self.token: str | None = None
        self.more = True
        self.start_after = start_after
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="listing") if ahead else None
        self._next: Future[dict[str, Any]] | None = None

    def _request(self, token: str | None) -> dict[str, Any]:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": PAGE_SIZE}
        if self.prefix:
            arguments["Prefix"] = self.prefix
        if token:
            arguments["ContinuationToken"] = token
        elif self.start_after:
            arguments["StartAfter"] = self.start_after
        return self.client.list_objects_v2(**arguments)  # type: ignore[no-any-return]

    def _fill(self) -> None:
        while self.index >= len(self.items) and self.more:
            page = self._next.result() if self._next is not None else self._request(self.token)
            self._next = None
            self.items, self.index = list(page.get("Contents", [])), 0
            self.token = page.get("NextContinuationToken")
            self.more = bool(page.get("IsTruncated")) and bool(self.token)
            if self.more and self._pool is not None:
                self._next = self._pool.submit(self._request, self.token)

    @property
    def page_end(self) -> bool:
        """Whether the next item needs another request."""
        return self.index >= len(self.items) and self.more

    @property
    def exhausted(self) -> bool:
        return self.index >= len(self.items) and not self.more

    def peek(self) -> dict[str, Any] | None:
        self._fill()
        return self.items[self.index] if self.index < len(self.items) else None

    def pop(self) -> dict[str, Any]:
        item = self.items[self.index]
        self.index += 1
        return item

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _ListedOriginals:
    """The originals in key order, from a listing of `originals/` (resumed after `after`)."""

    def __init__(self, sync: Sync, after: str, done: bool):
        self.listing = _Listing(
            sync.primary,
            sync.settings.primary_bucket,
            prefix=ORIGINAL_PREFIX,
            start_after=ORIGINAL_PREFIX + after if after else "",
        )
        if done:
            self.listing.more = False
        self.position = after

    @property
    def resumable(self) -> bool:
        """Between two pages (or past the last): a new leg resumes here without asking for a page twice."""
        return self.listing.page_end or self.listing.exhausted

    @property
    def exhausted(self) -> bool:
        return self.listing.exhausted

    def peek(self) -> Original | None:
        while True:
            item = self.listing.peek()
            if item is None:
                return None
            original = Original.from_item(item)
            if original is not None:
                return original
            self.pop()  # a "folder" key (`originals/x/`): not an original

    def pop(self) -> None:
        item = self.listing.pop()
        self.position = str(item["Key"])[len(ORIGINAL_PREFIX) :]


class _InventoryOriginals:
    """The originals of an S3 Inventory report, in key order (read whole and sorted: the report's
    order is not documented), from after `after`."""

    resumable = True  # the report is read again by each leg: any point is a page boundary

    def __init__(self, sync: Sync, manifest: dict[str, str], after: str):
        self.items = [o for o in sync.inventory(manifest) if o.key > after]
        self.index = 0
        self.position = after

    @property
    def exhausted(self) -> bool:
        return self.index >= len(self.items)

    def peek(self) -> Original | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def pop(self) -> None:
        self.position = self.items[self.index].key
        self.index += 1


# -- the Lambda ---------------------------------------------------------------------------

_clients: dict[str, Any] = {}


def _client(service: str, region: str | None = None) -> Any:
    name = f"{service}:{region}"
    if name not in _clients:
        import boto3

        _clients[name] = boto3.client(service, region_name=region)
    return _clients[name]


def _sqs_report(message: dict[str, str]) -> None:
    queue = os.environ.get("SYNC_DLQ_URL")
    if queue:
        _client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(message))
    print(json.dumps({"event": "sync-failed", **message}))


def _queue_invalidation(paths: list[str], attempt: int = 0) -> None:
    """Hand paths to the invalidation queue (INVALIDATION_QUEUE_URL); `drain_invalidations` submits them."""
    queue = os.environ.get("INVALIDATION_QUEUE_URL")
    if not queue:
        return
    delay = retry_delay(attempt) if attempt else 0
    for start in range(0, len(paths), INVALIDATION_PATHS_PER_MESSAGE):
        body = {"paths": paths[start : start + INVALIDATION_PATHS_PER_MESSAGE], "attempt": attempt}
        _client("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(body), DelaySeconds=delay)


def drain_invalidations(
    bodies: list[dict[str, Any]], invalidator: Invalidator, requeue: Callable[[list[str], int], None]
) -> list[str]:
    """One batch from the invalidation queue: submit what CloudFront takes now, queue the rest again."""
    paths = list(dict.fromkeys(path for body in bodies for path in body.get("paths", [])))  # oldest first
    attempt = max((int(body.get("attempt", 0)) for body in bodies), default=0)
    left = invalidator.submit(paths)
    if left:
        # Some went: slots free up as they complete, so the rest is tried again soon. None went:
        # CloudFront is busy with others' invalidations, so wait longer each time.
        requeue(left, 1 if len(left) < len(paths) else attempt + 1)
    print(json.dumps({"event": "invalidations", "asked": len(paths), "deferred": len(left), "attempt": attempt}))
    return left


# The batch sources whose keys arrive URL-encoded: S3 Inventory reports (CSV keys are URL-encoded),
# and the listings this function writes itself (encoded so that no key needs CSV quoting, which
# the Distributed Map's CSV reader is not documented to undo).
ENCODED_SOURCES = frozenset({"inventory", "manifest", "plan"})
UNKNOWN_NAMES = "?"


def encode_key(key: str) -> str:
    """A full object key as a listing carries it; `Original.from_item(encoded=True)` reverses it."""
    return quote(key, safe="/")


class WorkListing:
    """The originals a plan leg found work for, as CSV (Key, ETag, Size, Stored) in a temporary
    file: the Distributed Map's CSV item reader hands its rows to the batches, each row with the
    names the fallback holds for that original (`/`-separated; "?" when not known)."""

    def __init__(self) -> None:
        import csv
        import tempfile

        self.file = tempfile.TemporaryFile("w+", newline="", encoding="utf-8")  # noqa: SIM115 (closed by close())
        # "Newlines are a delimiter that separates records" and "A backslash followed by any other
        # character is silently removed" (Step Functions, "How Step Functions parses input CSV files"):
        # \n line ends, and every field percent-encoded, so no field holds a backslash, a comma or a quote.
        self.writer = csv.writer(self.file, lineterminator="\n")
        self.writer.writerow(["Key", "ETag", "Size", "Stored"])
        self.count = 0

    def add(self, original: Original, names: frozenset[str] | None) -> None:
        stored = UNKNOWN_NAMES if names is None else "/".join(quote(name, safe="") for name in sorted(names))
        self.writer.writerow([encode_key(ORIGINAL_PREFIX + original.key), original.etag, original.size, stored])
        self.count += 1

    def upload(self, client: Any, bucket: str, key: str) -> dict[str, str]:
        self.file.flush()
        with open(self.file.fileno(), "rb", closefd=False) as raw:
            raw.seek(0)
            client.upload_fileobj(raw, bucket, key, ExtraArgs={"ContentType": "text/csv"})
        return {"Bucket": bucket, "Key": key}

    def close(self) -> None:
        self.file.close()


def run_batch(event: dict[str, Any], sync: Sync) -> Summary:
    """A Distributed Map child's batch: `{"Items": [...], "BatchInput": {"source": "plan" | "manifest" | ...}}`."""
    batch_input = event.get("BatchInput") or {}
    items = event.get("Items") or []
    encoded = batch_input.get("source") in ENCODED_SOURCES
    originals: list[Original] = []
    stored: dict[str, frozenset[str] | None] = {}
    for item in items:
        original = Original.from_item(item, encoded=encoded)
        if original is None:
            continue
        originals.append(original)
        names = item.get("Stored")
        known = names is not None and names != UNKNOWN_NAMES
        stored[original.key] = frozenset(unquote(n) for n in str(names).split("/") if n) if known else None
    return sync.build_batch(sorted(originals, key=lambda original: original.key), stored)


def run_plan(request: dict[str, Any], sync: Sync, time_left: Callable[[], float]) -> dict[str, Any]:
    """One leg of the plan (`{"plan": {"bucket", "name", "cursor", "manifest"}}`): what it did, the
    CSV of the originals it found work for (`listing`, none when `work` is 0), and the cursor of the
    next leg (None: the plan is done)."""
    cursor = request.get("cursor") or None
    manifest = request.get("manifest") or None
    leg = int((cursor or {}).get("leg", 0))
    spool = WorkListing()
    try:
        summary, after = sync.plan(cursor, spool.add, time_left, manifest)
        listing = None
        if spool.count and not sync.dry_run:
            key = f"{LISTING_PREFIX}/{request['name']}/{leg}.csv"
            listing = spool.upload(sync.primary, str(request["bucket"]), key)
    finally:
        spool.close()
    if after is not None:
        after["leg"] = leg + 1
    done = {k: v for k, v in summary.as_dict().items() if k != "failures"}
    return {**done, "cursor": after, "manifest": manifest, "work": spool.count, "listing": listing}


def handle(event: dict[str, Any], sync: Sync, time_left: Callable[[], float] = lambda: float("inf")) -> dict[str, Any]:
    """S3 notifications (ObjectCreated/ObjectRemoved under originals/), a Distributed Map batch, one
    leg of the plan (`{"plan": {...}}`), or the listing of a manifest source (`{"list": {"Bucket":
    ..., "name": ...}}`)."""
    if "Items" in event:
        return run_batch(event, sync).as_dict()
    if "plan" in event:
        return run_plan(event["plan"] or {}, sync, time_left)
    if "list" in event:
        # The state machine's first step for a manifest or sitemap source: the listing as CSV.
        where = event["list"] or {}
        return sync.write_listing(str(where["Bucket"]), str(where["name"]))
    summary = Summary()
    for record in event.get("Records", []):
        if record.get("eventSource") != "aws:s3":
            continue
        key = unquote_plus(record["s3"]["object"]["key"])
        if not key.startswith(ORIGINAL_PREFIX) or key == ORIGINAL_PREFIX:
            continue
        name = key[len(ORIGINAL_PREFIX) :]
        if record["eventName"].startswith("ObjectCreated:"):
            summary.add(sync.created(name))
        elif record["eventName"].startswith("ObjectRemoved:"):
            summary.add(sync.removed(name))
    return summary.as_dict()


# The third-party service's URL signing key, read from Secrets Manager (SERVICE_KEY_SECRET names the
# secret) once per container and again after this long, so a rotated key is taken up without a deploy.
SERVICE_KEY_SECONDS = 300
_service_key: tuple[float, str] | None = None


def service_key(secret: str, now: Callable[[], float] = time.monotonic) -> str:
    """The key in `secret` (its SecretString), cached per container for SERVICE_KEY_SECONDS."""
    global _service_key
    if _service_key is None or now() - _service_key[0] > SERVICE_KEY_SECONDS:
        value = _client("secretsmanager").get_secret_value(SecretId=secret)["SecretString"]
        _service_key = (now(), str(value))
    return _service_key[1]


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: S3 events, a Distributed Map batch, or a batch from the invalidation queue."""
    records = event.get("Records") or []
    if records and all(record.get("eventSource") == "aws:sqs" for record in records):
        invalidator = Invalidator(_client("cloudfront"), os.environ["DISTRIBUTION_ID"])
        left = drain_invalidations([json.loads(r["body"]) for r in records], invalidator, _queue_invalidation)
        return {"invalidations": len(records), "deferred": len(left)}
    settings = bundled()
    if os.environ.get("SERVICE_KEY_SECRET"):
        settings = settings.with_key(service_key(os.environ["SERVICE_KEY_SECRET"]))
    sync = Sync(settings, lambda region: _client("s3", region), report=_sqs_report, invalidate=_queue_invalidation)
    result = handle(event, sync, lambda: context.get_remaining_time_in_millis() / 1000)
    print(json.dumps({"event": "sync-done", **{k: v for k, v in result.items() if k != "failures"}}))
    return result

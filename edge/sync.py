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
  batches out and loops the sweep; locally, `ops/backfill.py` runs the same batches in
  a process pool. No invocation ever calls another: there is no chain for Lambda's
  recursive loop detection to cut.
- A third-party primary (`primaryOrigin` kind http): the standard set is fetched from the
  service (`edge.templates.service_url`, the URLs the distribution sends it) rather than
  rendered, streamed from the HTTP response into the fallback bucket in bounded memory,
  and only when missing or stale: a stored variant keeps the service's ETag and
  Last-Modified, and is asked for again with If-None-Match / If-Modified-Since (a 304
  leaves it alone). The originals come from `originalsSource` (edge/sources.py) when they
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from edge import sources, templates, variants
from edge.invalidation import Invalidator, retry_delay
from edge.settings import CONTENT_TYPES, ORIGINAL_PREFIX, VARIANT_PREFIX, Settings, bundled

if TYPE_CHECKING:
    from edge.imaging import Watermark

S3Factory = Callable[[str], Any]
# Paths per message of the invalidation queue: a few KB, far below SQS's 256 KiB.
INVALIDATION_PATHS_PER_MESSAGE = 500
SET_MARKER = "_set."
FAILED_MARKER = "_failed."
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


@dataclass(frozen=True)
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
            writer = csv.writer(spool)
            writer.writerow(["Key", "ETag", "Size"])
            for original in self.originals():
                writer.writerow([ORIGINAL_PREFIX + original.key, original.etag, original.size])
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
        """What the fallback holds for each of these originals: names directly below `<key>/`.

        One listing for a whole batch: S3 lists keys in order, and all keys below the
        batch's prefixes lie between the lowest prefix and the end of the highest one's
        range, so a single pass from one to the other sees all of them. (Ordered by
        prefix, not by original key: "a!/" sorts before "a/", and "a/" may hold "a/b/".)
        """
        found: dict[str, set[str]] = {key: set() for key in keys}
        prefixes = {key + "/" for key in keys}
        lowest, highest = min(prefixes), max(prefixes)
        for item in self._pages(self.fallback, self.settings.fallback_bucket, StartAfter=lowest[:-1]):
            name = str(item["Key"])
            ancestors = [name[: i + 1] for i, char in enumerate(name) if char == "/" and name[: i + 1] in prefixes]
            if name > highest and not ancestors:
                break  # past the highest prefix's range: nothing further can be ours
            if ancestors:
                key, _, child = name.rpartition("/")
                if key in found:
                    found[key].add(child)
        return found

    def _ours(self, key: str, name: str) -> variants.Variant | None:
        """The variant a stored name stands for, if it is one of our variant names at all."""
        try:
            return variants.parse(f"/{variants.encode_key(key)}/{name}")
        except variants.VariantError:
            return None

    @staticmethod
    def _marker(name: str) -> bool:
        return name.startswith((SET_MARKER, FAILED_MARKER))

    # -- one original ------------------------------------------------------------------

    def build(self, original: Original, stored: set[str] | None = None, *, force: bool = False) -> Summary:
        """Bring one original's standard set in the fallback up to date.

        Current means: the marker of this version of the original is there, and so is
        every standard variant. Otherwise the whole set is rendered from one decode
        (the marker names a version, so a new version replaces every variant) and what
        is needed is written; the marker goes last, once everything is stored.
        """
        from edge import imaging

        summary = Summary(dry_run=self.dry_run, originals=1)
        if stored is None:
            stored = self._stored([original.key])[original.key]
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
        if original.size > self.settings.max_input_bytes:
            return self._failed(original, f"413 {original.size} bytes is over maxInputBytes", stored, summary)
        try:
            answer = self.primary.get_object(Bucket=self.settings.primary_bucket, Key=ORIGINAL_PREFIX + original.key)
        except ClientError as error:
            if vanished(error):
                return summary  # removed meanwhile: the ObjectRemoved event cleans up
            raise
        etag = str(answer.get("ETag", "")).strip('"') or original.etag  # the version actually read
        data = answer["Body"].read()
        uploads = _Uploads()
        try:
            for rendition in imaging.render_set(
                data,
                widths=sorted({width for width, _ in wanted}),
                formats=sorted({fmt for _, fmt in wanted}),
                quality=self.settings.default_quality,
                limits=imaging.Limits.of(self.settings),
                watermark=self.watermark()[1],
            ):
                spec = wanted.get((rendition.width, rendition.fmt))
                if spec is None:
                    continue
                uploads.put(
                    self.fallback,
                    Bucket=self.settings.fallback_bucket,
                    Key=f"{original.key}/{spec}",
                    Body=rendition.body,
                    ContentType=rendition.content_type,
                    CacheControl=self.settings.variant_cache_control,
                    Metadata={"source-etag": etag},
                )
                summary.built += 1
                summary.bytes_written += len(rendition.body)
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
        summary.deleted += self._drop_rendered(key)
        summary.add(self.build(original, force=True))
        # CloudFront may hold variants of the old original longer than S3 keeps them under
        # variants/ (they expire there), so a replacement is known by its older versions.
        if (summary.deleted or self._replaced(key)) and not self.dry_run:
            self.invalidate([f"/{variants.encode_key(key)}/*"])
        return summary

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
        """An original was deleted: its derived data goes too."""
        summary = Summary(dry_run=self.dry_run)
        summary.deleted += self._delete_variants(
            self.fallback, self.settings.fallback_bucket, key + "/", key, markers=True
        )
        summary.deleted += self._drop_rendered(key)
        if not self.dry_run:
            self.invalidate([f"/{variants.encode_key(key)}/*"])
        return summary

    def _drop_rendered(self, key: str) -> int:
        """Drop what our renderer stored of `key` under `variants/` (nothing with a third-party primary)."""
        if self.settings.primary_kind == "http":
            return 0
        return self._delete_variants(self.primary, self.settings.primary_bucket, VARIANT_PREFIX + key + "/", key)

    def _delete_variants(self, client: Any, bucket: str, prefix: str, key: str, *, markers: bool = False) -> int:
        """Delete the variants of `key` stored directly below `prefix` (and its markers)."""
        doomed = [
            str(item["Key"])
            for item in self._pages(client, bucket, Prefix=prefix, Delimiter="/")
            if self._ours(key, item["Key"][len(prefix) :]) is not None
            or (markers and self._marker(item["Key"][len(prefix) :]))
        ]
        self._delete(client, bucket, doomed)
        return len(doomed)

    def _delete(self, client: Any, bucket: str, keys: list[str]) -> None:
        if self.dry_run:
            return
        for start in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True}
            )

    # -- batches: what one Distributed Map child runs --------------------------------------

    def build_batch(self, originals: list[Original]) -> Summary:
        """Build what is missing or stale for a batch of originals (one fallback listing for all)."""
        summary = Summary(dry_run=self.dry_run)
        if not originals:
            return summary
        stored = self._stored([original.key for original in originals])
        for original in originals:
            summary.add(self.build(original, stored[original.key]))
        return summary

    def sweep(
        self, after: str = "", time_left: Callable[[], float] = lambda: float("inf")
    ) -> tuple[Summary, str | None]:
        """Delete fallback keys of ours whose original is gone, from `after` on, page by page.

        Returns what it did and where to continue (None: the end of the bucket). It stops
        between two pages once less than SWEEP_MARGIN_SECONDS are left; the state machine
        calls it again with the cursor (a Step Functions loop, not a Lambda calling itself).
        The existence checks of a page run on a few threads: one listing per original.
        """
        summary = Summary(dry_run=self.dry_run)
        pages = self.fallback.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.fallback_bucket,
            PaginationConfig={"PageSize": PAGE_SIZE},
            **({"StartAfter": after} if after else {}),
        )
        with ThreadPoolExecutor(max_workers=SWEEP_THREADS, thread_name_prefix="sweep") as pool:
            for page in pages:
                names = [str(item["Key"]) for item in page.get("Contents", [])]
                if not names:
                    break
                ours = {name: name.rpartition("/")[0] for name in names if self._ours_or_marker(name)}
                keys = sorted(set(ours.values()))
                alive = dict(zip(keys, pool.map(self._original_exists, keys), strict=True))
                doomed = [name for name, key in ours.items() if not alive[key]]
                self._delete(self.fallback, self.settings.fallback_bucket, doomed)
                summary.deleted += len(doomed)
                if time_left() < SWEEP_MARGIN_SECONDS:
                    return summary, names[-1]
        return summary, None

    def _ours_or_marker(self, name: str) -> bool:
        key, _, child = name.rpartition("/")
        return bool(key) and (self._marker(child) or self._ours(key, child) is not None)

    def _original_exists(self, key: str) -> bool:
        # A listing, not a HEAD: the job's ListBucket grant is limited to originals/ and
        # variants/, and without a matching grant S3 answers a HEAD on a missing key with 403.
        answer = self.primary.list_objects_v2(
            Bucket=self.settings.primary_bucket, Prefix=ORIGINAL_PREFIX + key, MaxKeys=1
        )
        return any(item["Key"] == ORIGINAL_PREFIX + key for item in answer.get("Contents", []))

    def reconcile(self) -> Summary:
        """The whole bucket, in this process: every build batch, then the sweep.

        The same steps the state machine runs (tests and small stacks run it so);
        `ops/backfill.py` runs the batches in a process pool.
        """
        summary = Summary(dry_run=self.dry_run)
        for batch in chunked(self.originals(), BUILD_BATCH):
            summary.add(self.build_batch(batch))
        if self.settings.originals_source == "s3":  # a manifest source has no sweep (components/reconcile.py)
            swept, _ = self.sweep()
            summary.add(swept)
        return summary


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
    paths = sorted({path for body in bodies for path in body.get("paths", [])})
    attempt = max((int(body.get("attempt", 0)) for body in bodies), default=0)
    left = invalidator.submit(paths)
    if left:
        requeue(left, attempt + 1)
    print(json.dumps({"event": "invalidations", "asked": len(paths), "deferred": len(left), "attempt": attempt}))
    return left


def run_batch(event: dict[str, Any], sync: Sync) -> Summary:
    """A Distributed Map child's batch: `{"Items": [...], "BatchInput": {"source": "listing" | "inventory"}}`."""
    batch_input = event.get("BatchInput") or {}
    items = event.get("Items") or []
    encoded = batch_input.get("source") == "inventory"
    originals = [o for o in (Original.from_item(item, encoded=encoded) for item in items) if o is not None]
    return sync.build_batch(sorted(originals, key=lambda original: original.key))


def handle(event: dict[str, Any], sync: Sync, time_left: Callable[[], float] = lambda: float("inf")) -> dict[str, Any]:
    """S3 notifications (ObjectCreated/ObjectRemoved under originals/), a Distributed Map batch,
    the listing of a manifest source (`{"list": {"Bucket": ..., "name": ...}}`), or one leg of the
    sweep (`{"sweep": {"after": "..."}}`, answering the cursor to go on from)."""
    if "Items" in event:
        return run_batch(event, sync).as_dict()
    if "list" in event:
        # The state machine's first step for a manifest or sitemap source: the listing as CSV.
        where = event["list"] or {}
        return sync.write_listing(str(where["Bucket"]), str(where["name"]))
    if "sweep" in event:
        swept, after = sync.sweep(str((event["sweep"] or {}).get("after") or ""), time_left)
        return {**swept.as_dict(), "after": after}
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


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: S3 events, a Distributed Map batch, or a batch from the invalidation queue."""
    records = event.get("Records") or []
    if records and all(record.get("eventSource") == "aws:sqs" for record in records):
        invalidator = Invalidator(_client("cloudfront"), os.environ["DISTRIBUTION_ID"])
        left = drain_invalidations([json.loads(r["body"]) for r in records], invalidator, _queue_invalidation)
        return {"invalidations": len(records), "deferred": len(left)}
    settings = bundled()
    sync = Sync(settings, lambda region: _client("s3", region), report=_sqs_report, invalidate=_queue_invalidation)
    result = handle(event, sync, lambda: context.get_remaining_time_in_millis() / 1000)
    print(json.dumps({"event": "sync-done", **{k: v for k, v in result.items() if k != "failures"}}))
    return result

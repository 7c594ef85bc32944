"""The sync job: keeps the fallback bucket holding every original's standard variants.

A regional Lambda (not Lambda@Edge) in the primary region, and the engine behind the
operators' backfill command and the emulator's `/_localcdn/sync`. It uses the same
grammar (`edge.variants`) and the same renderer (`edge.imaging.transform`) as the edge.

- `originals/` ObjectCreated: build that original's standard set into the fallback
  (and drop its now stale `variants/` in the primary, and the cached copies).
- `originals/` ObjectRemoved: delete that original's variants, in the fallback and
  under `variants/`. Derived data only: nothing under `originals/` is ever written
  or deleted, and a key that is not one of our variant names is never touched.
- reconcile (on a schedule): walk the originals in key order, build what is missing
  from the fallback or older than its original, then delete the orphans (variants of
  originals that are gone, or of widths/formats no longer standard). One image in
  memory at a time, listings streamed; before the time runs out it stops after a
  whole original and hands back a cursor, and the Lambda re-invokes itself with it:
  a run continues where it stopped, never starts over.
- An original that is not a usable image is reported once to the dead-letter queue
  (key and reason) and remembered with a marker beside its variants, so it is not
  retried on every run until it changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from edge import variants
from edge.invalidation import Invalidator, retry_delay
from edge.settings import ORIGINAL_PREFIX, VARIANT_PREFIX, Settings, bundled

S3Factory = Callable[[str], Any]
# Paths per message of the invalidation queue: a few KB, far below SQS's 256 KiB.
INVALIDATION_PATHS_PER_MESSAGE = 500
FAILED_MARKER = "_failed.json"
# Stop starting new originals when less than this is left of the Lambda's time.
SAFETY_MARGIN_SECONDS = 60.0
# Keys per listing page (S3's maximum): the listing is streamed, never held whole.
PAGE_SIZE = 1000


@dataclass
class Summary:
    """What one run did; `cursor` is set when it stopped early and must be resumed."""

    built: int = 0
    skipped: int = 0
    deleted: int = 0
    failed: int = 0
    bytes_written: int = 0
    originals: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    cursor: dict[str, str] | None = None
    dry_run: bool = False

    @property
    def complete(self) -> bool:
        return self.cursor is None

    def add(self, other: Summary) -> None:
        for name in ("built", "skipped", "deleted", "failed", "bytes_written", "originals"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


@dataclass(frozen=True)
class Original:
    key: str
    etag: str
    last_modified: float
    size: int


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
    ):
        self.settings = settings
        self.primary = s3(settings.primary_region)
        self.fallback = s3(settings.fallback_region)
        self.report = report or (lambda message: None)
        self.invalidate = invalidate or (lambda paths: None)
        self.dry_run = dry_run

    # -- listings --------------------------------------------------------------------

    def originals(self, after: str = "") -> Iterator[Original]:
        """Every original, in key order, streamed page by page."""
        pages = self.primary.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.primary_bucket,
            Prefix=ORIGINAL_PREFIX,
            PaginationConfig={"PageSize": PAGE_SIZE},
            **({"StartAfter": ORIGINAL_PREFIX + after} if after else {}),
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(ORIGINAL_PREFIX) :]
                if key and not key.endswith("/"):
                    yield Original(key, item["ETag"].strip('"'), item["LastModified"].timestamp(), item["Size"])

    def _children(self, client: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
        """Direct children of `prefix` (one original's variants: a dozen keys, not a listing)."""
        found: dict[str, dict[str, Any]] = {}
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for item in page.get("Contents", []):
                found[item["Key"][len(prefix) :]] = item
        return found

    def _ours(self, key: str, spec: str) -> variants.Variant | None:
        """The variant a stored name stands for, if it is one of our names at all."""
        try:
            return variants.parse(f"/{variants.encode_key(key)}/{spec}")
        except variants.VariantError:
            return None

    # -- one original ------------------------------------------------------------------

    def build(self, original: Original, *, force: bool = False) -> Summary:
        """Bring one original's standard set in the fallback up to date."""
        from edge import imaging

        summary = Summary(dry_run=self.dry_run, originals=1)
        stored = self._children(self.fallback, self.settings.fallback_bucket, original.key + "/")
        marker = stored.get(FAILED_MARKER)
        standard = variants.standard_set(original.key, self.settings)
        if marker is not None and not force and self._marker_etag(original.key) == original.etag:
            summary.skipped += len(standard)
            return summary
        wanted = [
            variant
            for variant in standard
            if force
            or variant.spec not in stored
            or stored[variant.spec]["LastModified"].timestamp() < original.last_modified
        ]
        summary.skipped += len(standard) - len(wanted)
        if not wanted:
            return summary
        if self.dry_run:
            summary.built += len(wanted)
            return summary
        if original.size > self.settings.max_input_bytes:
            return self._failed(original, f"{original.size} bytes is over maxInputBytes", summary)
        try:
            data = self.primary.get_object(Bucket=self.settings.primary_bucket, Key=ORIGINAL_PREFIX + original.key)[
                "Body"
            ].read()
        except ClientError as error:
            if vanished(error):
                return summary  # removed meanwhile: the ObjectRemoved event cleans up
            raise
        limits = imaging.Limits.of(self.settings)
        for variant in wanted:
            try:
                body, content_type = imaging.transform(
                    data,
                    width=variant.width,
                    height=None,
                    fit=variant.fit,
                    quality=variant.quality,
                    fmt=variant.fmt,
                    limits=limits,
                )
            except imaging.ImageError as problem:
                return self._failed(original, f"{problem.status} {problem.message}", summary)
            self.fallback.put_object(
                Bucket=self.settings.fallback_bucket,
                Key=variant.object_path,
                Body=body,
                ContentType=content_type,
                CacheControl=self.settings.variant_cache_control,
                Metadata={"source-etag": original.etag},
            )
            summary.built += 1
            summary.bytes_written += len(body)
        if marker is not None:
            self.fallback.delete_object(Bucket=self.settings.fallback_bucket, Key=f"{original.key}/{FAILED_MARKER}")
        return summary

    def _marker_etag(self, key: str) -> str:
        answer = self.fallback.get_object(Bucket=self.settings.fallback_bucket, Key=f"{key}/{FAILED_MARKER}")
        return str(json.loads(answer["Body"].read()).get("etag", ""))

    def _failed(self, original: Original, reason: str, summary: Summary) -> Summary:
        """Report once (DLQ), remember (marker), and move on to the next original."""
        message = {"key": original.key, "etag": original.etag, "reason": reason}
        summary.failed += 1
        summary.failures.append(message)
        if not self.dry_run:
            self.report(message)
            self.fallback.put_object(
                Bucket=self.settings.fallback_bucket,
                Key=f"{original.key}/{FAILED_MARKER}",
                Body=json.dumps(message).encode(),
                ContentType="application/json",
            )
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
        original = Original(key, answer["ETag"].strip('"'), answer["LastModified"].timestamp(), answer["ContentLength"])
        summary.deleted += self._delete_variants(
            self.primary, self.settings.primary_bucket, VARIANT_PREFIX + key + "/", key
        )
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
            self.fallback, self.settings.fallback_bucket, key + "/", key, marker=True
        )
        summary.deleted += self._delete_variants(
            self.primary, self.settings.primary_bucket, VARIANT_PREFIX + key + "/", key
        )
        if not self.dry_run:
            self.invalidate([f"/{variants.encode_key(key)}/*"])
        return summary

    def _delete_variants(self, client: Any, bucket: str, prefix: str, key: str, *, marker: bool = False) -> int:
        """Delete the variants of `key` stored directly below `prefix` (and its failure marker)."""
        doomed = [
            name
            for name in self._children(client, bucket, prefix)
            if self._ours(key, name) is not None or (marker and name == FAILED_MARKER)
        ]
        if doomed and not self.dry_run:
            for start in range(0, len(doomed), 1000):
                client.delete_objects(
                    Bucket=bucket,
                    Delete={
                        "Objects": [{"Key": prefix + name} for name in doomed[start : start + 1000]],
                        "Quiet": True,
                    },
                )
        return len(doomed)

    # -- the whole bucket ----------------------------------------------------------------

    def reconcile(
        self, cursor: dict[str, str] | None = None, time_left: Callable[[], float] = lambda: float("inf")
    ) -> Summary:
        """Build what is missing or stale, then delete orphans; resumable from `cursor`."""
        cursor = dict(cursor or {"phase": "build", "after": ""})
        summary = Summary(dry_run=self.dry_run)
        if cursor["phase"] == "build":
            for original in self.originals(after=cursor["after"]):
                if time_left() < SAFETY_MARGIN_SECONDS:
                    summary.cursor = {"phase": "build", "after": cursor["after"]}
                    return summary
                summary.add(self.build(original))
                cursor["after"] = original.key
            cursor = {"phase": "orphans", "after": ""}
        summary.deleted += self.orphans(cursor, time_left, summary)
        return summary

    def orphans(self, cursor: dict[str, str], time_left: Callable[[], float], summary: Summary) -> int:
        """Fallback keys whose original is gone or whose variant is no longer standard.

        Keys sharing an original are contiguous in S3's listing order, so one pass
        with one existence check per original is enough.
        """
        deleted = 0
        pages = self.fallback.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.fallback_bucket,
            PaginationConfig={"PageSize": PAGE_SIZE},
            **({"StartAfter": cursor["after"]} if cursor["after"] else {}),
        )
        current: str | None = None
        last = ""
        exists = True
        for page in pages:
            doomed = []
            for item in page.get("Contents", []):
                key, _, name = item["Key"].rpartition("/")
                if key != current:
                    # stop only between originals, so the cursor never splits one
                    if time_left() < SAFETY_MARGIN_SECONDS and current is not None:
                        summary.cursor = {"phase": "orphans", "after": last}
                        break
                    current, exists = key, self._original_exists(key)
                last = item["Key"]
                variant = self._ours(key, name) if key else None
                if variant is None and name != FAILED_MARKER:
                    continue  # not one of ours: never touched
                if not exists or (variant is not None and not variants.is_standard(variant, self.settings)):
                    doomed.append({"Key": item["Key"]})
            if doomed and not self.dry_run:
                self.fallback.delete_objects(
                    Bucket=self.settings.fallback_bucket, Delete={"Objects": doomed, "Quiet": True}
                )
            deleted += len(doomed)
            if summary.cursor is not None:
                break
        return deleted

    def _original_exists(self, key: str) -> bool:
        # A listing, not a HEAD: the job's ListBucket grant is limited to originals/ and
        # variants/, and without a matching grant S3 answers a HEAD on a missing key with 403.
        if not key:
            return False
        answer = self.primary.list_objects_v2(
            Bucket=self.settings.primary_bucket, Prefix=ORIGINAL_PREFIX + key, MaxKeys=1
        )
        return any(item["Key"] == ORIGINAL_PREFIX + key for item in answer.get("Contents", []))


def vanished(error: ClientError) -> bool:
    """Whether S3 said the key is not there. Without s3:ListBucket on a key, S3 answers a
    missing one with 403 AccessDenied rather than 404 ("GetObject": "If you don't have the
    s3:ListBucket permission, Amazon S3 returns an HTTP status code 403"), so both mean gone."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound", "AccessDenied", "403")


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


def handle(event: dict[str, Any], sync: Sync, time_left: Callable[[], float]) -> Summary:
    """S3 notifications (ObjectCreated/ObjectRemoved under originals/) or {"reconcile": cursor}."""
    if "reconcile" in event:
        return sync.reconcile(event["reconcile"] or None, time_left)
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
    return summary


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: S3 events, the schedule, or a batch from the invalidation queue.

    An unfinished reconcile re-invokes this function with its cursor.
    """
    records = event.get("Records") or []
    if records and all(record.get("eventSource") == "aws:sqs" for record in records):
        invalidator = Invalidator(_client("cloudfront"), os.environ["DISTRIBUTION_ID"])
        left = drain_invalidations([json.loads(r["body"]) for r in records], invalidator, _queue_invalidation)
        return {"invalidations": len(records), "deferred": len(left)}
    settings = bundled()
    sync = Sync(settings, lambda region: _client("s3", region), report=_sqs_report, invalidate=_queue_invalidation)
    summary = handle(event, sync, lambda: context.get_remaining_time_in_millis() / 1000)
    if summary.cursor is not None:
        _client("lambda").invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps({"reconcile": summary.cursor}).encode(),
        )
    result = summary.as_dict()
    print(json.dumps({"event": "sync-done", **{k: v for k, v in result.items() if k != "failures"}}))
    return result

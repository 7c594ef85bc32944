"""The metadata function: an original created or deleted under `originals/` -> its catalogue item.

S3 sends the bucket's events to EventBridge (the sync job keeps its own direct
notification; EventBridge fans the same events out to this function), as "Object
Created" and "Object Deleted" events ("Using EventBridge" in the S3 user guide).

Two things AWS's documents leave open are made safe under every reading:

- whether an EventBridge event's `detail.object.key` is URL-encoded like a direct S3
  notification's ("red+flower.jpg") or not: each reading of the key is tried, and only
  a key S3 says exists (created) or does not exist (deleted) is acted on;
- the order of events: they may come in any order, and the notification documents
  have said both "left pad" and "right pad" about comparing sequencers of different
  lengths. So no event is trusted about the object's state: a created event reads the
  object as it is now (its current version, pinned by version id for every read of it),
  a deleted event removes the item only when S3 says the key is gone, and an item is
  never replaced by one describing an older version (last-modified time).

And what S3 answers for a key that does not exist depends on the caller: 404 with
s3:ListBucket on the bucket, 403 AccessDenied without it ("HeadObject" and "GetObject", S3 API
Reference). The function's role has ListBucket on the `originals/` prefix only: a condition
on `s3:prefix`, a listing's Prefix parameter ("Actions, resources, and condition keys for Amazon
S3"), which a HEAD or GET does not have; no document says whether such a grant counts for them.
So a 403 is read as "cannot tell" and settled by a listing, which the grant does cover (`exists`).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from urllib.parse import unquote, unquote_plus

from catalog import keys, metadata
from catalog.api import TAG, now_iso, runtime
from catalog.config import CatalogConfig
from catalog.store import MAX_TAGS, Catalogue
from edge import imaging
from edge.settings import ORIGINAL_PREFIX


def log(**fields: Any) -> None:
    print(json.dumps(fields, default=str, sort_keys=True))


def readings(key: str) -> list[str]:
    """The keys an event's key may stand for: as written, and URL-decoded (`+` as space, and not)."""
    found: list[str] = []
    for candidate in (key, unquote_plus(key), unquote(key)):
        if candidate.startswith(ORIGINAL_PREFIX) and candidate not in found:
            found.append(candidate)
    return found


def handle(event: dict[str, Any], config: CatalogConfig, catalogue: Catalogue, s3: Any) -> dict[str, Any]:
    kind = event.get("detail-type")
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    key = str((detail.get("object") or {}).get("key") or "")
    if bucket != config.settings.primary_bucket or not key:
        log(event="ignored", reason="not an original of this stack", bucket=bucket, key=key)
        return {"ignored": key}
    if kind == "Object Created":
        return created(key, config, catalogue, s3)
    if kind == "Object Deleted":
        return deleted(key, catalogue, s3, config)
    log(event="ignored", reason="event type", type=kind)
    return {"ignored": key}


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _missing(error: Exception) -> bool:
    """S3 says the key is not there (a HEAD's error has no body: only its status, as the code)."""
    return _code(error) in ("NoSuchKey", "404", "NotFound", "NoSuchVersion")


def _denied(error: Exception) -> bool:
    """A 403: a key that does not exist, to a caller without s3:ListBucket, or a real refusal."""
    return _code(error) in ("AccessDenied", "403", "Forbidden")


def listed(s3: Any, bucket: str, key: str) -> bool:
    """Whether `key` exists, from a listing: ListObjectsV2 answers for a missing key as for any other
    (it needs s3:ListBucket, which the function has on `originals/`; refused, it raises and the
    event is retried, then dead-lettered: nothing is decided on a refusal). Keys come in ascending
    order ("ListObjectsV2", S3 API Reference), and `key` sorts before every other key it is a
    prefix of, so one key is enough. A key whose current version is a delete marker is gone: the
    marker "makes Amazon S3 behave as if the object is deleted" ("Working with delete markers")."""
    answer = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(entry.get("Key") == key for entry in answer.get("Contents") or [])


def exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether `key` exists now, under both readings of S3's answer for a missing key.

    - The role's ListBucket counts for the HEAD: a missing key is a 404, gone, one request.
    - It does not (the grant's prefix condition, or no grant): a missing key is a 403, the same
      answer as an object the role may not read. A 403 decides nothing; a listing does (`listed`).
      S3 prices a LIST at 12.5 GETs: it is made only after a 403.
    Either way an object that is there is never reported gone: a HEAD that succeeds, or a listing
    that shows it, says it exists, and any other error is raised.
    """
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as error:
        if _missing(error):
            return False
        if not _denied(error):
            raise
    return listed(s3, bucket, key)


def created(event_key: str, config: CatalogConfig, catalogue: Catalogue, s3: Any) -> dict[str, Any]:
    """Catalogue every original the event's key may stand for that exists (each is a real
    original: cataloguing it is never wrong, and skipping one could be)."""
    from botocore.exceptions import ClientError

    bucket = config.settings.primary_bucket
    results = []
    for key in readings(event_key):
        if key.endswith("/"):
            log(event="ignored", reason="a folder marker, not a file", key=key)
            continue
        try:
            first = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{metadata.HEAD_BYTES - 1}")
        except ClientError as error:
            if _missing(error):
                continue
            if _denied(error):
                # Under the other reading of the event's key, or deleted since: a missing key is a
                # 403 when ListBucket does not count (`exists`). Skipped only if a listing says it
                # is not there; an object that is there and refused is an error, retried.
                if not listed(s3, bucket, key):
                    continue
                raise
            if _code(error) != "InvalidRange":
                raise
            empty = _empty_object(s3, bucket, key)  # 0 bytes: not an image
            if empty is not None:
                results.append(_record(key, empty, catalogue, config))
            continue
        results.append(_record(key, _Read(s3, bucket, key, first), catalogue, config))
    if not results:
        log(event="gone", key=event_key)  # deleted since, or a folder marker: nothing to catalogue
        return {"gone": event_key}
    return results[0] if len(results) == 1 else {"catalogued": results}


class _Read:
    """One version of an original, read in ranges: the first range is already here."""

    def __init__(self, s3: Any, bucket: str, key: str, first: dict[str, Any]):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.head = bytes(first["Body"].read())
        content_range = str(first.get("ContentRange") or "")
        self.size = int(content_range.rsplit("/", 1)[1]) if "/" in content_range else len(self.head)
        self.version = first.get("VersionId")
        self.etag = str(first.get("ETag", "")).strip('"')
        self.modified = first.get("LastModified")
        self.meta = {k.lower(): v for k, v in (first.get("Metadata") or {}).items()}

    def __call__(self, start: int, end: int) -> bytes:
        if start == 0 and end <= len(self.head):
            return self.head[:end]
        pinned = {"VersionId": self.version} if self.version and self.version != "null" else {"IfMatch": self.etag}
        answer = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}", **pinned)
        return bytes(answer["Body"].read())


def _empty_object(s3: Any, bucket: str, key: str) -> _Read | None:
    """A 0-byte object (a range of it is "InvalidRange"), or None if it was deleted since."""
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _missing(error) or (_denied(error) and not listed(s3, bucket, key)):
            return None
        raise
    return _Read(s3, bucket, key, {**head, "Body": _Empty(), "ContentRange": "bytes */0"})


class _Empty:
    def read(self) -> bytes:
        return b""


def _record(key: str, read: _Read, catalogue: Catalogue, config: CatalogConfig) -> dict[str, Any]:
    image_id = keys.image_id(key)
    existing = catalogue.get(image_id)
    if existing is not None and existing.get("key") != key:
        # An id already taken by another original (two files put by hand in one upload-shaped folder).
        image_id = keys.fallback_id(key)
        existing = catalogue.get(image_id)
    modified = read.modified.astimezone(UTC).timestamp() if read.modified is not None else None
    item: dict[str, Any] = {
        "id": image_id,
        "key": key,
        "filename": unquote(read.meta.get("filename", "")) or keys.filename_of(key),
        "bytes": read.size,
        "etag": read.etag,
        "uploaded_at": now_iso(modified),
        "modified": now_iso(modified),
        # What the image item already says wins: tags its owner changed since the upload.
        "owner": (existing or {}).get("owner") or unquote(read.meta.get("owner", "")) or None,
        "tags": (existing or {}).get("tags") if existing is not None else _tags(read.meta.get("tags", "")),
    }
    try:
        facts = metadata.extract(read, read.size, imaging.Limits.of(config.settings))
    except imaging.ImageError as problem:
        item.update(status="rejected", reason=problem.message, error=problem.error)
        log(event="rejected", key=key, reason=problem.message)
        read_bytes = None
    else:
        item.update(status="ready", **facts.as_item())
        read_bytes = facts.bytes_read
    saved = catalogue.save(item, unless_newer=item["modified"])
    log(event="catalogued" if saved else "stale", key=key, id=image_id, status=item["status"], read=read_bytes)
    return {"id": image_id, "key": key, "status": item["status"], "saved": saved, "bytes_read": read_bytes}


def _tags(text: str) -> list[str]:
    """Tags from the object's metadata (signed into an API upload; anything from elsewhere is filtered)."""
    tags = [t for t in text.split(",") if TAG.fullmatch(t)]
    return list(dict.fromkeys(tags))[:MAX_TAGS]


def deleted(event_key: str, catalogue: Catalogue, s3: Any, config: CatalogConfig) -> dict[str, Any]:
    """Uncatalogue each original the event's key may stand for that S3 says is gone (`exists`: a 404,
    or a 403 and a listing without it). One that is there again (uploaded since) keeps its item."""
    removed: list[str] = []
    for key in readings(event_key):
        if exists(s3, config.settings.primary_bucket, key):
            continue
        for image_id in {keys.image_id(key), keys.fallback_id(key)}:
            gone = catalogue.delete(image_id, key=key)
            if gone is not None:
                removed.append(image_id)
    log(event="uncatalogued", key=event_key, ids=removed)
    return {"removed": removed}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """Lambda entry point (EventBridge, asynchronous: a raised error is retried, then dead-lettered)."""
    return handle(event, *runtime())

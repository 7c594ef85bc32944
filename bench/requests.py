"""AWS requests per operation, counted: what the sync job and a miss really ask S3 and SQS for.

Each operation runs the shipped code path against moto (the sync function's `handle` for the
plan legs, the batches and the bucket's events; `resize.handle` for a miss), with a counter on
every boto3 client it uses: botocore's `before-send` event fires once per HTTP request sent,
retries and pages included. The cost model (`ops/cost.py`, `requests_per_operation`) must equal
these counts; `tests/test_requests.py` holds them equal and `make bench` prints them, beside
the previous engine's counts for the same reconcile.

What no client here sends is not counted: the Distributed Map's own read of the plan's CSV
(Step Functions' ItemReader), and the uploader's and CloudFront's requests.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import os
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The engine before the plan (one LIST of the primary per original in the sweep), for `make bench`'s
# side-by-side: the last commit that had it.
PREVIOUS_ENGINE = "131bdcc"

Counts = dict[str, dict[str, int]]


class RequestCounter:
    """Counts requests by where they went (a bucket's role, else the service) and operation."""

    def __init__(self, roles: dict[str, str]):
        self.roles = roles
        self.counts: Counter[tuple[str, str]] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send", self._sent)
        return client

    def _sent(self, request: Any, event_name: str, **kwargs: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        bucket = str(request.context.get("input_params", {}).get("Bucket", ""))
        self.counts[(self.roles.get(bucket, bucket or service), operation)] += 1

    def take(self) -> Counts:
        """What was counted since the last take, as {where: {operation: n}}."""
        taken: Counts = {}
        for (where, operation), n in sorted(self.counts.items()):
            taken.setdefault(where, {})[operation] = n
        self.counts.clear()
        return taken


def _jpeg(seed: int) -> bytes:
    from localcdn import samples

    return samples.jpeg(samples.photo(96, 64, seed=seed))


class Bench:
    """Both buckets, the job's results bucket and its queue on moto, every client counted."""

    RESULTS = "image-cdn-requests-results"

    def __init__(self, settings: Any):
        import boto3

        self.settings = settings
        self.counter = RequestCounter(
            {
                settings.primary_bucket: "primary",
                settings.fallback_bucket: "fallback",
                self.RESULTS: "results",
            }
        )
        self.clients: dict[str, Any] = {}
        for bucket, region in (
            (settings.primary_bucket, settings.primary_region),
            (settings.fallback_bucket, settings.fallback_region),
            (self.RESULTS, settings.primary_region),
        ):
            self.s3(region).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
            if bucket != self.RESULTS:
                self.s3(region).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        sqs = self.counter.attach(boto3.client("sqs", region_name=settings.primary_region))
        self.queue = sqs.create_queue(QueueName="invalidations")["QueueUrl"]
        self.sqs = sqs
        self.counter.take()

    def s3(self, region: str) -> Any:
        import boto3

        if region not in self.clients:
            self.clients[region] = self.counter.attach(boto3.client("s3", region_name=region))
        return self.clients[region]

    def sync(self, engine: types.ModuleType | None = None) -> Any:
        import sync.job

        module = engine or sync.job

        def invalidate(paths: list[str]) -> None:
            self.sqs.send_message(QueueUrl=self.queue, MessageBody=str(paths))

        return module.Sync(self.settings, self.s3, invalidate=invalidate)

    def upload(self, key: str, seed: int) -> None:
        self.s3(self.settings.primary_region).put_object(
            Bucket=self.settings.primary_bucket, Key=f"originals/{key}", Body=_jpeg(seed)
        )

    # -- the operations, each through the Lambda's own entry point --------------------------

    def event(self, name: str, key: str) -> dict[str, Any]:
        from urllib.parse import quote_plus

        import sync.job

        record = {
            "eventSource": "aws:s3",
            "eventName": name,
            "s3": {
                "bucket": {"name": self.settings.primary_bucket},
                "object": {"key": "originals/" + quote_plus(key, safe="/")},
            },
        }
        return sync.job.handle({"Records": [record]}, self.sync())

    def reconcile(self) -> dict[str, Any]:
        """The state machine's steps: plan legs, and each leg's work in batches as the Map hands them."""
        import sync.job

        job = self.sync()
        cursor: dict[str, Any] | None = None
        legs = work = 0
        while True:
            answer = sync.job.handle({"plan": {"bucket": self.RESULTS, "name": "run", "cursor": cursor}}, job)
            legs += 1
            listing = answer["listing"]
            if listing:
                work += int(answer["work"])
                for batch in _batches(self._read_uncounted(listing), sync.job.BUILD_BATCH):
                    sync.job.handle({"Items": batch, "BatchInput": {"source": "plan"}}, job)
            cursor = answer["cursor"]
            if cursor is None:
                return {"legs": legs, "work": work}

    def previous_reconcile(self, engine: types.ModuleType) -> None:
        """The previous engine the way its state machine ran it: the Distributed Map listed `originals/`
        (counted here as its ListObjectsV2 reader's pages), batches of 10, then the sweep's legs."""
        job = self.sync(engine)
        client = self.s3(self.settings.primary_region)
        items: list[dict[str, Any]] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.primary_bucket, Prefix="originals/"
        ):
            items.extend({"Key": i["Key"], "ETag": i["ETag"], "Size": i["Size"]} for i in page.get("Contents", []))
        for batch in _batches(items, 10):
            engine.handle({"Items": batch, "BatchInput": {"source": "listing"}}, job)
        after: str | None = ""
        while after is not None:
            after = engine.handle({"sweep": {"after": after}}, job)["after"]

    def miss(self, key: str, width: int, fmt: str) -> dict[str, Any]:
        from edge import resize, variants

        uri = variants.format(variants.Variant(key, width, None, self.settings.default_quality, fmt))
        event = {
            "Records": [
                {
                    "cf": {
                        "config": {"eventType": "origin-response"},
                        "request": {
                            "uri": uri,
                            "method": "GET",
                            "querystring": "",
                            "headers": {},
                            "origin": {"s3": {"domainName": f"{self.settings.primary_bucket}.s3.amazonaws.com"}},
                        },
                        "response": {"status": "404", "statusDescription": "Not Found", "headers": {}},
                    }
                }
            ]
        }
        with contextlib.redirect_stdout(io.StringIO()):  # resize's log lines
            answer = resize.handle(event, self.settings, self.s3)
        assert answer["status"] == "200", answer
        base64.b64decode(answer["body"])
        return answer

    def _read_uncounted(self, listing: dict[str, str]) -> list[dict[str, str]]:
        """The plan's CSV as the Map's ItemReader hands it over (Step Functions reads it, not our code)."""
        import boto3

        client = boto3.client("s3", region_name=self.settings.primary_region)
        body = client.get_object(Bucket=listing["Bucket"], Key=listing["Key"])["Body"].read().decode("utf-8")
        return list(csv.DictReader(io.StringIO(body)))


def _batches(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ListingBucket:
    """An in-memory bucket that lists as S3 documents it ("ListObjectsV2": up to MaxKeys keys after
    StartAfter or a ContinuationToken, below Prefix; "List results are always returned in UTF-8
    binary order") and deletes with DeleteObjects (at most 1,000 keys). For the plan's own CPU in
    `make bench` and for tests that draw thousands of bucket states."""

    def __init__(self, objects: dict[str, dict[str, Any]]):
        self.objects = objects
        self.lists = 0
        self._order: list[bytes] | None = None

    def _keys(self) -> list[bytes]:
        if self._order is None:
            self._order = sorted(key.encode("utf-8") for key in self.objects)
        return self._order

    def list_objects_v2(self, **kw: Any) -> dict[str, Any]:
        import bisect

        self.lists += 1
        prefix = str(kw.get("Prefix", "")).encode()
        size = int(kw.get("MaxKeys", 1000))
        after = str(kw.get("ContinuationToken") or kw.get("StartAfter") or "").encode()
        keys = self._keys()
        start = max(bisect.bisect_right(keys, after), bisect.bisect_left(keys, prefix))
        page: list[bytes] = []
        index = start
        while index < len(keys) and keys[index].startswith(prefix) and len(page) < size:
            page.append(keys[index])
            index += 1
        truncated = index < len(keys) and keys[index].startswith(prefix)
        answer: dict[str, Any] = {
            "Contents": [{"Key": k.decode(), **self.objects[k.decode()]} for k in page],
            "IsTruncated": truncated,
        }
        if truncated:
            answer["NextContinuationToken"] = page[-1].decode()
        return answer

    def delete_objects(self, **kw: Any) -> dict[str, Any]:
        assert len(kw["Delete"]["Objects"]) <= 1000, "DeleteObjects takes at most 1,000 keys"
        for item in kw["Delete"]["Objects"]:
            self.objects.pop(item["Key"], None)
        self._order = None
        return {}


def plan_cpu(originals: int = 100_000) -> dict[str, Any]:
    """The plan's own CPU for a steady state of `originals` (the dev stack's 20 standard variants and
    a marker each), against in-memory buckets: what a plan leg spends besides waiting for S3."""
    import time

    from edge.settings import Settings
    from edge.variants import Variant
    from sync.job import SET_MARKER, Sync

    settings = Settings(
        primary_bucket="p", fallback_bucket="f", primary_region="eu-west-1", fallback_region="us-east-2"
    )
    names = [
        Variant("x", w, None, settings.default_quality, f).spec
        for w in settings.widths
        for f in settings.standard_formats
    ]
    keys = [f"products/{i % 500:03d}/photo-{i:08d}.jpg" for i in range(originals)]
    primary = ListingBucket({f"originals/{k}": {"ETag": '"e"', "Size": 1} for k in keys})
    fallback = ListingBucket({f"{k}/{n}": {} for k in keys for n in [*names, f"{SET_MARKER}e"]})
    buckets = {settings.primary_region: primary, settings.fallback_region: fallback}
    job = Sync(settings, lambda region: buckets[region])
    started = time.process_time()
    summary, cursor = job.plan(None, lambda original, stored: None)
    seconds = time.process_time() - started
    assert cursor is None and summary.skipped == originals * len(names)
    return {
        "originals": originals,
        "fallback_keys": len(fallback.objects),
        "cpu_seconds": round(seconds, 2),
        "ms_per_original": round(seconds * 1000 / originals, 4),
        "pages": primary.lists + fallback.lists,
    }


def previous_engine() -> types.ModuleType | None:
    """`edge/sync.py` as it was before the plan (from git), or None where the history is not there."""
    try:
        source = subprocess.run(
            ["git", "show", f"{PREVIOUS_ENGINE}:edge/sync.py"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    # Its imports as they read then: two modules it uses have moved since (the sync job's own package).
    for old, new in (
        (
            "from edge import sources, templates, variants",
            "from edge import templates, variants\nfrom sync import sources",
        ),
        ("from edge.invalidation import", "from sync.invalidation import"),
    ):
        source = source.replace(old, new)
    module = types.ModuleType("edge._previous_sync")
    module.__file__ = f"{PREVIOUS_ENGINE}:edge/sync.py"
    sys.modules[module.__name__] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


@contextmanager
def moto() -> Iterator[None]:
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    with mock_aws():
        yield


def count_operations(settings: Any, originals: int, *, replaced: int = 1) -> dict[str, Any]:
    """Every operation's requests, counted: the first fill and a steady-state reconcile of `originals`,
    an upload, a miss (standard and not), a replacement, a delete, and a reconcile that finds
    `replaced` originals replaced without an event."""
    with moto():
        bench = Bench(settings)
        keys = [f"p/{i:06d}.jpg" for i in range(originals)]
        for index, key in enumerate(keys):
            bench.upload(key, index)
        bench.counter.take()
        counted: dict[str, Any] = {}
        first = bench.reconcile()
        counted["reconcile_first"] = {**bench.counter.take(), "run": first}
        steady = bench.reconcile()
        counted["reconcile_steady"] = {**bench.counter.take(), "run": steady}
        bench.upload("new/one.jpg", 10_000)
        bench.counter.take()
        bench.event("ObjectCreated:Put", "new/one.jpg")
        counted["upload"] = bench.counter.take()
        standard, other = settings.widths[0], settings.widths[-1]
        bench.miss("new/one.jpg", standard, settings.standard_formats[0])
        counted["miss_standard"] = bench.counter.take()
        bench.miss("new/one.jpg", other, "avif" if "avif" not in settings.standard_formats else "png")
        counted["miss_other"] = bench.counter.take()
        bench.upload("new/one.jpg", 10_001)
        bench.counter.take()
        bench.event("ObjectCreated:Put", "new/one.jpg")
        counted["replace"] = bench.counter.take()
        bench.miss("new/one.jpg", standard, settings.standard_formats[0])
        bench.s3(settings.primary_region).delete_object(Bucket=settings.primary_bucket, Key="originals/new/one.jpg")
        bench.counter.take()
        bench.event("ObjectRemoved:Delete", "new/one.jpg")
        counted["delete"] = bench.counter.take()
        for index, key in enumerate(keys[:replaced]):
            bench.upload(key, 20_000 + index)
        bench.counter.take()
        stale = bench.reconcile()
        counted["reconcile_stale"] = {**bench.counter.take(), "run": stale}
        return counted


def count_previous(settings: Any, originals: int) -> Counts | None:
    """A steady-state reconcile of `originals` by the previous engine, counted the same way."""
    engine = previous_engine()
    if engine is None:
        return None
    with moto():
        bench = Bench(settings)
        for index in range(originals):
            bench.upload(f"p/{index:06d}.jpg", index)
        bench.previous_reconcile(engine)
        bench.counter.take()
        bench.previous_reconcile(engine)
        return bench.counter.take()


# -- the model the cost estimate multiplies ----------------------------------------------------

# S3's request prices come in two tiers ("Amazon S3 pricing": PUT, COPY, POST and LIST requests;
# GET, SELECT and all other requests); DELETE is free. DeleteObjects is a POST.
LIST_TIER = frozenset(
    {
        "ListObjectsV2",
        "ListObjectVersions",
        "PutObject",
        "CopyObject",
        "DeleteObjects",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
    }
)
GET_TIER = frozenset({"GetObject", "HeadObject"})


def runs_per_month(schedule: str) -> float:
    """Reconcile runs a month from an EventBridge rate(); a cron() is counted as daily."""
    if schedule.startswith("rate("):
        n, unit = schedule[5:-1].split()
        per_day = {"minute": 1440, "minutes": 1440, "hour": 24, "hours": 24, "day": 1, "days": 1}[unit]
        return 30 * per_day / int(n)
    return 30.0


def pages(keys: int, page: int = 1000) -> int:
    """ListObjectsV2 requests that list `keys` keys, `page` at a time (one request even for none)."""
    return max(1, -(-keys // page))


def requests_per_operation(
    standard_set: int, originals: int, *, replaced: int = 1, page: int = 1000
) -> dict[str, Counts]:
    """What each operation asks AWS for, by where and operation: the numbers `count_operations`
    counts (tests/test_requests.py holds them equal) and the cost estimate multiplies.

    `standard_set`: variants per original in the fallback (widths x standard formats); each set
    also has its marker. `originals`: in the bucket at the reconcile. A replacement and a delete
    are of an original with variants rendered under `variants/`."""
    n, s = originals, standard_set
    keys = n * (s + 1)  # the fallback: every set and its marker
    return {
        # The first fill: the plan lists both buckets (the fallback is empty), every original is work.
        "reconcile_first": {
            "fallback": {"ListObjectsV2": 1, "PutObject": n * (s + 1)},
            "primary": {"GetObject": n, "ListObjectsV2": pages(n, page)},
            "results": {"PutObject": 1},
        },
        # Steady state: the two listings and nothing else.
        "reconcile_steady": {
            "fallback": {"ListObjectsV2": pages(keys, page)},
            "primary": {"ListObjectsV2": pages(n, page)},
        },
        # `replaced` originals replaced without an event: each read once and its set written again.
        "reconcile_stale": {
            "fallback": {
                "DeleteObjects": replaced,
                "ListObjectsV2": pages(keys, page),
                "PutObject": replaced * (s + 1),
            },
            "primary": {"GetObject": replaced, "ListObjectsV2": pages(n, page)},
            "results": {"PutObject": 1},
        },
        "upload": {
            "fallback": {"ListObjectsV2": 1, "PutObject": s + 1},
            "primary": {"GetObject": 1, "HeadObject": 1, "ListObjectVersions": 1, "ListObjectsV2": 1},
        },
        # A miss reads the original and its version's refusal marker (absent: a 403, billed as a GET).
        "miss_standard": {"fallback": {"PutObject": 1}, "primary": {"GetObject": 2, "PutObject": 1}},
        "miss_other": {"primary": {"GetObject": 2, "PutObject": 1}},
        "replace": {
            "fallback": {"DeleteObjects": 1, "ListObjectsV2": 1, "PutObject": s + 1},
            "primary": {"DeleteObjects": 1, "GetObject": 1, "HeadObject": 1, "ListObjectsV2": 1},
            "sqs": {"SendMessage": 1},
        },
        # The delete event first lists the original (a late event must not drop a new upload's set).
        "delete": {
            "fallback": {"DeleteObjects": 1, "ListObjectsV2": 1},
            "primary": {"DeleteObjects": 1, "ListObjectsV2": 2},
            "sqs": {"SendMessage": 1},
        },
    }


def s3_requests(counts: Counts, where: str) -> tuple[int, int]:
    """(LIST-tier, GET-tier) S3 requests to `where` in one operation's counts."""
    ops = counts.get(where, {})
    return sum(n for op, n in ops.items() if op in LIST_TIER), sum(n for op, n in ops.items() if op in GET_TIER)

"""The sync job on moto: the plan, batches, markers, orphans, bad originals, events; and its backfill command."""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError
from conftest import FakeS3
from moto import mock_aws

from edge.settings import Settings
from localcdn import samples
from sync import job as sync_module
from sync.job import FAILED_MARKER, SET_MARKER, Original, Sync

SMALL = Settings(
    widths=(160, 320, 640),
    qualities=(60,),
    default_quality=60,
    standard_formats=("webp", "jpeg"),
    primary_bucket="sync-origin",
    primary_region="eu-west-1",
    fallback_bucket="sync-fallback",
    fallback_region="eu-central-1",
)
SET = [f"w_{w}_q_60.{f}" for w in (160, 320, 640) for f in ("jpeg", "webp")]


@pytest.fixture
def store() -> Iterator[FakeS3]:
    with mock_aws():
        s3 = FakeS3(SMALL)
        for index, key in enumerate(("a.jpg", "b/c.jpg", "d.png")):
            data = (
                samples.png(samples.logo(700, 500))
                if key.endswith(".png")
                else samples.jpeg(samples.photo(800, 600, seed=index))
            )
            s3.put_original(key, data)
        yield s3


def fallback(store: FakeS3) -> list[str]:
    return store.keys(SMALL.fallback_bucket)


def variants_of(store: FakeS3, key: str) -> list[str]:
    names = [k[len(key) + 1 :] for k in fallback(store) if k.startswith(key + "/")]
    return sorted(name for name in names if "/" not in name and not name.startswith("_"))


def etag(store: FakeS3, key: str) -> str:
    return str(
        store.factory(SMALL.primary_region).head_object(Bucket=SMALL.primary_bucket, Key=f"originals/{key}")["ETag"]
    ).strip('"')


class Counting:
    """Wraps the S3 factory to count GETs of originals and PUTs of variants."""

    def __init__(self, store: FakeS3):
        self.store, self.gets, self.puts = store, 0, 0

    def __call__(self, region: str) -> Any:
        client = self.store.factory(region)
        counter = self

        class Client:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if name == "put_object":

                    def put(**kwargs: Any) -> Any:
                        counter.puts += "/_" not in kwargs["Key"]
                        return attribute(**kwargs)

                    return put
                if name == "get_object":

                    def get(**kwargs: Any) -> Any:
                        counter.gets += kwargs["Key"].startswith("originals/")
                        return attribute(**kwargs)

                    return get
                return attribute

        return Client()


def test_a_reconcile_builds_every_standard_variant_then_nothing(store: FakeS3) -> None:
    counting = Counting(store)
    first = Sync(SMALL, counting).reconcile()
    assert (first.built, first.skipped, first.failed, first.originals) == (18, 0, 0, 3)
    assert counting.gets == 3  # one read of each original for its whole set
    for key in ("a.jpg", "b/c.jpg", "d.png"):
        assert variants_of(store, key) == SET
        assert f"{key}/{SET_MARKER}{etag(store, key)}" in fallback(store)  # built from this version
    stored = store.get(SMALL.fallback_bucket, "a.jpg/w_320_q_60.webp")
    assert stored["ContentType"] == "image/webp" and stored["CacheControl"] == SMALL.variant_cache_control
    assert stored["Metadata"]["source-etag"] == etag(store, "a.jpg")
    assert first.bytes_written == sum(store.get(SMALL.fallback_bucket, k)["ContentLength"] for k in fallback(store))
    second = Sync(SMALL, counting).reconcile()
    assert (second.built, second.skipped, second.deleted) == (0, 18, 0)
    assert counting.gets == 3  # nothing read again: the markers said every set is current


def test_a_new_version_of_an_original_is_rebuilt_whatever_the_clock_says(store: FakeS3) -> None:
    Sync(SMALL, store.factory).reconcile()
    store.put_original("a.jpg", samples.jpeg(samples.photo(800, 600, seed=7)))  # no event: only the reconcile sees it
    again = Sync(SMALL, store.factory).reconcile()
    assert (again.built, again.skipped) == (6, 12)
    markers = [k for k in fallback(store) if k.startswith("a.jpg/_")]
    assert markers == [f"a.jpg/{SET_MARKER}{etag(store, 'a.jpg')}"]  # the old version's marker is gone


def test_a_missing_variant_is_written_again_without_rewriting_the_rest(store: FakeS3) -> None:
    Sync(SMALL, store.factory).reconcile()
    store.factory(SMALL.fallback_region).delete_object(Bucket=SMALL.fallback_bucket, Key="b/c.jpg/w_320_q_60.jpeg")
    counting = Counting(store)
    again = Sync(SMALL, counting).reconcile()
    assert (again.built, counting.puts) == (1, 1)
    assert variants_of(store, "b/c.jpg") == SET


def test_variants_no_longer_standard_and_orphans_go_and_foreign_keys_stay(store: FakeS3) -> None:
    Sync(SMALL, store.factory).reconcile()
    client = store.factory(SMALL.primary_region)
    client.delete_object(Bucket=SMALL.primary_bucket, Key="originals/b/c.jpg")  # no event: only reconcile sees it
    fallback_client = store.factory(SMALL.fallback_region)
    for foreign in ("notes.txt", "b/c.jpg/readme.md", "a.jpg/w_2000_q_60.webp", "a.jpg/w_160_q_60.avif"):
        fallback_client.put_object(Bucket=SMALL.fallback_bucket, Key=foreign, Body=b"x")
    result = Sync(SMALL, store.factory).reconcile()
    assert result.deleted == 9  # six of b/c.jpg's and its marker, a width and a format no longer standard
    left = fallback(store)
    assert not any(k.startswith("b/c.jpg/w_") or k.startswith("b/c.jpg/_") for k in left)
    assert "a.jpg/w_2000_q_60.webp" not in left and "a.jpg/w_160_q_60.avif" not in left
    assert {"notes.txt", "b/c.jpg/readme.md"} <= set(left)
    assert [k for k in store.keys(SMALL.primary_bucket)] == ["originals/a.jpg", "originals/d.png"]


def test_a_plan_stops_between_pages_and_its_legs_do_what_one_leg_would(
    store: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(7):
        store.put_original(f"more/{index}.jpg", samples.jpeg(samples.photo(200, 150, seed=index)))
    Sync(SMALL, store.factory).reconcile()
    primary = store.factory(SMALL.primary_region)
    for key in ("originals/a.jpg", "originals/d.png", "originals/more/3.jpg"):  # gone, no event
        primary.delete_object(Bucket=SMALL.primary_bucket, Key=key)
    store.put_original("more/5.jpg", samples.jpeg(samples.photo(200, 150, seed=99)))  # replaced, no event
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 2)
    lists: list[str] = []
    primary.meta.events.register(
        "before-send.s3.ListObjectsV2",
        lambda request, **kw: lists.append(request.context["input_params"]["Bucket"]),
    )
    job = Sync(SMALL, store.factory)
    work: list[tuple[Original, frozenset[str] | None]] = []
    cursor, legs, deleted = None, 0, 0
    while True:  # the state machine's loop; out of time at every chance
        planned, cursor = job.plan(cursor, lambda o, names: work.append((o, names)), lambda: 0.0)
        legs, deleted = legs + 1, deleted + planned.deleted
        if cursor is None:
            break
        assert len(json.dumps(cursor)) < 64_000  # what Step Functions passes to the next leg stays small
    assert legs > 3 and deleted == 21  # three originals' six variants and marker each
    assert [o.key for o, _ in work] == ["more/5.jpg"]  # the one replaced: the rest are current
    assert work[0][1] == frozenset(fallback_names(store, "more/5.jpg"))  # what the batch gets, so it lists nothing
    # every page of originals/ was read once: 7 originals in pages of 2
    assert lists.count(SMALL.primary_bucket) == 4
    assert not any(k.startswith(("a.jpg/", "d.png/", "more/3.jpg/")) for k in fallback(store))


def fallback_names(store: FakeS3, key: str) -> set[str]:
    return {k[len(key) + 1 :] for k in fallback(store) if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]}


def test_keys_that_sort_around_their_slash_are_each_seen_once(store: FakeS3) -> None:
    # "a!" sorts after "a" but "a!/" before "a/"; "a" may also be a folder of another original.
    for key in ("a", "a!", "a/b", "a-2"):
        store.put_original(key, samples.jpeg(samples.photo(400, 300, seed=len(key))))
    Sync(SMALL, store.factory).reconcile()
    counting = Counting(store)
    again = Sync(SMALL, counting).reconcile()
    assert (again.built, again.deleted, counting.gets) == (0, 0, 0)
    for key in ("a", "a!", "a/b", "a-2"):
        assert variants_of(store, key) == SET


def test_a_corrupt_original_is_reported_once_and_the_rest_built(store: FakeS3) -> None:
    store.put_original("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    reports: list[dict[str, str]] = []
    first = Sync(SMALL, store.factory, report=reports.append).reconcile()
    assert (first.built, first.failed) == (18, 1)
    assert [r["key"] for r in reports] == ["broken.jpg"] and "422" in reports[0]["reason"]
    marker = f"broken.jpg/{FAILED_MARKER}{etag(store, 'broken.jpg')}"
    assert json.loads(store.get(SMALL.fallback_bucket, marker)["Body"].read())["key"] == "broken.jpg"
    second = Sync(SMALL, store.factory, report=reports.append).reconcile()
    assert (second.built, second.failed, len(reports)) == (0, 0, 1)  # remembered, not retried
    store.put_original("broken.jpg", samples.jpeg(samples.photo(400, 300)))
    fixed = Sync(SMALL, store.factory, report=reports.append).reconcile()
    assert fixed.built == 6 and marker not in fallback(store)


def s3_event(name: str, key: str) -> dict[str, Any]:
    encoded = key.replace(" ", "+")
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": name,
                "awsRegion": SMALL.primary_region,
                "s3": {"bucket": {"name": SMALL.primary_bucket}, "object": {"key": encoded}},
            }
        ]
    }


def test_upload_and_delete_events_build_and_clean_one_original(store: FakeS3) -> None:
    invalidated: list[list[str]] = []
    job = Sync(SMALL, store.factory, invalidate=invalidated.append)
    store.put_original("new photo.jpg", samples.jpeg(samples.photo(900, 600)))
    created = sync_module.handle(s3_event("ObjectCreated:Put", "originals/new photo.jpg"), job)
    assert created["built"] == 6 and variants_of(store, "new photo.jpg") == SET
    store.factory(SMALL.primary_region).put_object(
        Bucket=SMALL.primary_bucket, Key="variants/new photo.jpg/w_320_q_90.avif", Body=b"x"
    )
    store.factory(SMALL.primary_region).delete_object(Bucket=SMALL.primary_bucket, Key="originals/new photo.jpg")
    removed = sync_module.handle(s3_event("ObjectRemoved:Delete", "originals/new photo.jpg"), job)
    assert removed["deleted"] == 8  # six variants and the marker in the fallback, one under variants/
    assert not any(k.startswith("new photo.jpg/") for k in fallback(store))
    assert not any(k.startswith("variants/new photo.jpg/") for k in store.keys(SMALL.primary_bucket))
    assert invalidated == [["/new%20photo.jpg/*"]]


def test_a_replaced_original_drops_its_stale_variants(store: FakeS3) -> None:
    job = Sync(SMALL, store.factory)
    store.factory(SMALL.primary_region).put_object(
        Bucket=SMALL.primary_bucket, Key="variants/a.jpg/w_640_q_60.avif", Body=b"old"
    )
    result = sync_module.handle(s3_event("ObjectCreated:Put", "originals/a.jpg"), job)
    assert result["built"] == 6 and result["deleted"] == 1
    assert "variants/a.jpg/w_640_q_60.avif" not in store.keys(SMALL.primary_bucket)


def test_a_replaced_original_is_invalidated_even_when_its_variants_had_expired(store: FakeS3) -> None:
    # CloudFront keeps variants longer than S3 keeps them under variants/ (they expire there):
    # a replacement with nothing left to delete must still reach the edge.
    invalidated: list[list[str]] = []
    job = Sync(SMALL, store.factory, invalidate=invalidated.append)
    store.put_original("a.jpg", samples.jpeg(samples.photo(800, 600, seed=11)))
    result = sync_module.handle(s3_event("ObjectCreated:Put", "originals/a.jpg"), job)
    assert result["deleted"] == 0 and invalidated == [["/a.jpg/*"]]


def test_a_first_upload_invalidates_nothing(store: FakeS3) -> None:
    invalidated: list[list[str]] = []
    job = Sync(SMALL, store.factory, invalidate=invalidated.append)
    store.put_original("brand-new.jpg", samples.jpeg(samples.photo(400, 300)))
    sync_module.handle(s3_event("ObjectCreated:Put", "originals/brand-new.jpg"), job)
    assert invalidated == []  # nothing of it can be cached but a short-lived 404


class Forbidding:
    """S3 as the sync role sees it without s3:ListBucket on a key: a missing key is 403, not 404."""

    def __init__(self, store: FakeS3, gone: set[str], *, deleted: bool = True):
        # deleted: the key is gone by the time it is read (deleted after the listing saw it);
        # otherwise it stays listed and unreadable (a KMS key the role may not use, say).
        self.store, self.gone, self.deleted = store, gone, deleted

    def __call__(self, region: str) -> Any:
        client = self.store.factory(region)
        gone, deleted = self.gone, self.deleted

        class Client:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if name in ("get_object", "head_object"):

                    def forbidden(**kwargs: Any) -> Any:
                        if kwargs["Key"] in gone:
                            if deleted:
                                client.delete_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"])
                            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, name)
                        return attribute(**kwargs)

                    return forbidden
                return attribute

        return Client()


def test_an_original_deleted_mid_run_does_not_abort_the_reconcile(store: FakeS3) -> None:
    job = Sync(SMALL, Forbidding(store, {"originals/b/c.jpg"}))
    result = job.reconcile()
    assert result.failed == 0 and result.built == 12  # a.jpg and d.png; b/c.jpg vanished after the listing
    created = job.created("b/c.jpg")  # its ObjectCreated event, handled after the delete
    assert (created.built, created.failed) == (0, 0)


def test_a_listed_original_s3_will_not_let_us_read_is_reported_once_not_taken_for_gone(store: FakeS3) -> None:
    reports: list[dict[str, str]] = []
    job = Sync(SMALL, Forbidding(store, {"originals/b/c.jpg"}, deleted=False), report=reports.append)
    first = job.reconcile()
    assert (first.built, first.failed) == (12, 1)
    assert reports == [{"key": "b/c.jpg", "etag": etag(store, "b/c.jpg"), "reason": "403 unreadable: AccessDenied"}]
    assert f"b/c.jpg/{FAILED_MARKER}{etag(store, 'b/c.jpg')}" in fallback(store)
    again = job.reconcile()  # remembered by its version: not read, not reported again
    assert (again.built, again.failed, len(reports)) == (0, 0, 1)


class Refusing:
    """S3 refusing one original for good (an archived object: 403 InvalidObjectState) or for the
    moment (503 SlowDown)."""

    def __init__(self, store: FakeS3, key: str, code: str, status: int):
        self.store, self.key, self.code, self.status = store, key, code, status

    def __call__(self, region: str) -> Any:
        client, refusing = self.store.factory(region), self

        class Client:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if name != "get_object":
                    return attribute

                def get(**kwargs: Any) -> Any:
                    if kwargs["Key"] == refusing.key:
                        error = {"Code": refusing.code, "Message": "no"}
                        raise ClientError(
                            {"Error": error, "ResponseMetadata": {"HTTPStatusCode": refusing.status}}, name
                        )
                    return attribute(**kwargs)

                return get

        return Client()


def _batch(store: FakeS3) -> list[Original]:
    s3 = store.factory(SMALL.primary_region)
    return [
        Original(
            key,
            etag(store, key),
            int(s3.head_object(Bucket=SMALL.primary_bucket, Key=f"originals/{key}")["ContentLength"]),
        )
        for key in ("a.jpg", "b/c.jpg", "d.png")
    ]


def test_one_original_s3_refuses_for_good_does_not_fail_its_batch(store: FakeS3) -> None:
    reports: list[dict[str, str]] = []
    job = Sync(SMALL, Refusing(store, "originals/b/c.jpg", "InvalidObjectState", 403), report=reports.append)
    result = job.build_batch(_batch(store))
    assert (result.built, result.failed) == (12, 1)
    assert [r["reason"] for r in reports] == ["InvalidObjectState from S3"]
    assert variants_of(store, "a.jpg") == SET and variants_of(store, "d.png") == SET


def test_a_throttled_batch_fails_whole_so_the_maps_retry_runs_it_again(store: FakeS3) -> None:
    reports: list[dict[str, str]] = []
    job = Sync(SMALL, Refusing(store, "originals/b/c.jpg", "SlowDown", 503), report=reports.append)
    with pytest.raises(ClientError):
        job.build_batch(_batch(store))
    assert reports == [] and not any(k.startswith("b/c.jpg/_failed") for k in fallback(store))


def test_a_late_delete_event_leaves_the_set_of_the_upload_after_it(store: FakeS3) -> None:
    # S3 does not promise event order: the delete's event may be handled after the new upload's.
    invalidated: list[list[str]] = []
    job = Sync(SMALL, store.factory, invalidate=invalidated.append)
    sync_module.handle(s3_event("ObjectCreated:Put", "originals/a.jpg"), job)
    before = list(invalidated)
    removed = sync_module.handle(s3_event("ObjectRemoved:Delete", "originals/a.jpg"), job)
    assert removed["deleted"] == 0 and variants_of(store, "a.jpg") == SET
    assert invalidated == before  # nothing evicted for a delete that is not the latest word


@pytest.mark.parametrize(
    "items",
    [
        # the Distributed Map's ListObjectsV2 reader
        [{"Key": "originals/a.jpg", "Etag": '"x"', "Size": 10, "LastModified": 1668699881}],
        # boto3's listing
        [{"Key": "originals/a.jpg", "ETag": '"x"', "Size": 10}],
    ],
)
def test_a_distributed_map_batch_builds_its_originals(store: FakeS3, items: list[dict[str, Any]]) -> None:
    result = sync_module.handle({"Items": items, "BatchInput": {"source": "listing"}}, Sync(SMALL, store.factory))
    assert (result["built"], result["originals"]) == (6, 1)
    assert variants_of(store, "a.jpg") == SET


def test_an_inventory_batch_decodes_its_keys(store: FakeS3) -> None:
    store.put_original("summer sea+sun.jpg", samples.jpeg(samples.photo(400, 300)))
    items = [{"Bucket": SMALL.primary_bucket, "Key": "originals/summer+sea%2Bsun.jpg", "Size": "10", "ETag": "y"}]
    result = sync_module.handle({"Items": items, "BatchInput": {"source": "inventory"}}, Sync(SMALL, store.factory))
    assert result["built"] == 6 and variants_of(store, "summer sea+sun.jpg") == SET


def test_an_original_an_inventory_report_leaves_out_keeps_its_fallback_set(store: FakeS3) -> None:
    # "All of your objects might not appear in each inventory list" (S3 User Guide, "Inventory
    # consistency"): a report without an original is not its deletion.
    Sync(SMALL, store.factory).reconcile()
    before = fallback(store)
    primary = store.factory(SMALL.primary_region)
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL).writerow(
        [SMALL.primary_bucket, "originals/a.jpg", "1", etag(store, "a.jpg")]
    )
    primary.put_object(Bucket=SMALL.primary_bucket, Key="inv/data.csv.gz", Body=gzip.compress(text.getvalue().encode()))
    manifest = {"fileSchema": "Bucket, Key, Size, ETag", "files": [{"key": "inv/data.csv.gz"}]}
    primary.put_object(Bucket=SMALL.primary_bucket, Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    # the run starts on the checksum's arrival (S3 User Guide, "Inventory completion"); the manifest is beside it
    where = {"Bucket": SMALL.primary_bucket, "Key": "inv/manifest.checksum"}
    summary, cursor = Sync(SMALL, store.factory).plan(None, lambda o, names: None, manifest=where)
    assert cursor is None and summary.deleted == 0 and summary.skipped == len(SET)  # a.jpg checked, nothing dropped
    assert fallback(store) == before


def test_one_plan_leg_answers_its_cursor_and_a_listing_the_batches_build_from(store: FakeS3) -> None:
    odd = ['a "quoted", key.jpg', "plus+and space.jpg", "ünïcode/ß.jpg"]
    for index, key in enumerate(odd):
        store.put_original(key, samples.jpeg(samples.photo(300, 200, seed=index)))
    results = store.factory(SMALL.primary_region)
    results.create_bucket(Bucket="sync-results", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    job = Sync(SMALL, store.factory)
    leg = sync_module.handle({"plan": {"bucket": "sync-results", "name": "run-1", "cursor": None}}, job)
    assert (leg["cursor"], leg["work"]) == (None, 6) and leg["listing"] == {
        "Bucket": "sync-results",
        "Key": "listings/run-1/0.csv",
    }
    body = results.get_object(**leg["listing"])["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))  # as the Distributed Map's CSV reader hands them over
    assert not any('"' in line for line in body.splitlines())  # no key needs CSV quoting
    built = sync_module.handle({"Items": rows, "BatchInput": {"source": "plan"}}, job)
    assert (built["built"], built["failed"]) == (36, 0)
    for key in ("a.jpg", *odd):
        assert variants_of(store, key) == SET
    again = sync_module.handle({"plan": {"bucket": "sync-results", "name": "run-2", "cursor": None}}, job)
    assert (again["work"], again["listing"], again["skipped"]) == (0, None, 36)


def test_an_inventory_report_plans_what_a_listing_plans_under_either_reading_of_its_keys(store: FakeS3) -> None:
    odd = ["plus+sign.jpg", "with space.jpg", "100% sure.jpg"]
    for index, key in enumerate(odd):
        store.put_original(key, samples.jpeg(samples.photo(300, 200, seed=index)))
    primary = store.factory(SMALL.primary_region)
    listed: list[str] = []
    Sync(SMALL, store.factory).plan(None, lambda o, names: listed.append(o.key))
    keys = [str(i["Key"]) for i in primary.list_objects_v2(Bucket=SMALL.primary_bucket)["Contents"]]
    etags = {k: primary.head_object(Bucket=SMALL.primary_bucket, Key=k)["ETag"].strip('"') for k in keys}
    readings = (
        ("encoded, as documented", lambda k: quote_plus(k, safe="/")),
        ("encoded, slashes too", lambda k: quote_plus(k, safe="")),
        ("as is", lambda k: k),
    )
    for reading, encode in readings:
        rows = [[SMALL.primary_bucket, encode(k), "10", etags[k]] for k in reversed(keys)]  # any order
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL).writerows(rows)
        name = f"inventory/{reading.replace(' ', '-')}/data.csv.gz"
        primary.put_object(Bucket=SMALL.primary_bucket, Key=name, Body=gzip.compress(text.getvalue().encode()))
        manifest = {"fileSchema": "Bucket, Key, Size, ETag", "files": [{"key": name}]}
        where = {"Bucket": SMALL.primary_bucket, "Key": f"inventory/{reading.replace(' ', '-')}/manifest.json"}
        primary.put_object(**where, Body=json.dumps(manifest).encode())
        planned: list[str] = []
        Sync(SMALL, store.factory).plan(None, lambda o, names, into=planned: into.append(o.key), manifest=where)
        assert planned == listed, reading


def test_the_function_never_invokes_anything_itself() -> None:
    # Lambda stops a chain of a function invoking itself after about 16 invocations
    # ("Lambda recursive loop detection"): the state machine drives every repetition.
    tree = ast.parse(Path(sync_module.__file__).read_text())
    called = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "_client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert called == {"s3", "sqs", "cloudfront", "secretsmanager"}


def test_the_services_key_is_read_at_run_time_and_kept_for_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        import boto3

        secrets = boto3.client("secretsmanager", region_name="eu-west-1")
        secrets.create_secret(Name="team/thumbor-key", SecretString="first")
        monkeypatch.setattr(sync_module, "_clients", {"secretsmanager:None": secrets})
        monkeypatch.setattr(sync_module, "_service_key", None)
        now = [0.0]
        assert sync_module.service_key("team/thumbor-key", lambda: now[0]) == "first"
        secrets.put_secret_value(SecretId="team/thumbor-key", SecretString="rotated")
        now[0] = 100.0
        assert sync_module.service_key("team/thumbor-key", lambda: now[0]) == "first"  # kept
        now[0] = 400.0
        assert sync_module.service_key("team/thumbor-key", lambda: now[0]) == "rotated"  # read again


def test_a_dry_run_writes_nothing(store: FakeS3) -> None:
    result = Sync(SMALL, store.factory, dry_run=True).reconcile()
    assert result.built == 18 and fallback(store) == []


def test_the_backfill_command_builds_in_a_process_pool_and_fails_on_a_bad_original() -> None:
    from components.config import from_stack_file
    from localcdn.storage import LocalS3

    settings = from_stack_file("dev").edge_settings()
    local = LocalS3(settings)
    per_original = len(settings.widths) * len(settings.standard_formats)
    count = len(samples.originals())
    try:
        for key, data in samples.originals().items():
            local.put_original(key, data)
        command = [
            sys.executable,
            "-m",
            "ops",
            "sync",
            "--stack",
            "dev",
            "--endpoint-url",
            local.endpoint,
            "--workers",
            "2",
        ]
        dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr
        assert (
            f"would build {count * per_original}," in dry.stdout and list(local.objects(settings.fallback_bucket)) == []
        )
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert (summary["built"], summary["failed"], summary["originals"]) == (count * per_original, 0, count)
        assert f"{count} originals" in done.stderr  # the progress bar (tqdm), originals as the plan settles them
        local.put_original("zz/bad.jpg", b"<html>not a photo</html>")
        failed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert failed.returncode == 1
        assert (
            f"built 0, skipped {count * per_original}" in failed.stdout and "failed: zz/bad.jpg: 415" in failed.stdout
        )
    finally:
        local.stop()


def test_the_listing_is_streamed_not_held(store: FakeS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 1)
    monkeypatch.setattr(sync_module, "BUILD_BATCH", 1)
    events: list[str] = []
    primary = store.factory(SMALL.primary_region)
    primary.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **kw: events.append("listed a page of originals")
    )
    job = Sync(SMALL, store.factory)
    build_batch = job.build_batch

    def recording(batch: list[Original], stored: Any = None) -> sync_module.Summary:
        events.append(f"built {batch[0].key}")
        return build_batch(batch, stored)

    monkeypatch.setattr(job, "build_batch", recording)
    job.reconcile()
    # each original is built as soon as the plan has passed its range, before the next page is read
    assert events.index("built a.jpg") < len(events) - 1 - events[::-1].index("listed a page of originals")
    assert [e for e in events if e.startswith("built")] == ["built a.jpg", "built b/c.jpg", "built d.png"]


def test_on_aws_the_backfill_starts_the_state_machine_and_follows_its_map_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from ops import sync as command

    calls: list[tuple[str, dict[str, Any]]] = []
    statuses = iter(["RUNNING", "SUCCEEDED"])

    class StepFunctions:
        def start_execution(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(("start", kwargs))
            return {"executionArn": "arn:aws:states:eu-west-1:111122223333:execution:acme-sync:backfill-1"}

        def describe_execution(self, **kwargs: Any) -> dict[str, Any]:
            return {"status": next(statuses)}

        def list_map_runs(self, **kwargs: Any) -> dict[str, Any]:
            return {"mapRuns": [{"mapRunArn": "arn:run"}]}

        def describe_map_run(self, **kwargs: Any) -> dict[str, Any]:
            return {"itemCounts": {"total": 40, "succeeded": 38, "failed": 2}}

    class Sts:
        def get_caller_identity(self) -> dict[str, str]:
            return {"Account": "111122223333"}

    monkeypatch.setattr(command.time, "sleep", lambda seconds: None)
    err = io.StringIO()
    status = command.run_on_aws(SMALL, "acme", err, stepfunctions=StepFunctions(), sts=Sts())
    assert status == 0
    ((_, start),) = calls
    assert start["stateMachineArn"] == "arn:aws:states:eu-west-1:111122223333:stateMachine:acme-sync"
    assert json.loads(start["input"]) == {}
    assert "SUCCEEDED: 38 of 40 items succeeded, 2 failed" in err.getvalue()

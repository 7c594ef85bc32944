"""The sync job on moto: incremental, stale, orphans, resumable, bad originals; and its backfill CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import FakeS3
from moto import mock_aws

from edge import sync as sync_module
from edge.settings import Settings
from edge.sync import FAILED_MARKER, Sync
from localcdn import samples

SMALL = Settings(
    widths=(160, 320, 640),
    qualities=(60,),
    default_quality=60,
    standard_formats=("webp",),
    primary_bucket="sync-origin",
    primary_region="eu-west-1",
    fallback_bucket="sync-fallback",
    fallback_region="eu-central-1",
)


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


class Counting:
    """Wraps the S3 factory to count PUTs into the fallback."""

    def __init__(self, store: FakeS3):
        self.store, self.puts = store, 0

    def __call__(self, region: str) -> Any:
        client = self.store.factory(region)
        counter = self

        class Client:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if name == "put_object":

                    def put(**kwargs: Any) -> Any:
                        if not kwargs["Key"].endswith(FAILED_MARKER):
                            counter.puts += 1
                        return attribute(**kwargs)

                    return put
                return attribute

        return Client()


def test_a_reconcile_builds_every_standard_variant_then_nothing(store: FakeS3) -> None:
    first = Sync(SMALL, store.factory).reconcile()
    assert (first.built, first.skipped, first.failed, first.complete) == (9, 0, 0, True)
    assert fallback(store) == sorted(
        f"{k}/w_{w}_q_60.webp" for k in ("a.jpg", "b/c.jpg", "d.png") for w in (160, 320, 640)
    )
    stored = store.get(SMALL.fallback_bucket, "a.jpg/w_320_q_60.webp")
    assert stored["ContentType"] == "image/webp" and stored["CacheControl"] == SMALL.variant_cache_control
    assert first.bytes_written == sum(store.get(SMALL.fallback_bucket, k)["ContentLength"] for k in fallback(store))
    second = Sync(SMALL, store.factory).reconcile()
    assert (second.built, second.skipped, second.deleted) == (0, 9, 0)


def test_a_variant_older_than_its_original_is_rebuilt(store: FakeS3) -> None:
    Sync(SMALL, store.factory).reconcile()
    time.sleep(1.1)  # S3 timestamps have one-second resolution
    store.put_original("a.jpg", samples.jpeg(samples.photo(800, 600, seed=7)))
    again = Sync(SMALL, store.factory).reconcile()
    assert (again.built, again.skipped) == (3, 6)


def test_orphans_and_retired_variants_are_deleted_and_foreign_keys_kept(store: FakeS3) -> None:
    Sync(SMALL, store.factory).reconcile()
    client = store.factory(SMALL.primary_region)
    client.delete_object(Bucket=SMALL.primary_bucket, Key="originals/b/c.jpg")  # no event: only reconcile sees it
    fallback_client = store.factory(SMALL.fallback_region)
    for foreign in ("notes.txt", "b/c.jpg/readme.md", "a.jpg/w_2000_q_60.webp"):
        fallback_client.put_object(Bucket=SMALL.fallback_bucket, Key=foreign, Body=b"x")
    result = Sync(SMALL, store.factory).reconcile()
    assert result.deleted == 4  # three of b/c.jpg's, and a width no longer standard
    left = fallback(store)
    assert not any(k.startswith("b/c.jpg/w_") for k in left)
    assert "a.jpg/w_2000_q_60.webp" not in left
    assert {"notes.txt", "b/c.jpg/readme.md"} <= set(left)
    assert store.keys(SMALL.primary_bucket) == ["originals/a.jpg", "originals/d.png"]


def test_an_interrupted_run_resumes_where_it_stopped(store: FakeS3) -> None:
    counting = Counting(store)
    budget = iter([1000.0, 1000.0, 0.0])  # time for two originals, then the clock runs out
    first = Sync(SMALL, counting).reconcile(time_left=lambda: next(budget, 0.0))
    assert not first.complete and first.cursor == {"phase": "build", "after": "b/c.jpg"}
    assert first.built == 6
    rest = Sync(SMALL, counting).reconcile(first.cursor)
    assert rest.complete and rest.built == 3
    assert counting.puts == 9  # nothing was built twice


def test_the_orphan_pass_resumes_too(store: FakeS3) -> None:
    Sync(SMALL, store.factory).reconcile()
    for key in ("originals/a.jpg", "originals/d.png"):
        store.factory(SMALL.primary_region).delete_object(Bucket=SMALL.primary_bucket, Key=key)
    budget = iter([1000.0, 1000.0])  # one original's group, then out of time at the next group
    first = Sync(SMALL, store.factory).reconcile({"phase": "orphans", "after": ""}, lambda: next(budget, 0.0))
    assert not first.complete and first.deleted == 3
    rest = Sync(SMALL, store.factory).reconcile(first.cursor)
    assert rest.complete and rest.deleted == 3
    assert fallback(store) == [f"b/c.jpg/w_{w}_q_60.webp" for w in (160, 320, 640)]


def test_a_corrupt_original_is_reported_once_and_the_rest_built(store: FakeS3) -> None:
    store.put_original("broken.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    reports: list[dict[str, str]] = []
    first = Sync(SMALL, store.factory, report=reports.append).reconcile()
    assert (first.built, first.failed) == (9, 1)
    assert [r["key"] for r in reports] == ["broken.jpg"] and "422" in reports[0]["reason"]
    second = Sync(SMALL, store.factory, report=reports.append).reconcile()
    assert (second.built, second.failed, len(reports)) == (0, 0, 1)  # remembered, not retried
    time.sleep(1.1)
    store.put_original("broken.jpg", samples.jpeg(samples.photo(400, 300)))
    fixed = Sync(SMALL, store.factory, report=reports.append).reconcile()
    assert fixed.built == 3 and f"broken.jpg/{FAILED_MARKER}" not in fallback(store)


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
    created = sync_module.handle(s3_event("ObjectCreated:Put", "originals/new photo.jpg"), job, lambda: 900.0)
    assert created.built == 3
    assert [k for k in fallback(store) if k.startswith("new photo.jpg/")] == [
        f"new photo.jpg/w_{w}_q_60.webp" for w in (160, 320, 640)
    ]
    store.factory(SMALL.primary_region).put_object(
        Bucket=SMALL.primary_bucket, Key="variants/new photo.jpg/w_320_q_90.avif", Body=b"x"
    )
    originals_before = [k for k in store.keys(SMALL.primary_bucket) if k.startswith("originals/")]
    store.factory(SMALL.primary_region).delete_object(Bucket=SMALL.primary_bucket, Key="originals/new photo.jpg")
    removed = sync_module.handle(s3_event("ObjectRemoved:Delete", "originals/new photo.jpg"), job, lambda: 900.0)
    assert removed.deleted == 4
    assert not any(k.startswith("new photo.jpg/") for k in fallback(store))
    assert not any(k.startswith("variants/new photo.jpg/") for k in store.keys(SMALL.primary_bucket))
    assert [k for k in store.keys(SMALL.primary_bucket) if k.startswith("originals/")] == [
        k for k in originals_before if k != "originals/new photo.jpg"
    ]
    assert invalidated == [["/new%20photo.jpg/*"]]


def test_a_replaced_original_drops_its_stale_variants(store: FakeS3) -> None:
    job = Sync(SMALL, store.factory)
    store.factory(SMALL.primary_region).put_object(
        Bucket=SMALL.primary_bucket, Key="variants/a.jpg/w_640_q_60.avif", Body=b"old"
    )
    result = sync_module.handle(s3_event("ObjectCreated:Put", "originals/a.jpg"), job, lambda: 900.0)
    assert result.built == 3 and result.deleted == 1
    assert "variants/a.jpg/w_640_q_60.avif" not in store.keys(SMALL.primary_bucket)


def test_a_replaced_original_is_invalidated_even_when_its_variants_had_expired(store: FakeS3) -> None:
    # CloudFront keeps variants longer than S3 keeps them under variants/ (they expire there):
    # a replacement with nothing left to delete must still reach the edge.
    invalidated: list[list[str]] = []
    job = Sync(SMALL, store.factory, invalidate=invalidated.append)
    store.put_original("a.jpg", samples.jpeg(samples.photo(800, 600, seed=11)))
    result = sync_module.handle(s3_event("ObjectCreated:Put", "originals/a.jpg"), job, lambda: 900.0)
    assert result.deleted == 0 and invalidated == [["/a.jpg/*"]]


def test_a_first_upload_invalidates_nothing(store: FakeS3) -> None:
    invalidated: list[list[str]] = []
    job = Sync(SMALL, store.factory, invalidate=invalidated.append)
    store.put_original("brand-new.jpg", samples.jpeg(samples.photo(400, 300)))
    sync_module.handle(s3_event("ObjectCreated:Put", "originals/brand-new.jpg"), job, lambda: 900.0)
    assert invalidated == []  # nothing of it can be cached but a short-lived 404


class Forbidding:
    """S3 as the sync role sees it without s3:ListBucket on a key: a missing key is 403, not 404."""

    def __init__(self, store: FakeS3, gone: set[str]):
        self.store, self.gone = store, gone

    def __call__(self, region: str) -> Any:
        client = self.store.factory(region)
        gone = self.gone

        class Client:
            exceptions = client.exceptions

            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if name in ("get_object", "head_object"):

                    def forbidden(**kwargs: Any) -> Any:
                        if kwargs["Key"] in gone:
                            error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
                            raise ClientError(error, "GetObject")
                        return attribute(**kwargs)

                    return forbidden
                return attribute

        return Client()


def test_an_original_deleted_mid_run_does_not_abort_the_reconcile(store: FakeS3) -> None:
    job = Sync(SMALL, Forbidding(store, {"originals/b/c.jpg"}))
    result = job.reconcile()
    assert result.complete and result.failed == 0
    assert result.built == 6  # a.jpg and d.png; b/c.jpg vanished between the listing and the read
    created = job.created("b/c.jpg")  # its ObjectCreated event, handled after the delete
    assert (created.built, created.failed) == (0, 0)


def test_a_dry_run_writes_nothing(store: FakeS3) -> None:
    result = Sync(SMALL, store.factory, dry_run=True).reconcile()
    assert result.built == 9 and fallback(store) == []


def test_the_lambda_reinvokes_itself_with_its_cursor(store: FakeS3, monkeypatch: pytest.MonkeyPatch) -> None:
    invoked: list[dict[str, Any]] = []

    class FakeLambda:
        def invoke(self, **kwargs: Any) -> None:
            invoked.append(kwargs)

    clients = {"lambda:None": FakeLambda()}
    monkeypatch.setattr(sync_module, "bundled", lambda: SMALL)
    monkeypatch.setattr(
        sync_module, "_client", lambda service, region=None: clients.get(f"{service}:{region}") or store.factory(region)
    )

    class Context:
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:x-sync"
        calls = iter([1000 * 1000, 0])

        def get_remaining_time_in_millis(self) -> int:
            return next(self.calls, 0)

    result = sync_module.handler({"reconcile": {}}, Context())
    assert result["complete"] is False and result["built"] == 3
    (call,) = invoked
    assert call["InvocationType"] == "Event" and call["FunctionName"] == Context.invoked_function_arn
    assert json.loads(call["Payload"]) == {"reconcile": {"phase": "build", "after": "a.jpg"}}


def test_the_backfill_command_reports_and_fails_on_a_bad_original() -> None:
    from components.config import from_stack_file
    from localcdn.storage import LocalS3

    settings = from_stack_file("dev").edge_settings()
    local = LocalS3(settings)
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
            "--concurrency",
            "2",
        ]
        dry = subprocess.run([*command, "--dry-run"], capture_output=True, text=True, timeout=300)
        assert dry.returncode == 0, dry.stderr
        assert "would build 80," in dry.stdout and list(local.objects(settings.fallback_bucket)) == []
        done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert (summary["built"], summary["failed"]) == (80, 0)
        assert "4/4" in done.stderr  # the progress line
        local.put_original("zz/bad.jpg", b"<html>not a photo</html>")
        failed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert failed.returncode == 1
        assert "built 0, skipped 80" in failed.stdout and "failed: zz/bad.jpg: 415" in failed.stdout
    finally:
        local.stop()


def test_the_listing_is_streamed_not_held(store: FakeS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 1)
    events: list[str] = []
    job = Sync(SMALL, store.factory)
    pages = job.originals

    def originals(after: str = "") -> Iterator[sync_module.Original]:
        for original in pages(after):
            events.append(f"listed {original.key}")
            yield original

    build = job.build

    def recording_build(original: sync_module.Original, *, force: bool = False) -> sync_module.Summary:
        events.append(f"built {original.key}")
        return build(original, force=force)

    monkeypatch.setattr(job, "originals", originals)
    monkeypatch.setattr(job, "build", recording_build)
    job.reconcile()
    assert events == ["listed a.jpg", "built a.jpg", "listed b/c.jpg", "built b/c.jpg", "listed d.png", "built d.png"]

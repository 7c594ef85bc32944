"""The metadata function on moto: S3's events through EventBridge -> one catalogue item per original."""

from __future__ import annotations

import io
from typing import Any

import pytest
from conftest import CatalogEnv
from PIL import Image

from catalog import keys, metadata
from localcdn import samples


def item(env: CatalogEnv, key: str) -> dict[str, Any] | None:
    return env.catalogue.get(keys.image_id(key))


def test_an_upload_becomes_an_item_with_everything_the_issue_lists(catalog_env: CatalogEnv) -> None:
    data = samples.camera_jpeg(samples.photo(1200, 800, seed=12), orientation=8)
    uploaded = catalog_env.upload("Été à Nice.jpg", data, ["beach", "sun"])
    found = catalog_env.catalogue.get(uploaded["id"])
    assert found is not None
    assert found["status"] == "ready" and found["id"] == uploaded["id"] and found["key"] == uploaded["key"]
    assert found["filename"] == "Été à Nice.jpg"  # as the uploader named it; the key holds a safe form
    assert (found["width"], found["height"], found["format"]) == (800, 1200, "jpeg")
    assert (found["bytes"], found["animated"], found["alpha"]) == (len(data), False, False)
    assert found["captured_at"] == "2024-05-01T10:20:30+02:00"
    assert found["tags"] == ["beach", "sun"] and found["owner"] == CatalogEnv.OWNER
    head = catalog_env.s3.head_object(Bucket=catalog_env.settings.primary_bucket, Key=uploaded["key"])
    assert found["etag"] == head["ETag"].strip('"')
    assert found["uploaded_at"].endswith("Z") and found["colour"].startswith("#")
    assert found["blurhash"] and found["placeholder"].startswith("data:image/png;base64,")
    assert "expires_at" not in found  # no longer a pending upload that may expire


def test_a_large_jpeg_is_read_as_at_most_its_first_256_kb(catalog_env: CatalogEnv) -> None:
    """Measured on the S3 requests the function makes (moto's answers, as botocore saw them)."""
    photo = samples.photo(6000, 4000, seed=13)
    noisy = Image.blend(photo, Image.effect_noise(photo.size, 60).convert("RGB"), 0.3)
    data = samples.camera_jpeg(noisy, quality=92)  # 24 MP, a thumbnail in its EXIF
    assert len(data) > 3_000_000
    key = "originals/camera/DSC_0001.jpg"
    catalog_env.put(key, data)
    requests: list[dict[str, Any]] = []

    def seen(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        if model.name in ("GetObject", "HeadObject"):
            requests.append({"operation": model.name, "bytes": int(http_response.headers["Content-Length"])})
            assert parsed["ContentLength"] <= metadata.HEAD_BYTES

    catalog_env.s3.meta.events.register("after-call.s3", seen)
    result = catalog_env.event("Object Created", key)
    assert result["status"] == "ready" and result["bytes_read"] == metadata.HEAD_BYTES
    assert requests == [{"operation": "GetObject", "bytes": metadata.HEAD_BYTES}]
    found = item(catalog_env, key)
    assert found is not None and (found["width"], found["height"]) == (6000, 4000)


def test_what_is_not_an_image_is_recorded_as_rejected_with_the_reason(catalog_env: CatalogEnv) -> None:
    for key, data in (
        ("originals/docs/notes.txt", b"hello"),
        ("originals/docs/page.html", b"<!doctype html><script>alert(1)</script>"),
        ("originals/docs/empty.jpg", b""),
        ("originals/docs/cut.jpg", samples.jpeg(samples.photo(300, 200))[:300]),
    ):
        catalog_env.put(key, data)
        assert catalog_env.event("Object Created", key)["status"] == "rejected"
        found = item(catalog_env, key)
        assert found is not None and found["status"] == "rejected" and found["bytes"] == len(data)
        assert found["reason"].startswith("Expected ") and found["error"] in ("UnsupportedImage", "UndecodableImage")
    status, page = catalog_env.call("GET", "/images", query={"status": "rejected"})
    assert status == 200 and len(page["images"]) == 4 and all("srcset" not in i for i in page["images"])
    assert catalog_env.call("GET", "/images")[1]["images"] == []  # never listed as images


def test_an_image_over_the_byte_limit_is_rejected_without_reading_it(settings: Any) -> None:
    from moto import mock_aws

    from edge.settings import Settings

    tight = Settings(**{**settings.as_dict(), "max_input_bytes": 2048})
    with mock_aws():
        env = CatalogEnv(tight)
        key = "originals/big.png"
        env.put(key, samples.png(samples.photo(200, 200)))
        reads: list[str] = []
        env.s3.meta.events.register(
            "before-send.s3.GetObject", lambda request, **_: reads.append(request.headers["Range"])
        )
        assert env.event("Object Created", key)["status"] == "rejected"
        found = item(env, key)
        assert found is not None and found["error"] == "InputTooLarge"
        assert reads == [f"bytes=0-{metadata.HEAD_BYTES - 1}".encode()]  # the first range only: its size is known


def test_a_folder_marker_is_not_a_file(catalog_env: CatalogEnv) -> None:
    catalog_env.put("originals/empty-folder/", b"")
    assert catalog_env.event("Object Created", "originals/empty-folder/") == {"gone": "originals/empty-folder/"}


@pytest.mark.parametrize(
    "event_key",
    ["originals/My photo+1.jpg", "originals/My+photo%2B1.jpg", "originals/My%20photo%2B1.jpg"],
    ids=["as-written", "notification-encoding", "percent-encoding"],
)
def test_the_key_is_read_every_way_an_event_may_write_it(catalog_env: CatalogEnv, event_key: str) -> None:
    key = "originals/My photo+1.jpg"
    catalog_env.put(key, samples.png(samples.logo(320, 240)))
    catalog_env.event("Object Created", event_key)
    found = item(catalog_env, key)
    assert found is not None and found["key"] == key and found["status"] == "ready"
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=key)
    assert catalog_env.event("Object Deleted", event_key)["removed"] == [keys.image_id(key)]
    assert item(catalog_env, key) is None


def test_two_originals_one_event_key_may_name_are_both_catalogued(catalog_env: CatalogEnv) -> None:
    """ "a+b.jpg" is itself under one reading and "a b.jpg" under another: both exist, both are images."""
    for key in ("originals/a+b.png", "originals/a b.png"):
        catalog_env.put(key, samples.png(samples.logo(200, 100)))
    catalog_env.event("Object Created", "originals/a+b.png")
    assert item(catalog_env, "originals/a+b.png") and item(catalog_env, "originals/a b.png")
    # only the one that is gone is removed, whichever reading the deleted event meant
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key="originals/a b.png")
    catalog_env.event("Object Deleted", "originals/a+b.png")
    assert item(catalog_env, "originals/a+b.png") and item(catalog_env, "originals/a b.png") is None


def test_a_deleted_event_for_an_original_that_is_back_removes_nothing(catalog_env: CatalogEnv) -> None:
    key = "originals/back.png"
    catalog_env.put(key, samples.png(samples.logo(200, 100)))
    catalog_env.event("Object Created", key)
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=key)
    catalog_env.put(key, samples.png(samples.logo(300, 100)))  # uploaded again before the event came
    assert catalog_env.event("Object Deleted", key) == {"removed": []}
    assert item(catalog_env, key) is not None


def test_events_in_any_order_leave_the_newest_version(catalog_env: CatalogEnv) -> None:
    key = "originals/replaced.png"
    catalog_env.put(key, samples.png(samples.logo(200, 100)))
    catalog_env.put(key, samples.png(samples.logo(500, 100)))
    for _ in range(2):  # both created events, whichever came first, read the current version
        catalog_env.event("Object Created", key)
        found = item(catalog_env, key)
        assert found is not None and found["width"] == 500
    # a writer holding an older version's facts never replaces a newer item
    stale = {**found, "width": 200, "modified": "2000-01-01T00:00:00.000Z"}
    assert catalog_env.catalogue.save(stale, unless_newer=stale["modified"]) is False
    assert item(catalog_env, key)["width"] == 500  # type: ignore[index]


def test_tags_changed_through_the_api_survive_a_replaced_original(catalog_env: CatalogEnv) -> None:
    uploaded = catalog_env.upload("a.jpg", samples.camera_jpeg(samples.photo(400, 300)), ["old"])
    assert catalog_env.call("PATCH", f"/images/{uploaded['id']}", {"tags": ["new"]})[0] == 200
    catalog_env.put(uploaded["key"], samples.camera_jpeg(samples.photo(640, 480)), tags="old")
    catalog_env.event("Object Created", uploaded["key"])
    found = catalog_env.catalogue.get(uploaded["id"])
    assert found is not None and found["tags"] == ["new"] and found["width"] == 640


def test_tags_from_metadata_written_by_hand_are_filtered(catalog_env: CatalogEnv) -> None:
    key = "originals/by-hand.png"
    catalog_env.put(
        key, samples.png(samples.logo(200, 100)), tags="ok,Not OK,also-ok,ok," + ",".join(f"t{i}" for i in range(20))
    )
    catalog_env.event("Object Created", key)
    found = item(catalog_env, key)
    assert found is not None and found["tags"][:2] == ["ok", "also-ok"] and len(found["tags"]) == 10


def test_two_files_put_by_hand_in_one_upload_shaped_folder_get_two_items(catalog_env: CatalogEnv) -> None:
    folder = "originals/0f8fad5b-d9cb-469f-a165-70867728950e"
    for name in ("a.png", "b.png"):
        catalog_env.put(f"{folder}/{name}", samples.png(samples.logo(200, 100)))
        catalog_env.event("Object Created", f"{folder}/{name}")
    first = catalog_env.catalogue.get("0f8fad5b-d9cb-469f-a165-70867728950e")
    second = catalog_env.catalogue.get(keys.fallback_id(f"{folder}/b.png"))
    assert first is not None and first["key"] == f"{folder}/a.png"
    assert second is not None and second["key"] == f"{folder}/b.png"
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=f"{folder}/b.png")
    catalog_env.event("Object Deleted", f"{folder}/b.png")
    assert catalog_env.catalogue.get(keys.fallback_id(f"{folder}/b.png")) is None
    assert catalog_env.catalogue.get("0f8fad5b-d9cb-469f-a165-70867728950e") is not None


def test_what_phones_upload_is_catalogued(catalog_env: CatalogEnv) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    samples.photo(800, 600, seed=14).save(out, "HEIF", quality=60)
    key = "originals/phone/IMG_0001.HEIC"
    catalog_env.put(key, out.getvalue())
    catalog_env.event("Object Created", key)
    found = item(catalog_env, key)
    assert found is not None and (found["format"], found["width"], found["height"]) == ("heif", 800, 600)


def test_an_event_for_another_bucket_or_kind_is_ignored(catalog_env: CatalogEnv) -> None:
    from catalog import ingest

    other = {
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "elsewhere"}, "object": {"key": "originals/x.png"}},
    }
    assert ingest.handle(other, catalog_env.config, catalog_env.catalogue, catalog_env.s3) == {
        "ignored": "originals/x.png"
    }
    restored = {
        "detail-type": "Object Restore Completed",
        "detail": {"bucket": {"name": catalog_env.settings.primary_bucket}, "object": {"key": "originals/x.png"}},
    }
    assert ingest.handle(restored, catalog_env.config, catalog_env.catalogue, catalog_env.s3) == {
        "ignored": "originals/x.png"
    }


# -- a missing key under both readings of S3's answer ----------------------------------------
#
# "HeadObject" and "GetObject" (S3 API Reference): "If the object you request doesn't exist, the
# error that Amazon S3 returns depends on whether you also have the s3:ListBucket permission. If
# you have the s3:ListBucket permission on the bucket, Amazon S3 returns an HTTP status code 404
# Not Found error. If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status
# code 403 Forbidden error." moto answers the first way; `WithoutListBucket` the second. Either
# way the catalogue item of an object that is there is never removed.


def _denied(operation: str) -> Any:
    from botocore.exceptions import ClientError

    # A HEAD's error has no body: botocore names it by its status. A GET's body says AccessDenied.
    error = (
        {"Code": "403", "Message": "Forbidden"}
        if operation == "HeadObject"
        else {"Code": "AccessDenied", "Message": "Access Denied"}
    )
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}, operation)


class WithoutListBucket:
    """moto's S3 as a role for which s3:ListBucket does not count on reads: every 404 of a HEAD or
    GET becomes a 403. `may_list`: whether ListObjectsV2 is allowed (the role's grant on
    `originals/`); `unreadable`: keys that exist and whose reads are refused all the same."""

    def __init__(self, s3: Any, *, may_list: bool = True, unreadable: tuple[str, ...] = ()):
        self.s3, self.may_list, self.unreadable = s3, may_list, unreadable
        self.calls: list[str] = []

    def _read(self, operation: str, call: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        self.calls.append(operation)
        if kwargs["Key"] in self.unreadable:
            raise _denied(operation)
        try:
            return call(**kwargs)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise _denied(operation) from None
            raise

    def head_object(self, **kwargs: Any) -> Any:
        return self._read("HeadObject", self.s3.head_object, **kwargs)

    def get_object(self, **kwargs: Any) -> Any:
        return self._read("GetObject", self.s3.get_object, **kwargs)

    def list_objects_v2(self, **kwargs: Any) -> Any:
        self.calls.append("ListObjectsV2")
        if not self.may_list:
            raise _denied("ListObjectsV2")
        return self.s3.list_objects_v2(**kwargs)


def _event(env: CatalogEnv, kind: str, key: str, s3: Any) -> dict[str, Any]:
    from catalog import ingest

    event = {"detail-type": kind, "detail": {"bucket": {"name": env.settings.primary_bucket}, "object": {"key": key}}}
    return ingest.handle(event, env.config, env.catalogue, s3)


def _catalogued(env: CatalogEnv, key: str) -> None:
    env.put(key, samples.png(samples.logo(200, 100)))
    env.event("Object Created", key)
    assert item(env, key) is not None


def test_with_list_bucket_a_404_settles_a_deleted_event_in_one_request(catalog_env: CatalogEnv) -> None:
    key = "originals/gone-404.png"
    _catalogued(catalog_env, key)
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=key)
    calls: list[str] = []
    catalog_env.s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    assert catalog_env.event("Object Deleted", key) == {"removed": [keys.image_id(key)]}
    assert calls == ["HeadObject"]  # the 404 says it: no listing


def test_without_list_bucket_a_403_is_settled_by_a_listing_and_a_gone_original_is_uncatalogued(
    catalog_env: CatalogEnv,
) -> None:
    key = "originals/gone-403.png"
    _catalogued(catalog_env, key)
    catalog_env.put("originals/gone-403.png.bak", b"a longer key the prefix also lists")
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=key)  # a delete marker
    s3 = WithoutListBucket(catalog_env.s3)
    assert _event(catalog_env, "Object Deleted", key, s3) == {"removed": [keys.image_id(key)]}
    assert s3.calls == ["HeadObject", "ListObjectsV2"] and item(catalog_env, key) is None


def test_without_list_bucket_an_original_uploaded_again_keeps_its_item(catalog_env: CatalogEnv) -> None:
    key = "originals/back-403.png"
    _catalogued(catalog_env, key)
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=key)
    catalog_env.put(key, samples.png(samples.logo(300, 100)))  # there again before the event came
    assert _event(catalog_env, "Object Deleted", key, WithoutListBucket(catalog_env.s3)) == {"removed": []}
    # a 403 for an object that is there (refused for another reason) decides nothing either
    refused = WithoutListBucket(catalog_env.s3, unreadable=(key,))
    assert _event(catalog_env, "Object Deleted", key, refused) == {"removed": []}
    assert refused.calls == ["HeadObject", "ListObjectsV2"] and item(catalog_env, key) is not None


def test_a_403_that_no_listing_can_settle_is_an_error_and_removes_nothing(catalog_env: CatalogEnv) -> None:
    """No ListBucket at all: the event fails (Lambda retries it, then dead-letters it) rather than guess."""
    from botocore.exceptions import ClientError

    key = "originals/unknown.png"
    _catalogued(catalog_env, key)
    catalog_env.s3.delete_object(Bucket=catalog_env.settings.primary_bucket, Key=key)
    with pytest.raises(ClientError):
        _event(catalog_env, "Object Deleted", key, WithoutListBucket(catalog_env.s3, may_list=False))
    assert item(catalog_env, key) is not None


def test_without_list_bucket_every_reading_of_a_created_events_key_is_still_tried(catalog_env: CatalogEnv) -> None:
    """ "My+photo%2B1.jpg" read as written names no object: a 403 now, not a 404. It is skipped
    (the listing says it is not there) and the reading that exists is catalogued."""
    key = "originals/My photo+1.jpg"
    catalog_env.put(key, samples.png(samples.logo(320, 240)))
    s3 = WithoutListBucket(catalog_env.s3)
    result = _event(catalog_env, "Object Created", "originals/My+photo%2B1.jpg", s3)
    assert result["key"] == key and result["status"] == "ready"
    assert "ListObjectsV2" in s3.calls
    gone = "originals/deleted-since.png"
    assert _event(catalog_env, "Object Created", gone, WithoutListBucket(catalog_env.s3)) == {"gone": gone}


def test_a_created_original_that_is_there_but_unreadable_is_an_error_not_skipped(catalog_env: CatalogEnv) -> None:
    from botocore.exceptions import ClientError

    key = "originals/kept-from-us.png"
    catalog_env.put(key, samples.png(samples.logo(200, 100)))
    with pytest.raises(ClientError):
        _event(catalog_env, "Object Created", key, WithoutListBucket(catalog_env.s3, unreadable=(key,)))


def test_without_list_bucket_an_empty_original_is_still_recorded_as_rejected(catalog_env: CatalogEnv) -> None:
    key = "originals/empty-403.jpg"
    catalog_env.put(key, b"")
    result = _event(catalog_env, "Object Created", key, WithoutListBucket(catalog_env.s3))
    assert result["status"] == "rejected" and result["key"] == key

"""The catalogue's API handler on moto (DynamoDB and S3), called as API Gateway calls it."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from conftest import CatalogEnv

from catalog import keys
from catalog.store import Catalogue
from localcdn import samples

ALICE = CatalogEnv.OWNER
BOB = "arn:aws:iam::123456789012:user/bob"


@pytest.fixture
def photo() -> bytes:
    return samples.camera_jpeg(samples.photo(1200, 800, seed=11))


def test_an_upload_is_a_presigned_post_pinned_to_one_new_key(catalog_env: CatalogEnv) -> None:
    status, answer = catalog_env.call(
        "POST", "/uploads", {"filename": "Ünïcode photo (1).JPG", "content_type": "image/jpeg", "tags": ["Beach"]}
    )
    assert status == 201
    assert re.fullmatch(r"originals/[0-9a-f-]{36}/Unicode-photo-1\.jpg", answer["key"])
    assert answer["key"] == f"originals/{answer['id']}/Unicode-photo-1.jpg" and keys.uploaded_id(answer["key"])
    fields = answer["upload"]["fields"]
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4: SigV2 is refused in newer regions
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 50 * 1024 * 1024] in conditions
    for pinned in (
        {"key": answer["key"]},
        {"Content-Type": "image/jpeg"},
        {"x-amz-meta-owner": quote(ALICE, safe="")},
        {"x-amz-meta-tags": "beach"},
        {"x-amz-meta-filename": quote("Ünïcode photo (1).JPG", safe="")},
    ):
        assert pinned in conditions
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 0 < expires - time.time() <= 300
    status, pending = catalog_env.call("GET", f"/images/{answer['id']}")
    assert status == 200 and pending["status"] == "pending" and "srcset" not in pending


@pytest.mark.parametrize(
    ("filename", "content_type", "safe"),
    [
        ("../../etc/passwd.jpg", "image/jpeg", "etc-passwd.jpg"),
        ("cat.png", "image/jpeg", "cat.jpg"),
        ("IMG_0001.HEIC", "image/heic", "IMG_0001.heic"),
        ("🌅.webp", "image/webp", "image.webp"),
        ("a" * 200 + ".png", "image/png", "a" * 80 + ".png"),
    ],
)
def test_the_stored_name_is_safe_and_says_its_type(
    catalog_env: CatalogEnv, filename: str, content_type: str, safe: str
) -> None:
    status, answer = catalog_env.call("POST", "/uploads", {"filename": filename, "content_type": content_type})
    assert status == 201 and answer["key"].rsplit("/", 1)[1] == safe


BAD_REQUESTS: list[tuple[str, str, Any, dict[str, str] | None, int, str]] = [
    ("POST", "/uploads", {"content_type": "image/jpeg"}, None, 400, "filename"),
    ("POST", "/uploads", {"filename": "a\nb.jpg", "content_type": "image/jpeg"}, None, 400, "filename"),
    # 255 characters of 4 UTF-8 bytes: 3,060 bytes percent-encoded, over S3's 2 KB of metadata
    ("POST", "/uploads", {"filename": "\U0001f600" * 255, "content_type": "image/jpeg"}, None, 400, "filename"),
    ("POST", "/uploads", {"filename": "a.svg", "content_type": "image/svg+xml"}, None, 400, "content_type"),
    ("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "tags": "beach"}, None, 400, "tags"),
    ("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "tags": ["Bad Tag!"]}, None, 400, "tags"),
    (
        "POST",
        "/uploads",
        {"filename": "a.jpg", "content_type": "image/jpeg", "tags": list("abcdefghijk")},
        None,
        400,
        "tags",
    ),
    (
        "POST",
        "/uploads",
        {"filename": "a.jpg", "content_type": "image/jpeg", "bytes": 60 * 1024 * 1024},
        None,
        413,
        "bytes",
    ),
    ("POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "bytes": "big"}, None, 400, "bytes"),
    ("POST", "/uploads", "not json", None, 400, "body"),
    ("POST", "/uploads", [1, 2], None, 400, "body"),
    ("POST", "/uploads", "x" * 20_000, None, 413, "body"),
    ("GET", "/images", None, {"limit": "0"}, 400, "limit"),
    ("GET", "/images", None, {"limit": "101"}, 400, "limit"),
    ("GET", "/images", None, {"min_width": "-1"}, 400, "min_width"),
    ("GET", "/images", None, {"after": "yesterday"}, 400, "after"),
    ("GET", "/images", None, {"after": "2026-02-30"}, 400, "after"),
    ("GET", "/images", None, {"after": "2026-05-01", "before": "2026-04-01"}, 400, "before"),
    ("GET", "/images", None, {"status": "pending"}, 400, "status"),
    ("GET", "/images", None, {"tag": "Bad Tag"}, 400, "tag"),
    ("GET", "/images", None, {"tag": ""}, 400, "tag"),
    ("GET", "/images", None, {"sort": "width"}, 400, "sort"),
    ("GET", "/images", None, {"cursor": "not-a-cursor"}, 400, "cursor"),
    ("GET", "/images/not-a-uuid", None, None, 400, "id"),
    ("GET", f"/images/{uuid.UUID(int=7)}", None, None, 404, "id"),
    ("PATCH", f"/images/{uuid.UUID(int=7)}", {"tags": ["a"]}, None, 404, "id"),
    ("PATCH", f"/images/{uuid.UUID(int=7)}", {"tag": ["a"]}, None, 400, "body"),
    ("PATCH", f"/images/{uuid.UUID(int=7)}", {"tags": "a"}, None, 400, "tags"),
    ("DELETE", f"/images/{uuid.UUID(int=7)}", None, None, 404, "id"),
    ("PUT", "/images", None, None, 405, "method"),
    ("GET", "/uploads", None, None, 405, "method"),
    ("GET", "/nope", None, None, 404, "path"),
]


@pytest.mark.parametrize(("method", "path", "body", "query", "status", "parameter"), BAD_REQUESTS)
def test_every_bad_request_is_a_json_4xx_naming_the_parameter(
    catalog_env: CatalogEnv,
    method: str,
    path: str,
    body: Any,
    query: dict[str, str] | None,
    status: int,
    parameter: str,
) -> None:
    got, answer = catalog_env.call(method, path, body, query)
    assert got == status, answer
    assert answer["parameter"] == parameter
    assert answer["message"] == f"Expected {answer['expected']} for {parameter} but received {answer['received']}"


def test_a_method_not_allowed_says_which_are(catalog_env: CatalogEnv) -> None:
    from catalog import api

    event = {
        "rawPath": f"/images/{uuid.UUID(int=7)}",
        "requestContext": {"http": {"method": "POST"}, "authorizer": {"iam": {"userArn": ALICE}}},
    }
    answer = api.handle(event, catalog_env.config, catalog_env.catalogue, catalog_env.s3)
    assert answer["statusCode"] == 405 and answer["headers"]["Allow"] == "GET, PATCH, DELETE"


def test_an_unauthenticated_call_is_refused_even_if_the_gateway_let_it_through(catalog_env: CatalogEnv) -> None:
    from catalog import api

    event = {"rawPath": "/images", "requestContext": {"http": {"method": "GET"}}}
    answer = api.handle(event, catalog_env.config, catalog_env.catalogue, catalog_env.s3)
    assert answer["statusCode"] == 403 and json.loads(answer["body"])["parameter"] == "Authorization"


def _bulk(env: CatalogEnv, count: int, tag: str, width: int = 200) -> list[str]:
    """`count` images written to the bucket (as anyone could), tagged through their metadata."""
    made = []
    for index in range(count):
        key = f"originals/bulk/{tag}-{index:03d}.png"
        env.put(key, samples.png(samples.logo(width + index, 100)), tags=tag)
        env.event("Object Created", key)
        made.append(keys.image_id(key))
    return made


def test_a_tag_query_pages_through_everything_once_touching_a_page_plus_one(catalog_env: CatalogEnv) -> None:
    made = _bulk(catalog_env, 23, "beach")
    _bulk(catalog_env, 5, "city")
    scanned: list[int] = []
    catalog_env.dynamodb.meta.events.register(
        "after-call.dynamodb.Query", lambda parsed, **_: scanned.append(int(parsed["ScannedCount"]))
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"tag": "beach", "limit": "10", **({"cursor": cursor} if cursor else {})}
        status, page = catalog_env.call("GET", "/images", query=query)
        assert status == 200
        assert all("beach" in image["tags"] for image in page["images"])
        seen.extend(image["id"] for image in page["images"])
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(made) and len(set(seen)) == 23
    assert scanned == [11, 11, 3]  # each page: its items and one more, never the city images


def test_newest_first_and_dates_bound_the_range(catalog_env: CatalogEnv) -> None:
    items = [
        {"id": str(uuid.UUID(int=i + 1)), "key": f"originals/d/{i}.jpg", "status": "ready", "width": 400 + i,
         "height": 300, "tags": ["day"], "uploaded_at": f"2026-0{i + 1}-15T12:00:00.000Z", "owner": None}
        for i in range(5)
    ]  # fmt: skip
    for item in items:
        assert catalog_env.catalogue.save(item)

    def ids(query: dict[str, str]) -> list[str]:
        status, page = catalog_env.call("GET", "/images", query=query)
        assert status == 200, page
        return [image["key"].rsplit("/", 1)[1] for image in page["images"]]

    assert ids({}) == ["4.jpg", "3.jpg", "2.jpg", "1.jpg", "0.jpg"]
    assert ids({"after": "2026-02-15T12:00:00Z"}) == ["4.jpg", "3.jpg", "2.jpg"]  # strictly after
    assert ids({"before": "2026-03-01"}) == ["1.jpg", "0.jpg"]
    assert ids({"after": "2026-01-31", "before": "2026-04-01"}) == ["2.jpg", "1.jpg"]
    assert ids({"tag": "day", "after": "2026-03-01T00:00:00+02:00"}) == ["4.jpg", "3.jpg", "2.jpg"]
    assert ids({"min_width": "402"}) == ["2.jpg", "3.jpg", "4.jpg"]  # by width, narrowest first
    assert ids({"min_width": "402", "before": "2026-04-01"}) == ["2.jpg"]  # a date range, width filtered
    assert ids({"tag": "day", "min_width": "403"}) == ["4.jpg", "3.jpg"]


def test_a_cursor_belongs_to_its_query(catalog_env: CatalogEnv) -> None:
    _bulk(catalog_env, 3, "beach")
    _bulk(catalog_env, 3, "city")
    _, page = catalog_env.call("GET", "/images", query={"tag": "beach", "limit": "1"})
    cursor = page["cursor"]
    status, answer = catalog_env.call("GET", "/images", query={"tag": "city", "limit": "1", "cursor": cursor})
    assert status == 400 and answer["parameter"] == "cursor"
    status, answer = catalog_env.call("GET", "/images", query={"limit": "1", "cursor": cursor})
    assert status == 400 and answer["parameter"] == "cursor"
    forged = base64.urlsafe_b64encode(json.dumps({"pk": "tag#city", "sk": "x"}).encode()).decode()
    assert catalog_env.call("GET", "/images", query={"tag": "beach", "cursor": forged})[0] == 400


def test_one_image_has_its_cdn_urls_and_a_srcset_never_wider_than_itself(catalog_env: CatalogEnv, photo: bytes) -> None:
    uploaded = catalog_env.upload("beach.jpg", photo, ["beach"])
    status, image = catalog_env.call("GET", f"/images/{uploaded['id']}")
    assert status == 200 and image["status"] == "ready" and (image["width"], image["height"]) == (1200, 800)
    path = f"https://img.example.com/{uploaded['id']}/beach.jpg"
    widths = [w for w in catalog_env.settings.widths if w <= 1200]
    assert image["widths"] == {str(w): f"{path}?w={w}" for w in widths}
    assert image["srcset"] == ", ".join(f"{path}?w={w} {w}w" for w in widths)
    assert image["url"] == path


def test_a_key_with_any_characters_gets_urls_the_cdn_reads(catalog_env: CatalogEnv) -> None:
    key = "originals/Café/ünï cödé+1.png"
    catalog_env.put(key, samples.png(samples.logo(400, 300)))
    catalog_env.event("Object Created", key)
    _, image = catalog_env.call("GET", f"/images/{keys.image_id(key)}")
    assert image["url"] == "https://img.example.com/Caf%C3%A9/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9%2B1.png"


def test_only_its_owner_retags_an_image_and_the_tag_lists_follow(catalog_env: CatalogEnv, photo: bytes) -> None:
    uploaded = catalog_env.upload("beach.jpg", photo, ["beach", "sun"])
    image_id = uploaded["id"]
    status, answer = catalog_env.call("PATCH", f"/images/{image_id}", {"tags": ["sea"]}, who=BOB)
    assert status == 403 and answer["parameter"] == "id"
    status, answer = catalog_env.call("PATCH", f"/images/{image_id}", {"tags": ["Sea", "sun", "sea"]})
    assert status == 200 and answer["tags"] == ["sea", "sun"]

    def tagged(tag: str) -> list[str]:
        return [i["id"] for i in catalog_env.call("GET", "/images", query={"tag": tag})[1]["images"]]

    assert tagged("beach") == [] and tagged("sea") == [image_id] and tagged("sun") == [image_id]


def test_the_same_role_in_another_session_is_the_same_owner(catalog_env: CatalogEnv, photo: bytes) -> None:
    role = "arn:aws:sts::123456789012:assumed-role/app-backend"
    uploaded = catalog_env.upload("beach.jpg", photo, who=f"{role}/session-1")
    status, _ = catalog_env.call("PATCH", f"/images/{uploaded['id']}", {"tags": ["x"]}, who=f"{role}/session-2")
    assert status == 200
    status, _ = catalog_env.call("PATCH", f"/images/{uploaded['id']}", {"tags": ["y"]}, who="jwt:app-backend")
    assert status == 403  # a token's subject is not an IAM role of the same name


def test_its_owner_deletes_an_upload_and_the_bytes_stay_recoverable(catalog_env: CatalogEnv, photo: bytes) -> None:
    uploaded = catalog_env.upload("beach.jpg", photo, ["beach"])
    image_id, key = uploaded["id"], uploaded["key"]
    assert catalog_env.call("DELETE", f"/images/{image_id}", who=BOB)[0] == 403
    status, answer = catalog_env.call("DELETE", f"/images/{image_id}")
    assert status == 200 and answer == {"deleted": image_id, "key": key}
    assert catalog_env.call("GET", f"/images/{image_id}")[0] == 404
    assert catalog_env.call("GET", "/images", query={"tag": "beach"})[1]["images"] == []
    bucket = catalog_env.settings.primary_bucket
    versions = catalog_env.s3.list_object_versions(Bucket=bucket, Prefix=key)
    assert len(versions["Versions"]) == 1 and len(versions["DeleteMarkers"]) == 1  # a delete marker, not a purge
    assert catalog_env.event("Object Deleted", key) == {"removed": []}  # the event finds nothing left to do


def test_an_original_put_in_the_bucket_is_nobodys_to_delete_through_the_api(catalog_env: CatalogEnv) -> None:
    key = "originals/products/shoe.png"
    catalog_env.put(key, samples.png(samples.logo(300, 200)))
    catalog_env.event("Object Created", key)
    image_id = keys.image_id(key)
    assert catalog_env.call("GET", f"/images/{image_id}")[1].get("owner") is None
    for who in (ALICE, BOB):
        assert catalog_env.call("DELETE", f"/images/{image_id}", who=who)[0] == 403
    catalog_env.s3.head_object(Bucket=catalog_env.settings.primary_bucket, Key=key)  # still there
    # even an owner's entry is deleted through the API only where the API put it
    item = {**catalog_env.call("GET", f"/images/{image_id}")[1], "owner": ALICE}
    assert Catalogue.save(catalog_env.catalogue, item)
    status, answer = catalog_env.call("DELETE", f"/images/{image_id}")
    assert status == 409 and answer["parameter"] == "id"


def test_urls_are_signed_and_preset_shaped_when_the_stack_says_so() -> None:
    """`signing` on: every URL carries the current key's signature; `presetsOnly`: only preset URLs."""
    from catalog import api
    from catalog.config import CatalogConfig
    from edge import signing
    from edge.settings import Settings

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            assert SecretId == "image-cdn-test-signing"
            return {"SecretString": json.dumps({"current": "2", "keys": {"1": "old", "2": "new"}})}

    item = {"key": "originals/a/b.jpg", "width": 1000, "status": "ready"}
    presets = (("thumb", 160, 160, 60, "cover", "attention"), ("hero", 1280, None, 70, "cover", "center"))
    for only in (False, True):
        api.forget_signing_key()
        settings = Settings(presets=presets, presets_only=only, signing="required")
        config = CatalogConfig(
            settings, "t", "https://img.example.com", signing_secret="image-cdn-test-signing", secrets=Secrets()
        )
        found = api.urls(item, config)
        every = [found["url"], *found["widths"].values(), *found["presets"].values()]
        for url in every:
            path, _, query = url.removeprefix("https://img.example.com").partition("?")
            signing.verify(path, query, {"2": "new"}, "required")  # raises if not
            assert "kid=2" in query
        assert set(found["presets"]) == {"thumb", "hero"}
        if only:
            assert found["widths"] == {} and found["url"] == found["presets"]["hero"]
            assert found["srcset"] == f"{found['presets']['hero']} 1280w"
        else:
            assert found["widths"]["160"].startswith("https://img.example.com/a/b.jpg?w=160&kid=2&sig=")
    api.forget_signing_key()


# -- where the upload form goes ---------------------------------------------------------------
#
# "Virtual hosting of general purpose buckets" (S3 User Guide): a bucket is addressed at
# `https://<bucket>.s3.<region-code>.amazonaws.com`; a request to the legacy global endpoint
# `<bucket>.s3.amazonaws.com` goes to us-east-1 until S3's DNS knows the bucket's Region, and is
# answered with "HTTP 307 Temporary Redirect" (the AWS Knowledge Center on S3's 307: up to 24 hours
# after the bucket is created; send requests to the bucket's Regional endpoint). The SSL wildcard
# certificate matches only names without dots, hence path-style for those.


def _upload_form(region: str, bucket: str = "test-origin") -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /uploads through the API handler with the S3 client the deployed functions use."""
    from moto import mock_aws

    from catalog import api
    from catalog.config import CatalogConfig
    from catalog.store import create_table
    from edge.settings import Settings

    settings = Settings(
        primary_bucket=bucket, primary_region=region, fallback_bucket="test-fallback", fallback_region="eu-central-1"
    )
    with mock_aws():
        import boto3

        dynamodb = boto3.client("dynamodb", region_name=region)
        create_table(dynamodb, "catalog")
        s3 = api.s3_client(region, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example-secret")
        event = {
            "rawPath": "/uploads",
            "requestContext": {"http": {"method": "POST"}, "authorizer": {"iam": {"userArn": ALICE}}},
            "body": json.dumps({"filename": "beach.jpg", "content_type": "image/jpeg", "tags": ["sea"]}),
        }
        config = CatalogConfig(settings=settings, table="catalog", cdn_url="https://img.example.com")
        answer = api.handle(event, config, Catalogue(dynamodb, "catalog"), s3)
    assert answer["statusCode"] == 201, answer["body"]
    body = json.loads(answer["body"])
    return body, body["upload"]


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_an_upload_form_goes_to_the_buckets_regional_virtual_hosted_endpoint(region: str) -> None:
    from urllib.parse import urlsplit

    _, upload = _upload_form(region)
    url = urlsplit(upload["url"])
    assert (url.scheme, url.hostname, url.path) == ("https", f"test-origin.s3.{region}.amazonaws.com", "/")
    assert url.hostname != "test-origin.s3.amazonaws.com"  # the global name S3 redirects while it is new


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_the_regional_form_is_still_a_sigv4_post_policy_s3_accepts(region: str) -> None:
    """ "Browser-Based Uploads Using POST (AWS Signature Version 4)": the credential scope is
    <key>/<date>/<region>/s3/aws4_request and the signature is over the policy, checked by the
    emulator's model of S3 (localcdn/s3post.py) with the signing secret."""
    from localcdn import s3post

    answer, upload = _upload_form(region)
    fields = upload["fields"]
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-credential"].split("/")[2:] == [region, "s3", "aws4_request"]
    form = [*fields.items(), ("file", b"jpeg bytes")]
    stored = s3post.check("test-origin", form, {"AKIDEXAMPLE": "example-secret"}.get)
    assert (stored.key, stored.content_type, stored.metadata["tags"]) == (answer["key"], "image/jpeg", "sea")
    with pytest.raises(s3post.PostRefused) as refused:
        s3post.check("test-origin", form, {"AKIDEXAMPLE": "another-secret"}.get)
    assert refused.value.code == "SignatureDoesNotMatch"


def test_a_bucket_name_with_dots_gets_the_regional_path_style_url() -> None:
    """The SSL wildcard certificate matches only bucket names without dots: such a bucket is posted
    to at its Region's endpoint, the bucket in the path, and the policy still names the bucket."""
    from urllib.parse import urlsplit

    from localcdn import s3post

    _, upload = _upload_form("eu-west-1", bucket="images.example.com")
    url = urlsplit(upload["url"])
    assert (url.scheme, url.hostname, url.path) == ("https", "s3.eu-west-1.amazonaws.com", "/images.example.com")
    form = [*upload["fields"].items(), ("file", b"jpeg bytes")]
    assert s3post.check("images.example.com", form, {"AKIDEXAMPLE": "example-secret"}.get).body == b"jpeg bytes"


def test_the_deployed_functions_sign_with_the_regional_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """`runtime()`, what the Lambda handlers run with, uses `s3_client` for the stack's primary region."""
    from urllib.parse import urlsplit

    from catalog import api
    from catalog.config import CatalogConfig
    from edge.settings import Settings

    settings = Settings(primary_bucket="dev-origin", primary_region="eu-west-1")
    monkeypatch.setattr(api, "_RUNTIME", None)
    monkeypatch.setattr(
        CatalogConfig, "from_environment", classmethod(lambda cls: cls(settings, "t", "https://img.example.com"))
    )
    _, _, s3 = api.runtime()
    post = s3.generate_presigned_post(Bucket="dev-origin", Key="originals/a.jpg")
    assert urlsplit(post["url"]).hostname == "dev-origin.s3.eu-west-1.amazonaws.com"
    assert s3.meta.region_name == "eu-west-1" and s3.meta.config.signature_version == "s3v4"
    monkeypatch.setattr(api, "_RUNTIME", None)


def test_a_refused_tag_is_shown_quoted_once(catalog_env: CatalogEnv) -> None:
    status, answer = catalog_env.call(
        "POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "tags": ["Bad Tag!"]}
    )
    assert status == 400 and answer["received"] == '"Bad Tag!"'
    status, answer = catalog_env.call(
        "POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "tags": "x"}
    )
    assert status == 400 and answer["received"] == '"x"'
    status, answer = catalog_env.call(
        "POST", "/uploads", {"filename": "a.jpg", "content_type": "image/jpeg", "tags": [7]}
    )
    assert status == 400 and answer["received"] == "7"

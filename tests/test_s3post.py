"""The emulator's model of S3's POST upload, from "POST Policy" and "Browser-Based Uploads Using
POST (AWS Signature Version 4)": forms signed by boto3 itself, then changed the ways a client could."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcdn import s3post
from localcdn.catalog import local_secret

BUCKET = "image-cdn-dev-origin"
KEY = "originals/0f8fad5b-d9cb-469f-a165-70867728950e/beach.jpg"


def signed(max_bytes: int = 1000, expires: int = 300, **fields: str) -> dict[str, Any]:
    client = boto3.client(
        "s3",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9/_s3",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    fields = {"Content-Type": "image/jpeg", "x-amz-meta-owner": "alice", **fields}
    conditions: list[Any] = [{k: v} for k, v in fields.items()] + [["content-length-range", 1, max_bytes]]
    return dict(client.generate_presigned_post(BUCKET, KEY, Fields=fields, Conditions=conditions, ExpiresIn=expires))


def form(post: dict[str, Any], body: bytes = b"jpeg bytes", **changes: str) -> list[tuple[str, Any]]:
    fields = {**post["fields"], **changes}
    return [*fields.items(), ("file", body)]


def refused(entries: list[tuple[str, Any]], **kwargs: Any) -> s3post.PostRefused:
    with pytest.raises(s3post.PostRefused) as caught:
        s3post.check(BUCKET, entries, local_secret, **kwargs)
    return caught.value


def test_a_form_as_signed_is_stored_with_its_type_and_metadata() -> None:
    upload = s3post.check(BUCKET, form(signed()), local_secret)
    assert (upload.key, upload.body, upload.content_type) == (KEY, b"jpeg bytes", "image/jpeg")
    assert upload.metadata == {"owner": "alice"} and upload.status == 204  # the default answer


def test_a_changed_field_fails_its_condition() -> None:
    refusal = refused(form(signed(), **{"Content-Type": "text/html"}))
    assert (refusal.status, refusal.code) == (403, "AccessDenied")
    assert refusal.message.startswith("Invalid according to Policy: Policy Condition failed: ")
    assert '"$content-type"' in refusal.message.lower()
    assert refused(form(signed(), **{"x-amz-meta-owner": "mallory"})).code == "AccessDenied"
    assert refused(form(signed(), key="originals/products/shoe.jpg")).code == "AccessDenied"  # no overwrite elsewhere


def test_a_field_no_condition_covers_is_refused_unless_it_says_x_ignore() -> None:
    refusal = refused(form(signed(), **{"x-amz-meta-admin": "true"}))
    assert refusal.status == 403 and "Extra input fields: x-amz-meta-admin" in refusal.message
    assert s3post.check(BUCKET, form(signed(), **{"x-ignore-note": "hi"}), local_secret).key == KEY


def test_the_size_range_is_the_files() -> None:
    assert refused(form(signed(max_bytes=10), body=b"x" * 11)).code == "EntityTooLarge"
    assert refused(form(signed(), body=b"")).code == "EntityTooSmall"
    assert s3post.check(BUCKET, form(signed(max_bytes=10), body=b"x" * 10), local_secret).body == b"x" * 10


def test_an_expired_policy_and_a_wrong_signature_are_refused() -> None:
    later = datetime.now(UTC) + timedelta(seconds=301)
    refusal = refused(form(signed(expires=300)), now=later)
    assert (refusal.status, refusal.message) == (403, "Invalid according to Policy: Policy expired.")
    post = signed()
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    policy["conditions"] = [c for c in policy["conditions"] if not isinstance(c, list)]  # drop the size range
    forged = base64.b64encode(json.dumps(policy).encode()).decode()
    assert refused(form(post, policy=forged)).code == "SignatureDoesNotMatch"


def test_field_names_are_matched_without_case_and_fields_after_the_file_are_ignored() -> None:
    post = signed()
    entries = [(name.upper() if name == "key" else name, value) for name, value in form(post)]
    entries.append(("x-amz-meta-late", "ignored"))
    upload = s3post.check(BUCKET, entries, local_secret)
    assert upload.key == KEY and "late" not in upload.metadata


def test_required_fields_and_the_answers_asked_for() -> None:
    post = signed(success_action_status="201")
    assert s3post.check(BUCKET, form(post), local_secret).status == 201
    without_file = [(k, v) for k, v in form(signed()) if k != "file"]
    assert refused(without_file).code == "InvalidArgument"
    without_key = [(k, v) for k, v in form(signed()) if k != "key"]
    assert "must contain a field named 'key'" in refused(without_key).message


def test_the_bucket_condition_is_the_bucket_posted_to() -> None:
    with pytest.raises(s3post.PostRefused) as caught:
        s3post.check("another-bucket", form(signed()), local_secret)
    assert caught.value.code == "AccessDenied" and '"$bucket"' in caught.value.message

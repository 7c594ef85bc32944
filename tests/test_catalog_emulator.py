"""The catalogue through the emulator, as a client sees it: API Gateway's authorizers (modelled),
presigned POSTs against the local S3, EventBridge into the metadata function, and the CDN."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from PIL import Image

from localcdn import samples
from localcdn.catalog import LocalIssuer, sign_sigv4
from localcdn.process import ROOT, Emulator
from ops.catalog import Client

REGION = "eu-west-1"  # the dev stack's primary region


def client(cdn: Emulator, user: str = "alice") -> Client:
    session = boto3.Session(aws_access_key_id=user, aws_secret_access_key="local")
    return Client(cdn.base + "/api", REGION, session=session)


def upload(
    api: Client, filename: str, data: bytes, tags: list[str], content_type: str = "image/jpeg"
) -> dict[str, Any]:
    signed = api.call("POST", "/uploads", {"filename": filename, "content_type": content_type, "tags": tags})
    fields = signed["upload"]["fields"]
    answer = requests.post(
        signed["upload"]["url"], data=fields, files={"file": (filename, data, content_type)}, timeout=120
    )
    return {"signed": signed, "status": answer.status_code, "body": answer.text}


def test_the_iam_authorizer_lets_through_only_what_is_signed_with_the_local_credentials(cdn: Emulator) -> None:
    url = cdn.base + "/api/images"
    unsigned = requests.get(url, timeout=30)
    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})
    good = sign_sigv4("GET", url, b"", REGION, access_key="alice")
    assert requests.get(url, headers=good, timeout=30).status_code == 200
    assert requests.get(url + "?tag=x", headers=good, timeout=30).status_code == 403  # changed after signing
    wrong_region = sign_sigv4("GET", url, b"", "us-east-1", access_key="alice")
    assert requests.get(url, headers=wrong_region, timeout=30).status_code == 403
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    forged = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials("alice", "not-the-secret"), "execute-api", REGION).add_auth(forged)
    assert requests.get(url, headers=dict(forged.headers.items()), timeout=30).status_code == 403
    undeclared = requests.get(
        cdn.base + "/api/admin", headers=sign_sigv4("GET", cdn.base + "/api/admin", b"", REGION), timeout=30
    )
    assert (undeclared.status_code, undeclared.json()) == (404, {"message": "Not Found"})


def test_an_upload_goes_to_s3_then_into_the_catalogue_then_through_the_cdn(cdn: Emulator) -> None:
    api = client(cdn)
    data = samples.camera_jpeg(samples.photo(1600, 1200, seed=21))
    sent = upload(api, "holiday.jpg", data, ["beach"])
    assert sent["status"] == 204, sent["body"]
    image = api.call("GET", f"/images/{sent['signed']['id']}")
    assert image["status"] == "ready" and (image["width"], image["height"]) == (1600, 1200)
    assert image["owner"] == "arn:aws:iam::123456789012:user/alice"
    assert image["url"].startswith(cdn.base + "/") and image["srcset"].count("w, ") == len(image["widths"]) - 1
    rendered = requests.get(image["widths"]["640"], headers={"Accept": "image/avif,image/webp,*/*"}, timeout=60)
    assert rendered.status_code == 200 and rendered.headers["Content-Type"] == "image/avif"
    assert Image.open(io.BytesIO(rendered.content)).size == (640, 480)
    tagged = api.call("GET", "/images", query={"tag": "beach"})["images"]
    assert [i["id"] for i in tagged] == [sent["signed"]["id"]]


def test_a_40_mb_upload_works_end_to_end(cdn: Emulator) -> None:
    """No 6 MB limit anywhere on the path: the bytes go from the client to S3, never through a function."""
    width, height = 4096, 3500
    noise = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=1)
    data = out.getvalue()
    assert 40 * 1024 * 1024 <= len(data) <= 50 * 1024 * 1024
    api = client(cdn)
    sent = upload(api, "big.png", data, ["big"], content_type="image/png")
    assert sent["status"] == 204, sent["body"][:500]
    image = api.call("GET", f"/images/{sent['signed']['id']}")
    assert (image["status"], image["bytes"], image["width"], image["height"]) == ("ready", len(data), width, height)
    rendered = requests.get(image["widths"]["640"], headers={"Accept": "image/webp"}, timeout=120)
    assert rendered.status_code == 200
    assert Image.open(io.BytesIO(rendered.content)).size == (640, round(height * 640 / width))


def test_an_upload_over_the_limit_or_of_another_type_is_refused_by_s3(cdn: Emulator) -> None:
    api = client(cdn)
    signed = api.call("POST", "/uploads", {"filename": "x.png", "content_type": "image/png"})
    too_big = requests.post(
        signed["upload"]["url"],
        data=signed["upload"]["fields"],
        files={"file": ("x.png", b"\0" * (50 * 1024 * 1024 + 1), "image/png")},
        timeout=120,
    )
    assert too_big.status_code == 400 and "<Code>EntityTooLarge</Code>" in too_big.text
    as_html = requests.post(
        signed["upload"]["url"],
        data={**signed["upload"]["fields"], "Content-Type": "text/html"},
        files={"file": ("x.html", b"<script>alert(1)</script>", "text/html")},
        timeout=30,
    )
    assert as_html.status_code == 403 and "Policy Condition failed" in as_html.text
    image = api.call("GET", f"/images/{signed['id']}")
    assert image["status"] == "pending"  # nothing was stored, so nothing was catalogued


def test_the_cli_uploads_a_folder_and_lists_by_tag(cdn: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "trip"
    folder.mkdir()
    (folder / "one.jpg").write_bytes(samples.camera_jpeg(samples.photo(800, 600, seed=22)))
    (folder / "two.png").write_bytes(samples.png(samples.logo(400, 300)))
    (folder / "notes.txt").write_text("not an image")
    env = {**os.environ, "IMAGE_CDN_LOCAL_USER": "cli"}
    command = [sys.executable, "-m", "ops"]
    api = ["--stack", "dev", "--api", cdn.base + "/api"]
    done = subprocess.run(
        [*command, "upload", str(folder), "--tags", "trip,2026", "--wait", "--json", *api],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "skipping 1 file that is not an image (notes.txt; images are " in done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(Path(u["file"]).name for u in result["uploaded"]) == ["one.jpg", "two.png"]
    assert {u["status"] for u in result["uploaded"]} == {"ready"} and result["failed"] == []
    listed = subprocess.run(
        [*command, "images", "--tag", "trip", "--json", *api],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    images = json.loads(listed.stdout)["images"]
    assert sorted(i["filename"] for i in images) == ["one.jpg", "two.png"]
    assert all(i["owner"] == "arn:aws:iam::123456789012:user/cli" for i in images)


def test_the_cli_waits_prints_each_rejection_and_exits_1(cdn: Emulator, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(samples.jpeg(samples.photo(400, 300, seed=5)))
    (folder / "broken.jpg").write_bytes(samples.jpeg(samples.photo(400, 300, seed=6))[:300])  # cut short
    env = {**os.environ, "IMAGE_CDN_LOCAL_USER": "cli"}
    done = subprocess.run(
        [sys.executable, "-m", "ops", "upload", str(folder), "--wait", "--stack", "dev", "--api", cdn.base + "/api"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    rejected = [line for line in (done.stdout + done.stderr).splitlines() if "broken.jpg" in line]
    assert rejected and "rejected" in rejected[0] and ":" in rejected[0].split("rejected", 1)[1]


def test_the_cli_refuses_an_emulator_running_another_stack(cdn: Emulator, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops", "images", "--stack", "prod", "--api", cdn.base + "/api"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "runs stack dev, not prod" in done.stderr and "--stack dev" in done.stderr
    assert done.stdout == ""


def test_the_startup_samples_are_catalogued_like_any_upload(cdn: Emulator) -> None:
    listed = client(cdn).call("GET", "/images", query={"limit": "100"})["images"]
    keys = {i["key"] for i in listed}
    assert {f"originals/{key}" for key in samples.originals("site/missing.png")} <= keys


# -- the JWT authorizer -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jwt_cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(
        "--set", "catalogAuth=jwt",
        "--set", "catalogJwtIssuer=https://auth.example.com/pool",
        "--set", 'catalogJwtAudiences=["gallery-app"]',
        "--set", 'catalogJwtScopes=["images/write"]',
        home=tmp_path_factory.mktemp("home"),
    )  # fmt: skip
    yield emulator
    emulator.stop()


def test_a_jwt_stack_takes_tokens_of_its_issuer_and_nothing_else(jwt_cdn: Emulator) -> None:
    url = jwt_cdn.base + "/api/images"
    assert (requests.get(url, timeout=30).status_code, requests.get(url, timeout=30).json()) == (
        401,
        {"message": "Unauthorized"},
    )
    token = jwt_cdn.request("POST", "/_localcdn/token", json.dumps({"sub": "ana"}).encode()).json()["token"]
    for authorization in (token, "Bearer " + token):
        assert requests.get(url, headers={"Authorization": authorization}, timeout=30).status_code == 200
    other = LocalIssuer("https://auth.example.com/pool", ("gallery-app",)).token("ana", scope="images/write")
    assert requests.get(url, headers={"Authorization": other}, timeout=30).status_code == 401  # another key
    api = Client(jwt_cdn.base + "/api", REGION, token=token)
    signed = api.call("POST", "/uploads", {"filename": "a.png", "content_type": "image/png"})
    fields = signed["upload"]["fields"]
    assert fields["x-amz-meta-owner"] == "jwt%3Aana"


@pytest.mark.parametrize(
    ("claims", "scope", "allowed"),
    [
        ({}, "images/write", True),
        ({}, "", False),  # the routes require a scope
        ({"aud": "another-app"}, "images/write", False),
        ({"aud": None, "client_id": "gallery-app"}, "images/write", True),  # client_id when there is no aud
        ({"iss": "https://evil.example.com"}, "images/write", False),
        ({"exp": 1}, "images/write", False),
        ({"nbf": 4_000_000_000}, "images/write", False),
        ({"iat": 4_000_000_000}, "images/write", False),
    ],
)
def test_the_jwt_authorizer_model_checks_what_api_gateway_checks(
    claims: dict[str, Any], scope: str, allowed: bool
) -> None:
    from localcdn.catalog import Denied

    issuer = LocalIssuer("https://auth.example.com/pool", ("gallery-app",))
    token = issuer.token("ana", scope=scope, **{k: v for k, v in claims.items() if v is not None})
    if claims.get("aud", "") is None:
        from joserfc import jwt

        body = {**jwt.decode(token, issuer.keys).claims}
        del body["aud"]
        token = jwt.encode({"alg": "RS256", "kid": issuer.kid}, body, issuer.key)
    if allowed:
        assert issuer.claims(token, ("images/write",))["sub"] == "ana"
    else:
        with pytest.raises(Denied) as denied:
            issuer.claims(token, ("images/write",))
        assert denied.value.status == 401


def test_a_token_signed_with_a_symmetric_key_is_refused() -> None:
    from joserfc import jwt
    from joserfc.jwk import OctKey

    from localcdn.catalog import Denied

    issuer = LocalIssuer("https://auth.example.com/pool", ("gallery-app",))
    body = {"iss": issuer.issuer, "aud": "gallery-app", "sub": "x", "exp": int(time.time()) + 60}
    forged = jwt.encode({"alg": "HS256", "kid": issuer.kid}, body, OctKey.import_key("s" * 32))
    with pytest.raises(Denied):
        issuer.claims(forged, ())


def test_a_phones_heic_is_served_in_a_format_browsers_decode_never_as_heic(cdn: Emulator) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    samples.photo(1200, 900, seed=23).save(out, "HEIF", quality=60)
    api = client(cdn)
    sent = upload(api, "IMG_0042.HEIC", out.getvalue(), ["phone"], content_type="image/heic")
    assert sent["status"] == 204, sent["body"]
    image = api.call("GET", f"/images/{sent['signed']['id']}")
    assert (image["format"], image["width"], image["height"]) == ("heif", 1200, 900)
    safari = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,*/*;q=0.5"
    for accept in (safari, "image/heic", "*/*"):
        served = requests.get(image["widths"]["640"], headers={"Accept": accept}, timeout=60)
        assert served.status_code == 200 and served.headers["Content-Type"] in (
            "image/avif",
            "image/webp",
            "image/jpeg",
        )
    unsigned = image["url"].partition("?")[0]  # the catalogue signs its URLs; dev's signing is optional
    asked = requests.get(unsigned + "?w=640&fm=heic", timeout=30)
    assert asked.status_code == 400 and asked.json()["parameter"] == "format"  # the fm parameter


# -- the upload URL: signed for AWS's regional endpoint, posted to the emulator's S3 front ------


def test_the_emulator_hands_out_its_s3_front_for_a_form_signed_as_on_aws(cdn: Emulator) -> None:
    signed = client(cdn).call("POST", "/uploads", {"filename": "a.png", "content_type": "image/png"})
    assert signed["upload"]["url"] == cdn.base + "/_s3/image-cdn-dev-origin"
    assert signed["upload"]["fields"]["x-amz-credential"].split("/")[2:] == [REGION, "s3", "aws4_request"]


def test_the_front_stands_in_for_the_regional_endpoints_only() -> None:
    """The regional virtual-hosted URL, and the regional path-style one (a bucket name with dots),
    map to the front; the global endpoint (redirected while a bucket is new: "Virtual hosting of
    general purpose buckets") and another Region's are refused, so no such URL passes unnoticed."""
    from localcdn.catalog import front_url

    front = "http://127.0.0.1:8080/_s3"
    assert front_url("https://dev-origin.s3.eu-west-1.amazonaws.com/", front, REGION) == front + "/dev-origin"
    assert front_url("https://s3.eu-west-1.amazonaws.com/a.b.c", front, REGION) == front + "/a.b.c"
    for wrong in (
        "https://dev-origin.s3.amazonaws.com/",
        "https://dev-origin.s3.us-east-1.amazonaws.com/",
        "http://dev-origin.s3.eu-west-1.amazonaws.com/",
        "https://dev-origin.example.com/",
    ):
        with pytest.raises(ValueError):
            front_url(wrong, front, REGION)


def test_the_api_s3_client_signs_as_on_aws_and_the_front_accepts_the_form() -> None:
    from catalog import api
    from localcdn import s3post
    from localcdn.catalog import LocalS3, local_secret

    local = LocalS3(REGION, "http://127.0.0.1:8080/_s3", storage=None)
    key = "originals/0f8fad5b-d9cb-469f-a165-70867728950e/a.png"
    post = local.generate_presigned_post(
        Bucket="dev-origin", Key=key, Fields={"Content-Type": "image/png"}, Conditions=[{"Content-Type": "image/png"}]
    )
    assert post["url"] == "http://127.0.0.1:8080/_s3/dev-origin"
    assert local.signer.meta.endpoint_url == api.regional_endpoint(REGION)
    stored = s3post.check("dev-origin", [*post["fields"].items(), ("file", b"png")], local_secret)
    assert (stored.key, stored.content_type) == (key, "image/png")


def test_its_owner_deletes_an_upload_through_the_emulator(cdn: Emulator) -> None:
    """DeleteObject goes to the local S3, not to the upload front (which takes POSTs only)."""
    api = client(cdn, "dora")
    sent = upload(api, "gone.png", samples.png(samples.logo(300, 200)), ["gone"], content_type="image/png")
    assert sent["status"] == 204, sent["body"]
    image_id = sent["signed"]["id"]
    assert api.call("DELETE", f"/images/{image_id}") == {"deleted": image_id, "key": sent["signed"]["key"]}
    assert api.call("GET", "/images", query={"tag": "gone"})["images"] == []
    s3 = boto3.client(
        "s3", endpoint_url=cdn.s3_endpoint, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local"
    )
    versions = s3.list_object_versions(Bucket="image-cdn-dev-origin", Prefix=sent["signed"]["key"])
    assert len(versions["Versions"]) == 1 and len(versions["DeleteMarkers"]) == 1

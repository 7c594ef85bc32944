"""The emulator is safe to leave running: every attack a web page, a rebound DNS name or a forged
upload form could make on `make serve`, sent as the attacker would send it, and what the emulator
answers. Where the emulator models AWS (S3's upload checks, the origin request policy, range GETs)
the expectation comes from AWS's document, named in the test."""

from __future__ import annotations

import base64
import io
import json
import socket
import uuid
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import boto3
import pytest
from botocore.config import Config
from PIL import Image

from components.config import from_stack_file
from edge.settings import Settings
from localcdn import s3post, samples
from localcdn.catalog import LOCAL_SECRET, upload_signers
from localcdn.distribution import Distribution, origin_request_headers
from localcdn.guard import Guard, served_hosts
from localcdn.process import Emulator, Reply
from localcdn.storage import LocalS3

SETTINGS = from_stack_file("dev").edge_settings()
BUCKET = SETTINGS.primary_bucket
EVIL = "https://evil.example"
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


# -- how an attacker sends things ---------------------------------------------------------------


def raw(cdn: Emulator, data: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    """Bytes as they are (any Host, any header); the first answer's status, headers and body, and
    everything the server sent before closing."""
    with socket.create_connection(("127.0.0.1", cdn.port), timeout=60) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    everything = b"".join(chunks)
    head, _, rest = everything.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers.get("content-length", headers.get("Content-Length", "0")))
    return int(lines[0].split(" ")[1]), headers, rest[:length], everything


def multipart(fields: list[tuple[str, str]], body: bytes, file_type: str) -> tuple[bytes, str]:
    """A browser's upload form: the fields in order, then the file (its part carrying its own type)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
        f"Content-Type: {file_type}\r\n\r\n".encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def forged_post(access_key: str, secret: str, key: str, content_type: str = "text/html") -> dict[str, Any]:
    """A POST policy signed as boto3 signs one, by whoever holds `access_key` and `secret`."""
    client = boto3.client(
        "s3",
        region_name=SETTINGS.primary_region,
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    post = client.generate_presigned_post(
        BUCKET, key, Fields={"Content-Type": content_type}, Conditions=[{"Content-Type": content_type}]
    )
    return dict(post)


def post_form(
    cdn: Emulator,
    post: dict[str, Any],
    body: bytes,
    file_type: str = "text/html",
    headers: dict[str, str] | None = None,
) -> Reply:
    data, kind = multipart(list(post["fields"].items()), body, file_type)
    return cdn.request("POST", f"/_s3/{BUCKET}", data, {"Content-Type": kind, **(headers or {})})


def s3(cdn: Emulator) -> Any:
    """The emulator's S3 as its own code reaches it (boto3, no browser headers)."""
    return boto3.client(
        "s3",
        endpoint_url=cdn.s3_endpoint,
        region_name=SETTINGS.primary_region,
        aws_access_key_id="local",
        aws_secret_access_key=LOCAL_SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )


def keys(cdn: Emulator, prefix: str) -> list[str]:
    listed = s3(cdn).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


# -- 1. a page on another site driving the controls --------------------------------------------


def state(cdn: Emulator) -> dict[str, Any]:
    """What the state-changing endpoints below would change."""
    originals = cdn.get("/_localcdn/variants").json()
    return {
        "primary": cdn.get("/_localcdn/primary").json(),
        "clock": cdn.get("/_localcdn/clock").json()["now"],
        "signing": cdn.get("/_localcdn/signing").json(),
        "faces": cdn.get("/_localcdn/faces").json()["faces"],
        "originals": sorted(originals),
        "logo variants": len(originals["samples/logo.png"]["variants"]),
        "invalidations": len(cdn.get("/_localcdn/invalidations").json()["invalidations"]),
        "cache": cdn.get("/_localcdn/cache").json(),
    }


STATE_CHANGING = [
    ("PUT", "/_localcdn/primary", b"down"),
    ("POST", "/_localcdn/invalidate", b'["/*"]'),
    ("DELETE", "/_localcdn/cache", None),
    ("POST", "/_localcdn/clock", b'{"advance": 86400}'),
    ("POST", "/_localcdn/sync", b""),
    ("PUT", "/_localcdn/originals/evil/planted.jpg", b"not an image"),
    ("DELETE", "/_localcdn/originals/samples/logo.png", None),
    ("POST", "/_localcdn/token", b'{"sub": "mallory"}'),
    ("POST", "/_localcdn/app/uploads", b'{"filename": "a.jpg", "content_type": "image/jpeg", "bytes": 9}'),
    ("PATCH", "/_localcdn/app/images/0f8fad5b-d9cb-469f-a165-70867728950e", b'{"tags": ["pwned"]}'),
    ("DELETE", "/_localcdn/app/images/0f8fad5b-d9cb-469f-a165-70867728950e", None),
    ("POST", "/_localcdn/signing", b""),
    ("PUT", "/_localcdn/faces", b"down"),
    ("POST", "/_localcdn/sign", b"/samples/logo.png?w=2560"),
    ("GET", "/_localcdn/sign", None),
    ("HEAD", "/_localcdn/cache", None),
    ("OPTIONS", "/_localcdn/primary", None),
]


@pytest.mark.parametrize(("method", "path", "body"), STATE_CHANGING)
@pytest.mark.parametrize("origin", [EVIL, "null", "http://127.0.0.1:1"])
def test_a_page_on_another_site_cannot_drive_the_controls(
    cdn: Emulator, method: str, path: str, body: bytes | None, origin: str
) -> None:
    """What a form or a no-cors fetch on `evil.example` (or a sandboxed frame, `Origin: null`, or a page
    on another local port) sends: a 403 naming the Origin, and nothing done."""
    before = state(cdn)
    reply = cdn.request(method, path, body, {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 403
    if method != "HEAD":
        problem = reply.json()
        assert (problem["error"], problem["parameter"], problem["received"]) == (
            "CrossOriginRefused",
            "Origin",
            json.dumps(origin),
        )
        assert cdn.base in problem["expected"]
    after = state(cdn)
    assert after["clock"] - before["clock"] < 86400  # not moved forward a day
    assert {**after, "clock": 0} == {**before, "clock": 0}


def test_fetch_metadata_saying_cross_site_is_refused_without_an_origin(cdn: Emulator) -> None:
    for site in ("cross-site", "same-site"):
        reply = cdn.request("PUT", "/_localcdn/primary", b"down", {"Sec-Fetch-Site": site})
        assert reply.status == 403 and reply.json()["parameter"] == "Sec-Fetch-Site", site
    assert cdn.get("/_localcdn/primary").json() == {"primary": "up"}


def test_the_emulators_own_page_curl_and_reads_are_served(cdn: Emulator) -> None:
    """The gallery (same origin: its Origin is the emulator's), curl and `python -m ops` (no Origin);
    a read from elsewhere is answered, without the CORS header a page would need to read it."""
    own = {"Origin": cdn.base, "Sec-Fetch-Site": "same-origin"}
    assert cdn.request("PUT", "/_localcdn/primary", b"up", own).status == 200
    assert cdn.request("POST", "/_localcdn/sign", b"/samples/logo.png?w=160", own).status == 200
    assert cdn.request("POST", "/_localcdn/sign", b"/samples/logo.png?w=160").status == 200
    assert cdn.request("POST", "/_localcdn/clock", b"0", {"Sec-Fetch-Site": "none"}).status == 200
    read = cdn.request("GET", "/_localcdn/health", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert read.status == 200 and read.header("Access-Control-Allow-Origin") is None
    # Images are for every site (the stack's CORS): an <img> on another page still loads.
    image = cdn.request("GET", "/samples/logo.png?w=160", headers={"Origin": EVIL, "Accept": CHROMIUM})
    assert image.status == 200 and image.header("Access-Control-Allow-Origin") == "*"


# -- 2. DNS rebinding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/samples/logo.png?w=160"),
        ("GET", "/samples/logo.png/w_160_q_60.webp"),
        ("GET", "/_localcdn/health"),
        ("GET", "/_localcdn/variants"),
        ("GET", "/_localcdn/app/images"),
        ("PUT", "/_localcdn/primary"),
        ("GET", "/api/images"),
        ("POST", f"/_s3/{BUCKET}"),
    ],
)
def test_a_rebound_dns_name_is_refused_on_every_path(cdn: Emulator, method: str, path: str) -> None:
    """A page on rebind.evil.example whose name now resolves to 127.0.0.1 is same-origin with the
    emulator for the browser; its requests still say `Host: rebind.evil.example:<port>`."""
    body = b"down"
    status, headers, answer, _ = raw(
        cdn,
        f"{method} {path} HTTP/1.1\r\nHost: rebind.evil.example:{cdn.port}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )
    assert status == 403 and "application/json" in headers.get("content-type", "")
    problem = json.loads(answer)
    assert (problem["error"], problem["parameter"]) == ("HostNotServed", "Host")
    assert f"rebind.evil.example:{cdn.port}" in problem["received"]
    assert cdn.get("/_localcdn/primary").json() == {"primary": "up"}


def test_no_host_two_hosts_or_another_port_are_refused_too(cdn: Emulator) -> None:
    for request in (
        b"GET /_localcdn/health HTTP/1.0\r\n\r\n",
        f"GET /_localcdn/health HTTP/1.1\r\nHost: 127.0.0.1:{cdn.port}\r\nHost: evil.example\r\n\r\n".encode(),
        b"GET /_localcdn/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        f"GET /_localcdn/health HTTP/1.1\r\nHost: 127.0.0.1:{cdn.port + 1}\r\n\r\n".encode(),
    ):
        status, _, answer, _ = raw(cdn, request)
        assert status in (400, 403) and json.loads(answer)["parameter"] in ("Host", "request"), request


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_the_loopback_names_are_served(cdn: Emulator, name: str) -> None:
    status, _, answer, _ = raw(
        cdn, f"GET /_localcdn/health HTTP/1.1\r\nHost: {name}:{cdn.port}\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 200 and json.loads(answer)["status"] == "ready"


def test_a_refused_hosts_body_is_never_read_as_the_next_request(cdn: Emulator) -> None:
    smuggled = f"PUT /_localcdn/primary HTTP/1.1\r\nHost: 127.0.0.1:{cdn.port}\r\nContent-Length: 4\r\n\r\ndown"
    _, _, _, everything = raw(
        cdn,
        f"POST /_localcdn/sync HTTP/1.1\r\nHost: evil.example\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode()
        + smuggled.encode(),
    )
    assert everything.count(b"HTTP/1.1 ") == 1 and everything.startswith(b"HTTP/1.1 403 ")
    assert cdn.get("/_localcdn/primary").json() == {"primary": "up"}


def test_the_names_served_are_loopback_and_the_host_it_was_started_on() -> None:
    assert served_hosts("127.0.0.1", 8080) == ("127.0.0.1:8080", "localhost:8080", "[::1]:8080")
    assert served_hosts("::1", 8080) == ("127.0.0.1:8080", "localhost:8080", "[::1]:8080")
    assert "192.168.1.5:9000" in served_hosts("192.168.1.5", 9000)
    assert "localhost" in served_hosts("127.0.0.1", 80)  # a browser leaves port 80 out
    guard = Guard("mybox.lan", 8080)
    assert guard.host(["mybox.lan:8080"]) is None and guard.host(["evil.example:8080"]) is not None


# -- 3. the S3 upload front: who signed, and what they may write --------------------------------


def test_a_policy_signed_by_an_access_key_s3_does_not_know_stores_nothing(cdn: Emulator) -> None:
    """The issue's attack: any access key, the emulator's well-known secret, an HTML body for a variant
    key. "Authenticating Requests: Browser-Based Uploads Using POST (AWS Signature Version 4)": the
    credential names the access key, which S3 must know: 403 InvalidAccessKeyId."""
    key = "variants/samples/logo.png/w_320_q_60.webp"
    reply = post_form(cdn, forged_post("AKIAATTACKER", LOCAL_SECRET, key), b"<script>alert(1)</script>")
    assert reply.status == 403 and b"<Code>InvalidAccessKeyId</Code>" in reply.body
    served = cdn.get("/samples/logo.png?w=320&fm=webp", CHROMIUM)
    assert served.status == 200 and served.header("Content-Type") == "image/webp"
    assert image_of(served).format == "WEBP"


@pytest.mark.parametrize(
    "key",
    [
        "variants/samples/logo.png/w_480_q_60.webp",
        "originals/samples/logo.png",  # an original the bucket holds: never overwritten
        "originals/site/missing.png",
        "originals/0f8fad5b-d9cb-469f-a165-70867728950/x.jpg",  # one character short of a UUID
        "originals/photo.jpg",
    ],
)
def test_the_apis_own_key_may_write_upload_shaped_keys_only(cdn: Emulator, key: str) -> None:
    """Signed with the very credentials the API signs with, for a key its role may not write
    (components/catalog.py's grant: PutObject on `originals/<uuid>/*` only): S3's AccessDenied."""
    before = keys(cdn, key)
    reply = post_form(cdn, forged_post("local", LOCAL_SECRET, key), b"<html>not an image</html>")
    assert reply.status == 403 and b"<Code>AccessDenied</Code>" in reply.body
    assert keys(cdn, key) == before
    if key.startswith("variants/"):
        assert cdn.get("/samples/logo.png?w=480&fm=webp", CHROMIUM).header("Content-Type") == "image/webp"


def test_what_an_upload_may_be_stored_as_never_reaches_a_viewer_as_html(cdn: Emulator) -> None:
    """An upload-shaped key is the API role's to write, so S3 takes it, with the Content-Type the
    policy allowed: the form's field, not the file part's ("POST Object": form fields stand for the
    headers of a PUT). Originals are never served as they are: the CDN URL of one that is HTML is a
    JSON 4xx, never text/html."""
    key = f"originals/{uuid.uuid4()}/page.jpg"
    reply = post_form(cdn, forged_post("local", LOCAL_SECRET, key), b"<html>hi</html>", file_type="image/jpeg")
    assert reply.status == 204
    assert s3(cdn).head_object(Bucket=BUCKET, Key=key)["ContentType"] == "text/html"
    served = cdn.get("/" + key.removeprefix("originals/") + "?w=160", CHROMIUM)
    assert 400 <= served.status < 500 and served.header("Content-Type") == "application/json"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_page_on_another_site_cannot_upload_with_the_emulators_public_key(
    cdn: Emulator, headers: dict[str, str]
) -> None:
    """The emulator's API secret is public (`local`): a page anywhere could write its own policy for an
    upload-shaped key and POST it as a form (no preflight). Only pages served from loopback upload."""
    key = f"originals/{uuid.uuid4()}/forged.jpg"
    reply = post_form(cdn, forged_post("local", LOCAL_SECRET, key), b"<html>hi</html>", "image/jpeg", headers)
    assert reply.status == 403 and reply.json()["error"] == "CrossOriginRefused"
    assert keys(cdn, key) == []
    # an app on another local port (the team's own front end in development) still uploads
    mine = f"originals/{uuid.uuid4()}/mine.jpg"
    local = {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "cross-site"}
    assert post_form(cdn, forged_post("local", LOCAL_SECRET, mine), b"x", "image/jpeg", local).status == 204


def test_moto_itself_takes_nothing_from_a_browser(cdn: Emulator) -> None:
    """moto's own listener (the emulator's S3, on another loopback port) checks no signature and takes
    an unsigned POST form: a page that finds its port must not store a "variant" there, or read
    anything through a rebound name. The emulator's own clients still reach it."""
    key = "variants/samples/logo.png/w_640_q_60.webp"
    data, kind = multipart([("key", key), ("Content-Type", "text/html")], b"<script>alert(1)</script>", "text/html")
    port = cdn.s3_endpoint.rsplit(":", 1)[1]
    for headers in (
        {"Origin": EVIL},
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"},
    ):
        request = f"POST /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {kind}\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        status, _, answer, _ = raw_to(int(port), request.encode() + data)
        assert status == 403 and b"AccessDenied" in answer
    rebound = f"GET /{BUCKET}?list-type=2 HTTP/1.1\r\nHost: rebind.evil.example:{port}\r\nConnection: close\r\n\r\n"
    assert raw_to(int(port), rebound.encode())[0] == 403
    assert key not in keys(cdn, "variants/samples/logo.png/")
    assert cdn.get("/samples/logo.png?w=640&fm=webp", CHROMIUM).header("Content-Type") == "image/webp"


def raw_to(port: int, data: bytes) -> tuple[int, dict[str, str], bytes, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    everything = b"".join(chunks)
    head, _, rest = everything.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), {}, rest, everything


@pytest.mark.parametrize(
    ("key", "writable"),
    [
        ("originals/0f8fad5b-d9cb-469f-a165-70867728950e/beach.jpg", True),
        ("originals/0f8fad5b-d9cb-469f-a165-70867728950e/a/b.jpg", True),  # IAM's * crosses "/"
        ("originals/0f8fad5b-d9cb-469f-a165-70867728950/x.jpg", False),
        ("originals/products/shoe.jpg", False),
        ("variants/0f8fad5b-d9cb-469f-a165-70867728950e/x.jpg", False),
        ("variants/products/shoe.jpg/w_160_q_60.webp", False),
    ],
)
def test_the_signers_permission_is_the_api_roles_grant(key: str, writable: bool) -> None:
    """The same keys tests/test_least_privilege.py matches against the role's grant, through the
    emulator's model of S3 with the signers it knows."""
    post = forged_post("local", LOCAL_SECRET, key, "image/jpeg")
    form = [*post["fields"].items(), ("file", b"jpeg bytes")]
    signers = upload_signers()
    if writable:
        assert s3post.check(BUCKET, form, signers.secret, may_put=signers.may_put).key == key
    else:
        with pytest.raises(s3post.PostRefused) as refused:
            s3post.check(BUCKET, form, signers.secret, may_put=signers.may_put)
        assert (refused.value.status, refused.value.code) == (403, "AccessDenied")
    stranger = forged_post("AKIDEXAMPLE", LOCAL_SECRET, key, "image/jpeg")
    with pytest.raises(s3post.PostRefused) as unknown:
        s3post.check(BUCKET, [*stranger["fields"].items(), ("file", b"x")], signers.secret, may_put=signers.may_put)
    assert unknown.value.code == "InvalidAccessKeyId"


def test_without_the_catalogue_s3_here_knows_no_access_key() -> None:
    post = forged_post("local", LOCAL_SECRET, f"originals/{uuid.uuid4()}/a.jpg", "image/jpeg")
    nobody = s3post.Signers()
    with pytest.raises(s3post.PostRefused) as refused:
        s3post.check(BUCKET, [*post["fields"].items(), ("file", b"x")], nobody.secret, may_put=nobody.may_put)
    assert refused.value.code == "InvalidAccessKeyId"


# -- 4. the gallery deletes its own upload ------------------------------------------------------


def test_the_gallery_deletes_the_owners_image_end_to_end(cdn: Emulator) -> None:
    """What the gallery's page does: ask its backend (`/_localcdn/app/`, the API as user `gallery`)
    for an upload form, post the photo to S3, then delete it."""
    png = samples.png(samples.logo(300, 200))
    own = {"Origin": cdn.base, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    asked = {"filename": "mine.png", "content_type": "image/png", "bytes": len(png), "tags": ["mine"]}
    signed = cdn.request("POST", "/_localcdn/app/uploads", json.dumps(asked).encode(), own)
    assert signed.status == 201, signed.body
    form = signed.json()
    data, kind = multipart(list(form["upload"]["fields"].items()), png, "image/png")
    assert form["upload"]["url"] == f"{cdn.base}/_s3/{BUCKET}"
    stored = cdn.request("POST", f"/_s3/{BUCKET}", data, {"Content-Type": kind, "Origin": cdn.base})
    assert stored.status == 204, stored.body
    assert cdn.get(f"/_localcdn/app/images/{form['id']}").json()["status"] == "ready"
    deleted = cdn.request("DELETE", f"/_localcdn/app/images/{form['id']}", None, own)
    assert (deleted.status, deleted.json()) == (200, {"deleted": form["id"], "key": form["key"]})
    assert cdn.get(f"/_localcdn/app/images/{form['id']}").status == 404
    assert form["key"] not in keys(cdn, form["key"])  # a delete marker: the version stays, the key is gone


# -- 5. X-Image-Cdn-Url reaches resize only as the origin request policy forwards it ---------------


@pytest.fixture(scope="module")
def unsigned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The dev stack with signing off: no origin request policy at all."""
    emulator = Emulator("--set", "signing=off", home=tmp_path_factory.mktemp("home"))
    yield emulator
    emulator.stop()


# Tabs and newlines are dropped from a URL by browsers: "/\t/evil.example/" is "//evil.example/".
HOSTILE_URL = "/\t/evil.example/login"
# A PNG of the people sample at 2560 px is over Lambda@Edge's 1 MB: resize stores it and answers 302.
TOO_LARGE = "/samples/people.jpg?w=2560&fm=png"


def test_a_stack_without_the_policy_never_forwards_a_viewers_url(unsigned: Emulator) -> None:
    """ "Control origin requests with a policy": with no origin request policy, an origin request
    carries only what the cache policy puts in the cache key (here, none of the headers): resize's 302
    goes to the canonical path, never where the viewer's own X-Image-Cdn-Url says."""
    reply = unsigned.request("GET", TOO_LARGE, None, {"X-Image-Cdn-Url": HOSTILE_URL, "Accept": CHROMIUM})
    assert reply.status == 302
    assert reply.header("Location") == "/samples/people.jpg/w_2560_q_60.png"


def test_with_the_policy_resize_sees_the_viewer_functions_url_not_the_viewers(cdn: Emulator) -> None:
    """With signing on (dev: optional), the policy forwards x-image-cdn-url, and the value it forwards
    is the request as the viewer function left it: normalize.js writes the URL the viewer asked for."""
    reply = cdn.request("GET", TOO_LARGE, None, {"X-Image-Cdn-Url": HOSTILE_URL, "Accept": CHROMIUM})
    assert reply.status == 302 and reply.header("Location") == TOO_LARGE


@pytest.mark.parametrize(
    "overrides",
    [{"signing": "off"}, {"signing": "optional"}, {"signing": "required"}, {"signing": "off", "presetsOnly": True}],
)
def test_the_emulator_forwards_what_the_stacks_origin_request_policy_names(overrides: dict[str, Any]) -> None:
    from pulumi_mocks import run_stack

    config = from_stack_file("dev", overrides=overrides)
    policies = run_stack(config).of_type("aws:cloudfront/originRequestPolicy:OriginRequestPolicy")
    named = tuple(policies[0].inputs["headersConfig"]["headers"]["items"]) if policies else ()
    assert origin_request_headers(config.edge_settings()) == named


# -- 6. Range requests, as CloudFront answers them ------------------------------------------------
# From "How CloudFront processes partial requests for an object (range GETs)".

RANGED = "/samples/logo.png?w=320&fm=jpeg"


@pytest.fixture(scope="module")
def cached(cdn: Emulator) -> bytes:
    whole = cdn.get(RANGED, CHROMIUM)
    assert whole.status == 200 and len(whole.body) > 100
    return whole.body


def ranged(cdn: Emulator, header: str, method: str = "GET", path: str = RANGED) -> Reply:
    return cdn.request(method, path, None, {"Range": header, "Accept": CHROMIUM})


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-7", -7, None), ("bytes=5-999999", 5, None)],
)
def test_a_valid_range_of_a_cached_object_is_a_206_from_the_cache(
    cdn: Emulator, cached: bytes, header: str, first: int, last: int | None
) -> None:
    """ "If the cache in that edge location already contains the entire object ... CloudFront
    immediately serves the requested range from the cache" (the RFC's forms: first-last, first-, -suffix;
    a last past the end is the end)."""
    reply = ranged(cdn, header)
    part = cached[first : None if last is None else last + 1]
    start = first % len(cached)
    assert (reply.status, reply.header("X-Cache"), reply.body) == (206, "Hit", part)
    assert reply.header("Content-Range") == f"bytes {start}-{start + len(part) - 1}/{len(cached)}"
    assert reply.header("Content-Type") == "image/jpeg" and reply.header("Content-Length") == str(len(part))


def test_a_range_past_the_end_is_416(cdn: Emulator, cached: bytes) -> None:
    for header in (f"bytes={len(cached)}-", f"bytes={len(cached) + 100}-{len(cached) + 200}", "bytes=-0"):
        reply = ranged(cdn, header)
        assert reply.status == 416 and reply.header("Content-Range") == f"bytes */{len(cached)}", header
        assert reply.json()["parameter"] == "Range"


def test_several_ranges_in_order_are_one_multipart_206(cdn: Emulator, cached: bytes) -> None:
    """ "CloudFront generally follows the RFC specification for the Range header": several ranges,
    ascending and apart, are a multipart/byteranges 206."""
    reply = ranged(cdn, "bytes=0-1,10-19,-3")
    kind = reply.header("Content-Type") or ""
    assert reply.status == 206 and kind.startswith("multipart/byteranges; boundary=")
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + reply.body)
    parts = [(p["Content-Range"], p["Content-Type"], p.get_payload(decode=True)) for p in message.iter_parts()]
    n = len(cached)
    assert parts == [
        (f"bytes 0-1/{n}", "image/jpeg", cached[0:2]),
        (f"bytes 10-19/{n}", "image/jpeg", cached[10:20]),
        (f"bytes {n - 3}-{n - 1}/{n}", "image/jpeg", cached[-3:]),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "bytes=100-200,0-10",  # "The ranges must be listed in ascending order"
        "bytes=0-100,50-150",  # "The ranges must not overlap"
        "bytes=-5-10",  # "you can't specify a negative value as part of a range"
        "bytes=20-10",
        "bytes=abc",
        "bytes=",
        "items=0-10",  # not a unit this resource has: the RFC ignores the header
    ],
)
def test_a_range_header_cloudfront_does_not_take_gets_the_full_object_with_200(
    cdn: Emulator, cached: bytes, header: str
) -> None:
    """ "if your Range headers don't adhere to the following requirements, CloudFront will return HTTP
    status code 200 with the full object instead of status code 206 with the specified ranges"."""
    reply = ranged(cdn, header)
    assert (reply.status, reply.body, reply.header("Content-Range")) == (200, cached, None)


def test_head_and_errors_are_never_cut(cdn: Emulator, cached: bytes) -> None:
    head = ranged(cdn, "bytes=0-9", method="HEAD")
    assert head.status == 200 and head.header("Content-Length") == str(len(cached))
    missing = ranged(cdn, "bytes=0-9", path="/samples/nothing-here.jpg?w=160")
    assert missing.status == 404 and missing.header("Content-Range") is None and len(missing.body) > 10


def test_a_range_on_a_miss_goes_to_s3_as_a_range_and_the_whole_object_is_cached(cdn: Emulator) -> None:
    """On a miss "CloudFront forwards the request to the origin" and "may request a larger range than
    the client requested"; S3 "returns the requested range. CloudFront serves the requested range and
    also caches it". The emulator asks S3 for the whole object as a range: a stored variant that is
    not cached answers the range on the miss, and the next request (any range, or none) is a hit."""
    path = "/samples/landscape.jpg?w=480&fm=jpeg"
    whole = cdn.get(path, CHROMIUM)  # rendered and stored by resize
    assert whole.status == 200
    cdn.request("DELETE", "/_localcdn/cache")
    miss = ranged(cdn, "bytes=0-99", path=path)
    assert (miss.status, miss.header("X-Cache"), miss.body) == (206, "Miss", whole.body[:100])
    assert miss.header("Content-Range") == f"bytes 0-99/{len(whole.body)}"
    again = cdn.get(path, CHROMIUM)
    assert (again.status, again.header("X-Cache"), again.body) == (200, "Hit", whole.body)


def test_a_range_on_a_miss_that_resize_renders_is_the_entire_object(cdn: Emulator) -> None:
    """resize answers a variant it renders with the entire object, as an origin that "doesn't support
    Range GET requests" does: "CloudFront serves the entire object and also caches the entire object.
    After CloudFront caches the entire object in an edge cache, it responds to Range GET requests by
    serving the requested range"."""
    path = "/samples/portrait.jpg?w=320&fm=webp"
    first = ranged(cdn, "bytes=0-9", path=path)
    assert (first.status, first.header("X-Cache"), first.header("Content-Range")) == (200, "Miss", None)
    second = ranged(cdn, "bytes=0-9", path=path)
    assert (second.status, second.header("X-Cache"), second.body) == (206, "Hit", first.body[:10])


def test_the_origin_request_carries_the_range() -> None:
    """In process: what the distribution asks S3 for on a ranged miss, and on a plain one."""
    suffix = uuid.uuid4().hex[:8]
    names = {"primary_bucket": f"ranges-{suffix}-origin", "fallback_bucket": f"ranges-{suffix}-fallback"}
    settings = Settings(**{**SETTINGS.as_dict(), **names})
    storage = LocalS3(settings)
    distribution = Distribution(settings, storage, error_caching_seconds=1)
    asked: list[str | None] = []
    original = storage.origin_get

    def recording(bucket: str, uri: str, prefix: str, byte_range: str | None = None) -> Any:
        asked.append(byte_range)
        return original(bucket, uri, prefix, byte_range)

    try:
        storage.put_original("a/b.png", samples.png(samples.logo(400, 300)))
        storage.origin_get = recording  # type: ignore[method-assign]
        assert distribution.request("GET", "/a/b.png", "w=160&fm=png", {}).status == 200  # rendered: whole
        distribution.expire()
        answer = distribution.request("GET", "/a/b.png", "w=160&fm=png", {"Range": "bytes=2-5"})
        assert answer.status == 206 and answer.headers["Content-Range"].startswith("bytes 2-5/")
        assert asked == [None, "bytes=0-"]
    finally:
        distribution.viewer.close()
        storage.stop()


def image_of(reply: Reply) -> Any:
    return Image.open(io.BytesIO(reply.body))


def test_the_attack_forms_above_are_what_boto3_signs() -> None:
    """The forged forms are real SigV4 POST policies (so the refusals above are the key checks, not a
    malformed form): the credential names the forger's access key."""
    post = forged_post("AKIAATTACKER", LOCAL_SECRET, "variants/x.png/w_160_q_60.webp")
    assert post["fields"]["x-amz-credential"].startswith("AKIAATTACKER/")
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    assert {"key": "variants/x.png/w_160_q_60.webp"} in policy["conditions"]

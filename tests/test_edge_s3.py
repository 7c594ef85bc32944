"""edge.s3, the S3 client of a miss: what it stores and reads against a real S3 API (moto's server on
loopback), and its retries, timeouts, credentials and refusals against servers that misbehave on cue."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.server import ThreadedMotoServer

from edge import resize, s3, variants
from edge.settings import Settings
from localcdn import events, samples

REGION = "eu-west-1"
BUCKET = "edge-s3-test"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    reference(url).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield url
    server.stop()


def reference(url: str) -> Any:
    """boto3 on the same S3: the independent reader of what edge.s3 wrote."""
    return boto3.client(
        "s3", region_name=REGION, endpoint_url=url, aws_access_key_id="local", aws_secret_access_key="local"
    )


def client(url: str, **budget: Any) -> s3.Client:
    return s3.Client(
        REGION, endpoint=url, credentials={"access_key_id": "local", "secret_access_key": "local"}, **budget
    )


def test_a_put_carries_type_lifetime_and_metadata_and_a_get_reads_them_back(endpoint: str) -> None:
    ours, theirs = client(endpoint), reference(endpoint)
    body = samples.jpeg(samples.photo(64, 48, seed=3))
    ours.put_object(
        Bucket=BUCKET,
        Key="variants/a b/ünï+50%.jpg/w_64.jpeg",
        Body=body,
        ContentType="image/jpeg",
        CacheControl="public, max-age=31536000",
        Metadata={"source-etag": "abc123"},
    )
    stored = theirs.get_object(Bucket=BUCKET, Key="variants/a b/ünï+50%.jpg/w_64.jpeg")
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "image/jpeg"
    assert stored["CacheControl"] == "public, max-age=31536000"
    assert stored["Metadata"] == {"source-etag": "abc123"}
    read = ours.get_object(Bucket=BUCKET, Key="variants/a b/ünï+50%.jpg/w_64.jpeg")
    assert read["ContentLength"] == len(body)
    assert read["ETag"] == stored["ETag"]
    assert read["ContentType"] == "image/jpeg"
    assert read["Body"].read() == body


def test_a_missing_key_is_no_such_key_as_botocore_would_say(endpoint: str) -> None:
    with pytest.raises(s3.S3Error) as refused:
        client(endpoint).get_object(Bucket=BUCKET, Key="originals/nothing-here.jpg")
    assert s3.error_code(refused.value) == "NoSuchKey"
    assert refused.value.response["Error"]["Code"] == "NoSuchKey"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=12), min_size=1, max_size=4).map("/".join)
)
def test_every_key_reaches_s3_exactly_as_named(endpoint: str, key: str) -> None:
    """obstore's paths carry only some keys; the rest take boto3 (`expressible`). Either way S3 gets this key.
    (Control characters are left out: moto's server refuses them in a path whoever sends them.)"""
    key = "k/" + key
    if len(key.encode()) > 900:
        return
    ours, theirs = client(endpoint), reference(endpoint)
    ours.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    assert theirs.get_object(Bucket=BUCKET, Key=key)["Body"].read() == key.encode()
    assert ours.get_object(Bucket=BUCKET, Key=key)["Body"].read() == key.encode()
    theirs.delete_object(Bucket=BUCKET, Key=key)


@pytest.mark.parametrize("key", ["a//b.jpg", "/lead.jpg", "trail/", "a/./b.jpg", "a/../b.jpg", "tab\t.jpg"])
def test_keys_obstore_cannot_carry_are_recognised(key: str) -> None:
    assert not s3.expressible(key)


def test_every_key_the_url_grammar_accepts_is_one_obstore_carries() -> None:
    for key in ("products/shoe.jpg", "a b/ünï.jpg", "50%/x+y.jpg", "x..y.jpg", "emoji😀.png"):
        assert s3.expressible(variants.validate_key(key))
    for key in ("a//b.jpg", "a/./b.jpg", "a/../b.jpg", "tab\t.jpg"):
        with pytest.raises(variants.VariantError):
            variants.validate_key(key)


# -- a server that misbehaves on cue -------------------------------------------------------------


class Scripted:
    """A loopback HTTP server answering each request with the next scripted (status, code, body),
    or holding it until released ("hold"); it records every request's method, path and headers."""

    def __init__(self, script: list[Any]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                step = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                if step == "hold":
                    owner.release.wait(30)
                    return
                status, code, payload = step
                if code:
                    payload = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("ETag", '"e1"')
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[Any]], Scripted]]:
    made: list[Scripted] = []

    def make(script: list[Any]) -> Scripted:
        made.append(Scripted(script))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def test_a_5xx_is_retried_and_the_retry_answers(scripted: Callable[[list[Any]], Scripted]) -> None:
    server = scripted([(503, "SlowDown", b""), (200, None, b"pixels")])
    answer = client(server.url, retries=1).get_object(Bucket="b", Key="originals/a.jpg")
    assert answer["Body"].read() == b"pixels"
    assert len(server.requests) == 2


def test_retries_are_bounded_and_the_last_code_is_kept(scripted: Callable[[list[Any]], Scripted]) -> None:
    server = scripted([(503, "SlowDown", b"")])
    with pytest.raises(s3.S3Error) as refused:
        client(server.url, retries=1).get_object(Bucket="b", Key="originals/a.jpg")
    assert s3.error_code(refused.value) == "SlowDown"
    assert len(server.requests) == 2  # the first attempt and one retry, as resize's budget says


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [(404, "NoSuchKey", "NoSuchKey"), (403, "AccessDenied", "AccessDenied"), (403, "ExpiredToken", "ExpiredToken")],
)
def test_a_refusal_is_not_retried_and_keeps_s3s_code(
    scripted: Callable[[list[Any]], Scripted], status: int, code: str, expected: str
) -> None:
    server = scripted([(status, code, b"")])
    with pytest.raises(s3.S3Error) as refused:
        client(server.url, retries=2).get_object(Bucket="b", Key="originals/a.jpg")
    assert s3.error_code(refused.value) == expected
    assert len(server.requests) == 1


def test_a_silent_server_times_out_into_an_error_not_a_hang(scripted: Callable[[list[Any]], Scripted]) -> None:
    server = scripted(["hold"])
    with pytest.raises(s3.S3Error) as refused:
        client(server.url, timeout=0.3, retries=0).get_object(Bucket="b", Key="originals/a.jpg")
    assert s3.error_code(refused.value) == s3.UNAVAILABLE
    assert len(server.requests) == 1


def test_an_unreachable_endpoint_is_an_error_after_the_retries() -> None:
    with pytest.raises(s3.S3Error) as refused:
        client("http://127.0.0.1:9", connect_timeout=0.5, retries=1).get_object(Bucket="b", Key="a.jpg")
    assert s3.error_code(refused.value) == s3.UNAVAILABLE


def _sigv4(request: dict[str, Any], secret: str, region: str) -> str:
    """The signature AWS Signature Version 4 gives this request (IAM User Guide, "Create a signed AWS
    API request": canonical request, string to sign, derived signing key), written from the document."""
    headers = {name.lower(): value for name, value in request["headers"].items()}
    authorization = headers["authorization"]
    credential = authorization.split("Credential=")[1].split(",")[0]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    _, date, _, service, _ = credential.split("/")
    path, _, query = request["path"].partition("?")
    canonical_query = "&".join(sorted(query.split("&"))) if query else ""
    canonical = "\n".join(
        [
            request["method"],
            quote(path, safe="/%~"),
            canonical_query,
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed),
            ";".join(signed),
            headers["x-amz-content-sha256"],
        ]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_credentials_come_from_the_lambda_environment_and_sign_the_request(
    scripted: Callable[[list[Any]], Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Lambda sets for the execution role (Lambda Developer Guide, "Defined runtime environment variables").
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEDGETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "edge/secret+key")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-of-the-role")
    server = scripted([(200, None, b"")])
    s3.Client(REGION, endpoint=server.url).put_object(
        Bucket="b", Key="variants/a b.jpg/w_1.webp", Body=b"body", ContentType="image/webp"
    )
    request = server.requests[0]
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["x-amz-security-token"] == "session-token-of-the-role"
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential=ASIAEDGETEST/{headers['x-amz-date'][:8]}/")
    assert f"/{REGION}/s3/aws4_request" in headers["authorization"]
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"} <= set(signed)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(b"body").hexdigest()  # the payload is signed
    assert headers["authorization"].endswith(f"Signature={_sigv4(request, 'edge/secret+key', REGION)}")


def test_addressing_is_virtual_hosted_on_aws_and_path_style_where_it_must_be(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws = s3.Client(REGION)._store("images-origin").config  # obstore reports its settings as strings
    assert aws["virtual_hosted_style_request"] == "true" and "endpoint" not in aws and aws["region"] == REGION
    assert s3.Client(REGION)._store("images.example.com").config["virtual_hosted_style_request"] == "false"
    local = s3.Client(REGION, endpoint="http://127.0.0.1:1")._store("images-origin").config
    assert local["virtual_hosted_style_request"] == "false" and local["endpoint"] == "http://127.0.0.1:1"


# -- resize through edge.s3 -----------------------------------------------------------------------


@pytest.fixture
def stack(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """resize's own default clients, pointed at moto by botocore's variable (as `make bench` does)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    resize._clients.clear()
    theirs = reference(endpoint)
    fallback = "edge-s3-fallback"
    if fallback not in [b["Name"] for b in theirs.list_buckets()["Buckets"]]:
        theirs.create_bucket(Bucket=fallback, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield Settings(primary_bucket=BUCKET, fallback_bucket=fallback, primary_region=REGION, fallback_region=REGION)
    resize._clients.clear()


def _miss(settings: Settings, uri: str) -> dict[str, Any]:
    from edge.rewrite import handle

    domain = f"{settings.primary_bucket}.s3.{REGION}.amazonaws.com"
    forwarded = handle(events.origin_request(uri, domain, REGION), settings)
    return resize.handle(events.origin_response(forwarded, 404), settings)


def test_a_miss_through_the_default_clients_renders_and_stores_both_copies(endpoint: str, stack: Settings) -> None:
    theirs = reference(endpoint)
    theirs.put_object(Bucket=BUCKET, Key="originals/shoe.jpg", Body=samples.jpeg(samples.photo(800, 600, seed=5)))
    answer = _miss(stack, "/shoe.jpg/w_320_q_60.webp")
    assert answer["status"] == "200"
    assert answer["headers"]["content-type"][0]["value"] == "image/webp"
    stored = theirs.head_object(Bucket=BUCKET, Key="variants/shoe.jpg/w_320_q_60.webp")
    source = theirs.head_object(Bucket=BUCKET, Key="originals/shoe.jpg")
    assert stored["Metadata"] == {"source-etag": source["ETag"].strip('"')}
    assert stored["CacheControl"] == stack.variant_cache_control
    assert theirs.head_object(Bucket=stack.fallback_bucket, Key="shoe.jpg/w_320_q_60.webp")["ContentType"] == (
        "image/webp"
    )
    assert isinstance(resize.default_s3(REGION), s3.Client)


def test_a_miss_for_a_missing_original_is_a_404(stack: Settings) -> None:
    answer = _miss(stack, "/nowhere.jpg/w_320_q_60.webp")
    assert answer["status"] == "404"
    assert json.loads(answer["body"])["error"] == "NotFound"


def test_a_miss_with_s3_unreachable_is_a_503_not_a_crash(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    resize._clients.clear()
    answer = _miss(stack, "/shoe.jpg/w_320_q_60.webp")
    assert answer["status"] == "503"
    assert json.loads(answer["body"]) == {"error": "OriginalUnavailable", "message": s3.UNAVAILABLE}
    assert "no-store" in answer["headers"]["cache-control"][0]["value"]

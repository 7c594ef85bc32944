"""The emulator end to end, through HTTP: `python -m localcdn` started as a user would."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from components.config import from_stack_file
from edge.settings import Settings
from localcdn import samples
from localcdn.distribution import Distribution, Response
from localcdn.jobs import LocalSync
from localcdn.process import ROOT, Emulator, Reply, listening
from localcdn.storage import LocalS3

CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


def stored(cdn: Emulator) -> dict[str, Any]:
    return dict(cdn.get("/_localcdn/variants").json())


def image_of(reply: Reply) -> Image.Image:
    return Image.open(io.BytesIO(reply.body))


def test_miss_then_hit(cdn: Emulator) -> None:
    first = cdn.get("/samples/landscape.jpg?w=480&q=50", CHROMIUM)
    second = cdn.get("/samples/landscape.jpg?w=480&q=50", CHROMIUM)
    assert (first.status, first.header("X-Cache"), first.header("X-Origin")) == (200, "Miss", "primary")
    assert (second.status, second.header("X-Cache"), second.header("X-Origin")) == (200, "Hit", "primary")
    assert first.body == second.body
    timing = first.header("Server-Timing") or ""
    assert all(f"{name};dur=" in timing for name in ("download", "transform", "upload"))
    assert first.header("Vary") == from_stack_file("dev").edge_settings().vary  # Accept, and the client hints
    # CloudFront keeps it a year (invalidated on change); browsers the stack's browserCacheSeconds, never immutable
    assert first.header("Cache-Control") == "public, max-age=86400, s-maxage=31536000"


def test_nearby_widths_share_one_variant(cdn: Emulator) -> None:
    first = cdn.get("/samples/portrait.jpg?w=1000", CHROMIUM)
    second = cdn.get("/samples/portrait.jpg?w=1024", CHROMIUM)
    assert first.header("X-Cache") == "Miss" and second.header("X-Cache") == "Hit"
    assert first.body == second.body
    log = cdn.get("/_localcdn/requests").json()
    canonical = {
        entry["canonical"]
        for entry in log
        if entry["uri"] == "/samples/portrait.jpg" and entry["query"] in ("w=1000", "w=1024")
    }
    assert canonical == {"/samples/portrait.jpg/w_1024_q_60.avif"}


@pytest.mark.parametrize(
    ("accept", "fmt"), [(CHROMIUM, "AVIF"), ("image/webp", "WEBP"), ("*/*", "JPEG"), (None, "JPEG")]
)
def test_the_accept_header_picks_the_format(cdn: Emulator, accept: str | None, fmt: str) -> None:
    reply = cdn.get("/samples/landscape.jpg?w=320", accept)
    assert reply.status == 200
    assert image_of(reply).format == fmt
    assert reply.header("Content-Type") == f"image/{fmt.lower()}"
    assert image_of(reply).width == 320


@pytest.mark.parametrize(
    ("query", "parameter"), [("w=-3", "width"), ("q=500", "quality"), ("fm=gif", "format"), ("h=100&fit=x", "fit")]
)
def test_bad_input_is_a_400_json_and_nothing_is_stored(cdn: Emulator, query: str, parameter: str) -> None:
    before = stored(cdn)
    reply = cdn.get(f"/samples/logo.png?{query}", CHROMIUM)
    assert reply.status == 400
    body = reply.json()
    assert body["parameter"] == parameter and body["message"].startswith("Expected ")
    assert stored(cdn) == before


def test_a_path_outside_the_grammar_is_a_400(cdn: Emulator) -> None:
    assert cdn.get("/samples/../originals/samples/logo.png", CHROMIUM).status == 400
    assert cdn.get("/samples//logo.png", CHROMIUM).json()["parameter"] == "key"


def test_missing_original_is_a_404_with_the_stacks_default_image(cdn: Emulator) -> None:
    reply = cdn.get("/samples/nope.jpg?w=320", CHROMIUM)
    assert reply.status == 404 and reply.header("Content-Type") == "image/avif"
    assert Image.open(io.BytesIO(reply.body)).size == (320, 240)  # site/missing.png (4:3) as asked
    assert reply.header("Cache-Control") == "public, max-age=1, s-maxage=1"  # the dev stack's error TTL
    # the default itself missing (or asked for with a path that cannot exist) is a JSON 404
    reply = cdn.get("/site/nope/missing.png?w=320", CHROMIUM)
    assert reply.status == 404


def test_a_big_variant_is_stored_then_redirected_and_the_retry_is_an_s3_hit(cdn: Emulator) -> None:
    reply = cdn.get("/samples/landscape.jpg?w=2560&fm=png", CHROMIUM)
    assert reply.status == 302 and reply.header("Cache-Control") == "no-store"
    location = reply.header("Location") or ""
    # The dev stack checks signed URLs, so its viewer function passes the asked-for URL on and
    # resize sends the viewer back there (under `required`, the canonical path alone would be refused).
    assert location == "/samples/landscape.jpg?w=2560&fm=png"
    retry = cdn.get(location, CHROMIUM)
    assert retry.status == 200 and retry.header("X-Origin") == "primary"
    assert image_of(retry).size == (2400, 1600) and len(retry.body) > 1_000_000
    assert "transform" not in (retry.header("Server-Timing") or "")  # served by S3, not rendered again


@pytest.mark.parametrize("outage", ["down", "error"])
def test_an_outage_fails_over_and_its_substitutes_do_not_outlive_it(cdn: Emulator, outage: str) -> None:
    standard = "/samples/landscape.jpg?w=640&fm=webp"
    nearby = "/samples/landscape.jpg?w=600&q=90"  # avif q90: not in the fallback
    cdn.request("DELETE", "/_localcdn/cache")
    cdn.primary(outage)
    try:
        served = cdn.get(standard, CHROMIUM)
        assert (served.status, served.header("X-Origin")) == (200, "fallback")
        assert image_of(served).format == "WEBP" and image_of(served).width == 640
        assert served.header("X-Image-Cdn-Substitute") is None  # byte for byte what was asked for
        assert served.header("Cache-Control") == "public, max-age=86400, s-maxage=31536000"
        substitute = cdn.get(nearby, CHROMIUM)
        assert (substitute.status, substitute.header("X-Origin")) == (200, "fallback")
        assert image_of(substitute).format == "WEBP" and image_of(substitute).width == 640
        assert substitute.header("X-Image-Cdn-Substitute") == "/samples/landscape.jpg/w_640_q_60.webp"
        assert substitute.header("Cache-Control") == "public, max-age=60, s-maxage=60"  # fallbackCacheSeconds
        assert cdn.get(nearby, CHROMIUM).header("X-Cache") == "Hit"  # CloudFront caches it like any response
    finally:
        cdn.primary("up")
    # no invalidation: the substitute simply expires
    assert cdn.get(nearby, CHROMIUM).header("X-Origin") == "fallback"
    before = cdn.get("/_localcdn/clock").json()
    asked = time.time()
    moved = cdn.request("POST", "/_localcdn/clock", b'{"advance": 61}').json()
    answered = time.time()
    # Unix time as the edge sees it, a minute on (whatever else the host's clock did meanwhile)
    assert moved["advanced"] == before["advanced"] + 61 and moved["now"] >= before["now"] + 61
    assert asked - 0.001 <= moved["now"] - moved["advanced"] <= answered + 0.001  # the host's, plus the offset
    back = cdn.get(nearby, CHROMIUM)
    assert (back.status, back.header("X-Origin"), back.header("X-Cache")) == (200, "primary", "Miss")
    assert image_of(back).format == "AVIF" and back.header("X-Image-Cdn-Substitute") is None


@pytest.mark.parametrize("reading", ["viewer", "forwarded"])
def test_failover_asks_the_fallback_for_the_right_key_whichever_request_cloudfront_resends(reading: str) -> None:
    # AWS: on failover CloudFront "sends the same request to the secondary origin", without
    # saying whether that is the viewer's request or the one origin-request forwarded.
    names = {"primary_bucket": f"reading-{reading}-origin", "fallback_bucket": f"reading-{reading}-fallback"}
    settings = Settings(**{**from_stack_file("dev").edge_settings().as_dict(), **names})
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=1, failover_request=reading)
        sync = LocalSync(distribution)
        sync.upload("shop/shoe.jpg", samples.jpeg(samples.photo(900, 600)))
        distribution.set_primary("error")
        response = distribution.request("GET", "/shop/shoe.jpg", "w=640&q=90", {"Accept": CHROMIUM})
        assert (response.status, response.origin) == (200, "fallback")
        assert response.headers["X-Image-Cdn-Substitute"] == "/shop/shoe.jpg/w_640_q_60.webp"
        assert Image.open(io.BytesIO(response.body)).size == (640, 427)
    finally:
        distribution.viewer.close()
        storage.stop()


def test_control_endpoints_refuse_nonsense(cdn: Emulator) -> None:
    reply = cdn.request("PUT", "/_localcdn/primary", b"sideways")
    assert reply.status == 400 and reply.json()["parameter"] == "primary"
    assert cdn.request("POST", "/samples/logo.png").status == 403


@pytest.mark.parametrize("method", ["PATCH", "TRACE", "PROPFIND", "BREW"])
def test_every_method_gets_a_json_answer(cdn: Emulator, method: str) -> None:
    for path in ("/samples/logo.png", "/_localcdn/health", "/"):
        reply = cdn.request(method, path)
        assert 400 <= reply.status < 500 and reply.json()["parameter"] == "method", (method, path)


def raw_exchange(cdn: Emulator, data: bytes) -> bytes:
    """Send bytes as they are; read until the server closes (after an error, or its keep-alive timeout)."""
    with socket.create_connection(("127.0.0.1", cdn.port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_malformed_content_length_is_a_json_400_not_a_dropped_connection(cdn: Emulator) -> None:
    host = f"Host: 127.0.0.1:{cdn.port}".encode()
    answer = raw_exchange(cdn, b"GET /samples/logo.png HTTP/1.1\r\n%s\r\nContent-Length: abc\r\n\r\n" % host)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/json" in head.lower()
    assert json.loads(body)["parameter"] == "request"


def test_a_refused_requests_body_is_never_read_as_the_next_request(cdn: Emulator) -> None:
    host = f"Host: 127.0.0.1:{cdn.port}".encode()  # a Host it serves: the method is what is refused
    smuggled = b"GET /_localcdn/health HTTP/1.1\r\n%s\r\n\r\n" % host
    answer = raw_exchange(
        cdn,
        b"POST /samples/logo.png HTTP/1.1\r\n%s\r\nContent-Length: %d\r\n\r\n%s" % (host, len(smuggled), smuggled),
    )
    assert answer.count(b"HTTP/1.1 ") == 1 and answer.startswith(b"HTTP/1.1 403 ")


def test_the_viewer_function_sees_a_leading_double_slash_as_it_came(cdn: Emulator) -> None:
    reply = cdn.get("//samples/logo.png?w=160", CHROMIUM)
    assert reply.status == 400 and reply.json()["parameter"] == "key"
    assert reply.header("X-Cache") == "FunctionGeneratedResponse"


def test_a_malformed_invalidation_is_refused_and_empties_nothing(cdn: Emulator) -> None:
    assert cdn.get("/samples/logo.png?w=160", CHROMIUM).status == 200
    cached = cdn.get("/_localcdn/cache").json()
    for body in (b"", b'{"x": 1}', b"[1, 2]", b"{not json", b'{"paths": []}'):
        reply = cdn.request("POST", "/_localcdn/invalidate", body)
        assert reply.status == 400 and reply.json()["parameter"] == "paths", body
    bad_path = cdn.request("POST", "/_localcdn/invalidate", b'["/a*/b"]')  # * only at the end
    assert bad_path.status == 400 and bad_path.json()["error"] == "InvalidArgument"
    # like every refusal: what was expected and what came
    assert "'*' only at the end" in bad_path.json()["expected"] and "/a*/b" in bad_path.json()["received"]
    assert cdn.get("/_localcdn/cache").json() == cached
    backwards = cdn.request("POST", "/_localcdn/clock", b'{"advance": -5}')
    assert backwards.status == 400 and backwards.json()["received"] == "-5"


def test_an_invalidation_drops_what_it_names_within_cloudfronts_limits(cdn: Emulator) -> None:
    assert cdn.get("/samples/logo.png?w=320", CHROMIUM).status == 200
    now = cdn.get("/_localcdn/clock").json()["now"]
    created = cdn.request("POST", "/_localcdn/invalidate", b'["/samples/logo.png/*"]')
    assert created.status == 201 and created.json()["Status"] == "InProgress"
    # CreateTime as CloudFront writes it, on the clock the edge sees (GET /_localcdn/clock)
    stamp = datetime.strptime(created.json()["CreateTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    after = cdn.get("/_localcdn/clock").json()["now"]
    assert now - 0.001 <= stamp.timestamp() <= after  # between two readings of that clock (ms precision)
    assert not any(uri.startswith("/samples/logo.png/") for uri in cdn.get("/_localcdn/cache").json())
    listing = cdn.get("/_localcdn/invalidations").json()
    assert listing["in_progress"]["wildcard_paths"] >= 1


@pytest.mark.parametrize(
    "path", ["/_localcdn/originals/", "/_localcdn/originals/a//b.jpg", "/_localcdn/originals/%2e%2e"]
)
def test_an_empty_or_unsafe_original_key_is_refused(cdn: Emulator, path: str) -> None:
    for method in ("PUT", "DELETE"):
        reply = cdn.request(method, path, b"x" if method == "PUT" else None)
        assert reply.status == 400 and reply.json()["parameter"] == "key", (method, path)


def test_a_busy_port_is_one_line_not_a_traceback(cdn: Emulator) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localcdn", "--port", str(cdn.port)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "70000"], "expected a port number from 0 to 65535, got '70000'"),
        (["--port", "-1"], "expected a port number from 0 to 65535"),
        (["--stack", "staging"], "no Pulumi.staging.yaml here: the stacks here are dev, prod, thirdparty"),
        (["--stack", "thirdparty", "--port", "0"], "make serve STACK=thirdparty ORIGIN=thumbor"),
        (["--host", "nosuch.invalid", "--port", "0"], "(check --host)"),
    ],
)
def test_a_start_up_mistake_is_a_line_or_two_not_a_traceback(args: list[str], says: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "localcdn", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr + result.stdout
    assert says in result.stderr and len(result.stderr.strip().splitlines()) <= 3, result.stderr


def test_preflights_are_answered_at_the_edge(cdn: Emulator) -> None:
    reply = cdn.request(
        "OPTIONS",
        "/samples/logo.png?w=160",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"},
    )
    assert reply.status == 204 and reply.header("Access-Control-Allow-Origin") == "*"
    assert "GET" in (reply.header("Access-Control-Allow-Methods") or "")


def test_the_gallery_lists_every_original_in_a_picture(cdn: Emulator) -> None:
    page = cdn.get("/").body.decode()
    for key in samples.originals(from_stack_file("dev").default_image):
        assert f'data-key="{key}"' in page
    assert page.count("<picture>") == len(samples.originals(from_stack_file("dev").default_image)) and "srcset=" in page


def test_ctrl_c_stops_everything_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    status_before = _git_status()
    emulator = Emulator(home=home)
    s3_port = int(emulator.s3_endpoint.rsplit(":", 1)[1])
    assert emulator.get("/samples/logo.png?w=160").status == 200
    output = emulator.stop()
    assert emulator.process.returncode == 0, output
    assert "localcdn: stopped" in output
    assert not listening(emulator.port) and not listening(s3_port)
    assert list(home.iterdir()) == []
    assert _git_status() == status_before


def _git_status() -> str:
    if shutil.which("git") is None or not (Path(__file__).parents[1] / ".git").exists():
        return ""
    return subprocess.run(
        ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=Path(__file__).parents[1], check=False
    ).stdout


def test_originals_come_from_a_folder_when_given(tmp_path: Path) -> None:
    folder = tmp_path / "photos" / "summer"
    folder.mkdir(parents=True)
    (folder / "beach.jpg").write_bytes(samples.jpeg(samples.photo(900, 600)))
    (folder / "notes.txt").write_text("not an image")
    emulator = Emulator("--originals", str(tmp_path / "photos"), home=tmp_path)
    try:
        assert list(stored(emulator)) == ["summer/beach.jpg"]
        assert image_of(emulator.get("/summer/beach.jpg?w=320", "image/webp")).size == (320, 213)
    finally:
        emulator.stop()


def test_a_generated_response_over_one_megabyte_is_a_502() -> None:
    settings = from_stack_file("dev").edge_settings()
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=1)
        answer = {"status": "200", "headers": {}, "body": "A" * settings.response_limit_bytes, "bodyEncoding": "text"}
        response = distribution._generated(answer, "primary")
        assert isinstance(response, Response) and response.status == 502
        assert json.loads(response.body)["error"] == "LambdaValidationError"
    finally:
        storage.stop()


def test_errors_are_cached_only_for_the_error_ttl() -> None:
    now = [0.0]
    settings = Settings(primary_bucket="clock-origin", fallback_bucket="clock-fallback")
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=5, clock=lambda: now[0])
        assert distribution.request("GET", "/late.jpg", "w=160", {}).status == 404
        storage.put_original("late.jpg", samples.jpeg(samples.photo(320, 240)))
        assert distribution.request("GET", "/late.jpg", "w=160", {}).headers["X-Cache"] == "Hit"
        now[0] = 6.0
        assert distribution.request("GET", "/late.jpg", "w=160", {}).status == 200
    finally:
        storage.stop()


@pytest.mark.parametrize(
    ("status", "cache_control", "seconds"),
    [
        # "Control how long CloudFront caches errors", with an error caching minimum TTL of 5:
        (404, "public, max-age=3600", 3600),  # the larger of the header and the minimum TTL
        (404, "public, max-age=1, s-maxage=2", 5),
        (404, "", 5),  # no header: the minimum TTL
        (404, "no-store", 0),  # 404, 410, 414, 501: no-store, no-cache or private -> not cached
        (410, "private", 0),
        (503, "no-store", 5),  # any other error code: those directives are ignored
        (400, "no-cache", 5),
        (404, "max-age=99999999", 31_536_000),  # never longer than the maximum TTL
        (200, "no-store", 0),
        (200, "", 86_400),
        (200, "public, max-age=60, s-maxage=600", 600),
    ],
)
def test_the_emulator_caches_as_cloudfronts_document_says(status: int, cache_control: str, seconds: int) -> None:
    from localcdn.distribution import Response, cache_seconds

    headers = {"Cache-Control": cache_control} if cache_control else {}
    assert cache_seconds(Response(status, headers), 5) == seconds


def test_the_default_image_is_kept_under_a_missing_key_for_the_error_ttl_only(cdn: Emulator) -> None:
    path = "/later/arrives.jpg?w=320"
    first = cdn.get(path, CHROMIUM)
    assert (first.status, first.header("X-Cache")) == (404, "Miss") and first.header("Content-Type") == "image/avif"
    assert cdn.get(path, CHROMIUM).header("X-Cache") == "Hit"
    upload = samples.jpeg(samples.photo(640, 480, seed=41))
    assert cdn.request("PUT", "/_localcdn/originals/later/arrives.jpg", upload).status == 200
    cached = cdn.get(path, CHROMIUM)
    assert (cached.status, cached.header("X-Cache")) == (404, "Hit")  # until its error TTL runs out
    ttl = from_stack_file("dev").error_caching_seconds
    cdn.request("POST", "/_localcdn/clock", json.dumps({"advance": ttl + 0.5}).encode())
    real = cdn.get(path, CHROMIUM)
    assert (real.status, real.header("X-Cache")) == (200, "Miss") and image_of(real).size == (320, 240)

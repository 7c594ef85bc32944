"""rewrite (origin-request) and resize (origin-response) on CloudFront's event shapes, S3 from moto."""

from __future__ import annotations

import ast
import base64
import copy
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from components import bundle
from edge import resize, rewrite, variants
from edge.settings import Settings
from localcdn import events, samples
from tests.hostile import png_bomb

PRIMARY = "test-origin.s3.eu-west-1.amazonaws.com"
FALLBACK = "test-fallback.s3.eu-central-1.amazonaws.com"


def forwarded(settings: Settings, uri: str, domain: str = PRIMARY) -> dict[str, Any]:
    result = rewrite.handle(events.origin_request(uri, domain, "eu-west-1"), settings)
    assert "status" not in result, result
    return result


def respond(settings: Settings, s3: Any, uri: str, status: int, domain: str = PRIMARY) -> dict[str, Any]:
    event = events.origin_response(forwarded(settings, uri, domain), status)
    return resize.handle(event, settings, s3.factory if s3 is not None else _no_s3)


def _no_s3(region: str) -> Any:
    raise AssertionError("S3 must not be touched here")


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {name: values[0]["value"] for name, values in response["headers"].items()}


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["content-type"][0]["value"] == "application/json"
    return dict(json.loads(response["body"]))


# -- rewrite -----------------------------------------------------------------


def test_rewrite_leaves_the_primary_uri_and_points_at_the_variants_path(settings: Settings) -> None:
    request = forwarded(settings, "/products/shoe.jpg/w_1024_q_70.avif")
    assert request["uri"] == "/products/shoe.jpg/w_1024_q_70.avif"
    assert request["origin"]["s3"]["path"] == "/variants"  # S3 is asked for variants/products/shoe.jpg/...
    assert request["querystring"] == ""


def test_rewrite_maps_the_fallback_to_the_nearest_standard_variant(settings: Settings) -> None:
    request = forwarded(settings, "/products/shoe.jpg/w_480_h_320_q_70_fit_contain.avif", FALLBACK)
    assert request["uri"] == "/products/shoe.jpg/w_480_q_60.webp"
    assert (
        request["headers"]["x-image-cdn-requested"][0]["value"]
        == "/products/shoe.jpg/w_480_h_320_q_70_fit_contain.avif"
    )
    standard = forwarded(settings, "/products/shoe.jpg/w_1024_q_60.webp", FALLBACK)
    assert standard["uri"] == "/products/shoe.jpg/w_1024_q_60.webp"


@pytest.mark.parametrize(
    ("asked", "served"),
    [
        ("/a.jpg/w_640_q_90.jpeg", "/a.jpg/w_640_q_60.jpeg"),  # fm=jpeg, or Accept: */*: never WebP
        ("/a.jpg/w_640_q_60.webp", "/a.jpg/w_640_q_60.webp"),
        ("/a.jpg/w_640_q_60.avif", "/a.jpg/w_640_q_60.webp"),  # every AVIF decoder decodes WebP
        ("/a.jpg/w_640_q_60.png", "/a.jpg/w_640_q_60.jpeg"),
    ],
)
def test_the_fallback_only_serves_a_format_the_request_accepts(settings: Settings, asked: str, served: str) -> None:
    assert forwarded(settings, asked, FALLBACK)["uri"] == served


def test_without_an_acceptable_standard_format_the_fallback_answers_404(settings: Settings) -> None:
    webp_only = Settings(**{**settings.as_dict(), "standard_formats": ("webp",)})
    result = rewrite.handle(events.origin_request("/a.jpg/w_640_q_60.jpeg", FALLBACK, "eu-central-1"), webp_only)
    assert result["status"] == "404" and "jpeg" in body_of(result)["expected"]


@pytest.mark.parametrize(
    "asked", ["/products/shoe.jpg/w_640_q_90.avif", "/variants/x.jpg/w_640_h_320_q_60_fit_fill.jpeg"]
)
def test_rewrite_is_idempotent_whichever_request_cloudfront_sends_the_fallback(settings: Settings, asked: str) -> None:
    # AWS says only that CloudFront "sends the same request to the secondary origin": it
    # may be the request origin-request forwarded to the primary, or the viewer's.
    from_viewer = forwarded(settings, asked, FALLBACK)
    to_primary = forwarded(settings, asked)
    again = copy.deepcopy(to_primary)
    again["origin"] = events.s3_origin(FALLBACK, "eu-central-1")
    event = {"Records": [{"cf": {"config": {"eventType": "origin-request"}, "request": again}}]}
    from_forwarded = rewrite.handle(event, settings)
    assert from_forwarded["uri"] == from_viewer["uri"]
    assert from_forwarded["headers"]["x-image-cdn-requested"] == from_viewer["headers"]["x-image-cdn-requested"]
    # and once more over its own output (a retry of the secondary)
    event = {"Records": [{"cf": {"config": {"eventType": "origin-request"}, "request": copy.deepcopy(from_viewer)}}]}
    assert rewrite.handle(event, settings)["uri"] == from_viewer["uri"]


@pytest.mark.parametrize(
    "uri",
    [
        "/products/shoe.jpg",
        "/products/shoe.jpg/w_1000_q_60.avif",
        "/products/../x.jpg/w_1024_q_60.avif",
        "/a.jpg/w_1024_q_60_fit_cover.webp",
    ],
)
def test_rewrite_answers_non_canonical_paths_itself(settings: Settings, uri: str) -> None:
    result = rewrite.handle(events.origin_request(uri, PRIMARY, "eu-west-1"), settings)
    assert result["status"] == "400"
    body = body_of(result)
    assert body["parameter"] in ("path", "key") and body["received"]


def test_rewrite_refuses_an_origin_it_does_not_know(settings: Settings) -> None:
    result = rewrite.handle(events.origin_request("/a.jpg/w_160_q_60.webp", "other.s3.amazonaws.com", "x"), settings)
    assert result["status"] == "502"


# -- resize ------------------------------------------------------------------


def test_resize_builds_stores_and_returns_a_missing_variant(settings: Settings, s3: Any, photo_jpeg: bytes) -> None:
    s3.put_original("products/shoe.jpg", photo_jpeg)
    response = respond(settings, s3, "/products/shoe.jpg/w_640_q_70.avif", 403)
    assert response["status"] == "200" and response["bodyEncoding"] == "base64"
    image = Image.open(io.BytesIO(base64.b64decode(response["body"])))
    assert image.format == "AVIF" and image.size == (640, 480)
    headers = headers_of(response)
    assert headers["content-type"] == "image/avif"
    assert headers["cache-control"] == settings.variant_cache_control
    assert [part.split(";")[0] for part in headers["server-timing"].split(", ")] == ["download", "transform", "upload"]
    stored = s3.get(settings.primary_bucket, "variants/products/shoe.jpg/w_640_q_70.avif")
    assert stored["ContentType"] == "image/avif" and stored["CacheControl"] == settings.variant_cache_control
    assert stored["Body"].read() == base64.b64decode(response["body"])
    # not a standard variant (quality 70, avif): the fallback stays as it was
    assert s3.keys(settings.fallback_bucket) == []


def test_resize_writes_standard_variants_through_to_the_fallback(
    settings: Settings, s3: Any, photo_jpeg: bytes
) -> None:
    s3.put_original("a/b.jpg", photo_jpeg)
    response = respond(settings, s3, "/a/b.jpg/w_320_q_60.webp", 404)
    assert response["status"] == "200"
    assert s3.keys(settings.fallback_bucket) == ["a/b.jpg/w_320_q_60.webp"]
    assert s3.keys(settings.primary_bucket) == ["originals/a/b.jpg", "variants/a/b.jpg/w_320_q_60.webp"]


def test_resize_handles_keys_that_need_percent_encoding(settings: Settings, s3: Any, photo_jpeg: bytes) -> None:
    s3.put_original("café/my shoe.jpg", photo_jpeg)
    uri = variants.normalize("/caf%C3%A9/my%20shoe.jpg", "w=160", "image/webp", settings)
    response = respond(settings, s3, uri, 404)
    assert response["status"] == "200"
    assert "variants/café/my shoe.jpg/w_160_q_60.webp" in s3.keys(settings.primary_bucket)


def test_missing_original_is_a_404_json_and_nothing_is_stored(settings: Settings, s3: Any) -> None:
    response = respond(settings, s3, "/nope.jpg/w_320_q_60.webp", 404)
    assert response["status"] == "404"
    assert body_of(response)["error"] == "NotFound"
    assert s3.keys(settings.primary_bucket) == [] and s3.keys(settings.fallback_bucket) == []


def refusal_kept(settings: Settings, s3: Any, key: str, spec: str) -> list[str]:
    """What a refusal leaves in the primary bucket: the version's marker and the variant's tombstone."""
    etag = s3.get(settings.primary_bucket, f"originals/{key}")["ETag"].strip('"')
    return sorted([f"originals/{key}", f"variants/{key}/{spec}", f"variants/{key}/_refused.{etag}"])


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"<svg onload=alert(1)>", 415), (b"\xff\xd8\xff\xe0" + b"\x00" * 64, 422), (b"", 415)],
)
def test_a_bad_original_is_a_4xx_json_and_only_the_refusal_is_kept(
    settings: Settings, s3: Any, data: bytes, status: int
) -> None:
    s3.put_original("bad.jpg", data)
    response = respond(settings, s3, "/bad.jpg/w_320_q_60.webp", 404)
    assert response["status"] == str(status)
    assert body_of(response)["parameter"] == "image"
    assert s3.keys(settings.primary_bucket) == refusal_kept(settings, s3, "bad.jpg", "w_320_q_60.webp")
    assert s3.keys(settings.fallback_bucket) == []  # no image, and no refusal, in the fallback


def test_too_many_pixels_is_a_413(settings: Settings, s3: Any) -> None:
    s3.put_original("bomb.png", png_bomb(60_000, 60_000))
    response = respond(settings, s3, "/bomb.png/w_320_q_60.webp", 404)
    assert response["status"] == "413"
    assert s3.keys(settings.primary_bucket) == refusal_kept(settings, s3, "bomb.png", "w_320_q_60.webp")


def with_default(settings: Settings, key: str = "site/missing.png") -> Settings:
    return Settings(**{**settings.as_dict(), "default_image": key})


def test_a_missing_original_gets_the_default_image_as_asked_with_a_404_and_the_error_ttl(
    settings: Settings, s3: Any
) -> None:
    stack = with_default(settings)
    s3.put_original("site/missing.png", samples.png(samples.logo(800, 600)))
    response = respond(stack, s3, "/products/gone.jpg/w_320_q_60.webp", 404)
    assert (response["status"], response["statusDescription"]) == ("404", "Not Found")
    image = Image.open(io.BytesIO(base64.b64decode(response["body"])))
    assert image.format == "WEBP" and image.size == (320, 240)
    seconds = stack.error_cache_seconds
    assert headers_of(response)["cache-control"] == f"public, max-age={seconds}, s-maxage={seconds}"
    assert headers_of(response)["content-type"] == "image/webp"
    assert headers_of(response)["x-image-cdn-missing"] == "products/gone.jpg"  # what was not found
    # stored under the default's own key, never under the missing one
    assert "variants/site/missing.png/w_320_q_60.webp" in s3.keys(stack.primary_bucket)
    assert not [k for k in s3.keys(stack.primary_bucket) if "gone" in k]
    assert not [k for k in s3.keys(stack.fallback_bucket) if "gone" in k]
    again = respond(stack, s3, "/other/gone.png/w_320_q_60.webp", 404)  # read back, not rendered again
    assert base64.b64decode(again["body"]) == base64.b64decode(response["body"])


def test_without_a_default_or_when_the_default_is_missing_a_404_is_json(settings: Settings, s3: Any) -> None:
    for stack in (settings, with_default(settings)):  # no default; a default never uploaded
        response = respond(stack, s3, "/products/gone.jpg/w_320_q_60.webp", 404)
        assert response["status"] == "404" and body_of(response)["error"] == "NotFound"
    assert s3.keys(settings.primary_bucket) == []


def test_an_error_ttl_of_zero_means_the_default_image_is_not_cached(settings: Settings, s3: Any) -> None:
    stack = Settings(**{**with_default(settings).as_dict(), "error_cache_seconds": 0})
    s3.put_original("site/missing.png", samples.png(samples.logo(400, 300)))
    response = respond(stack, s3, "/gone.jpg/w_160_q_60.jpeg", 404)
    assert response["status"] == "404" and headers_of(response)["cache-control"] == "no-store"


def test_during_an_outage_a_missing_original_gets_the_defaults_standard_variant_from_the_fallback(
    settings: Settings, s3: Any
) -> None:
    stack = with_default(settings)
    asked = "/products/gone.jpg/w_1024_q_80.avif"
    nearest = variants.nearest_standard(variants.Variant("site/missing.png", 1024, None, 80, "avif"), stack)
    assert nearest is not None and nearest.fmt == "webp"  # what a client asking for AVIF decodes
    stored = b"the default image's standard variant"
    s3.factory(stack.fallback_region).put_object(
        Bucket=stack.fallback_bucket, Key=nearest.object_path, Body=stored, ContentType="image/webp"
    )
    forward = rewrite.handle(events.origin_request(asked, FALLBACK, "eu-central-1"), stack)
    response = resize.handle(events.origin_response(forward, 404), stack, s3.factory)
    assert response["status"] == "404" and base64.b64decode(response["body"]) == stored
    assert headers_of(response)["content-type"] == "image/webp"
    assert headers_of(response)["cache-control"].startswith(f"public, max-age={stack.error_cache_seconds},")


def test_a_fallback_miss_is_a_404_and_never_a_render(settings: Settings) -> None:
    response = respond(settings, None, "/a.jpg/w_320_q_60.webp", 404, FALLBACK)
    assert response["status"] == "404"
    assert body_of(response)["error"] == "NotFound"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_passes_through_untouched_so_cloudfront_can_fail_over(settings: Settings, status: int) -> None:
    event = events.origin_response(forwarded(settings, "/a.jpg/w_320_q_60.webp"), status, {"X-Amz-Id": "1"})
    before = json.dumps(event, sort_keys=True)
    response = resize.handle(event, settings, _no_s3)
    assert response is event["Records"][0]["cf"]["response"]
    assert json.dumps(event, sort_keys=True) == before


@pytest.mark.parametrize("status", [200, 206, 304])
def test_a_stored_variant_gets_a_long_cdn_lifetime_and_the_browser_lifetime(settings: Settings, status: int) -> None:
    stored = {"Cache-Control": "public, max-age=31536000, immutable", "Content-Type": "image/webp"}
    event = events.origin_response(forwarded(settings, "/a.jpg/w_320_q_70.webp"), status, stored)
    headers = headers_of(resize.handle(event, settings, _no_s3))
    assert (
        headers["cache-control"]
        == f"public, max-age={settings.browser_cache_seconds}, s-maxage={settings.variant_cdn_seconds}"
    )
    assert "immutable" not in headers["cache-control"]
    assert headers["vary"] == "Accept" and headers["content-type"] == "image/webp"
    assert "x-image-cdn-substitute" not in headers


def test_a_fallback_substitute_is_short_lived_and_says_what_it_is(settings: Settings) -> None:
    request = forwarded(settings, "/a.jpg/w_640_h_320_q_90_fit_contain.avif", FALLBACK)
    stored = {"Cache-Control": "public, max-age=31536000, immutable", "Content-Type": "image/webp"}
    headers = headers_of(resize.handle(events.origin_response(request, 200, stored), settings, _no_s3))
    seconds = settings.fallback_cache_seconds
    assert headers["cache-control"] == f"public, max-age={seconds}, s-maxage={seconds}"
    assert headers["x-image-cdn-substitute"] == "/a.jpg/w_640_q_60.webp"
    assert headers["vary"] == "Accept"


def test_the_exact_standard_variant_from_the_fallback_is_cached_like_any_variant(settings: Settings) -> None:
    request = forwarded(settings, "/a.jpg/w_640_q_60.webp", FALLBACK)
    stored = {"Content-Type": "image/webp"}
    headers = headers_of(resize.handle(events.origin_response(request, 200, stored), settings, _no_s3))
    assert headers["cache-control"] == settings.variant_cache_control
    assert "x-image-cdn-substitute" not in headers


def test_every_answer_varies_on_accept_and_allows_any_origin(settings: Settings, s3: Any) -> None:
    answers = [
        respond(settings, s3, "/nope.jpg/w_320_q_60.webp", 404),
        respond(settings, None, "/a.jpg/w_320_q_60.webp", 404, FALLBACK),
        resize.handle(events.origin_response(forwarded(settings, "/a.jpg/w_320_q_60.webp"), 200), settings, _no_s3),
    ]
    for answer in answers:
        headers = headers_of(answer)
        assert headers["vary"] == "Accept"
        assert headers["access-control-allow-origin"] == "*"
        assert "X-Image-Cdn-Substitute" in headers["access-control-expose-headers"]
    listed = Settings(**{**settings.as_dict(), "cors_origins": ("https://shop.example",)})
    headers = headers_of(respond(listed, s3, "/nope.jpg/w_320_q_60.webp", 404))
    assert headers["vary"] == "Accept" and "access-control-allow-origin" not in headers  # the policy's CORS answers


def test_a_body_over_the_lambda_edge_limit_is_stored_then_redirected(settings: Settings, s3: Any) -> None:
    grainy = samples.jpeg(samples.photo(2000, 1500, seed=9), quality=98)
    s3.put_original("big.jpg", grainy)
    response = respond(settings, s3, "/big.jpg/w_2560_q_60.png", 404)
    assert response["status"] == "302"
    headers = {name: values[0]["value"] for name, values in response["headers"].items()}
    assert headers["location"] == "/big.jpg/w_2560_q_60.png"
    assert headers["cache-control"] == "no-store"
    stored = s3.get(settings.primary_bucket, "variants/big.jpg/w_2560_q_60.png")["Body"].read()
    assert len(base64.b64encode(stored)) > settings.response_limit_bytes
    assert Image.open(io.BytesIO(stored)).size == (2000, 1500)


def test_responses_under_the_limit_are_returned_whole(settings: Settings, s3: Any, photo_jpeg: bytes) -> None:
    s3.put_original("p.jpg", photo_jpeg)
    response = respond(settings, s3, "/p.jpg/w_1600_q_60.webp", 404)
    assert response["status"] == "200"
    assert len(json.dumps(response)) <= settings.response_limit_bytes


def test_s3_clients_are_created_once_per_region() -> None:
    resize._clients.clear()
    first = resize.default_s3("eu-west-1")
    assert resize.default_s3("eu-west-1") is first
    assert resize.default_s3("eu-central-1") is not first
    resize._clients.clear()


def test_handlers_import_nothing_heavy_at_cold_start() -> None:
    code = (
        "import sys, edge.rewrite, edge.resize; "
        "print(sorted(m for m in ('boto3', 'botocore', 'PIL', 'obstore') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=bundle.ROOT)
    assert result.stdout.strip() == "[]"


def test_edge_code_imports_only_the_standard_library_edge_boto3_and_pillow() -> None:
    # pillow_heif: the HEIF plugin vendored beside Pillow (what phones upload); obstore: vendored into
    # the resize bundle, its S3 client on a miss (edge/s3.py); numpy: vendored beside it for q=auto's
    # metric (edge/perceptual.py); pillow_jxl: the JPEG XL encoder, vendored into a stack that serves
    # jxl. (Every bundle's third-party imports against what it carries: tests/test_bundle_modules.py.)
    allowed = {"edge", "PIL", "pillow_heif", "boto3", "botocore", "obstore", "numpy", "pillow_jxl"}
    allowed |= set(sys.stdlib_module_names)
    for path in bundle.EDGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_the_bundled_handler_runs_alone_with_its_generated_config(tmp_path: Path) -> None:
    custom = Settings(
        widths=(100, 300),
        qualities=(55,),
        default_quality=55,
        primary_bucket="stack-origin",
        fallback_bucket="stack-fallback",
    )
    with zipfile.ZipFile(bundle.build("rewrite", custom)) as archive:
        archive.extractall(tmp_path)
    event = events.origin_request("/a.jpg/w_300_q_55.webp", "stack-fallback.s3.us-west-2.amazonaws.com", "us-west-2")
    code = "import json, sys; from edge.rewrite import handler; print(json.dumps(handler(json.load(sys.stdin), None)))"
    # -S -E: no site-packages, no environment; only the bundle (the working directory) and the stdlib
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-c", code],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["uri"] == "/a.jpg/w_300_q_55.webp"

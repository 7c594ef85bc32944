"""Canonical variants as a third-party service's URLs, and a real thumbor serving them."""

from __future__ import annotations

import io
import json
import os
import urllib.request
from collections.abc import Iterator

import pytest
from libthumbor import CryptoURL
from PIL import Image

from edge import templates, variants
from edge.settings import Settings
from edge.variants import Variant
from localcdn import samples, thumbor

KEY = "local-thumbor-key"


@pytest.mark.parametrize(
    ("variant", "width", "height", "fit_in", "smart", "filters"),
    [
        (
            Variant("samples/landscape.jpg", 640, None, 60, "webp"),
            640,
            0,
            False,
            False,
            ["no_upscale()", "quality(60)", "format(webp)"],
        ),
        (
            Variant("a/b c.jpg", 320, 320, 60, "jpeg", "cover", "faces"),
            320,
            320,
            False,
            True,
            ["no_upscale()", "quality(60)", "format(jpeg)"],
        ),
        (
            Variant("x.png", 160, 160, 80, "png", "inside"),
            160,
            160,
            True,
            False,
            ["no_upscale()", "quality(80)", "format(png)"],
        ),
    ],
)
def test_thumbor_urls_are_signed_as_libthumbor_signs_them(
    variant: Variant, width: int, height: int, fit_in: bool, smart: bool, filters: list[str]
) -> None:
    """libthumbor is thumbor's own URL builder: the same options give the same signed URL."""
    expected = CryptoURL(key=KEY).generate(
        width=width, height=height, fit_in=fit_in, smart=smart, filters=filters,
        image_url=variants.encode_key(variant.key),
    )  # fmt: skip
    assert templates.thumbor(variant, KEY) == expected


def test_each_service_gets_every_parameter_of_the_variant() -> None:
    cropped = Variant("a/b.jpg", 320, 480, 70, "avif", "cover", "faces")
    assert templates.imgix(cropped) == "/a/b.jpg?w=320&h=480&fit=crop&crop=faces&q=70&fm=avif"
    assert templates.cloudinary(cropped) == "/image/upload/w_320,h_480,c_fill,g_faces,q_70,f_avif/a/b.jpg"
    plain = Variant("a/b.jpg", 640, None, 60, "jpeg")
    assert templates.imgix(plain) == "/a/b.jpg?w=640&q=60&fm=jpg"
    assert templates.cloudinary(plain) == "/image/upload/w_640,q_60,f_jpg/a/b.jpg"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[thumbor.LocalThumbor]:
    if thumbor.executable() is None:
        if os.environ.get("CI"):
            pytest.fail("make test installs thumbor (make thumbor)")
        pytest.skip("no thumbor here: `make thumbor` (make test does it)")
    root = tmp_path_factory.mktemp("originals")
    for key, data in samples.originals().items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    with thumbor.LocalThumbor(root, KEY) as running:
        yield running


def fetch(service: thumbor.LocalThumbor, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(service.base + path, timeout=60) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_thumbor_serves_every_standard_variant_of_a_sample(service: thumbor.LocalThumbor) -> None:
    for variant in variants.standard_set("samples/landscape.jpg", Settings()):
        status, content_type, body = fetch(service, templates.thumbor(variant, KEY))
        image = Image.open(io.BytesIO(body))
        assert (status, content_type) == (200, f"image/{variant.fmt}"), variant
        assert image.width == min(variant.width, 2400), variant


def test_thumbor_renders_boxes_and_refuses_unsigned_urls(service: thumbor.LocalThumbor) -> None:
    box = Variant("samples/landscape.jpg", 320, 320, 60, "webp", "cover", "attention")
    status, _, body = fetch(service, templates.thumbor(box, KEY))
    assert status == 200 and Image.open(io.BytesIO(body)).size == (320, 320)
    forged = templates.thumbor(box, "another-key")
    assert fetch(service, forged)[0] in (400, 403)
    unsafe = "/unsafe/" + templates.thumbor_path(box)
    assert fetch(service, unsafe)[0] in (400, 403)


# -- rewrite and resize with a third-party primary (kind http) ---------------------------------------

SERVICE = "images.example-thumbor.com"


def thirdparty(settings: Settings, service: str = "thumbor") -> Settings:
    values = settings.as_dict() | {
        "primary_kind": "http",
        "primary_template": service,
        "primary_domain": SERVICE,
        "service_key": KEY,
    }
    return Settings(**values)


def test_rewrite_sends_the_primary_request_to_the_services_url(settings: Settings) -> None:
    from edge import rewrite
    from localcdn import events

    stack = thirdparty(settings)
    uri = "/samples/landscape.jpg/w_640_q_60.webp"
    forwarded = rewrite.handle(events.origin_request(uri, SERVICE, "eu-west-1", custom=True), stack)
    assert forwarded["uri"] == templates.thumbor(Variant("samples/landscape.jpg", 640, None, 60, "webp"), KEY)
    assert forwarded["querystring"] == "" and forwarded["origin"]["custom"]["domainName"] == SERVICE
    imgix = thirdparty(settings, "imgix")
    forwarded = rewrite.handle(events.origin_request(uri, SERVICE, "eu-west-1", custom=True), imgix)
    assert (forwarded["uri"], forwarded["querystring"]) == ("/samples/landscape.jpg", "w=640&q=60&fm=webp")
    unknown = rewrite.handle(events.origin_request(uri, "other.example.com", "eu-west-1", custom=True), stack)
    assert unknown["status"] == "502"  # an origin that is neither the service nor the fallback


def test_resize_passes_the_services_answers_through_and_renders_nothing(settings: Settings) -> None:
    from edge import resize, rewrite
    from localcdn import events

    def no_s3(region: str) -> object:
        raise AssertionError("with a third-party primary, resize reads and writes nothing")

    stack = thirdparty(settings)
    request = rewrite.handle(events.origin_request("/a.jpg/w_320_q_60.jpeg", SERVICE, "eu-west-1", custom=True), stack)
    ok = resize.handle(events.origin_response(request, 200, {"Content-Type": "image/jpeg"}), stack, no_s3)
    headers = {name: values[0]["value"] for name, values in ok["headers"].items()}
    assert ok["status"] == "200" and headers["cache-control"] == stack.variant_cache_control
    missing = resize.handle(events.origin_response(request, 404), stack, no_s3)
    # its status with our JSON, never the service's own page on the image domain
    assert missing["status"] == "404" and json.loads(missing["body"])["error"] == "ServiceRefused"
    assert missing["headers"]["cache-control"][0]["value"] == f"public, max-age={stack.error_cache_seconds}"
    failing = resize.handle(events.origin_response(request, 503), stack, no_s3)
    assert failing["status"] == "503"  # stays a 5xx: CloudFront fails over to the fallback


def test_thumbor_as_the_primary_then_killed_then_back() -> None:
    """The emulator's distribution in front of a real thumbor: served by it; killed, the same URLs from
    the fallback (filled from thumbor by the sync job) with no failed request; back, served by thumbor
    once the substitutes' lifetime is over."""
    from components.config import from_stack_file
    from localcdn.distribution import Distribution
    from localcdn.jobs import LocalSync
    from localcdn.storage import LocalS3

    if thumbor.executable() is None:
        if os.environ.get("CI"):
            pytest.fail("make test installs thumbor (make thumbor)")
        pytest.skip("no thumbor here: `make thumbor` (make test does it)")
    primary = thumbor.ThumborPrimary()
    dev = from_stack_file("dev").edge_settings().as_dict()
    names = {"primary_bucket": "thirdparty-origin", "fallback_bucket": "thirdparty-fallback", "signing": "off"}
    settings = primary.settings(Settings(**(dev | names)))
    key, data = "shop/shoe.jpg", samples.jpeg(samples.photo(1200, 800))
    storage = LocalS3(settings)
    distribution = Distribution(
        settings, storage, error_caching_seconds=1, primary_url=primary.base, primary_control=primary.control
    )
    try:
        sync = LocalSync(distribution, service_base=primary.base, mirror=primary.mirror)
        status, result = sync.upload(key, data)  # thumbor sees it; the fallback's set is fetched from thumbor
        assert (status, result["built"], result["failed"]) == (200, len(variants.standard_set(key, settings)), 0)
        accept = {"Accept": "image/webp"}
        standard = ["w=320", "w=640", "w=1024"]
        served = [distribution.request("GET", "/shop/shoe.jpg", q, accept) for q in standard]
        assert [(r.status, r.origin, r.headers["Content-Type"]) for r in served] == [(200, "primary", "image/webp")] * 3
        assert [Image.open(io.BytesIO(r.body)).width for r in served] == [320, 640, 1024]
        distribution.expire()
        distribution.set_primary("down")  # the process is killed
        assert primary.service is None
        during = [distribution.request("GET", "/shop/shoe.jpg", q, accept) for q in [*standard, "w=600&q=80"]]
        assert [(r.status, r.origin) for r in during] == [(200, "fallback")] * 4
        assert [Image.open(io.BytesIO(r.body)).width for r in during] == [320, 640, 1024, 640]
        assert during[3].headers["X-Image-Cdn-Substitute"] == "/shop/shoe.jpg/w_640_q_60.webp"
        distribution.set_primary("up")  # started again
        distribution.advance(settings.fallback_cache_seconds + 1)  # the substitute's lifetime is over
        after = distribution.request("GET", "/shop/shoe.jpg", "w=600&q=80", accept)
        assert (after.status, after.origin, after.headers.get("X-Image-Cdn-Substitute")) == (200, "primary", None)
    finally:
        primary.stop()
        distribution.viewer.close()
        storage.stop()

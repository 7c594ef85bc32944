"""resize with issue 13's features: crop strategies (faces through Rekognition, or not), the
watermark, client hints, the 302 back to the viewer's URL; and sync's watermarked sets."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from edge import resize, rewrite
from edge.settings import Settings
from localcdn import events
from sync.job import Sync
from tests.test_crops_and_watermark import magenta, mark, subject_at
from tests.test_edge_handlers import PRIMARY, headers_of


def with_(settings: Settings, **changes: Any) -> Settings:
    return Settings(**{**settings.as_dict(), **changes})


class Rekognition:
    """A DetectFaces double: answers `faces`, or raises `error`; counts calls."""

    def __init__(self, faces: list[dict[str, float]] | None = None, error: Exception | None = None):
        self.faces, self.error, self.calls, self.regions = faces or [], error, 0, []

    def __call__(self, region: str) -> Rekognition:
        self.regions.append(region)
        return self

    def detect_faces(self, *, Image: dict[str, bytes], Attributes: list[str]) -> dict[str, Any]:
        self.calls += 1
        assert Image["Bytes"][:3] == b"\xff\xd8\xff" and len(Image["Bytes"]) < 5 * 1024 * 1024  # DetectFaces' limit
        if self.error is not None:
            raise self.error
        return {"FaceDetails": [{"BoundingBox": box, "Confidence": 99.9} for box in self.faces]}


def build(
    settings: Settings, s3: Any, uri: str, rekognition: Any = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    request = rewrite.handle(events.origin_request(uri, PRIMARY, "eu-west-1", headers=headers), settings)
    return resize.handle(events.origin_response(request, 404), settings, s3.factory, rekognition or Rekognition())


def image(response: dict[str, Any]) -> Image.Image:
    assert response["status"] == "200", response
    return Image.open(io.BytesIO(base64.b64decode(response["body"]))).convert("RGB")


def red_share(picture: Image.Image) -> float:
    data = picture.tobytes()
    hits = sum(1 for i in range(0, len(data), 3) if data[i] > 150 and data[i + 1] < 90)
    return hits / (picture.width * picture.height)


def test_faces_crop_where_rekognition_says(settings: Settings, s3: Any) -> None:
    s3.put_original("people.png", subject_at(True, "red"))
    faces_settings = with_(settings, crops=("center", "entropy", "attention", "faces"), faces_region="eu-west-1")
    detector = Rekognition([{"Left": 0.8, "Top": 0.3, "Width": 0.1, "Height": 0.2}])
    right = image(build(faces_settings, s3, "/people.png/w_320_h_320_q_60_crop_faces.png", detector))
    assert detector.calls == 1 and detector.regions == ["eu-west-1"]
    assert red_share(right) < 0.01  # cut around the face on the right, away from the red subject


@pytest.mark.parametrize("failure", ["timeout", "no faces"])
def test_a_failing_or_empty_detector_means_the_attention_crop_not_an_error(
    settings: Settings, s3: Any, failure: str
) -> None:
    s3.put_original("people.png", subject_at(True, "red"))
    faces_settings = with_(settings, crops=("center", "entropy", "attention", "faces"))
    detector = Rekognition(error=TimeoutError("read timeout")) if failure == "timeout" else Rekognition([])
    cropped = image(build(faces_settings, s3, "/people.png/w_320_h_320_q_60_crop_faces.png", detector))
    attention = image(build(faces_settings, s3, "/people.png/w_320_h_320_q_60_crop_attention.png"))
    assert detector.calls == 1
    assert cropped.tobytes() == attention.tobytes()
    assert detector.regions == [settings.primary_region]  # facesRegion unset: the primary region


def test_crops_are_stored_under_their_own_keys(settings: Settings, s3: Any) -> None:
    s3.put_original("p.png", subject_at(True, "red"))
    for crop in ("entropy", "attention"):
        assert build(settings, s3, f"/p.png/w_320_h_320_q_60_crop_{crop}.png")["status"] == "200"
    assert build(settings, s3, "/p.png/w_320_h_320_q_60.png")["status"] == "200"
    assert sorted(s3.keys(settings.primary_bucket)) == [
        "originals/p.png",
        "variants/p.png/w_320_h_320_q_60.png",
        "variants/p.png/w_320_h_320_q_60_crop_attention.png",
        "variants/p.png/w_320_h_320_q_60_crop_entropy.png",
    ]


def test_a_crop_the_stack_does_not_allow_never_reaches_rekognition(settings: Settings, s3: Any) -> None:
    s3.put_original("p.png", subject_at(True, "red"))
    request = rewrite.handle(
        events.origin_request("/p.png/w_320_h_320_q_60_crop_faces.png", PRIMARY, "eu-west-1"), settings
    )
    assert request.get("status") == "400"  # rewrite refuses it before any origin is asked


def marked(settings: Settings) -> Settings:
    return with_(
        settings, watermark="site/mark.png", watermark_min_width=640, watermark_scale=0.25, watermark_opacity=1.0
    )


def test_variants_at_or_above_the_minimum_width_carry_the_watermark(settings: Settings, s3: Any) -> None:
    stack = marked(settings)
    s3.put_original("site/mark.png", mark())
    s3.put_original("big.png", subject_at(True, "red", (1600, 1000)))
    assert magenta(image(build(stack, s3, "/big.png/w_1024_q_60.png")))
    assert not magenta(image(build(stack, s3, "/big.png/w_480_q_60.png")))


def test_without_its_watermark_a_variant_is_refused_not_served_bare(settings: Settings, s3: Any) -> None:
    resize._watermark = None
    stack = marked(settings)
    s3.put_original("big.png", subject_at(True, "red", (1600, 1000)))
    refused = build(stack, s3, "/big.png/w_1024_q_60.png")
    assert refused["status"] == "503" and headers_of(refused)["cache-control"] == "no-store"
    assert s3.keys(stack.primary_bucket) == ["originals/big.png"]  # nothing stored
    assert build(stack, s3, "/big.png/w_480_q_60.png")["status"] == "200"  # below the minimum: no watermark needed


def test_client_hints_stacks_send_accept_ch_and_vary_on_the_hints(settings: Settings, s3: Any) -> None:
    s3.put_original("a.png", subject_at(True, "red"))
    hinted = with_(settings, client_hints=True)
    for stack, accept_ch in ((hinted, hinted.accept_ch), (settings, None)):
        headers = headers_of(build(stack, s3, "/a.png/w_320_q_60.png"))
        assert headers.get("accept-ch") == accept_ch
        vary = [v.strip() for v in headers["vary"].split(",")]
        assert vary == (["Accept", "Sec-CH-DPR", "Sec-CH-Width", "Sec-CH-Viewport-Width"] if accept_ch else ["Accept"])


def test_a_too_large_variant_redirects_to_the_url_the_viewer_asked_for(settings: Settings, s3: Any) -> None:
    s3.put_original("big.png", subject_at(True, "red", (2400, 1600)))
    small_limit = with_(settings, response_limit_bytes=10_000)
    asked = "/big.png?w=2000&fm=png&kid=1&sig=" + "a" * 64
    with_url = build(small_limit, s3, "/big.png/w_2560_q_60.png", headers={resize.VIEWER_URL_HEADER: asked})
    assert with_url["status"] == "302" and headers_of(with_url)["location"] == asked
    without = build(small_limit, s3, "/big.png/w_2560_q_60.png")
    assert headers_of(without)["location"] == "/big.png/w_2560_q_60.png"
    for hostile in ("//evil.example/x", "https://evil.example/x", "/\\\\evil"):
        other = build(small_limit, s3, "/big.png/w_2560_q_60.png", headers={resize.VIEWER_URL_HEADER: hostile})
        assert headers_of(other)["location"] == "/big.png/w_2560_q_60.png", hostile


def test_sync_builds_watermarked_sets_and_rebuilds_them_when_the_watermark_changes(settings: Settings, s3: Any) -> None:
    stack = marked(with_(settings, widths=(320, 1024), standard_formats=("webp",), formats=("webp", "jpeg")))
    s3.put_original("site/mark.png", mark())
    s3.put_original("big.png", subject_at(True, "red", (1600, 1000)))
    sync = Sync(stack, s3.factory)
    original = next(o for o in sync.originals() if o.key == "big.png")
    assert sync.build(original).built == 2
    wide = s3.get(stack.fallback_bucket, "big.png/w_1024_q_60.webp")["Body"].read()
    narrow = s3.get(stack.fallback_bucket, "big.png/w_320_q_60.webp")["Body"].read()
    assert magenta_ish(wide) and not magenta_ish(narrow)
    assert Sync(stack, s3.factory).build(original).built == 0  # current: same watermark, same original
    s3.put_original("site/mark.png", mark((0, 255, 0, 255)))  # a new watermark: every set is stale
    assert Sync(stack, s3.factory).build(original).built == 2


def magenta_ish(data: bytes) -> bool:
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    pixels = picture.tobytes()
    return any(pixels[i] > 200 and pixels[i + 1] < 60 and pixels[i + 2] > 200 for i in range(0, len(pixels), 3))


def test_sync_refuses_to_build_without_its_watermark(settings: Settings, s3: Any) -> None:
    stack = marked(settings)
    s3.put_original("big.png", subject_at(True, "red", (1600, 1000)))
    sync = Sync(stack, s3.factory)
    original = next(o for o in sync.originals() if o.key == "big.png")
    with pytest.raises(RuntimeError, match="watermark"):
        sync.build(original)
    assert s3.keys(stack.fallback_bucket) == []

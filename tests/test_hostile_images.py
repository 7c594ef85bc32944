"""Hostile images: each ends as a valid image or a clean 4xx, in bounded memory, and
nothing is stored for a failure. (How long the slowest takes is measured by `make bench`.)"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from conftest import FakeS3
from PIL import Image

from edge import imaging, resize
from edge.settings import Settings
from localcdn import events
from tests import hostile

CASES = list(hostile.cases())


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg", "png"])
@pytest.mark.parametrize(("name", "data"), CASES, ids=[name for name, _ in CASES])
def test_each_hostile_input_ends_as_an_image_or_a_clean_4xx(name: str, data: bytes, fmt: str) -> None:
    try:
        output, content_type = imaging.transform(data, width=320, height=None, fit="cover", quality=70, fmt=fmt)
    except imaging.ImageError as problem:
        assert problem.status in (400, 413, 415, 422)
        body = problem.body()
        assert body["parameter"] == "image" and body["expected"] and body["received"]
        # what went wrong, not only the name of an exception (an uploader reads it in `ops upload --wait`)
        assert not re.fullmatch(r'"?[A-Za-z]+(Error|Exception)"?', str(body["received"])), body
    else:
        image = Image.open(io.BytesIO(output))
        image.load()
        assert image.format == fmt.upper() and content_type == f"image/{fmt}"
        assert image.width <= 320 and len(image.getexif()) == 0


def test_the_corpus_covers_what_the_hardening_issue_lists() -> None:
    names = " ".join(name for name, _ in CASES)
    for expected in (
        "truncated-jpeg",
        "truncated-png",
        "truncated-gif",
        "truncated-webp",
        "truncated-avif",
        "truncated-heic",
        "bitflipped-heic",
        "heic-extents",
        "bitflipped",
        "magic",
        "zero-bytes",
        "bomb",
        "strip-100000x1",
        "3000-frames",
        "cmyk",
        "16-bit",
        "palette-transparency",
        "exif-",
        "svg-as-image",
        "html-as-image",
    ):
        assert expected in names, expected


def test_bombs_and_disguises_are_refused_for_the_right_reason() -> None:
    outcomes = {}
    for name, data in CASES:
        try:
            imaging.transform(data, width=320, height=None, fit="cover", quality=70, fmt="webp")
            outcomes[name] = 200
        except imaging.ImageError as problem:
            outcomes[name] = problem.status
    assert {
        outcomes[n]
        for n in (
            "png-bomb-100000x100000",
            "gif-screen-65535x65535",
            "jpeg-sof-65500x65500",
            "gif-3000-frames",
            "webp-1000-frames",
            "heic-extents-65535x65535",
        )
    } == {413}
    assert {
        outcomes[n]
        for n in ("svg-as-image", "html-as-image", "json-as-image", "pdf-as-image", "zip-as-image", "zero-bytes")
    } == {415}
    assert outcomes["png-magic-on-jpeg"] == outcomes["truncated-jpeg-50%"] == 422
    assert outcomes["heic-brand-then-noise"] == outcomes["heic-magic-on-jpeg"] == outcomes["truncated-heic-50%"] == 422
    assert {
        outcomes[n]
        for n in (
            "cmyk-jpeg",
            "rgb-16-bit-png",
            "grey-16-bit-png",
            "palette-transparency-png",
            "exif-orientation-99",
            "exif-garbage-ifd",
            "icc-garbage-jpeg",
            "gif-200-frames-at-the-limit",
            "gif-javascript-polyglot",
        )
    } == {200}


def test_the_whole_corpus_runs_in_bounded_memory() -> None:
    code = (
        "from tests import hostile\nfrom edge import imaging\n"
        "for name, data in hostile.cases():\n"
        "    for fmt in ('webp', 'avif', 'jpeg', 'png'):\n"
        "        try: imaging.transform(data, width=320, height=None, fit='cover', quality=70, fmt=fmt)\n"
        "        except imaging.ImageError: pass\n"
        "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert int(result.stdout.strip()) / 1024 < 600  # MB, at the stack's default limits


def test_limits_are_stack_config(settings: Settings) -> None:
    tight = imaging.Limits.of(Settings(max_input_bytes=2048, max_pixels=10_000, max_frames=3))
    assert tight == imaging.Limits(2048, 10_000, 3)
    with pytest.raises(imaging.TooManyFrames):
        imaging.transform(
            hostile._animated("GIF", 4), width=8, height=None, fit="cover", quality=70, fmt="webp", limits=tight
        )


@pytest.mark.parametrize(("name", "data"), CASES, ids=[name for name, _ in CASES])
def test_through_the_resize_handler_a_failure_stores_only_its_refusal(
    s3: FakeS3, settings: Settings, name: str, data: bytes
) -> None:
    s3.put_original("hostile/x.bin", data)
    uri = "/hostile/x.bin/w_320_q_70.webp"
    request = events.origin_request(
        uri, f"{settings.primary_bucket}.s3.{settings.primary_region}.amazonaws.com", settings.primary_region
    )["Records"][0]["cf"]["request"]
    answer: dict[str, Any] = resize.handle(events.origin_response(request, 404), settings, s3.factory)
    stored = [k for k in s3.keys(settings.primary_bucket) if k.startswith("variants/")]
    if answer["status"] in ("200", "302"):  # 302: rendered fine, too big to return (an animation)
        assert stored == ["variants/hostile/x.bin/w_320_q_70.webp"]
        body = (
            base64.b64decode(answer["body"])
            if answer["status"] == "200"
            else s3.get(settings.primary_bucket, stored[0])["Body"].read()
        )
        Image.open(io.BytesIO(body)).load()
    else:
        assert answer["status"] in ("413", "415", "422")
        refusal = json.loads(answer["body"])
        assert refusal["parameter"] == "image"
        # The refusal only: a tombstone at the variant's path (its JSON, marked `refused`) and, when it
        # is about the original (not the output format's side limit), the version's marker.
        etag = s3.get(settings.primary_bucket, "originals/hostile/x.bin")["ETag"].strip('"')
        tombstone = s3.get(settings.primary_bucket, "variants/hostile/x.bin/w_320_q_70.webp")
        assert tombstone["Metadata"]["refused"] == answer["status"] and tombstone["ContentType"] == "application/json"
        assert json.loads(tombstone["Body"].read()) == refusal
        marker = [f"variants/hostile/x.bin/_refused.{etag}"] if refusal["error"] != "UnencodableImage" else []
        assert stored == sorted(["variants/hostile/x.bin/w_320_q_70.webp", *marker])
    assert s3.keys(settings.fallback_bucket) == []

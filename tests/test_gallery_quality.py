"""The gallery's comparison of today's q=60 and q=auto: the bytes served, and SSIMULACRA 2 scores that
are those bytes' scores, computed once; and how the page reads on a stack without a qualityTarget."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge import imaging, perceptual
from edge.settings import Settings
from localcdn import gallery, quality, samples
from localcdn.distribution import Distribution
from localcdn.storage import LocalS3

PHOTO = samples.jpeg(samples.photo(900, 600, seed=3))


@pytest.fixture(scope="module")
def scored() -> Iterator[tuple[quality.Scores, Distribution]]:
    settings = Settings(
        primary_bucket="gallery-scores", fallback_bucket="gallery-scores-fallback", quality_target="good"
    )
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=1)
        storage.put_original("photo.jpg", PHOTO)
        yield quality.Scores(distribution), distribution
    finally:
        distribution.viewer.close()
        storage.stop()


def reference(fmt: str) -> np.ndarray:
    png, _ = imaging.transform(PHOTO, width=quality.WIDTH, height=None, fit="cover", quality=90, fmt="png")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.mark.parametrize("fmt", ["webp", "jpeg"])
def test_each_row_is_the_bytes_served_and_their_score(scored: tuple[quality.Scores, Distribution], fmt: str) -> None:
    scores, distribution = scored
    answer = scores.compare("photo.jpg", fmt)
    assert answer["metric"] == "SSIMULACRA 2" and answer["target"] == "good" and answer["enable"] is None
    rows = {row["label"]: row for row in answer["variants"]}
    assert list(rows) == ["q=60", "q=auto"]
    for label, row in rows.items():
        path, _, query = row["url"].partition("?")
        served = distribution.request("GET", path, query, {"accept": f"image/{fmt}"})
        assert served.status == 200 and served.headers["Content-Type"] == f"image/{fmt}"
        assert row["bytes"] == len(served.body), label
        distorted = np.asarray(Image.open(io.BytesIO(served.body)).convert("RGBA"))
        assert row["score"] == pytest.approx(perceptual.ssimulacra2(reference(fmt), distorted), abs=0.05), label
        assert Image.open(io.BytesIO(served.body)).width == quality.WIDTH
    if imaging.calibrated(fmt, "good").ceiling != 60:  # WebP's `good` tops out at today's q=60: it may be the same
        assert rows["q=60"]["bytes"] != rows["q=auto"]["bytes"]  # two different encodes, not one shown twice


def test_a_score_is_computed_once_per_body(
    scored: tuple[quality.Scores, Distribution], monkeypatch: pytest.MonkeyPatch
) -> None:
    scores, _ = scored
    calls: list[int] = []
    real = perceptual.ssimulacra2

    def counting(a: Any, b: Any) -> float:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(perceptual, "ssimulacra2", counting)
    first = scores.compare("photo.jpg", "avif")
    assert len(calls) == 2
    assert scores.compare("photo.jpg", "avif") == first and len(calls) == 2


def test_the_page_compares_on_a_stack_with_a_target_and_says_how_to_turn_it_on_without() -> None:
    originals = [("samples/landscape.jpg", 226_000), ("a b/c.png", 1_000)]
    on = gallery.render("dev", "up", originals, settings=Settings(quality_target="good"), fmt="avif")
    for key in ("samples/landscape.jpg", "a b/c.png"):
        encoded = key.replace(" ", "%20")
        assert f'<div class="compare" data-key="{key}" data-format="avif">' in on
        assert (
            f'src="/{encoded}?w=320&amp;q=60&amp;fm=avif"' in on
            and f'src="/{encoded}?w=320&amp;q=auto&amp;fm=avif"' in on
        )
    aim = imaging.calibrated("avif", "good").score
    assert "SSIMULACRA 2" in on and "higher is better" in on and f"q=auto aims at a score of {aim} in this format" in on
    assert 'id="quality-off"' not in on
    off = gallery.render("dev", "up", originals, settings=Settings(), fmt="webp")
    assert "q=auto&amp;" not in off
    assert off.count('data-quality="q=60"') == 4 and 'data-quality="q=auto"' not in off
    assert 'id="quality-off"' in off and "--set qualityTarget=good" in off and "in WebP" in off


def test_on_a_stack_that_requires_signatures_the_comparison_is_signed() -> None:
    settings = Settings(primary_bucket="gallery-signed", fallback_bucket="gallery-signed-fallback", signing="required")
    storage = LocalS3(settings)
    try:
        distribution = Distribution(settings, storage, error_caching_seconds=1)
        assert distribution.signing is not None
        storage.put_original("photo.jpg", PHOTO)
        answer = quality.Scores(distribution).compare("photo.jpg", "webp")
        assert [(row["label"], row["status"]) for row in answer["variants"]] == [("q=60", 200)]
        assert "sig=" in answer["variants"][0]["url"] and answer["variants"][0]["score"] > 0
        page = gallery.render(
            "dev", "up", [("photo.jpg", len(PHOTO))], settings=settings, sign=distribution.signing.sign, fmt="webp"
        )
        assert 'src="/photo.jpg?w=320&amp;q=60&amp;fm=webp&amp;' in page and "sig=" in page
        distribution.viewer.close()
    finally:
        storage.stop()

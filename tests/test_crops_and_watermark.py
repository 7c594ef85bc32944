"""Smart crops and the watermark: imaging's behaviour, then resize's and sync's use of it."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from edge import imaging
from edge.settings import Settings


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def subject_at(left: bool, kind: str, size: tuple[int, int] = (1200, 600)) -> bytes:
    """A flat grey landscape with a subject in its left or right third.

    kind "busy": fine random texture (high entropy); "red": a saturated, edged object (attention).
    """
    image = Image.new("RGB", size, (120, 120, 120))
    draw = ImageDraw.Draw(image)
    rng = random.Random(7)
    x0 = 60 if left else size[0] - 360
    for _ in range(4000):
        x, y = rng.randint(x0, x0 + 300), rng.randint(150, 450)
        if kind == "busy":
            grey = rng.choice((0, 255))
            draw.rectangle([x, y, x + 4, y + 4], fill=(grey, grey, grey))
        else:
            draw.rectangle([x, y, x + 5, y + 5], fill=(rng.randint(170, 255), rng.randint(0, 60), rng.randint(0, 60)))
    return png(image)


def share_of_subject(data: bytes, kind: str) -> float:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    pixels = image.tobytes()
    hits = 0
    for i in range(0, len(pixels), 3):
        r, g = pixels[i], pixels[i + 1]
        hits += (r > 150 and g < 90) if kind == "red" else (abs(r - 120) > 20)
    return hits / (image.width * image.height)


def square(data: bytes, crop: imaging.Crop) -> bytes:
    body, _ = imaging.transform(data, width=400, height=400, fit="cover", quality=90, fmt="png", crop=crop)
    return body


@pytest.mark.parametrize("left", [True, False], ids=["left", "right"])
@pytest.mark.parametrize(("strategy", "kind"), [("entropy", "busy"), ("attention", "red")])
def test_smart_crops_keep_the_subject_the_centre_cuts(left: bool, strategy: str, kind: str) -> None:
    data = subject_at(left, kind)
    centre = share_of_subject(square(data, imaging.Crop("center")), kind)
    smart = share_of_subject(square(data, imaging.Crop(strategy)), kind)
    assert smart > 2 * centre and smart > 0.05, (centre, smart)


def test_smart_crops_on_real_photos_if_present(shared: Path | None) -> None:
    """Real photos (when ../shared/images is here): each strategy gives the box, within the image."""
    if shared is None:
        pytest.skip("../shared/images is not here; the generated cases above always run")
    photos = sorted(shared.glob("*.jpg"))[:3]
    assert photos
    for path in photos:
        for strategy in ("entropy", "attention"):
            body = square(path.read_bytes(), imaging.Crop(strategy))
            assert Image.open(io.BytesIO(body)).size == (400, 400)


def test_a_crop_is_decided_once_for_every_frame_of_an_animation(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = []
    for i in range(3):
        frame = Image.open(io.BytesIO(subject_at(True, "red"))).convert("RGB")
        ImageDraw.Draw(frame).rectangle([500 + 60 * i, 20, 540 + 60 * i, 60], fill=(0, 0, 255))
        frames.append(frame)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    decisions: list[tuple[int, int]] = []
    decide = imaging.Crop._decide
    monkeypatch.setattr(imaging.Crop, "_decide", lambda self, *a: decisions.append(decide(self, *a)) or decisions[-1])
    crop = imaging.Crop("attention")
    body, _ = imaging.transform(out.getvalue(), width=300, height=300, fit="cover", quality=80, fmt="webp", crop=crop)
    assert Image.open(io.BytesIO(body)).n_frames == 3
    assert len(decisions) == 1 and decisions[0][0] < 150  # once, and towards the subject on the left


def finder(boxes: Sequence[imaging.FaceBox] | None = None, error: bool = False) -> imaging.FaceFinder:
    def find(jpeg: bytes) -> Sequence[imaging.FaceBox] | None:
        assert Image.open(io.BytesIO(jpeg)).format == "JPEG"
        if error:
            raise TimeoutError("DetectFaces timed out")
        return boxes

    return find


def test_faces_centre_the_cut_on_the_faces_found() -> None:
    data = subject_at(True, "red")  # attention alone would go left
    crop = imaging.Crop("faces", finder([(0.80, 0.3, 0.1, 0.2)]))
    body = square(data, crop)
    assert crop.used == "faces"
    assert share_of_subject(body, "red") < 0.01  # cut at the right, where the "face" is


@pytest.mark.parametrize("case", ["error", "none found", "no detector"])
def test_faces_fall_back_to_attention_never_to_an_error(case: str) -> None:
    data = subject_at(True, "red")
    detector = {"error": finder(error=True), "none found": finder([]), "no detector": None}[case]
    crop = imaging.Crop("faces", detector)
    body = square(data, crop)
    assert crop.used == "attention"
    assert body == square(data, imaging.Crop("attention"))


def test_an_unknown_crop_is_a_400() -> None:
    with pytest.raises(imaging.InvalidTransform) as caught:
        imaging.Crop("smart")
    assert caught.value.status == 400 and caught.value.parameter == "crop"


# -- the watermark ---------------------------------------------------------------------------


def mark(colour: tuple[int, int, int, int] = (255, 0, 255, 255), size: tuple[int, int] = (200, 100)) -> bytes:
    return png(Image.new("RGBA", size, colour))


def settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "watermark": "site/mark.png",
        "watermark_min_width": 640,
        "watermark_position": "bottom-right",
        "watermark_margin": 16,
        "watermark_opacity": 1.0,
        "watermark_scale": 0.25,
    }
    return Settings(**{**values, **changes})  # type: ignore[arg-type]


def grey(width: int = 1600, height: int = 1000, mode: str = "RGB") -> bytes:
    return png(Image.new(mode, (width, height), (128, 128, 128, 255) if mode == "RGBA" else (128, 128, 128)))


def magenta(image: Image.Image) -> list[tuple[int, int]]:
    rgb = image.convert("RGB")
    return [
        (x, y) for y in range(0, rgb.height, 2) for x in range(0, rgb.width, 2) if rgb.getpixel((x, y)) == (255, 0, 255)
    ]


@pytest.mark.parametrize(
    ("position", "corner"),
    [("bottom-right", (1, 1)), ("top-left", (0, 0)), ("top-right", (1, 0)), ("bottom-left", (0, 1))],
)
def test_the_watermark_sits_where_the_stack_says_with_its_margin(position: str, corner: tuple[int, int]) -> None:
    watermark = imaging.Watermark.load(mark(), settings(watermark_position=position))
    body, _ = imaging.transform(grey(), width=800, height=None, fit="cover", quality=90, fmt="png", watermark=watermark)
    out = Image.open(io.BytesIO(body))
    points = magenta(out)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    width, height = max(xs) - min(xs) + 2, max(ys) - min(ys) + 2
    assert abs(width - 200) <= 2 and abs(height - 100) <= 2  # a quarter of 800, aspect kept
    edge_x = min(xs) if corner[0] == 0 else out.width - 1 - max(xs)
    edge_y = min(ys) if corner[1] == 0 else out.height - 1 - max(ys)
    assert 14 <= edge_x <= 18 and 14 <= edge_y <= 18, (edge_x, edge_y)


def test_no_watermark_below_its_minimum_width() -> None:
    watermark = imaging.Watermark.load(mark(), settings())
    body, _ = imaging.transform(grey(), width=480, height=None, fit="cover", quality=90, fmt="png", watermark=watermark)
    assert magenta(Image.open(io.BytesIO(body))) == []


def test_opacity_blends_the_watermark() -> None:
    watermark = imaging.Watermark.load(mark((255, 255, 255, 255)), settings(watermark_opacity=0.5))
    body, _ = imaging.transform(grey(), width=800, height=None, fit="cover", quality=90, fmt="png", watermark=watermark)
    out = Image.open(io.BytesIO(body)).convert("RGB")
    r, g, b = out.getpixel((out.width - 16 - 50, out.height - 16 - 25))
    assert 185 <= r <= 197 and r == g == b  # halfway between 128 and 255


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_every_format_and_alpha_carry_the_watermark(fmt: str) -> None:
    watermark = imaging.Watermark.load(mark(), settings())
    for mode in ("RGB", "RGBA"):
        body, _ = imaging.transform(
            grey(mode=mode), width=800, height=None, fit="cover", quality=90, fmt=fmt, watermark=watermark
        )
        out = Image.open(io.BytesIO(body)).convert("RGB")
        r, g, b = out.getpixel((out.width - 16 - 100, out.height - 16 - 50))
        assert r > 200 and b > 200 and g < 60, (fmt, mode, (r, g, b))


def test_render_set_marks_only_widths_at_or_above_the_minimum() -> None:
    watermark = imaging.Watermark.load(mark(), settings())
    marked = {
        rendition.width: bool(magenta(Image.open(io.BytesIO(rendition.body))))
        for rendition in imaging.render_set(
            grey(), widths=(320, 640, 1024), formats=("png",), quality=60, watermark=watermark
        )
    }
    assert marked == {320: False, 640: True, 1024: True}


def test_a_watermark_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(imaging.ImageError):
        imaging.Watermark.load(b"not an image", settings())

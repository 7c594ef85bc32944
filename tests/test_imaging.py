"""imaging.transform: orientation, metadata, colour, alpha, animation, limits, fits, bad input."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from PIL import Image, ImageChops, ImageCms, ImageFile, ImageOps, ImageStat
from PIL.JpegImagePlugin import JpegImageFile

from bench import quality
from edge import imaging
from edge.imaging import Limits, transform
from localcdn import colour, samples
from tests.hostile import png_bomb


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB").resize(a.size))
    return sum(ImageStat.Stat(diff).mean) / 3


# The stored pixels for each EXIF orientation, given the upright image.
STORED = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.Transpose.ROTATE_180),
    4: lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.Transpose.TRANSPOSE),
    6: lambda im: im.transpose(Image.Transpose.ROTATE_90),
    7: lambda im: im.transpose(Image.Transpose.TRANSVERSE),
    8: lambda im: im.transpose(Image.Transpose.ROTATE_270),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_generated_exif_orientations_come_out_upright(orientation: int) -> None:
    upright = samples.photo(480, 320, seed=4)
    stored = samples.jpeg(STORED[orientation](upright), orientation=orientation)
    out, _ = transform(stored, width=240, height=None, fit="cover", quality=90, fmt="png")
    image = opened(out)
    assert image.size == (240, 160)
    assert difference(image, upright) < 6


@pytest.mark.parametrize("orientation", range(1, 9))
def test_real_exif_orientation_photos_come_out_upright(shared: Path | None, orientation: int) -> None:
    if shared is None:
        pytest.skip("../shared/images is not present; the generated-orientation test covers this")
    reference, _ = transform(
        (shared / "exif-orientation-landscape-1.jpg").read_bytes(),
        width=300,
        height=None,
        fit="cover",
        quality=90,
        fmt="png",
    )
    out, _ = transform(
        (shared / f"exif-orientation-landscape-{orientation}.jpg").read_bytes(),
        width=300,
        height=None,
        fit="cover",
        quality=90,
        fmt="png",
    )
    upright = opened(reference)
    assert opened(out).size == upright.size
    # Each photo carries its own number drawn on it, so they never match exactly: the
    # upright reading must simply be far closer than any wrong one.
    wrong = [
        difference(opened(out), STORED[other](upright))
        for other in range(2, 9)
        if STORED[other](upright).size == upright.size
    ]
    assert difference(opened(out), upright) < 0.5 * min(wrong)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
def test_metadata_is_stripped_and_gps_never_leaks(photo_jpeg: bytes, fmt: str) -> None:
    assert opened(photo_jpeg).getexif().get(0x8825) is not None  # the input does carry GPS
    out, content_type = transform(photo_jpeg, width=320, height=None, fit="cover", quality=70, fmt=fmt)
    image = opened(out)
    assert content_type == f"image/{fmt}"
    assert len(image.getexif()) == 0
    assert b"image-cdn test camera" not in out
    assert "exif" not in image.info and "xmp" not in image.info


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif", "png"])
@pytest.mark.parametrize("key", sorted(colour.corpus()))
def test_every_output_is_untagged_8_bit_srgb(key: str, fmt: str) -> None:
    result, _ = transform(colour.corpus()[key], width=160, height=None, fit="cover", quality=80, fmt=fmt)
    image = opened(result)
    assert "icc_profile" not in image.info  # sRGB, untagged: no profile that could mismatch the pixels
    assert image.mode in (("RGB",) if fmt == "jpeg" else ("RGB", "RGBA"))


@pytest.mark.parametrize(
    ("profile", "mode"), [(colour.display_p3, "RGB"), (colour.prophoto, "RGB"), (colour.gray_gamma_22, "L")]
)
def test_a_wide_gamut_or_grey_profile_is_converted_to_srgb(profile: Any, mode: str) -> None:
    flat = Image.new(mode, (64, 48), (200, 100, 50) if mode == "RGB" else 100)
    out = io.BytesIO()
    flat.save(out, "PNG", icc_profile=profile())
    result, _ = transform(out.getvalue(), width=32, height=None, fit="cover", quality=100, fmt="png")
    got = opened(result).convert("RGB").getpixel((16, 12))
    srgb = ImageCms.createProfile("sRGB")
    expected = ImageCms.profileToProfile(
        flat,
        ImageCms.ImageCmsProfile(io.BytesIO(profile())),
        srgb,
        outputMode="RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )
    assert expected is not None
    want = expected.getpixel((16, 12))
    assert all(abs(a - b) <= 1 for a, b in zip(got, want, strict=True)), (got, want)
    if mode == "RGB":
        assert got != (200, 100, 50)  # converted, not merely stripped


def test_an_srgb_profile_is_dropped_without_touching_the_pixels() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    flat = Image.new("RGB", (64, 48), (200, 100, 50))
    out = io.BytesIO()
    flat.save(out, "PNG", icc_profile=profile)
    result, _ = transform(out.getvalue(), width=32, height=None, fit="cover", quality=100, fmt="png")
    image = opened(result)
    assert "icc_profile" not in image.info and image.getpixel((16, 12)) == (200, 100, 50)


def test_a_profile_that_does_not_describe_the_pixels_is_ignored() -> None:
    grey = Image.new("L", (64, 48), 100)
    out = io.BytesIO()
    grey.save(out, "JPEG", icc_profile=colour.display_p3(), quality=100)  # an RGB profile on grey pixels
    result, _ = transform(out.getvalue(), width=32, height=None, fit="cover", quality=100, fmt="png")
    (r, g, b) = opened(result).convert("RGB").getpixel((16, 12))
    assert abs(r - 100) <= 2 and r == g == b


def test_cmyk_is_converted_to_rgb() -> None:
    out = io.BytesIO()
    samples.photo(400, 300).convert("CMYK").save(out, "JPEG")
    result, _ = transform(out.getvalue(), width=200, height=None, fit="cover", quality=80, fmt="webp")
    image = opened(result)
    assert image.mode == "RGB"
    assert difference(image, samples.photo(400, 300)) < 20


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey = Image.linear_gradient("L").resize((256, 64)).convert("I")
    sixteen = grey.point(lambda v: v * 257).convert("I;16")
    out = io.BytesIO()
    sixteen.save(out, "PNG")
    result, _ = transform(out.getvalue(), width=None, height=None, fit="cover", quality=80, fmt="png")
    stat = ImageStat.Stat(opened(result).convert("L"))
    assert 100 < stat.mean[0] < 160  # a gradient, not a white sheet


@pytest.mark.parametrize("fmt", ["webp", "avif", "png"])
def test_alpha_survives(fmt: str) -> None:
    out, _ = transform(samples.png(samples.logo()), width=400, height=None, fit="cover", quality=80, fmt=fmt)
    image = opened(out).convert("RGBA")
    alpha = image.getchannel("A")
    assert alpha.getextrema() == (0, 255)
    assert alpha.getpixel((2, 2)) == 0


def test_palette_transparency_survives() -> None:
    image = samples.logo(200, 100).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    rgba = samples.logo(200, 100)
    image.info["transparency"] = image.getpixel((0, 0))
    out = io.BytesIO()
    image.save(out, "PNG", transparency=image.getpixel((0, 0)))
    result, _ = transform(out.getvalue(), width=100, height=None, fit="cover", quality=80, fmt="webp")
    assert opened(result).convert("RGBA").getchannel("A").getpixel((1, 1)) == 0
    assert rgba.getchannel("A").getpixel((1, 1)) == 0


def test_alpha_is_flattened_onto_white_for_jpeg() -> None:
    out, _ = transform(samples.png(samples.logo()), width=400, height=None, fit="cover", quality=90, fmt="jpeg")
    image = opened(out)
    assert image.mode == "RGB"
    assert all(channel > 245 for channel in image.getpixel((2, 2)))


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_animated_gif_stays_animated(fmt: str) -> None:
    out, _ = transform(samples.animation(frames=6), width=160, height=None, fit="cover", quality=70, fmt=fmt)
    image = Image.open(io.BytesIO(out))
    assert image.format == fmt.upper()
    assert image.n_frames == 6
    assert image.size == (160, 120)
    if fmt == "webp":
        assert image.info["loop"] == 0


def test_real_animated_gif_keeps_its_frames_and_play_count(shared: Path | None) -> None:
    if shared is None:
        pytest.skip("../shared/images is not present; the generated animation test covers this")
    data = (shared / "animated-loop-3.gif").read_bytes()
    out, _ = transform(data, width=None, height=None, fit="cover", quality=70, fmt="webp")
    image = Image.open(io.BytesIO(out))
    assert image.n_frames == Image.open(io.BytesIO(data)).n_frames > 1
    assert image.info["loop"] == 3  # NETSCAPE says "repeat 2 more times": three plays


def test_animated_webp_stays_animated_and_other_formats_take_the_first_frame() -> None:
    webp, _ = transform(samples.animation(frames=5), width=None, height=None, fit="cover", quality=70, fmt="webp")
    again, _ = transform(webp, width=100, height=None, fit="cover", quality=70, fmt="webp")
    assert Image.open(io.BytesIO(again)).n_frames == 5
    still, _ = transform(webp, width=100, height=None, fit="cover", quality=70, fmt="png")
    assert getattr(Image.open(io.BytesIO(still)), "n_frames", 1) == 1


def test_never_upscales(photo_jpeg: bytes) -> None:
    out, _ = transform(photo_jpeg, width=2560, height=None, fit="cover", quality=70, fmt="webp")
    assert opened(out).size == (1600, 1200)


@pytest.mark.parametrize(
    ("fit", "box", "expected"),
    [
        ("cover", (400, 400), (400, 400)),
        ("contain", (400, 400), (400, 400)),
        ("inside", (400, 400), (400, 300)),
        ("fill", (400, 100), (400, 100)),
        # a box bigger than the image shrinks, keeping its shape: nothing is upscaled
        ("cover", (3200, 3200), (1200, 1200)),
        ("contain", (3200, 3200), (1600, 1600)),
        ("inside", (3200, 3200), (1600, 1200)),
        ("fill", (3200, 800), (1600, 400)),
    ],
)
def test_fits(photo_jpeg: bytes, fit: str, box: tuple[int, int], expected: tuple[int, int]) -> None:
    out, _ = transform(photo_jpeg, width=box[0], height=box[1], fit=fit, quality=70, fmt="png")
    image = opened(out)
    assert image.size == expected
    if fit == "contain":
        assert image.convert("RGBA").getchannel("A").getpixel((expected[0] // 2, 1)) == 0  # padded band


def test_jpeg_is_dct_scaled_when_shrinking(photo_jpeg: bytes) -> None:
    with mock.patch.object(JpegImageFile, "draft", autospec=True, side_effect=JpegImageFile.draft) as draft:
        transform(photo_jpeg, width=160, height=None, fit="cover", quality=70, fmt="webp")
    assert draft.call_count == 1
    assert draft.call_args.args[2] == (160, 120)


def test_too_many_pixels_is_refused_before_decoding() -> None:
    bomb = png_bomb(100_000, 100_000)
    assert len(bomb) < 1000
    # refused from the header: no pixel is ever decoded
    with (
        mock.patch.object(ImageFile.ImageFile, "load", side_effect=AssertionError("decoded")),
        pytest.raises(imaging.TooManyPixels) as caught,
    ):
        transform(bomb, width=100, height=None, fit="cover", quality=70, fmt="webp")
    assert caught.value.status == 413 and "100000x100000" in caught.value.message


def test_limits_come_from_the_caller() -> None:
    data = samples.png(samples.logo(100, 100))
    with pytest.raises(imaging.TooManyPixels):
        transform(data, width=50, height=None, fit="cover", quality=70, fmt="webp", limits=Limits(max_pixels=9999))
    with pytest.raises(imaging.InputTooLarge):
        transform(data, width=50, height=None, fit="cover", quality=70, fmt="webp", limits=Limits(max_input_bytes=100))
    with pytest.raises(imaging.TooManyFrames):
        transform(
            samples.animation(frames=6),
            width=50,
            height=None,
            fit="cover",
            quality=70,
            fmt="webp",
            limits=Limits(max_frames=5),
        )


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_jpeg_raises_image_error(photo_jpeg: bytes, cut: float) -> None:
    with pytest.raises(imaging.ImageError) as caught:
        transform(photo_jpeg[: int(len(photo_jpeg) * cut)], width=200, height=None, fit="cover", quality=70, fmt="webp")
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 415),
        (b"not an image at all", 415),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415),
        (b"<!doctype html><html><body>hi</body></html>", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, 422),
    ],
)
def test_garbage_raises_image_error_with_a_4xx(data: bytes, status: int) -> None:
    with pytest.raises(imaging.ImageError) as caught:
        transform(data, width=200, height=None, fit="cover", quality=70, fmt="webp")
    assert caught.value.status == status
    assert caught.value.body()["parameter"] == "image"


def test_bad_arguments_are_image_errors_too() -> None:
    for kwargs in ({"fmt": "gif"}, {"fit": "stretch"}, {"quality": 101}, {"width": -1}):
        arguments = {"width": 100, "height": None, "fit": "cover", "quality": 70, "fmt": "webp", **kwargs}
        with pytest.raises(imaging.InvalidTransform):
            transform(samples.png(samples.logo(50, 50)), **arguments)  # type: ignore[arg-type]


# -- render_set: the standard set from one decode ---------------------------------------------

SET_WIDTHS = (160, 320, 480, 640, 768, 1024, 1280, 1600, 1920, 2560)


def set_inputs() -> dict[str, bytes]:
    found = {
        "photo": samples.jpeg(samples.photo(2400, 1600, seed=1), quality=88),
        "portrait-exif-6": samples.jpeg(
            samples.photo(1200, 1600, seed=2).transpose(Image.Transpose.ROTATE_90), orientation=6
        ),
        "logo-alpha": samples.png(samples.logo(900, 600)),
        "p3": colour.corpus()["colour/display-p3.jpg"],
        "cmyk": colour.corpus()["colour/cmyk-profiled.jpg"],
        "animated": samples.animation(),
    }
    shared = samples.shared_images()
    if shared is not None:
        found["sharp-bench"] = (shared / "sharp-bench-2725x2225.jpg").read_bytes()
    return found


def flat(image: Image.Image) -> Image.Image:
    """RGB as a page shows it: anything transparent over white."""
    rgba = image.convert("RGBA")
    page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(page, rgba).convert("RGB")


@pytest.mark.parametrize("name", sorted(set_inputs()))
def test_one_decode_renders_the_set_as_well_as_one_variant_at_a_time(name: str) -> None:
    data = set_inputs()[name]
    reference = flat(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    formats = ("webp", "jpeg")
    seen = set()
    for rendition in imaging.render_set(data, widths=SET_WIDTHS, formats=formats, quality=60):
        seen.add((rendition.width, rendition.fmt))
        alone, content_type = transform(
            data, width=rendition.width, height=None, fit="cover", quality=60, fmt=rendition.fmt
        )
        assert rendition.content_type == content_type
        new, old = opened(rendition.body), opened(alone)
        assert new.size == old.size and new.format == old.format
        assert getattr(new, "n_frames", 1) == getattr(old, "n_frames", 1)
        truth = reference.resize(new.size, Image.Resampling.LANCZOS)
        # as close to the truth as one variant at a time (SSIM on luma, bench/quality.py)
        assert quality.ssim(truth, flat(new)) >= quality.ssim(truth, flat(old)) - 0.002, rendition[:2]
    assert seen == {(w, f) for w in SET_WIDTHS for f in formats}


def test_widths_that_come_out_the_same_size_are_rendered_once() -> None:
    small = samples.jpeg(samples.photo(700, 500))
    with mock.patch.object(imaging, "_encode", wraps=imaging._encode) as encode:
        renditions = list(imaging.render_set(small, widths=SET_WIDTHS, formats=("webp",), quality=60))
    assert len(renditions) == len(SET_WIDTHS)
    assert encode.call_count == 5  # 160, 320, 480, 640, and 700 for every width from 768 up
    assert len({r.body for r in renditions if r.width >= 768}) == 1


def test_the_set_is_decoded_once() -> None:
    data = samples.jpeg(samples.photo(1600, 1200))
    with mock.patch.object(Image, "_getdecoder", wraps=Image._getdecoder) as decoders:
        list(imaging.render_set(data, widths=SET_WIDTHS, formats=("webp", "jpeg"), quality=60))
    assert decoders.call_count == 1
    with mock.patch.object(Image, "_getdecoder", wraps=Image._getdecoder) as decoders:
        for width in SET_WIDTHS:  # what the sync job did before: one decode per variant
            transform(data, width=width, height=None, fit="cover", quality=60, fmt="webp")
    assert decoders.call_count == len(SET_WIDTHS)


def test_a_refused_image_refuses_the_whole_set_before_anything_is_rendered() -> None:
    with pytest.raises(imaging.UnsupportedImage):
        next(imaging.render_set(b"<svg/>", widths=SET_WIDTHS, formats=("webp",), quality=60))
    strip = samples.png(Image.new("RGB", (20000, 2), (1, 2, 3)))
    with pytest.raises(imaging.UnencodableImage):  # 20000 px is over WebP's side at the largest widths
        next(imaging.render_set(strip, widths=(160, 20000), formats=("jpeg", "webp"), quality=60))

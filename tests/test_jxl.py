"""JPEG XL (`jxl`): opt-in through the stack's `formats`, negotiated, encoded, decoded by libjxl.

Every JPEG XL output here is decoded by libjxl's own `djxl` (Debian's libjxl-tools, which
`.ci/run` installs), not by the plugin that wrote it. The grammar's cases are in
tests/cases/normalize.json (profiles jxl, jxl_no_avif, jxl_jpeg_fallback, jxl_held).
"""

from __future__ import annotations

import io
import itertools
import json
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsers import images_page, report_from, require
from PIL import Image, ImageCms

from components import bundle
from components.config import ConfigError, from_stack_file
from edge import imaging, rewrite, variants
from edge.settings import AUTO, DEFAULT_FORMATS, REQUESTED_HEADER, Settings
from localcdn import samples
from localcdn.distribution import Distribution
from localcdn.jobs import LocalSync
from localcdn.process import Emulator
from localcdn.storage import LocalS3
from localcdn.viewer import ViewerFunction

JXL_FORMATS = (*DEFAULT_FORMATS, "jxl")
ON = Settings(formats=JXL_FORMATS)
OFF = Settings()
# Bare codestream (what we write) or the ISO BMFF container: how a JPEG XL file starts.
CODESTREAM = b"\xff\x0a"
# Accept headers a client may send: each browser's, and every mix of the image types auto weighs.
BROWSERS = json.loads((Path(__file__).parent / "cases" / "normalize.json").read_text())["accept_headers"]
TYPES = ["image/jxl", "image/avif", "image/webp", "image/jxl;q=0", "image/avif;q=0", "*/*"]
ACCEPTS = [*BROWSERS.values(), None, *(",".join(mix) for n in (1, 2, 3) for mix in itertools.permutations(TYPES, n))]


def djxl(body: bytes, tmp_path: Path) -> Image.Image:
    """The image libjxl's reference decoder makes of `body` (as PNG, read back with Pillow)."""
    tool = shutil.which("djxl")
    assert tool is not None, "djxl (Debian libjxl-tools) is needed: .ci/run installs it"
    source, decoded = tmp_path / "out.jxl", tmp_path / "out.png"
    source.write_bytes(body)
    result = subprocess.run([tool, str(source), str(decoded)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    with Image.open(decoded) as image:
        image.load()
        return image.copy()


# -- the grammar and negotiation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def viewers() -> Iterator[dict[str, ViewerFunction]]:
    loaded = {name: ViewerFunction(bundle.viewer_code(settings)) for name, settings in (("on", ON), ("off", OFF))}
    yield loaded
    for viewer in loaded.values():
        viewer.close()


def test_fm_jxl_is_refused_by_both_twins_unless_the_stack_lists_it(viewers: dict[str, ViewerFunction]) -> None:
    with pytest.raises(variants.VariantError) as refused:
        variants.normalize("/a.jpg", "w=640&fm=jxl", "image/jxl", OFF)
    assert (refused.value.parameter, refused.value.received) == ("format", '"jxl"')
    assert refused.value.expected == "one of auto, avif, webp, jpeg, png"
    answer = viewers["off"].run("/a.jpg", "w=640&fm=jxl", {"Accept": "image/jxl"})
    body = json.loads(answer["body"]["data"])
    assert answer["statusCode"] == 400
    assert (body["parameter"], body["expected"], body["received"]) == ("format", refused.value.expected, '"jxl"')
    assert viewers["on"].run("/a.jpg", "w=640&fm=jxl", {})["uri"] == "/a.jpg/w_640_q_60.jxl"
    with pytest.raises(variants.VariantError):
        variants.canonical("/a.jpg/w_640_q_60.jxl", OFF)
    assert variants.canonical("/a.jpg/w_640_q_60.jxl", ON).fmt == "jxl"


@pytest.mark.parametrize(("name", "settings"), [("on", ON), ("off", OFF)])
def test_auto_keeps_one_variant_per_format_whatever_the_accept_header(
    viewers: dict[str, ViewerFunction], name: str, settings: Settings
) -> None:
    """The cache key stays bounded: per request, at most one URI per format auto can pick (jxl adds one)."""
    made = set()
    for accept in ACCEPTS:
        python = variants.normalize("/a.jpg", "w=640", accept, settings)
        js = viewers[name].run("/a.jpg", "w=640", {"Accept": accept} if accept is not None else {})["uri"]
        assert js == python, accept
        made.add(python)
    expected = {"avif", "webp", "jpeg"} | ({"jxl"} if name == "on" else set())
    assert made == {f"/a.jpg/w_640_q_60.{fmt}" for fmt in expected}


def test_auto_picks_jxl_only_for_a_client_that_also_lists_the_fallbacks_stand_in() -> None:
    assert ON.jxl_companion == "webp" and ON.viewer_config()["jxlWith"] == "webp"
    for accept in ACCEPTS:
        if variants.choose_format(accept, ON) == "jxl":
            listed = {item.split(";")[0].strip() for item in (accept or "").split(",") if "q=0" not in item}
            assert {"image/jxl", "image/webp"} <= listed, accept
    # A fallback that holds jxl, or whose stand-in is JPEG, needs nothing more from the client.
    held = Settings(formats=JXL_FORMATS, standard_formats=("jxl", "jpeg"))
    assert held.jxl_companion == "" and "jxlWith" not in held.viewer_config()
    assert variants.choose_format("image/jxl", held) == "jxl"
    assert Settings(formats=JXL_FORMATS, standard_formats=("jpeg",)).jxl_companion == ""
    assert "jxlWith" not in OFF.viewer_config()


# -- the fallback ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standard", "served"),
    [(("webp", "jpeg"), "webp"), (("avif", "jpeg"), "jpeg"), (("jpeg",), "jpeg"), (("jxl", "webp", "jpeg"), "jxl")],
)
def test_the_fallback_stands_in_for_jxl_with_a_format_every_jxl_client_decodes(
    standard: tuple[str, ...], served: str
) -> None:
    settings = Settings(formats=JXL_FORMATS, standard_formats=standard)
    asked = variants.canonical("/a.jpg/w_640_h_480_q_80.jxl", settings)
    nearest = variants.nearest_standard(asked, settings)
    assert nearest is not None and nearest.fmt == served
    # Never AVIF for a jxl request, even where the fallback holds it: not every JPEG XL client is known to decode it.
    for holds in (("avif", "webp"), ("avif", "jpeg")):
        assert variants.substitute_format("jxl", Settings(formats=JXL_FORMATS, standard_formats=holds)) != "avif"
    # And what auto would send such a client there is a format its Accept listed (or JPEG).
    for accept in ACCEPTS:
        if variants.choose_format(accept, settings) == "jxl" and served not in ("jxl", "jpeg"):
            assert f"image/{served}" in (accept or "")


def test_origin_request_maps_a_jxl_variant_to_its_stand_in_on_the_fallback() -> None:
    settings = Settings(formats=JXL_FORMATS, fallback_bucket="b-fallback")
    request = {
        "uri": "/a.jpg/w_640_q_60.jxl",
        "querystring": "",
        "headers": {},
        "origin": {"s3": {"domainName": "b-fallback.s3.us-west-2.amazonaws.com", "path": ""}},
    }
    forwarded = rewrite.handle({"Records": [{"cf": {"request": request}}]}, settings)
    assert forwarded["uri"] == "/a.jpg/w_640_q_60.webp"
    assert forwarded["headers"][REQUESTED_HEADER.lower()][0]["value"] == "/a.jpg/w_640_q_60.jxl"


def test_a_stack_whose_fallback_cannot_stand_in_for_jxl_is_refused() -> None:
    jxl = json.dumps(list(JXL_FORMATS))
    with pytest.raises(ConfigError, match="standardFormats"):
        from_stack_file("dev", overrides={"formats": json.loads(jxl), "standardFormats": ["avif"]})
    config = from_stack_file("dev", overrides={"formats": json.loads(jxl)})
    assert "jxl" in config.edge_settings().formats and config.edge_settings().jxl_companion == "webp"
    assert "jxl" not in from_stack_file("dev").edge_settings().formats  # off unless listed


def test_during_an_outage_a_jxl_client_gets_the_webp_stand_in() -> None:
    names = {"primary_bucket": "jxl-outage-origin", "fallback_bucket": "jxl-outage-fallback"}
    base = from_stack_file("dev", overrides={"formats": list(JXL_FORMATS)}).edge_settings().as_dict()
    settings = Settings(**{**base, **names})
    storage = LocalS3(settings)
    distribution = Distribution(settings, storage, error_caching_seconds=1)
    try:
        LocalSync(distribution).upload("shop/shoe.jpg", samples.jpeg(samples.photo(900, 600)))
        accept = "image/jxl,image/webp,*/*"
        served = distribution.request("GET", "/shop/shoe.jpg", "w=640", {"Accept": accept})
        assert (served.status, served.origin, served.headers["Content-Type"]) == (200, "primary", "image/jxl")
        assert served.body[:2] == CODESTREAM
        distribution.set_primary("error")
        response = distribution.request("GET", "/shop/shoe.jpg", "w=480", {"Accept": accept})
        assert (response.status, response.origin) == (200, "fallback")
        assert response.headers["X-Image-Cdn-Substitute"] == "/shop/shoe.jpg/w_480_q_60.webp"
        assert Image.open(io.BytesIO(response.body)).format == "WEBP"
    finally:
        distribution.viewer.close()
        storage.stop()


# -- encoding --------------------------------------------------------------------------------


def test_a_photo_as_jxl_decodes_with_djxl_at_its_size_without_metadata(tmp_path: Path) -> None:
    photo = samples.photo(900, 600, seed=3)
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # Make
    exif[0x8825] = {2: (48.0, 51.0, 24.0)}  # GPS latitude
    source = io.BytesIO()
    photo.save(source, "JPEG", quality=90, exif=exif.tobytes(), comment=b"private note")
    body, content_type = imaging.transform(
        source.getvalue(), width=640, height=None, fit="cover", quality=60, fmt="jxl"
    )
    assert content_type == "image/jxl"
    assert body[:2] == CODESTREAM  # a bare codestream: no box can carry EXIF or XMP
    assert b"Exif" not in body and b"Camera maker" not in body and b"private note" not in body
    decoded = djxl(body, tmp_path)
    assert decoded.size == (640, 427) and decoded.mode == "RGB"
    assert "exif" not in decoded.info
    # No profile is stored: the header says sRGB (an enum), which djxl writes out as libjxl's own sRGB profile.
    profile = ImageCms.ImageCmsProfile(io.BytesIO(decoded.info["icc_profile"]))
    assert ImageCms.getProfileDescription(profile).strip() == "RGB_D65_SRG_Rel_SRG"


def test_alpha_survives_jxl(tmp_path: Path) -> None:
    image = Image.new("RGBA", (400, 300), (200, 30, 30, 255))
    image.paste((20, 20, 200, 0), (0, 0, 200, 300))  # left half transparent
    source = io.BytesIO()
    image.save(source, "PNG")
    body, _ = imaging.transform(source.getvalue(), width=200, height=None, fit="cover", quality=80, fmt="jxl")
    decoded = djxl(body, tmp_path).convert("RGBA")
    assert decoded.size == (200, 150)
    assert decoded.getpixel((20, 75))[3] == 0 and decoded.getpixel((180, 75))[3] == 255


def test_an_animation_asked_for_as_jxl_is_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (120, 80), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    source = io.BytesIO()
    frames[0].save(source, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    body, _ = imaging.transform(source.getvalue(), width=120, height=None, fit="cover", quality=90, fmt="jxl")
    decoded = djxl(body, tmp_path).convert("RGB")
    assert getattr(decoded, "n_frames", 1) == 1
    red, green, blue = decoded.getpixel((60, 40))
    assert red > 200 and green < 60 and blue < 60  # the first frame, red


def test_quality_orders_jxl_bytes_and_each_decodes(tmp_path: Path) -> None:
    data = samples.jpeg(samples.photo(800, 600, seed=1))
    sizes = []
    for quality in (40, 60, 90):
        body, _ = imaging.transform(data, width=640, height=None, fit="cover", quality=quality, fmt="jxl")
        assert djxl(body, tmp_path).size == (640, 480)
        sizes.append(len(body))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_q_auto_searches_jxl_and_the_standard_set_renders_it(tmp_path: Path) -> None:
    data = samples.jpeg(samples.photo(800, 600, seed=2))
    choice = imaging.choose(
        Image.open(
            io.BytesIO(imaging.transform(data, width=320, height=None, fit="cover", quality=90, fmt="png")[0])
        ).convert("RGB"),
        "jxl",
        "good",
    )
    assert choice.score >= imaging.calibrated("jxl", "good").score and choice.encodes <= imaging.AUTO_ENCODES
    assert djxl(choice.body, tmp_path).size == (320, 240)
    renditions = list(imaging.render_set(data, widths=(160, 320), formats=("jxl", "jpeg"), quality=AUTO))
    for rendition in renditions:
        if rendition.fmt == "jxl":
            assert rendition.content_type == "image/jxl"
            assert djxl(rendition.body, tmp_path).width == rendition.width


# -- the bundles -----------------------------------------------------------------------------


def test_resize_carries_the_jxl_encoder_for_lambda_within_the_limits_only_where_jxl_is_served() -> None:
    path = bundle.build("resize", ON, vendor=bundle.resize_wheels(ON))
    with zipfile.ZipFile(path) as archive:
        entries = archive.namelist()
        unzipped = sum(info.file_size for info in archive.infolist())
    extension = [name for name in entries if name.startswith("pillow_jxl/pillow_jxl.cpython-313")]
    assert extension and all("x86_64-linux-gnu" in name for name in extension)
    assert "pillow_jxl/JpegXLImagePlugin.py" in entries and "packaging/version.py" in entries
    assert path.stat().st_size < bundle.MAX_ZIPPED_BYTES and unzipped < bundle.MAX_UNZIPPED_BYTES
    assert not any(wheel.startswith("pillow-jxl-plugin") for wheel in bundle.resize_wheels(OFF))
    both = Settings(formats=JXL_FORMATS, quality_target="good")
    assert set(bundle.JXL) | {bundle.NUMPY} <= set(bundle.resize_wheels(both))
    # The sync job carries it only when the standard set holds jxl.
    assert not set(bundle.JXL) & set(bundle.sync_wheels(ON))
    assert set(bundle.JXL) <= set(bundle.sync_wheels(Settings(formats=JXL_FORMATS, standard_formats=("jxl", "jpeg"))))


# -- a real browser ----------------------------------------------------------------------------


@pytest.mark.browser
def test_headless_chromium_draws_the_emulators_jxl(tmp_path: Path) -> None:
    """Debian's Chromium 156 decodes JPEG XL with no flag (it lists image/jxl in its Accept);
    Firefox ESR 153 does not (README "JPEG XL")."""
    require("chromium")
    (tmp_path / "home").mkdir()
    emulator = Emulator("--set", "formats=" + json.dumps(list(JXL_FORMATS)), home=tmp_path / "home")
    try:
        paths = ["/samples/landscape.jpg?w=320&fm=jxl", "/samples/landscape.jpg?w=160&h=160&fm=jxl&q=90"]
        for path in paths:
            reply = emulator.get(path)
            assert reply.status == 200 and reply.header("Content-Type") == "image/jxl", (path, reply.status)
            assert djxl(reply.body, tmp_path).width in (320, 160)
        report = report_from("chromium", images_page([emulator.base + path for path in paths]), tmp_path / "profile")
    finally:
        emulator.stop()
    drawn = [(image["naturalWidth"], image["naturalHeight"]) for image in report["images"]]
    assert drawn[1] == (160, 160) and drawn[0][0] == 320, f"{report['userAgent']} drew {drawn}"


def test_a_third_party_primary_is_asked_for_jxl_in_its_own_words_and_thumbor_is_refused() -> None:
    from edge import templates

    asked = variants.Variant("a.jpg", 640, None, 60, "jxl")
    assert templates.imgix(asked).endswith("fm=jxl")
    with pytest.raises(ConfigError, match="no jxl with a thumbor primary"):
        from_stack_file("thirdparty", overrides={"formats": list(JXL_FORMATS)})
    assert "jxl" not in from_stack_file("thirdparty").edge_settings().formats


def test_the_viewer_function_with_jxl_and_every_other_feature_on_stays_under_10_kb() -> None:
    from test_normalize_table import FULL

    every = FULL.as_dict() | {"formats": JXL_FORMATS, "quality_target": "good"}
    code = bundle.viewer_code(Settings.from_dict(every))  # raises past the limit
    assert '"jxlWith":"webp"' in code and len(code.encode()) <= bundle.VIEWER_FUNCTION_LIMIT

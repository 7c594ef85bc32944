"""The edge settings as component arguments: plain, typed data that every Pulumi language can pass.

`edge.settings.Settings` is what the functions run with; a component takes `ImageSettings` (a
TypedDict Pulumi's component analyser turns into a schema type) and makes the `Settings` from it
with `to_settings`. The Python stack goes the other way with `settings_args`, so both paths bake
the same `config.json`.

No `from __future__ import annotations` here or in any component module: the analyser reads the
annotations at run time and cannot resolve strings.
"""

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from edge.settings import CROPS, FITS, FORMATS, POSITIONS, QUALITY_TARGETS, Settings


class ImagePreset(TypedDict):
    """A named transformation (`?preset=<name>`)."""

    name: str
    """The name the URL gives."""
    width: int
    """Width in pixels (one of `widths`)."""
    height: NotRequired[int]
    """Height in pixels; none keeps the aspect ratio."""
    quality: int
    """Quality (one of `qualities`)."""
    fit: str
    """cover, contain, inside or fill."""
    crop: str
    """Where `cover` crops: center, entropy, attention or faces."""


class ImageSettings(TypedDict):
    """What the variant grammar, the edge functions and the sync job run with (baked into each bundle)."""

    primary_bucket: str
    """The ImageOrigin bucket's name (originals/ and variants/)."""
    primary_region: str
    """The primary bucket's region."""
    fallback_bucket: str
    """The FallbackBucket's name."""
    fallback_region: str
    """The fallback bucket's region."""
    widths: NotRequired[Sequence[int]]
    """The widths a URL may ask for (`w=`); default 160 to 2560 in ten steps."""
    qualities: NotRequired[Sequence[int]]
    """The qualities a URL may ask for (`q=`); default 40 to 90 in steps of 10."""
    default_quality: NotRequired[int]
    """The quality of a URL that names none; default 60 (0: q=auto, the renderer picks per variant)."""
    quality_target: NotRequired[str]
    """What q=auto aims at: high, good (default) or low."""
    formats: NotRequired[Sequence[str]]
    """The formats served (avif, webp, jpeg, png, jxl); default the first four (jxl is opt-in)."""
    standard_formats: NotRequired[Sequence[str]]
    """The formats the fallback holds for every standard variant; default webp and jpeg."""
    max_input_bytes: NotRequired[int]
    """Originals larger than this are refused (413); default 50 MiB."""
    max_pixels: NotRequired[int]
    """Originals with more pixels than this are refused; default 50 million."""
    max_frames: NotRequired[int]
    """Animated originals with more frames than this are refused; default 200."""
    browser_cache_seconds: NotRequired[int]
    """`max-age` of a variant; default 86400."""
    fallback_cache_seconds: NotRequired[int]
    """`max-age` and `s-maxage` of a fallback substitute; default 60."""
    error_cache_seconds: NotRequired[int]
    """How long an error answer is cached; default 5."""
    cors_origins: NotRequired[Sequence[str]]
    """Web origins allowed by CORS; default ["*"]."""
    response_limit_bytes: NotRequired[int]
    """The largest generated response Lambda@Edge returns (larger ones are redirected); default 1,000,000."""
    default_image: NotRequired[str]
    """The key (below originals/) rendered in place of a missing original; none by default."""
    presets: NotRequired[Sequence[ImagePreset]]
    """Named transformations."""
    presets_only: NotRequired[bool]
    """Refuse every request that does not name a preset."""
    client_hints: NotRequired[bool]
    """Honour Sec-CH-DPR, Sec-CH-Width and Sec-CH-Viewport-Width, and send Accept-CH."""
    crops: NotRequired[Sequence[str]]
    """The crop strategies `crop=` may name (center, entropy, attention, faces); default the first three."""
    signing: NotRequired[str]
    """off (default), optional (check URLs that carry sig) or required (refuse unsigned URLs)."""
    watermark: NotRequired[str]
    """The key (below originals/) composited onto large variants; none by default."""
    watermark_min_width: NotRequired[int]
    """The narrowest variant that gets the watermark; default 640."""
    watermark_position: NotRequired[str]
    """top-left, top-right, bottom-left, bottom-right (default) or center."""
    watermark_margin: NotRequired[int]
    """Pixels between the watermark and the variant's edges; default 16."""
    watermark_opacity: NotRequired[float]
    """0 to 1; default 0.5."""
    watermark_scale: NotRequired[float]
    """The watermark's width as a fraction of the variant's; default 0.2."""
    faces_region: NotRequired[str]
    """Where resize calls Amazon Rekognition for `crop=faces`; default the primary region."""
    primary_kind: NotRequired[str]
    """s3 (default: our bucket and renderer) or http (a third-party image service)."""
    primary_template: NotRequired[str]
    """With http: imgix, cloudinary, thumbor, imgproxy, or a custom template with placeholders."""
    primary_domain: NotRequired[str]
    """With http: the service's host name (HTTPS only)."""
    primary_path: NotRequired[str]
    """With http: a path before every service URL (a Cloudinary cloud name: `/demo`)."""
    service_source: NotRequired[str]
    """With imgproxy: where it reads originals (`s3://bucket/originals`, `https://...`)."""
    originals_source: NotRequired[str]
    """What lists the originals for the sync job: s3 (default), jsonl or sitemap."""
    originals_location: NotRequired[str]
    """With jsonl or sitemap: `s3://bucket/key` or an https:// URL."""


# Choices each field must be one of (the component checks what another language's program sends:
# the stack's own config is checked earlier, with its keys' names, in components.config).
_CHOICES: dict[str, tuple[str, ...]] = {
    "formats": FORMATS,
    "standard_formats": FORMATS,
    "crops": CROPS,
    "signing": ("off", "optional", "required"),
    "quality_target": ("", *QUALITY_TARGETS),  # "": no q=auto
    "watermark_position": POSITIONS,
    "primary_kind": ("s3", "http"),
    "originals_source": ("s3", "jsonl", "sitemap"),
}


def _check(field: str, value: Any) -> None:
    allowed = _CHOICES.get(field)
    if allowed is None:
        return
    for item in value if isinstance(value, list | tuple) else [value]:
        if item not in allowed:
            raise ValueError(f"settings.{field}: expected one of {', '.join(allowed)}; got {item!r}")


def to_settings(args: ImageSettings) -> Settings:
    """The `Settings` the functions run with, from a component's `settings` argument."""
    unknown = sorted(set(args) - set(ImageSettings.__annotations__))
    if unknown:
        raise ValueError(f"settings: unknown field(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for field, value in args.items():
        _check(field, value)
        values[field] = tuple(value) if isinstance(value, list | tuple) else value
    presets = []
    for preset in args.get("presets", ()):
        for key, allowed in (("fit", FITS), ("crop", CROPS)):
            if preset[key] not in allowed:  # type: ignore[literal-required]
                raise ValueError(
                    f"settings.presets[{preset['name']}].{key}: expected one of {', '.join(allowed)}; "
                    f"got {preset[key]!r}"  # type: ignore[literal-required]
                )
        presets.append(
            (preset["name"], preset["width"], preset.get("height"), preset["quality"], preset["fit"], preset["crop"])
        )
    values["presets"] = tuple(presets)
    return Settings(**values)


def settings_args(settings: Settings) -> ImageSettings:
    """A component's `settings` argument for these settings (the service key is never one: it is
    a secret the components take apart, as `service_key`)."""
    values = settings.as_dict()
    del values["service_key"]
    args: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    presets: list[ImagePreset] = []
    for name, width, height, quality, fit, crop in settings.presets:
        preset: ImagePreset = {"name": name, "width": width, "quality": quality, "fit": fit, "crop": crop}
        if height is not None:
            preset["height"] = height
        presets.append(preset)
    args["presets"] = presets
    return args  # type: ignore[return-value]

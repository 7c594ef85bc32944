"""A canonical variant -> the URL of a third-party image service (primary origin `kind: http`).

`rewrite` sends the primary origin (a CloudFront custom origin) `service_url(variant,
settings)`; the sync job fetches the standard set from the same URLs.

Each service's grammar, for `/<key>/w_<W>[_h_<H>]_q_<Q>[_fit_<F>].<fmt>`:

    imgix       /<key>?w=W[&h=H&fit=F']&q=Q&fm=FMT
    cloudinary  /image/upload/w_W[,h_H,c_F'],q_Q,f_FMT/<key>
    thumbor     /<sig>/[fit-in/]WxH/[smart/]filters:no_upscale():quality(Q):format(FMT)/<key>   (HMAC-SHA1)
    imgproxy    /<sig>/rs:F':W:H/q:Q/plain/<source>/<key>@FMT                      (HMAC-SHA256 of salt+path)

Fits map to each service's nearest meaning (cover crops to fill, contain pads, inside fits
without padding, fill stretches). Smart crops map to the services' own where they have one
(imgix crop=entropy/faces, Cloudinary g_auto/g_faces, thumbor smart, imgproxy g:sm);
a service without one gets the centre.

A stack may also give its own template, a path and query with placeholders:

    /images/{key}?width={width}&height={height}&fit={fit}&q={quality}&format={format}

`q_auto` goes to each service as its own "you pick": imgix `auto=compress`, Cloudinary
`q_auto`, thumbor no quality filter (its configured default), imgproxy `q:0` (its default),
a template's `{quality}` as `auto`.

`{height}` is 0 when the variant has none (the services' own convention for "auto").
The stack's config refuses a template that lacks a placeholder its variants need
(`missing_placeholders`), so no variant can reach the service with a parameter dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import TYPE_CHECKING

from edge.settings import AUTO
from edge.variants import Variant, encode_key, quality_name

if TYPE_CHECKING:
    from edge.settings import Settings

SERVICES = ("imgix", "cloudinary", "thumbor", "imgproxy")
# The services whose URLs are signed: their key comes from Secrets Manager at deploy.
SIGNED = ("thumbor", "imgproxy")
PLACEHOLDERS = ("key", "width", "height", "quality", "format", "fit", "crop")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

_IMGIX_FIT = {"cover": "crop", "contain": "fill", "inside": "max", "fill": "scale"}
_IMGIX_CROP = {"entropy": "entropy", "attention": "entropy", "faces": "faces"}
_CLOUDINARY_FIT = {"cover": "fill", "contain": "pad", "inside": "fit", "fill": "scale"}
_CLOUDINARY_CROP = {"entropy": "auto", "attention": "auto", "faces": "faces"}
_IMGPROXY_FIT = {"cover": "fill", "contain": "fit", "inside": "fit", "fill": "force"}
_FORMATS = {"imgix": {"jpeg": "jpg"}, "cloudinary": {"jpeg": "jpg"}, "thumbor": {}, "imgproxy": {"jpeg": "jpg"}}


def imgix(variant: Variant) -> str:
    query = [f"w={variant.width}"]
    if variant.height is not None:
        query += [f"h={variant.height}", f"fit={_IMGIX_FIT[variant.fit]}"]
        if variant.fit == "cover" and variant.crop in _IMGIX_CROP:
            query.append(f"crop={_IMGIX_CROP[variant.crop]}")
    fmt = _FORMATS["imgix"].get(variant.fmt, variant.fmt)
    query += ["auto=compress" if variant.quality == AUTO else f"q={variant.quality}", f"fm={fmt}"]
    return f"/{encode_key(variant.key)}?" + "&".join(query)


def cloudinary(variant: Variant) -> str:
    parts = [f"w_{variant.width}"]
    if variant.height is not None:
        parts += [f"h_{variant.height}", f"c_{_CLOUDINARY_FIT[variant.fit]}"]
        if variant.fit == "cover" and variant.crop in _CLOUDINARY_CROP:
            parts.append(f"g_{_CLOUDINARY_CROP[variant.crop]}")
        if variant.fit == "contain":
            parts.append("b_white" if variant.fmt == "jpeg" else "b_transparent")
    fmt = _FORMATS["cloudinary"].get(variant.fmt, variant.fmt)
    parts += [f"q_{quality_name(variant.quality)}", f"f_{fmt}"]
    return f"/image/upload/{','.join(parts)}/{encode_key(variant.key)}"


def thumbor_path(variant: Variant) -> str:
    """The part of a thumbor URL that its signature covers."""
    pieces = []
    if variant.height is not None and variant.fit in ("contain", "inside"):
        pieces.append("fit-in")
    pieces.append(f"{variant.width}x{variant.height or 0}")
    if variant.height is not None and variant.fit == "cover" and variant.crop != "center":
        pieces.append("smart")
    # thumbor enlarges a small original to the asked size; our renderer never does.
    quality = [] if variant.quality == AUTO else [f"quality({variant.quality})"]
    filters = ["no_upscale()", *quality, f"format({variant.fmt})"]
    if variant.height is not None and variant.fit == "contain":
        filters.insert(1, "fill(white)" if variant.fmt == "jpeg" else "fill(transparent)")
    if variant.height is not None and variant.fit == "fill":
        filters.insert(1, "stretch()")
    pieces.append("filters:" + ":".join(filters))
    pieces.append(encode_key(variant.key))
    return "/".join(pieces)


def thumbor(variant: Variant, key: str) -> str:
    """A signed thumbor URL: base64url(HMAC-SHA1(key, path)) before the path (thumbor's `CryptoURL`)."""
    path = thumbor_path(variant)
    digest = hmac.new(key.encode("utf-8"), path.encode("utf-8"), hashlib.sha1).digest()
    return f"/{base64.urlsafe_b64encode(digest).decode('ascii')}/{path}"


def imgproxy(variant: Variant, key: str, salt: str, source: str) -> str:
    """A signed imgproxy URL: base64url, unpadded, of HMAC-SHA256(key, salt + path); key and salt in hex.

    `source` is where imgproxy reads originals (`s3://bucket/originals`, `https://...`).
    """
    kind = _IMGPROXY_FIT[variant.fit] if variant.height is not None else "fit"
    options = [f"rs:{kind}:{variant.width}:{variant.height or 0}"]
    if variant.height is not None and variant.fit == "contain":
        options.append("ex:1")  # extend to the box: padding
    if variant.height is not None and variant.fit == "cover" and variant.crop != "center":
        options.append("g:sm")
    fmt = _FORMATS["imgproxy"].get(variant.fmt, variant.fmt)
    path = "/" + "/".join(
        [*options, f"q:{variant.quality}", "plain", f"{source.rstrip('/')}/{encode_key(variant.key)}@{fmt}"]
    )
    digest = hmac.new(bytes.fromhex(key), bytes.fromhex(salt) + path.encode("utf-8"), hashlib.sha256).digest()
    return "/" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") + path


def placeholders(template: str) -> list[str]:
    """The placeholders a custom template names, in order."""
    return _PLACEHOLDER.findall(template)


def missing_placeholders(template: str, *, crops: tuple[str, ...], formats: tuple[str, ...]) -> list[str]:
    """What a custom template cannot express for a stack that allows these crops and formats.

    Every variant has a key, a width, a quality and a format, and may have a height and a fit;
    a crop other than the centre needs `{crop}`; one format only can be left to the service.
    """
    named = set(placeholders(template))
    needed = ["key", "width", "height", "fit", "quality"]
    if len(formats) > 1:
        needed.append("format")
    if any(crop != "center" for crop in crops):
        needed.append("crop")
    return [name for name in needed if name not in named]


def custom(template: str, variant: Variant) -> str:
    values = {
        "key": encode_key(variant.key),
        "width": str(variant.width),
        "height": str(variant.height or 0),
        "quality": quality_name(variant.quality),
        "format": variant.fmt,
        "fit": variant.fit,
        "crop": variant.crop,
    }
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def imgproxy_key(secret: str) -> tuple[str, str]:
    """(key, salt), hex, from the secret's JSON `{"key": ..., "salt": ...}` (imgproxy's IMGPROXY_KEY/SALT)."""
    data = json.loads(secret)
    return str(data["key"]), str(data["salt"])


def service_url(variant: Variant, settings: Settings) -> str:
    """The primary service's path and query for a variant (below `primary_path`)."""
    template = settings.primary_template
    if template == "thumbor":
        path = thumbor(variant, settings.service_key)
    elif template == "imgproxy":
        key, salt = imgproxy_key(settings.service_key)
        path = imgproxy(variant, key, salt, settings.service_source)
    elif template == "cloudinary":
        path = cloudinary(variant)
    elif template == "imgix":
        path = imgix(variant)
    else:
        path = custom(template, variant)
    return settings.primary_path.rstrip("/") + path

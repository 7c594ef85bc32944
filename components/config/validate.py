"""Validating the stack's config: every key's rule, in one place; `load` turns raw values into
one typed `StackConfig` (components/config/derive.py).

A bad value stops the program with every problem listed, each naming the key, what was expected
and what came. `KEYS` lists the keys of the `image-cdn:` namespace; a key's rule is found by its
name here (`read.integer("syncBatchSize", ...)`, `_features`, `_primary_origin`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from components.config.derive import PRICE_CLASSES, StackConfig, edge_log_regions
from components.config.read import NAMESPACE
from edge import variants
from edge.settings import (
    AUTO,
    CROPS,
    FITS,
    FORMATS,
    ORIGINAL_PREFIX,
    POSITIONS,
    QUALITY_TARGETS,
    SUBSTITUTES,
    VARIANT_PREFIX,
    Settings,
)

LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]")
_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{1,43}[a-z0-9]")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_WEBHOOK = re.compile(r"https://[^\s/]+(/\S*)?")
_SCHEDULE = re.compile(r"(rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))")


class ConfigError(ValueError):
    """Every problem found in one stack's configuration."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(problems))


class _Reader:
    """Pulls typed values out of raw config, collecting problems instead of stopping at one."""

    def __init__(self, values: Mapping[str, Any]):
        self.values = values
        self.problems: list[str] = []

    def bad(self, key: str, expected: str, got: Any) -> None:
        self.problems.append(f"{NAMESPACE}:{key}: expected {expected}, got {json.dumps(got)}")

    def raw(self, key: str, default: Any) -> Any:
        value = self.values.get(key, default)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def _int_like(self, key: str, default: int) -> Any:
        value = self.raw(key, default)
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        return None if isinstance(value, bool) else value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._int_like(key, default)
        if not isinstance(value, int) or not low <= value <= high:
            self.bad(key, f"an integer from {low} to {high}", self.raw(key, default))
            return default
        return value

    def integer_choice(self, key: str, default: int, choices: tuple[int, ...]) -> int:
        value = self._int_like(key, default)
        if value not in choices:
            self.bad(key, "one of " + ", ".join(map(str, choices)), self.raw(key, default))
            return default
        return int(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            self.bad(key, "true or false", value)
            return default
        return value

    def text(
        self, key: str, default: str | None, pattern: re.Pattern[str] | None = None, expected: str = "a string"
    ) -> str | None:
        value = self.raw(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            self.bad(key, expected, value)
            return default
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(key, default)
        if value not in choices:
            self.bad(key, "one of " + ", ".join(choices), value)
            return default
        return str(value)

    def integers(self, key: str, default: tuple[int, ...], low: int, high: int) -> tuple[int, ...]:
        value = self.raw(key, list(default))
        ok = (
            isinstance(value, list)
            and 0 < len(value) <= 16
            and all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in value)
            and all(a < b for a, b in itertools.pairwise(value))
        )
        if not ok:
            self.bad(key, f"1 to 16 strictly ascending integers from {low} to {high}", value)
            return default
        return tuple(value)

    def strings(
        self,
        key: str,
        default: tuple[str, ...],
        check: Callable[[str], bool] = lambda v: True,
        expected: str = "a list of strings",
    ) -> tuple[str, ...]:
        value = self.raw(key, list(default))
        ok = isinstance(value, list) and all(isinstance(v, str) and check(v) for v in value)
        if not ok or len(set(value)) != len(value):
            self.bad(key, expected + " without repeats", value)
            return default
        return tuple(value)


# Keys in the `image-cdn:` namespace; anything else there is reported (a typo would
# otherwise silently fall back to a default).
KEYS = (
    "namePrefix",
    "fallbackRegion",
    "widths",
    "qualities",
    "defaultQuality",
    "qualityTarget",
    "formats",
    "standardFormats",
    "variantExpiryDays",
    "priceClass",
    "rewriteMemoryMb",
    "resizeMemoryMb",
    "resizeTimeoutSeconds",
    "protectOriginals",
    "logRetentionDays",
    "logRegions",
    "waf",
    "wafRateLimit",
    "corsOrigins",
    "domainName",
    "certificateArn",
    "hostedZoneId",
    "maxInputBytes",
    "maxPixels",
    "maxFrames",
    "errorCachingSeconds",
    "browserCacheSeconds",
    "fallbackCacheSeconds",
    "originConnectionAttempts",
    "originConnectionTimeout",
    "syncSchedule",
    "syncMemoryMb",
    "syncConcurrency",
    "syncReservedConcurrency",
    "syncBatchSize",
    "syncToleratedFailurePercent",
    "syncInventory",
    "monitoring",
    "alarmEmails",
    "alarmWebhooks",
    "defaultImage",
    "catalog",
    "catalogAuth",
    "catalogJwtIssuer",
    "catalogJwtAudiences",
    "catalogJwtScopes",
    "maxUploadBytes",
    "signing",
    "signingKeyGeneration",
    "presets",
    "presetsOnly",
    "clientHints",
    "crops",
    "facesRegion",
    "watermark",
    "primaryOrigin",
    "originalsSource",
)
CATALOG_AUTH = ("iam", "jwt")
# A presigned POST uploads at most 5 GB (S3's single-upload limit).
MAX_UPLOAD_LIMIT = 5 * 1024**3


def load(values: Mapping[str, Any], *, project: str, stack: str) -> StackConfig:
    """Validate raw config (`image-cdn:*` keys without the namespace, plus `aws:region`)."""
    defaults = Settings()
    values = dict(values)
    region = values.pop("aws:region", None)
    read = _Reader(values)
    for key in sorted(set(values) - set(KEYS)):
        read.problems.append(f"{NAMESPACE}:{key}: unknown key (known: {', '.join(KEYS)})")

    if not isinstance(region, str) or not _REGION.fullmatch(region):
        read.problems.append(f"aws:region: expected an AWS region such as eu-west-1, got {json.dumps(region)}")
        region = "us-east-1"
    fallback_region = read.text("fallbackRegion", None, _REGION, "an AWS region such as us-west-2")
    if "fallbackRegion" not in values:
        read.problems.append(f"{NAMESPACE}:fallbackRegion: expected an AWS region other than aws:region, got null")
    elif fallback_region == region:
        read.bad("fallbackRegion", f"a region other than aws:region ({region})", fallback_region)

    widths = read.integers("widths", defaults.widths, 1, 8192)
    qualities = read.integers("qualities", defaults.qualities, 1, 100)
    asked_quality = values.get("defaultQuality", defaults.default_quality)
    default_quality = _quality(read, "defaultQuality", asked_quality, qualities)
    if default_quality is None:
        default_quality = defaults.default_quality
    # Naming a target turns q=auto on; `defaultQuality: auto` without one aims at "good".
    quality_target = str(values.get("qualityTarget", "")) and read.choice("qualityTarget", "good", QUALITY_TARGETS)
    if default_quality == AUTO and not quality_target:
        quality_target = "good"
    formats = read.strings(
        "formats", defaults.formats, lambda v: v in FORMATS, "a list drawn from " + ", ".join(FORMATS)
    )
    if not formats:
        read.bad("formats", "at least one format", [])
    standard_formats = read.strings(
        "standardFormats", defaults.standard_formats, lambda v: v in formats, "a non-empty list drawn from formats"
    )
    if not standard_formats:
        read.bad("standardFormats", "at least one format", [])
    unserved = [fmt for fmt in formats if standard_formats and not set(SUBSTITUTES[fmt]) & set(standard_formats)]
    if unserved:
        # During an outage the fallback may serve only a format the client decodes.
        needs = "; ".join(f"for {fmt} one of {', '.join(SUBSTITUTES[fmt])}" for fmt in unserved)
        read.bad(
            "standardFormats",
            f"a format a client asking for {' or '.join(unserved)} decodes ({needs}), so the fallback can serve it",
            list(standard_formats),
        )

    domain_name = read.text("domainName", None, re.compile(r"([a-z0-9-]+\.)+[a-z]{2,}"), "a DNS name")
    certificate_arn = read.text(
        "certificateArn",
        None,
        re.compile(r"arn:aws:acm:us-east-1:[0-9]{12}:certificate/.+"),
        "an ACM certificate ARN in us-east-1 (CloudFront only reads certificates there)",
    )
    hosted_zone_id = read.text("hostedZoneId", None, re.compile(r"Z[A-Z0-9]{1,32}"), "a Route 53 hosted zone id")
    if domain_name and not ({"certificateArn", "hostedZoneId"} & set(values)):
        read.bad(
            "domainName", "certificateArn or hostedZoneId set beside it (to find or issue a certificate)", domain_name
        )
    if ({"certificateArn", "hostedZoneId"} & set(values)) and "domainName" not in values:
        read.problems.append(
            f"{NAMESPACE}:domainName: expected a DNS name when certificateArn or hostedZoneId is set, got null"
        )

    price_class = read.choice("priceClass", "PriceClass_100", PRICE_CLASSES)
    max_input_bytes = read.integer("maxInputBytes", defaults.max_input_bytes, 1024, 200 * 1024 * 1024)
    default_image = read.text("defaultImage", None, expected="a key below originals/, such as site/missing.png")
    if default_image is not None:
        try:
            variants.validate_key(default_image)
            if "*" in default_image or "?" in default_image:  # it is written into IAM resources
                raise variants.VariantError("defaultImage", "a key without * or ?", default_image)
        except variants.VariantError as problem:
            read.bad("defaultImage", f"a key below originals/ ({problem.expected})", default_image)
            default_image = None
    catalog = _catalog(read, values, max_input_bytes)
    features = _features(read, values, widths, qualities, default_quality)
    name_prefix = values.get("namePrefix", f"{project}-{stack}")
    primary = _primary_origin(read, formats, features, default_image, str(name_prefix), str(region))
    # The sync function's share of the Region's concurrency pool, which Lambda@Edge replicas there
    # share too ("Restrictions on Lambda@Edge"; "Lambda function scaling": reserved concurrency is
    # both a floor and a ceiling): the reconcile's batches never take more than that.
    sync_reserved = read.integer("syncReservedConcurrency", 20, 1, 10_000)
    sync_concurrency = read.integer("syncConcurrency", 10, 1, 10_000)
    if sync_concurrency > sync_reserved and "syncConcurrency" not in {p.split(":")[1] for p in read.problems}:
        read.problems.append(
            f"{NAMESPACE}:syncConcurrency: expected at most syncReservedConcurrency ({sync_reserved}), the sync "
            f"function's reserved concurrency, got {sync_concurrency}"
        )
    config = StackConfig(
        project=project,
        stack=stack,
        primary_region=region,
        fallback_region=fallback_region or "",
        name_prefix=read.text(
            "namePrefix",
            f"{project}-{stack}",
            _PREFIX,
            "3 to 45 lowercase letters, digits or hyphens (it prefixes bucket names)",
        )
        or f"{project}-{stack}",
        widths=widths,
        qualities=qualities,
        default_quality=default_quality,
        quality_target=quality_target,
        formats=formats,
        standard_formats=standard_formats,
        variant_expiry_days=read.integer("variantExpiryDays", 30, 1, 3650),
        price_class=price_class,
        rewrite_memory_mb=read.integer("rewriteMemoryMb", 128, 128, 10240),
        resize_memory_mb=read.integer("resizeMemoryMb", 1536, 128, 10240),
        resize_timeout_seconds=read.integer("resizeTimeoutSeconds", 30, 1, 30),
        protect_originals=read.boolean("protectOriginals", False),
        log_retention_days=read.integer_choice("logRetentionDays", 14, LOG_RETENTION_DAYS),
        log_regions=read.strings(
            "logRegions", edge_log_regions(price_class), lambda v: bool(_REGION.fullmatch(v)), "a list of AWS regions"
        ),
        waf=read.boolean("waf", False),
        waf_rate_limit=read.integer("wafRateLimit", 2000, 10, 2_000_000_000),
        cors_origins=read.strings(
            "corsOrigins", ("*",), lambda v: v == "*" or v.startswith("https://"), "a list of '*' or https:// origins"
        ),
        domain_name=domain_name,
        certificate_arn=certificate_arn,
        hosted_zone_id=hosted_zone_id,
        max_input_bytes=max_input_bytes,
        max_pixels=read.integer("maxPixels", defaults.max_pixels, 1, 178_000_000),
        max_frames=read.integer("maxFrames", defaults.max_frames, 1, 10_000),
        error_caching_seconds=read.integer("errorCachingSeconds", 5, 0, 300),
        browser_cache_seconds=read.integer("browserCacheSeconds", defaults.browser_cache_seconds, 0, 31_536_000),
        fallback_cache_seconds=read.integer("fallbackCacheSeconds", defaults.fallback_cache_seconds, 1, 3600),
        origin_connection_attempts=read.integer("originConnectionAttempts", 1, 1, 3),
        origin_connection_timeout=read.integer("originConnectionTimeout", 2, 1, 10),
        sync_schedule=read.text(
            "syncSchedule", "rate(1 day)", _SCHEDULE, "an EventBridge schedule such as rate(1 day) or cron(0 3 * * ? *)"
        )
        or "rate(1 day)",
        sync_memory_mb=read.integer("syncMemoryMb", 1024, 128, 10240),
        # A Distributed Map runs at most 10,000 children at once; each runs one invocation at a time.
        sync_concurrency=sync_concurrency,
        sync_reserved_concurrency=sync_reserved,
        sync_batch_size=read.integer("syncBatchSize", 10, 1, 100),
        sync_tolerated_failure_percent=read.integer("syncToleratedFailurePercent", 5, 0, 100),
        sync_inventory=read.boolean("syncInventory", False),
        monitoring=read.boolean("monitoring", False),
        alarm_emails=read.strings("alarmEmails", (), lambda v: bool(_EMAIL.fullmatch(v)), "a list of email addresses"),
        alarm_webhooks=read.strings(
            "alarmWebhooks", (), lambda v: bool(_WEBHOOK.fullmatch(v)), "a list of https:// URLs (chat webhooks)"
        ),
        default_image=default_image,
        **catalog,
        **features,
        **primary,
    )
    if read.problems:
        raise ConfigError(read.problems)
    return config


def _catalog(read: _Reader, values: Mapping[str, Any], max_input_bytes: int) -> dict[str, Any]:
    """The catalogue's keys: on by default, and then its API's authorizer must be named."""
    enabled = read.boolean("catalog", True)
    jwt_keys = [k for k in ("catalogJwtIssuer", "catalogJwtAudiences", "catalogJwtScopes") if k in values]
    auth = None
    if "catalogAuth" in values or enabled:
        auth = read.raw("catalogAuth", None)
        if auth not in CATALOG_AUTH:
            read.bad(
                "catalogAuth",
                "iam or jwt: who may call the catalogue's API (IAM-signed requests, or a JWT from "
                "catalogJwtIssuer); there is no default, and no way to turn it off",
                auth,
            )
            auth = None
    issuer = read.text(
        "catalogJwtIssuer", None, re.compile(r"https://[^\s/]+(/\S*)?"), "the issuer's https:// URL (its iss claim)"
    )
    audiences = read.strings("catalogJwtAudiences", (), lambda v: bool(v), "a list of audiences (aud or client_id)")
    scopes = read.strings("catalogJwtScopes", (), lambda v: bool(re.fullmatch(r"\S+", v)), "a list of OAuth scopes")
    if auth == "jwt":
        if issuer is None:
            read.problems.append(f"{NAMESPACE}:catalogJwtIssuer: expected the issuer's https:// URL, got null")
        if not audiences and not any(p.startswith(f"{NAMESPACE}:catalogJwtAudiences:") for p in read.problems):
            read.bad("catalogJwtAudiences", "at least one audience (aud or client_id)", list(audiences))
    elif jwt_keys:
        for key in jwt_keys:
            read.bad(key, "to be set only beside catalogAuth: jwt", values[key])
    max_upload = read.integer("maxUploadBytes", min(50 * 1024 * 1024, max_input_bytes), 1024, MAX_UPLOAD_LIMIT)
    if max_upload > max_input_bytes:
        read.bad(
            "maxUploadBytes", f"at most maxInputBytes ({max_input_bytes}): an upload the CDN can render", max_upload
        )
    return {
        "catalog": enabled,
        "catalog_auth": auth,
        "catalog_jwt_issuer": issuer,
        "catalog_jwt_audiences": audiences,
        "catalog_jwt_scopes": scopes,
        "max_upload_bytes": max_upload,
    }


_PRESET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_PRESET_KEYS = {"w", "h", "q", "fit", "crop"}


def _key(read: _Reader, name: str, value: Any) -> str | None:
    """A key below originals/ that is also safe inside an IAM resource."""
    try:
        if not isinstance(value, str):
            raise variants.VariantError(name, "a string", value)
        variants.validate_key(value)
        if "*" in value or "?" in value:
            raise variants.VariantError(name, "a key without * or ?", value)
        return value
    except variants.VariantError as problem:
        read.bad(name, f"a key below originals/ ({problem.expected})", value)
        return None


def _quality(read: _Reader, key: str, value: Any, qualities: tuple[int, ...]) -> int | None:
    """A quality from `qualities`, or `auto` (AUTO: the renderer picks it per variant, `qualityTarget`)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return AUTO
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        value = int(value)
    if isinstance(value, bool) or value not in qualities:
        read.bad(key, f"auto or one of the qualities {list(qualities)}", value)
        return None
    return int(value)


def _features(
    read: _Reader, values: Mapping[str, Any], widths: tuple[int, ...], qualities: tuple[int, ...], default_quality: int
) -> dict[str, Any]:
    """Signed URLs, presets, client hints, crops and the watermark (issue 13's keys)."""
    crops = read.strings(
        "crops", ("center", "entropy", "attention"), lambda v: v in CROPS, "a list drawn from " + ", ".join(CROPS)
    )
    if "center" not in crops:
        read.bad("crops", "a list that includes center (the default crop)", list(crops))
    presets = []
    raw = read.raw("presets", {})
    if not isinstance(raw, dict):
        read.bad("presets", "a map of name -> {w, h, q, fit, crop}", raw)
        raw = {}
    for name, spec in raw.items():
        where = f"presets.{name}"
        if not _PRESET_NAME.fullmatch(str(name)):
            read.bad("presets", "preset names of lowercase letters, digits, - and _ (at most 32)", name)
            continue
        if not isinstance(spec, dict) or not spec.keys() <= _PRESET_KEYS or "w" not in spec:
            read.bad(where, "{w, and optionally h, q, fit, crop}", spec)
            continue
        w, h = spec.get("w"), spec.get("h")
        fit, crop = spec.get("fit", "cover"), spec.get("crop", "center")
        good = True
        for key, value in (("w", w), ("h", h)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 8192):
                read.bad(f"{where}.{key}", "an integer from 1 to 8192", value)
                good = False
        q = _quality(read, f"{where}.q", spec["q"], qualities) if "q" in spec else default_quality
        if q is None:
            good = False
        if fit not in FITS:
            read.bad(f"{where}.fit", "one of " + ", ".join(FITS), fit)
            good = False
        if crop not in crops:
            read.bad(f"{where}.crop", "one of the stack's crops " + ", ".join(crops), crop)
            good = False
        if good:
            presets.append((str(name), int(w), h, int(q), str(fit), str(crop)))  # type: ignore[arg-type]
    presets_only = read.boolean("presetsOnly", False)
    if presets_only and not presets:
        read.bad("presetsOnly", "presets to serve (set presets beside it)", True)
    watermark: dict[str, Any] = {}
    mark = read.raw("watermark", None)
    if mark is not None:
        allowed = {"image", "minWidth", "position", "margin", "opacity", "scale"}
        if not isinstance(mark, dict) or "image" not in mark or not mark.keys() <= allowed:
            read.bad("watermark", "{image, and optionally minWidth, position, margin, opacity, scale}", mark)
        else:
            image = _key(read, "watermark.image", mark["image"])
            min_width = mark.get("minWidth", 640)
            if isinstance(min_width, bool) or not isinstance(min_width, int) or not 1 <= min_width <= max(widths):
                read.bad("watermark.minWidth", f"an integer from 1 to {max(widths)} (the largest width)", min_width)
            position = mark.get("position", "bottom-right")
            if position not in POSITIONS:
                read.bad("watermark.position", "one of " + ", ".join(POSITIONS), position)
            margin = mark.get("margin", 16)
            if isinstance(margin, bool) or not isinstance(margin, int) or not 0 <= margin <= 512:
                read.bad("watermark.margin", "an integer from 0 to 512 (pixels)", margin)
            opacity = mark.get("opacity", 0.5)
            if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0 < opacity <= 1:
                read.bad("watermark.opacity", "a number above 0 and at most 1", opacity)
            scale = mark.get("scale", 0.2)
            if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
                read.bad("watermark.scale", "a number above 0 and at most 1 (of the variant's width)", scale)
            watermark = {
                "watermark": image,
                "watermark_min_width": min_width,
                "watermark_position": position,
                "watermark_margin": margin,
                "watermark_opacity": float(opacity),
                "watermark_scale": float(scale),
            }
    faces_region = read.text("facesRegion", None, _REGION, "an AWS region where Amazon Rekognition runs")
    if faces_region and "faces" not in crops:
        read.bad("facesRegion", "to be set only when crops include faces", faces_region)
    return {
        "signing": read.choice("signing", "off", ("off", "optional", "required")),
        "signing_key_generation": read.integer("signingKeyGeneration", 1, 1, 999_999),
        "presets": tuple(presets),
        "presets_only": presets_only,
        "client_hints": read.boolean("clientHints", False),
        "crops": crops,
        "faces_region": faces_region,
        **watermark,
    }


_HOST = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PRIMARY_KEYS = {"kind", "domain", "urlTemplate", "pathPrefix", "keySecret", "source", "readTimeout", "protocol"}
_SOURCE_KEYS = {"kind", "location", "readBuckets"}
SOURCE_KINDS = ("s3", "jsonl", "sitemap")


def _primary_origin(
    read: _Reader,
    formats: tuple[str, ...],
    features: dict[str, Any],
    default_image: str | None,
    name_prefix: str,
    region: str = "",
) -> dict[str, Any]:
    """`primaryOrigin` (our bucket and renderer, or a third-party image service over HTTPS) and
    `originalsSource` (what lists the originals for the sync job)."""
    from edge import templates

    raw = read.raw("primaryOrigin", {"kind": "s3"})
    if not isinstance(raw, dict) or raw.get("kind") not in ("s3", "http"):
        read.bad("primaryOrigin", "{kind: s3} or {kind: http, domain, urlTemplate, ...}", raw)
        raw = {"kind": "s3"}
    found: dict[str, Any] = {"primary_kind": raw["kind"]}
    unknown = sorted(set(raw) - _PRIMARY_KEYS)
    if unknown:
        read.bad("primaryOrigin", "keys among " + ", ".join(sorted(_PRIMARY_KEYS)), unknown)
    if raw["kind"] == "s3":
        extra = sorted(set(raw) - {"kind"})
        if extra:
            read.bad("primaryOrigin", "no other key with kind: s3 (they describe an http origin)", extra)
    else:
        found.update(_http_origin(read, raw, formats, features, default_image, templates, region))
    source = read.raw("originalsSource", {"kind": "s3"})
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS or not set(source) <= _SOURCE_KEYS:
        read.bad("originalsSource", "{kind: s3} or {kind: jsonl | sitemap, location, readBuckets}", source)
        return found
    found["originals_source"] = source["kind"]
    if source["kind"] != "s3" and found["primary_kind"] != "http":
        read.bad(
            "originalsSource",
            "kind: s3 while primaryOrigin is kind s3 (our renderer reads the originals from originals/)",
            source,
        )
        return found
    if source["kind"] == "s3":
        if set(source) != {"kind"}:
            read.bad("originalsSource", "no other key with kind: s3 (originals/ in the primary bucket)", source)
        return found
    location = source.get("location")
    if not isinstance(location, str) or not location.startswith(("s3://", "https://")):
        read.bad("originalsSource.location", "s3://bucket/key or an https:// URL (TLS only)", location)
        return found
    found["originals_location"] = location
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://") :].partition("/")
        readable = source.get("readBuckets", [])
        if not isinstance(readable, list) or not all(isinstance(b, str) and _BUCKET.fullmatch(b) for b in readable):
            read.bad("originalsSource.readBuckets", "a list of bucket names the sync job may read", readable)
            readable = []
        primary_bucket = f"{name_prefix}-origin"
        if not _BUCKET.fullmatch(bucket) or not key or "*" in key or "?" in key:
            read.bad("originalsSource.location", "s3://bucket/key, a single object", location)
        elif bucket != primary_bucket and bucket not in readable:
            # The sync job's role is granted s3:GetObject on exactly this object; a bucket the stack
            # does not own must be named, so nobody grants reading another team's bucket by a typo.
            read.bad(
                "originalsSource.location",
                f"an object in the primary bucket ({primary_bucket}) or in a bucket listed in "
                "originalsSource.readBuckets (the sync job is granted s3:GetObject on it)",
                location,
            )
        elif bucket == primary_bucket and key.startswith((ORIGINAL_PREFIX, VARIANT_PREFIX)):
            read.bad("originalsSource.location", "a key outside originals/ and variants/", location)
    elif source.get("readBuckets"):
        read.bad("originalsSource.readBuckets", "to be set only for an s3:// location", source["readBuckets"])
    return found


def _http_origin(
    read: _Reader,
    raw: dict[str, Any],
    formats: tuple[str, ...],
    features: dict[str, Any],
    default_image: str | None,
    templates: Any,
    region: str = "",
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    protocol = raw.get("protocol", "https")
    if protocol != "https":
        read.bad("primaryOrigin.protocol", "https (CloudFront reaches the service over TLS only)", protocol)
    domain = raw.get("domain")
    if isinstance(domain, str) and domain.startswith("http://"):
        read.bad("primaryOrigin.domain", "a host name served over HTTPS (no http://)", domain)
    elif not isinstance(domain, str) or not _HOST.fullmatch(domain):
        read.bad("primaryOrigin.domain", "the service's host name, such as assets.imgix.net", domain)
    else:
        found["primary_domain"] = domain
    template = raw.get("urlTemplate")
    crops, signed = features["crops"], None
    if template in templates.SERVICES:
        found["primary_template"] = template
        signed = template in templates.SIGNED
        if template == "thumbor" and "jxl" in formats:
            # thumbor's format() filter writes no JPEG XL; imgix (fm=jxl), Cloudinary (f_jxl) and
            # imgproxy (@jxl) do.
            read.bad("formats", "formats thumbor encodes (no jxl with a thumbor primary)", list(formats))
    elif isinstance(template, str) and template.startswith("/"):
        named = templates.placeholders(template)
        unknown = sorted(set(named) - set(templates.PLACEHOLDERS))
        missing = templates.missing_placeholders(template, crops=crops, formats=formats)
        if unknown:
            read.bad(
                "primaryOrigin.urlTemplate",
                "placeholders among " + ", ".join("{" + p + "}" for p in templates.PLACEHOLDERS),
                template,
            )
        elif missing:
            read.bad(
                "primaryOrigin.urlTemplate",
                f"a template that expresses {', '.join('{' + m + '}' for m in missing)} "
                f"(the stack's variants carry it: formats {list(formats)}, crops {list(crops)})",
                template,
            )
        else:
            found["primary_template"] = template
        signed = False
    else:
        read.bad(
            "primaryOrigin.urlTemplate",
            "imgix, cloudinary, thumbor, imgproxy, or a path starting with / with placeholders "
            + " ".join("{" + p + "}" for p in templates.PLACEHOLDERS),
            template,
        )
    secret = raw.get("keySecret")
    if signed and not (isinstance(secret, str) and re.fullmatch(r"[A-Za-z0-9/_+=.@:-]{1,2048}", secret)):
        read.bad(
            "primaryOrigin.keySecret",
            f"the name or ARN of the Secrets Manager secret holding {template}'s URL signing key "
            "(never the key itself)",
            secret,
        )
    elif signed is False and secret is not None:
        read.bad("primaryOrigin.keySecret", "to be set only for thumbor or imgproxy (signed URLs)", secret)
    elif (
        signed
        and isinstance(secret, str)
        and secret.startswith("arn:")
        and not re.fullmatch(
            rf"arn:aws[a-z-]*:secretsmanager:{re.escape(region)}:[0-9]{{12}}:secret:.+-[A-Za-z0-9]{{6}}", secret
        )
    ):
        # The sync function reads it at run time in its own region and is granted exactly this ARN: a
        # partial ARN ("You can specify a partial ARN too", SecretId) would never match the grant.
        read.bad(
            "primaryOrigin.keySecret",
            f"a secret's name, or its full ARN in {region} (ending in the six characters Secrets Manager adds)",
            secret,
        )
    else:
        found["primary_key_secret"] = secret
    source = raw.get("source")
    if template == "imgproxy":
        if not isinstance(source, str) or not re.fullmatch(r"(s3|https|gs|abs|local)://\S+", source):
            read.bad("primaryOrigin.source", "where imgproxy reads originals, such as s3://bucket/originals", source)
        else:
            found["primary_source"] = source
    elif source is not None:
        read.bad("primaryOrigin.source", "to be set only for imgproxy", source)
    prefix = raw.get("pathPrefix", "")
    if not isinstance(prefix, str) or (prefix and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix)):
        read.bad("primaryOrigin.pathPrefix", "a path such as /demo (letters, digits, . _ ~ -)", prefix)
    else:
        found["primary_path"] = prefix
    timeout = raw.get("readTimeout", 10)
    # CloudFront's origin response timeout is 1 to 60 seconds (120 with a quota increase); a
    # short one fails over sooner when the service hangs.
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 60:
        read.bad("primaryOrigin.readTimeout", "an integer from 1 to 60 (seconds)", timeout)
    else:
        found["primary_read_timeout"] = timeout
    # What our renderer does and a third-party service does not do for us.
    if features.get("watermark"):
        read.bad(
            "watermark", "no watermark with primaryOrigin kind http (the service draws its own)", features["watermark"]
        )
    if default_image:
        read.bad(
            "defaultImage", "no default image with primaryOrigin kind http (the service answers a miss)", default_image
        )
    return found

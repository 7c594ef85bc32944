"""What the stack's config derives: the edge's settings, the regions Lambda@Edge logs in, and the
facts of the deployed stack that its local stand-ins (the emulator, the operator commands) repeat.

`StackConfig` is the checked config (components/config/validate.py builds it); `edge_settings()`
is what every function and the viewer function run with. Nothing here imports the Pulumi SDK:
`make serve` and the operator commands run without it installed (tests/test_serve_install.py);
the components import these from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edge.settings import CDN_CACHE_SECONDS, Settings

PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")
# Where Lambda@Edge runs, and so writes its logs: the AWS regions of CloudFront's regional
# edge caches ("Edge function logs": log streams are created "in the AWS Regions where
# the functions are invoked"), by the price class whose edge locations they serve. AWS
# publishes the regional edge caches by city; these are their regions.
EDGE_LOG_REGIONS = {
    "PriceClass_100": ("us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-central-1", "eu-west-1", "eu-west-2"),
    "PriceClass_200": ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1"),
    "PriceClass_All": ("ap-southeast-2", "sa-east-1"),
}


def edge_log_regions(price_class: str) -> tuple[str, ...]:
    """Every region whose regional edge cache serves the price class's edge locations."""
    regions: list[str] = []
    for name in PRICE_CLASSES[: PRICE_CLASSES.index(price_class) + 1]:
        regions.extend(EDGE_LOG_REGIONS[name])
    return tuple(regions)


@dataclass(frozen=True)
class StackConfig:
    """Everything the program needs to know about one stack, typed and checked."""

    project: str
    stack: str
    primary_region: str
    fallback_region: str
    name_prefix: str
    widths: tuple[int, ...]
    qualities: tuple[int, ...]
    default_quality: int
    """A number from `qualities`, or AUTO (`defaultQuality: auto`)."""
    formats: tuple[str, ...]
    standard_formats: tuple[str, ...]
    variant_expiry_days: int
    price_class: str
    rewrite_memory_mb: int
    resize_memory_mb: int
    resize_timeout_seconds: int
    protect_originals: bool
    log_retention_days: int
    log_regions: tuple[str, ...]
    waf: bool
    waf_rate_limit: int
    cors_origins: tuple[str, ...]
    domain_name: str | None
    certificate_arn: str | None
    hosted_zone_id: str | None
    max_input_bytes: int
    max_pixels: int
    max_frames: int
    error_caching_seconds: int
    browser_cache_seconds: int
    fallback_cache_seconds: int
    origin_connection_attempts: int
    origin_connection_timeout: int
    sync_schedule: str
    sync_memory_mb: int
    sync_concurrency: int
    sync_batch_size: int
    sync_tolerated_failure_percent: int
    sync_inventory: bool
    sync_reserved_concurrency: int = 20
    default_image: str | None = None
    catalog: bool = False
    catalog_auth: str | None = None
    catalog_jwt_issuer: str | None = None
    catalog_jwt_audiences: tuple[str, ...] = ()
    catalog_jwt_scopes: tuple[str, ...] = ()
    max_upload_bytes: int = 50 * 1024 * 1024
    signing: str = "off"
    signing_key_generation: int = 1
    presets: tuple[tuple[str, int, int | None, int, str, str], ...] = ()
    presets_only: bool = False
    client_hints: bool = False
    crops: tuple[str, ...] = ("center", "entropy", "attention")
    faces_region: str | None = None
    watermark: str | None = None
    watermark_min_width: int = 640
    watermark_position: str = "bottom-right"
    watermark_margin: int = 16
    watermark_opacity: float = 0.5
    watermark_scale: float = 0.2
    primary_kind: str = "s3"
    primary_domain: str | None = None
    primary_template: str = ""
    primary_path: str = ""
    primary_key_secret: str | None = None
    primary_source: str = ""
    primary_read_timeout: int = 10
    originals_source: str = "s3"
    originals_location: str = ""
    monitoring: bool = False
    alarm_emails: tuple[str, ...] = ()
    alarm_webhooks: tuple[str, ...] = ()
    quality_target: str = ""

    @property
    def primary_bucket(self) -> str:
        return f"{self.name_prefix}-origin"

    @property
    def fallback_bucket(self) -> str:
        return f"{self.name_prefix}-fallback"

    def function_name(self, role: str) -> str:
        return f"{self.name_prefix}-{role}"

    def edge_settings(self) -> Settings:
        """What the edge functions, the viewer function and the sync job run with."""
        return Settings(
            widths=self.widths,
            qualities=self.qualities,
            default_quality=self.default_quality,
            quality_target=self.quality_target,
            formats=self.formats,
            standard_formats=self.standard_formats,
            primary_bucket=self.primary_bucket,
            primary_region=self.primary_region,
            fallback_bucket=self.fallback_bucket,
            fallback_region=self.fallback_region,
            max_input_bytes=self.max_input_bytes,
            max_pixels=self.max_pixels,
            max_frames=self.max_frames,
            error_cache_seconds=self.error_caching_seconds,
            browser_cache_seconds=self.browser_cache_seconds,
            fallback_cache_seconds=self.fallback_cache_seconds,
            cors_origins=self.cors_origins,
            default_image=self.default_image or "",
            presets=self.presets,
            presets_only=self.presets_only,
            client_hints=self.client_hints,
            crops=self.crops,
            signing=self.signing,
            watermark=self.watermark or "",
            watermark_min_width=self.watermark_min_width,
            watermark_position=self.watermark_position,
            watermark_margin=self.watermark_margin,
            watermark_opacity=self.watermark_opacity,
            watermark_scale=self.watermark_scale,
            faces_region=self.faces_region or (self.primary_region if "faces" in self.crops else ""),
            primary_kind=self.primary_kind,
            primary_domain=self.primary_domain or "",
            primary_template=self.primary_template,
            primary_path=self.primary_path,
            service_source=self.primary_source,
            originals_source=self.originals_source,
            originals_location=self.originals_location,
        )

    @property
    def originals_object(self) -> tuple[str, str] | None:
        """(bucket, key) of an S3 manifest or sitemap listing the originals, else None."""
        if self.originals_location.startswith("s3://"):
            bucket, _, key = self.originals_location[len("s3://") :].partition("/")
            return bucket, key
        return None


# The deployed stack's facts, which the emulator and the operator commands repeat.

# -- FailoverDistribution ------------------------------------------------------------------------

FAILOVER_STATUS_CODES = [500, 502, 503, 504]
ERROR_CODES = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]
ONE_YEAR = CDN_CACHE_SECONDS
ONE_DAY = 86_400

# -- UrlSigning ------------------------------------------------------------------------------------

# Secrets Manager keeps a deleted secret this long before it is gone (7 is its minimum).
RECOVERY_DAYS = 7

# The secret's name ends in 8 hex characters drawn once per stack (a RandomId of 4 bytes, kept in
# state). A secret scheduled for deletion keeps its name for its whole recovery window: CreateSecret
# answers "You can't create this secret because a secret with this name is already scheduled for
# deletion" (quoted in terraform-provider-aws issue #10259, "aws_secretsmanager_secret does not
# rebuild deleted secret"), and even a forced delete frees the name only after "a short delay"
# (DeleteSecret, AWS Secrets Manager API Reference, ForceDeleteWithoutRecovery). With a fixed name,
# a destroyed stack's secret would block the next `pulumi up` of the same stack for RECOVERY_DAYS;
# a destroy drops the RandomId and the next up draws another name, so the window stays 7 days (the
# policy pack's "no secret without a recovery window"). Not 6 characters: "Do not end your secret
# name with a hyphen followed by six characters" (CreateSecret, Name: Secrets Manager appends
# those to the ARN, and a partial-ARN lookup would misread them).
SUFFIX_BYTES = 4
_SUFFIX = re.compile(r"[0-9a-f]{8}")


def secret_prefix(name_prefix: str) -> str:
    """What every name of the stack's signing secret starts with: `<prefix>-signing-`."""
    return f"{name_prefix}-signing-"


def secret_name(name_prefix: str, suffix: str) -> str:
    """The signing secret's name: `<prefix>-signing-<8 hex characters>`."""
    return secret_prefix(name_prefix) + suffix


def is_secret_name(name: str, name_prefix: str) -> bool:
    """Whether `name` is one UrlSigning (or the emulator) gives the stack's secret."""
    prefix = secret_prefix(name_prefix)
    return name.startswith(prefix) and _SUFFIX.fullmatch(name[len(prefix) :]) is not None


class SecretLookupError(Exception):
    """No live signing secret for a prefix, or more than one."""


def find_secret(client: Any, name_prefix: str) -> str:
    """The name of the stack's live signing secret, found with `client` (boto3's Secrets Manager).

    ListSecrets with a `name` filter: "Prefix match, case-sensitive" (Filter, AWS Secrets Manager
    API Reference), and "By default, secrets scheduled for deletion aren't included"
    (ListSecrets, IncludePlannedDeletion): a destroyed stack's secret, in its recovery window, is
    left out. ListSecrets "might not reflect changes from the last five minutes" (same page), so
    two names are checked again with DescribeSecret, which is current: one with a DeletedDate is
    being deleted. None, or more than one live: SecretLookupError, naming them.
    """
    prefix = secret_prefix(name_prefix)
    where = f"{prefix}* in {getattr(getattr(client, 'meta', None), 'region_name', None) or 'its region'}"
    pages = client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}])
    listed = {str(entry["Name"]) for page in pages for entry in page["SecretList"]}
    names = sorted(name for name in listed if is_secret_name(name, name_prefix))
    if len(names) > 1:
        names = [name for name in names if not client.describe_secret(SecretId=name).get("DeletedDate")]
    if not names:
        raise SecretLookupError(f"no live secret {where} (is the stack up? ListSecrets can lag by five minutes)")
    if len(names) > 1:
        raise SecretLookupError(
            f"{len(names)} live secrets match {where}: {', '.join(names)}; one stack per prefix: delete the stray one"
        )
    return names[0]


def slots(generation: int) -> dict[str, int]:
    """Which key id each of the two slots holds at a generation: odd ids in "a", even ids in "b".

    The current key is `generation`; the previous one (`generation - 1`) stays in the other
    slot, so a URL signed before a rotation keeps working until the rotation after it.
    """
    held = {("a" if kid % 2 else "b"): kid for kid in (generation, generation - 1) if kid >= 1}
    return dict(sorted(held.items()))

"""One stack of the service: the components wired together from a `StackConfig`."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.catalog import ImageCatalog, ImageCatalogArgs
from components.config import StackConfig
from components.distribution import FailoverDistribution
from components.edge_functions import EdgeFunctions, EdgeFunctionsArgs
from components.fallback_bucket import FallbackBucket
from components.firewall import EdgeFirewall
from components.image_origin import ImageOrigin
from components.image_settings import settings_args
from components.monitoring import Monitoring, reconcile_labels
from components.signing import UrlSigning, UrlSigningArgs
from components.sync_job import SyncJob, SyncJobArgs


def _invoke(opts: pulumi.ResourceOptions | None) -> pulumi.InvokeOutputOptions:
    """The top-level options' provider for an invoke (a program may pass its own)."""
    return pulumi.InvokeOutputOptions(provider=opts.provider if opts is not None else None)


def build(config: StackConfig, opts: pulumi.ResourceOptions | None = None) -> dict[str, pulumi.Output[str]]:
    """Create every resource of one stack; returns the outputs `__main__` exports.

    `opts` is given to each top-level component (providers, transformations, ...).
    """
    settings = config.edge_settings()
    origin = ImageOrigin(
        "origin",
        {
            "bucket_name": config.primary_bucket,
            "region": config.primary_region,
            "variant_expiry_days": config.variant_expiry_days,
            "protect": config.protect_originals,
        },
        opts,
    )
    fallback = FallbackBucket(
        "fallback", {"bucket_name": config.fallback_bucket, "region": config.fallback_region}, opts
    )
    signing = None
    if config.signing != "off":
        signing_args: UrlSigningArgs = {
            "name_prefix": config.name_prefix,
            "generation": config.signing_key_generation,
            "region": config.primary_region,
        }
        signing = UrlSigning("signing", signing_args, opts)
    edge_args: EdgeFunctionsArgs = {
        "name_prefix": config.name_prefix,
        "settings": settings_args(settings),
        "primary_bucket_arn": origin.bucket_arn,
        "fallback_bucket_arn": fallback.bucket_arn,
        "rewrite_memory_mb": config.rewrite_memory_mb,
        "resize_memory_mb": config.resize_memory_mb,
        "resize_timeout_seconds": config.resize_timeout_seconds,
        "log_retention_days": config.log_retention_days,
        "log_regions": config.log_regions,
    }
    if signing is not None:
        edge_args["key_value_store_arn"] = signing.key_value_store_arn
        edge_args["signing_key_ids"] = signing.key_ids
    if config.primary_key_secret:
        # thumbor's or imgproxy's URL signing key: never in the repository or the stack's config. The
        # rewrite function (Lambda@Edge: no environment, no regional secret at run time) gets it from
        # Secrets Manager at deploy, in its bundle; the sync job (regional) reads it at run time.
        service_key: pulumi.Output[str] = pulumi.Output.secret(
            aws.secretsmanager.get_secret_version_output(
                secret_id=config.primary_key_secret, region=config.primary_region, opts=_invoke(opts)
            ).secret_string.apply(str)
        )
        edge_args["service_key"] = service_key
    edge = EdgeFunctions("edge", edge_args, opts)
    firewall = (
        EdgeFirewall("firewall", {"name_prefix": config.name_prefix, "rate_limit": config.waf_rate_limit}, opts)
        if config.waf
        else None
    )
    primary_domain: pulumi.Input[str] = (
        config.primary_domain
        if config.primary_kind == "http" and config.primary_domain
        else origin.regional_domain_name
    )
    cdn = FailoverDistribution(
        "cdn",
        {
            "name_prefix": config.name_prefix,
            "primary_domain_name": primary_domain,
            "primary_http": config.primary_kind == "http",
            "primary_read_timeout": config.primary_read_timeout,
            "fallback_domain_name": fallback.regional_domain_name,
            "viewer_function_arn": edge.viewer_function_arn,
            "origin_request_arn": edge.rewrite_qualified_arn,
            "origin_response_arn": edge.resize_qualified_arn,
            "price_class": config.price_class,
            "cors_origins": config.cors_origins,
            "error_caching_seconds": config.error_caching_seconds,
            "connection_attempts": config.origin_connection_attempts,
            "connection_timeout": config.origin_connection_timeout,
            "domain_name": config.domain_name,
            "certificate_arn": config.certificate_arn,
            "hosted_zone_id": config.hosted_zone_id,
            "web_acl_arn": firewall.web_acl_arn if firewall else None,
            "forward_viewer_url": config.signing != "off" or config.presets_only,
            "vary": settings.vary,
        },
        opts,
    )
    origin.allow_distribution(cdn.distribution_arn)
    fallback.allow_distribution(cdn.distribution_arn)
    sync_args: SyncJobArgs = {
        "name_prefix": config.name_prefix,
        "settings": settings_args(settings),
        "region": config.primary_region,
        "primary_bucket_name": origin.bucket_name,
        "primary_bucket_arn": origin.bucket_arn,
        "fallback_bucket_arn": fallback.bucket_arn,
        "schedule": config.sync_schedule,
        "memory_mb": config.sync_memory_mb,
        "log_retention_days": config.log_retention_days,
        "distribution_id": cdn.distribution_id,
        "distribution_arn": cdn.distribution_arn,
        "concurrency": config.sync_concurrency,
        "reserved_concurrency": config.sync_reserved_concurrency,
        "batch_size": config.sync_batch_size,
        "tolerated_failure_percent": config.sync_tolerated_failure_percent,
        "inventory": config.sync_inventory,
        "eventbridge": config.catalog,
    }
    if config.primary_key_secret:
        sync_args["service_key_secret"] = config.primary_key_secret
    sync = SyncJob("sync", sync_args, opts)
    monitoring = None
    if config.monitoring:
        monitoring = Monitoring(
            "monitoring",
            {
                "name_prefix": config.name_prefix,
                "distribution_id": cdn.distribution_id,
                "viewer_function_name": edge.viewer_function_name,
                "rewrite_function_name": edge.rewrite_function_name,
                "resize_function_name": edge.resize_function_name,
                "resize_log_group": edge.resize_log_group,
                "edge_regions": config.log_regions,
                "primary_region": config.primary_region,
                "sync_dead_letter_queue_name": sync.dead_letter_queue_name,
                "sync_state_machine_arn": sync.state_machine_arn,
                # The Map labels of the very definition SyncJob builds (its batches' metrics carry them).
                "reconcile_map_labels": reconcile_labels(
                    inventory=config.sync_inventory, source=settings.originals_source
                ),
                "emails": config.alarm_emails,
                "webhooks": config.alarm_webhooks,
                "log_retention_days": config.log_retention_days,
            },
            opts,
        )

    host = pulumi.Output.from_input(config.domain_name) if config.domain_name else cdn.domain_name
    outputs: dict[str, pulumi.Output[str]] = {}
    if config.catalog:
        catalog_args: ImageCatalogArgs = {
            "name_prefix": config.name_prefix,
            "settings": settings_args(settings),
            "region": config.primary_region,
            "primary_bucket_name": origin.bucket_name,
            "primary_bucket_arn": origin.bucket_arn,
            "cdn_url": host.apply(lambda h: f"https://{h}"),
            "auth": config.catalog_auth or "iam",
            "jwt_issuer": config.catalog_jwt_issuer or "",
            "jwt_audiences": config.catalog_jwt_audiences,
            "jwt_scopes": config.catalog_jwt_scopes,
            "cors_origins": config.cors_origins,
            "max_upload_bytes": config.max_upload_bytes,
            "protect": config.protect_originals,
            "log_retention_days": config.log_retention_days,
        }
        if signing is not None:
            catalog_args["signing_secret_arn"] = signing.secret_arn
        catalog = ImageCatalog("catalog", catalog_args, opts)
        outputs.update(
            catalog_api_url=catalog.api_url,
            catalog_table=catalog.table_name,
            catalog_dead_letter_queue=catalog.dead_letter_queue_url,
        )
    if monitoring is not None:
        outputs.update(dashboard_url=monitoring.dashboard_url)
    if signing is not None:
        outputs.update(signing_secret=signing.secret_name, signing_key_value_store=signing.key_value_store_arn)
    return outputs | {
        "distribution_domain": cdn.domain_name,
        "distribution_id": cdn.distribution_id,
        "example_url": host.apply(lambda h: f"https://{h}/products/shoe.jpg?w=800"),
        "primary_bucket": origin.bucket_name,
        "fallback_bucket": fallback.bucket_name,
        "rewrite_version": edge.rewrite_version,
        "resize_version": edge.resize_version,
        # the retained functions' names (`<prefix>-rewrite-<suffix>`): what to keep when deleting old ones
        "rewrite_function": edge.rewrite_function_name,
        "resize_function": edge.resize_function_name,
        "upload_prefix": origin.bucket_name.apply(lambda b: f"s3://{b}/originals/"),
        "sync_function": sync.function_arn,
        "sync_dead_letter_queue": sync.dead_letter_queue_url,
        "sync_state_machine": sync.state_machine_arn,
        "sync_results_bucket": sync.results_bucket,
    }

"""FailoverDistribution: CloudFront in front of the two buckets, failing over between them."""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.config.derive import ERROR_CODES, FAILOVER_STATUS_CODES, ONE_DAY, ONE_YEAR
from edge.resize import VIEWER_URL_HEADER
from edge.rewrite import PRIMARY_ORIGIN_PATH
from edge.settings import EXPOSED_HEADERS as EXPOSED

EXPOSED_HEADERS = list(EXPOSED)


class FailoverDistributionArgs(TypedDict):
    """Arguments of `FailoverDistribution`."""

    name_prefix: str
    """Prefix of the policies' and the origin access controls' names."""
    primary_domain_name: pulumi.Input[str]
    """Regional domain name of the ImageOrigin bucket, or with `primary_http` the service's host name."""
    primary_http: NotRequired[bool]
    """The primary origin is a third-party image service (a custom origin, HTTPS only), not our bucket."""
    primary_read_timeout: NotRequired[int]
    """With `primary_http`: seconds CloudFront waits for the service's response before failing over."""
    fallback_domain_name: pulumi.Input[str]
    """Regional domain name of the FallbackBucket."""
    viewer_function_arn: pulumi.Input[str]
    """The viewer-request CloudFront Function (EdgeFunctions' `viewer_function_arn`)."""
    origin_request_arn: pulumi.Input[str]
    """Qualified (numbered version) ARN of `rewrite`."""
    origin_response_arn: pulumi.Input[str]
    """Qualified (numbered version) ARN of `resize`."""
    price_class: NotRequired[str]
    """PriceClass_100, PriceClass_200 or PriceClass_All (default PriceClass_100)."""
    cors_origins: NotRequired[Sequence[str]]
    """Web origins allowed by CORS; default ["*"] (then the edge answers CORS itself)."""
    error_caching_seconds: NotRequired[int]
    """How long CloudFront caches an error response; default 5."""
    connection_attempts: NotRequired[int]
    """Attempts to reach an origin before failing over (1 to 3); default 1."""
    connection_timeout: NotRequired[int]
    """Seconds per connection attempt (1 to 10); default 2."""
    domain_name: NotRequired[str | None]
    """A custom domain (alias) for the distribution; none by default."""
    certificate_arn: NotRequired[str | None]
    """An ACM certificate in us-east-1 for `domain_name`; or give `hosted_zone_id` to issue one."""
    hosted_zone_id: NotRequired[str | None]
    """A Route 53 zone for `domain_name`: its alias record and DNS-validated certificate are made here."""
    web_acl_arn: NotRequired[pulumi.Input[str] | None]
    """An AWS WAF web ACL (EdgeFirewall's `web_acl_arn`)."""
    vary: NotRequired[str]
    """The policy's `Vary` (default `Accept`; with client hints, the hints too)."""
    forward_viewer_url: NotRequired[bool]
    """Forward the viewer function's `x-image-cdn-url` to the origins (signed URLs, presets only),
    where resize's 302 for a variant too large to return points."""


class FailoverDistribution(pulumi.ComponentResource):
    """The distribution: one cache behaviour on an origin group (primary, then fallback).

    - failover on 500/502/503/504 and on connection failure, abandoning a dead primary
      after `connection_attempts` x `connection_timeout` seconds;
    - an OAC per S3 origin (SigV4, always signed); with `primary_http`, the primary is a
      third-party image service instead: a custom origin, HTTPS and TLSv1.2 only;
    - cache key = the URI alone (the viewer function has put everything in it), long
      TTLs; errors cached for `error_caching_seconds` only, so a primary that comes
      back is seen within seconds;
    - the primary origin's path is `/variants`: the canonical URI is the key below it,
      so origin-request never rewrites the primary's URI (see edge/rewrite.py);
    - response headers: `Vary: Accept`, HSTS, nosniff, Server-Timing on every response,
      CORS (CloudFront's section only for a list of origins; see `_cors`).
      Cache-Control is set by origin-response, which can tell a variant from a
      fallback substitute and from an error; a policy cannot;
    - https only (redirect), HTTP/2 and HTTP/3, IPv6, TLSv1.2_2021 on a custom domain.
    """

    distribution_id: pulumi.Output[str]
    """The distribution's id (invalidations, metrics' DistributionId)."""
    distribution_arn: pulumi.Output[str]
    """The distribution's ARN: give it to each bucket's read grant."""
    domain_name: pulumi.Output[str]
    """The distribution's `*.cloudfront.net` domain name."""

    def __init__(self, name: str, args: FailoverDistributionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:FailoverDistribution", name, None, opts)
        prefix = args["name_prefix"]
        child = pulumi.ResourceOptions(parent=self)

        http = args.get("primary_http", False)
        access = {
            role: aws.cloudfront.OriginAccessControl(
                f"{name}-{role}-oac",
                name=f"{prefix}-{role}",
                description=f"image-cdn {role} bucket",
                origin_access_control_origin_type="s3",
                signing_behavior="always",
                signing_protocol="sigv4",
                opts=child,
            )
            for role in (("fallback",) if http else ("primary", "fallback"))
        }
        self.cache_policy = aws.cloudfront.CachePolicy(
            f"{name}-cache",
            name=f"{prefix}-uri-only",
            comment="The URI is the whole key: the viewer function put format, width and quality in it",
            min_ttl=0,  # lets the no-store on resize's 302 hold
            default_ttl=ONE_DAY,
            max_ttl=ONE_YEAR,
            parameters_in_cache_key_and_forwarded_to_origin=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs(
                cookies_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfigArgs(
                    cookie_behavior="none"
                ),
                headers_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigArgs(
                    header_behavior="none"
                ),
                query_strings_config=aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigArgs(
                    query_string_behavior="none"
                ),
                enable_accept_encoding_brotli=False,
                enable_accept_encoding_gzip=False,
            ),
            opts=child,
        )
        self.headers_policy = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-headers",
            name=f"{prefix}-headers",
            comment="Vary on Accept (format negotiation), HSTS, nosniff, CORS",
            custom_headers_config=aws.cloudfront.ResponseHeadersPolicyCustomHeadersConfigArgs(
                items=[
                    aws.cloudfront.ResponseHeadersPolicyCustomHeadersConfigItemArgs(
                        header="Vary", value=args.get("vary", "Accept"), override=True
                    )
                ]
            ),
            security_headers_config=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigArgs(
                strict_transport_security=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigStrictTransportSecurityArgs(
                    access_control_max_age_sec=2 * ONE_YEAR, include_subdomains=True, preload=False, override=True
                ),
                content_type_options=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigContentTypeOptionsArgs(
                    override=True
                ),
                referrer_policy=aws.cloudfront.ResponseHeadersPolicySecurityHeadersConfigReferrerPolicyArgs(
                    referrer_policy="strict-origin-when-cross-origin", override=True
                ),
            ),
            cors_config=self._cors(list(args.get("cors_origins", ["*"]))),
            server_timing_headers_config=aws.cloudfront.ResponseHeadersPolicyServerTimingHeadersConfigArgs(
                enabled=True,
                sampling_rate=100,  # a percentage: every response
            ),
            opts=child,
        )

        # Only what the cache policy names reaches an origin unless an origin request policy adds it;
        # this one adds the URL the viewer asked for, outside the cache key.
        self.origin_request_policy = (
            aws.cloudfront.OriginRequestPolicy(
                f"{name}-origin-request",
                name=f"{prefix}-viewer-url",
                comment="The viewer's URL for resize's 302 (not in the cache key)",
                cookies_config=aws.cloudfront.OriginRequestPolicyCookiesConfigArgs(cookie_behavior="none"),
                headers_config=aws.cloudfront.OriginRequestPolicyHeadersConfigArgs(
                    header_behavior="whitelist",
                    headers=aws.cloudfront.OriginRequestPolicyHeadersConfigHeadersArgs(items=[VIEWER_URL_HEADER]),
                ),
                query_strings_config=aws.cloudfront.OriginRequestPolicyQueryStringsConfigArgs(
                    query_string_behavior="none"
                ),
                opts=child,
            )
            if args.get("forward_viewer_url")
            else None
        )

        domain_name = args.get("domain_name")
        certificate_arn: pulumi.Input[str] | None = args.get("certificate_arn")
        hosted_zone_id = args.get("hosted_zone_id")
        if domain_name and not certificate_arn and hosted_zone_id:
            certificate_arn = self._issue_certificate(name, domain_name, hosted_zone_id)

        error_ttl = args.get("error_caching_seconds", 5)
        attempts, timeout = args.get("connection_attempts", 1), args.get("connection_timeout", 2)
        origins = [
            aws.cloudfront.DistributionOriginArgs(
                origin_id=role,
                domain_name=domain,
                origin_access_control_id=access[role].id,
                connection_attempts=attempts,
                connection_timeout=timeout,
                origin_path=PRIMARY_ORIGIN_PATH if role == "primary" else None,
            )
            for role, domain in (("primary", args["primary_domain_name"]), ("fallback", args["fallback_domain_name"]))
            if role in access
        ]
        if http:
            # A third-party image service: a custom origin reached over TLS 1.2 only, with no origin
            # access control (that is for S3 and Lambda URLs). A service that does not answer within
            # the read timeout counts as failed (504), and the group moves to the fallback.
            origins.insert(
                0,
                aws.cloudfront.DistributionOriginArgs(
                    origin_id="primary",
                    domain_name=args["primary_domain_name"],
                    connection_attempts=attempts,
                    connection_timeout=timeout,
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                        origin_read_timeout=args.get("primary_read_timeout", 10),
                        origin_keepalive_timeout=5,
                    ),
                ),
            )
        self.distribution = aws.cloudfront.Distribution(
            f"{name}-distribution",
            comment=f"{prefix} images",
            enabled=True,
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=args.get("price_class", "PriceClass_100"),
            origins=origins,
            origin_groups=[
                aws.cloudfront.DistributionOriginGroupArgs(
                    origin_id="images",
                    failover_criteria=aws.cloudfront.DistributionOriginGroupFailoverCriteriaArgs(
                        status_codes=FAILOVER_STATUS_CODES
                    ),
                    members=[
                        aws.cloudfront.DistributionOriginGroupMemberArgs(origin_id="primary"),
                        aws.cloudfront.DistributionOriginGroupMemberArgs(origin_id="fallback"),
                    ],
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id="images",
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=["GET", "HEAD", "OPTIONS"],
                cached_methods=["GET", "HEAD"],
                compress=False,  # images are compressed already
                cache_policy_id=self.cache_policy.id,
                origin_request_policy_id=self.origin_request_policy.id if self.origin_request_policy else None,
                response_headers_policy_id=self.headers_policy.id,
                function_associations=[
                    aws.cloudfront.DistributionDefaultCacheBehaviorFunctionAssociationArgs(
                        event_type="viewer-request", function_arn=args["viewer_function_arn"]
                    )
                ],
                lambda_function_associations=[
                    aws.cloudfront.DistributionDefaultCacheBehaviorLambdaFunctionAssociationArgs(
                        event_type="origin-request", lambda_arn=args["origin_request_arn"], include_body=False
                    ),
                    aws.cloudfront.DistributionDefaultCacheBehaviorLambdaFunctionAssociationArgs(
                        event_type="origin-response", lambda_arn=args["origin_response_arn"], include_body=False
                    ),
                ],
            ),
            custom_error_responses=[
                aws.cloudfront.DistributionCustomErrorResponseArgs(error_code=code, error_caching_min_ttl=error_ttl)
                for code in ERROR_CODES
            ],
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            aliases=[domain_name] if domain_name else None,
            viewer_certificate=(
                aws.cloudfront.DistributionViewerCertificateArgs(
                    acm_certificate_arn=certificate_arn,
                    ssl_support_method="sni-only",
                    minimum_protocol_version="TLSv1.2_2021",
                )
                if domain_name and certificate_arn
                else aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True)
            ),
            web_acl_id=args.get("web_acl_arn"),
            opts=child,
        )
        if domain_name and hosted_zone_id:
            for record_type in ("A", "AAAA"):
                aws.route53.Record(
                    f"{name}-alias-{record_type.lower()}",
                    zone_id=hosted_zone_id,
                    name=domain_name,
                    type=record_type,
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=self.distribution.domain_name,
                            zone_id=self.distribution.hosted_zone_id,
                            evaluate_target_health=False,
                        )
                    ],
                    opts=child,
                )

        self.distribution_id = self.distribution.id
        self.distribution_arn = self.distribution.arn
        self.domain_name = self.distribution.domain_name
        self.register_outputs(
            {
                "distribution_id": self.distribution_id,
                "distribution_arn": self.distribution_arn,
                "domain_name": self.domain_name,
            }
        )

    @staticmethod
    def _cors(origins: list[str]) -> aws.cloudfront.ResponseHeadersPolicyCorsConfigArgs | None:
        """CloudFront's CORS section, for a list of origins only.

        With a CORS section CloudFront owns `Vary` (ttoss/ttoss PR #1205: it sends
        `Vary: Origin` and drops the policy's own `Vary`). For `*` nothing varies by
        origin, so the edge answers instead: origin-response sets the headers on every
        response and the viewer function answers preflights, and `Vary: Accept` is ours.
        """
        if origins == ["*"]:
            return None
        return aws.cloudfront.ResponseHeadersPolicyCorsConfigArgs(
            access_control_allow_credentials=False,
            access_control_allow_headers=aws.cloudfront.ResponseHeadersPolicyCorsConfigAccessControlAllowHeadersArgs(
                items=["*"]
            ),
            access_control_allow_methods=aws.cloudfront.ResponseHeadersPolicyCorsConfigAccessControlAllowMethodsArgs(
                items=["GET", "HEAD", "OPTIONS"]
            ),
            access_control_allow_origins=aws.cloudfront.ResponseHeadersPolicyCorsConfigAccessControlAllowOriginsArgs(
                items=origins
            ),
            access_control_expose_headers=aws.cloudfront.ResponseHeadersPolicyCorsConfigAccessControlExposeHeadersArgs(
                items=EXPOSED_HEADERS
            ),
            access_control_max_age_sec=ONE_DAY,
            origin_override=True,
        )

    def _issue_certificate(self, name: str, domain_name: str, zone_id: str) -> pulumi.Output[str]:
        """A DNS-validated ACM certificate in us-east-1, the only region CloudFront reads."""
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            f"{name}-certificate",
            domain_name=domain_name,
            validation_method="DNS",
            region="us-east-1",
            key_algorithm="EC_prime256v1",
            opts=child,
        )
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-certificate-validation-record",
            zone_id=zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-certificate-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            region="us-east-1",
            opts=child,
        )
        return validation.certificate_arn

"""Both stacks built on Pulumi's mocks in one run: wiring, hardening, least privilege, dev/prod."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from pulumi_mocks import ACCOUNT, StackRun, run_stack

from components.config import from_stack_file

BUCKET = "aws:s3/bucket:Bucket"
FUNCTION = "aws:lambda/function:Function"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
COMPONENTS = {
    "image-cdn:index:SyncResults",
    "image-cdn:index:ImageOrigin",
    "image-cdn:index:FallbackBucket",
    "image-cdn:index:EdgeFunctions",
    "image-cdn:index:FailoverDistribution",
    "image-cdn:index:EdgeFirewall",
    "image-cdn:index:UrlSigning",
    "image-cdn:index:SyncJob",
    "image-cdn:index:ImageCatalog",
    "image-cdn:index:Monitoring",
}


@pytest.fixture(scope="module")
def stacks() -> dict[str, StackRun]:
    return {stack: run_stack(from_stack_file(stack)) for stack in ("dev", "prod")}


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest, stacks: dict[str, StackRun]) -> StackRun:
    return stacks[request.param]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_outputs_name_the_distribution_buckets_and_versions(run: StackRun) -> None:
    out = run.outputs
    assert out["distribution_domain"].endswith(".cloudfront.net")
    assert out["example_url"] == f"https://{out['distribution_domain']}/products/shoe.jpg?w=800"
    assert out["primary_bucket"] == run.config.primary_bucket
    assert out["fallback_bucket"] == run.config.fallback_bucket
    assert out["rewrite_version"] == run.output_of(FUNCTION, "edge-rewrite")["version"]
    assert out["resize_version"] == run.output_of(FUNCTION, "edge-resize")["version"]
    assert out["rewrite_version"] != out["resize_version"]


def test_every_resource_belongs_to_a_component(run: StackRun) -> None:
    for declared in run.declared:
        if declared.type in COMPONENTS and declared.parent is None:
            continue  # a top-level component
        assert declared.options, f"{declared.name} was not created under any component"
        parent_types = {d.type for d in run.declared if d.name == declared.parent}
        assert parent_types & COMPONENTS, f"{declared.name} has parent {declared.parent}"


def test_origin_group_fails_over_from_primary_to_fallback_on_5xx(run: StackRun) -> None:
    distribution = run.one(DISTRIBUTION).inputs
    (group,) = distribution["originGroups"]
    assert [m["originId"] for m in group["members"]] == ["primary", "fallback"]
    assert sorted(group["failoverCriteria"]["statusCodes"]) == [500, 502, 503, 504]
    assert distribution["defaultCacheBehavior"]["targetOriginId"] == group["originId"]
    origins = {o["originId"]: o for o in distribution["origins"]}
    # each origin is that bucket's own regional endpoint, and the primary's path is where variants live
    for role, component in (("primary", "origin"), ("fallback", "fallback")):
        bucket = run.output_of(BUCKET, f"{component}-bucket")
        assert origins[role]["domainName"] == bucket["bucketRegionalDomainName"]
    assert origins["primary"]["originPath"] == "/variants"
    assert not origins["fallback"].get("originPath")
    for origin in origins.values():
        assert origin["connectionAttempts"] == run.config.origin_connection_attempts
        assert origin["connectionTimeout"] == run.config.origin_connection_timeout
        assert origin["connectionAttempts"] * origin["connectionTimeout"] <= 4  # a dead primary is left fast
    assert origins["primary"]["originAccessControlId"] != origins["fallback"]["originAccessControlId"]
    oacs = run.of_type("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert len(oacs) == 2 and all(o.inputs["signingBehavior"] == "always" for o in oacs)


def test_edge_associations_use_numbered_versions(run: StackRun) -> None:
    behaviour = run.one(DISTRIBUTION).inputs["defaultCacheBehavior"]
    associations = {a["eventType"]: a["lambdaArn"] for a in behaviour["lambdaFunctionAssociations"]}
    assert set(associations) == {"origin-request", "origin-response"}
    assert associations["origin-request"] == run.output_of(FUNCTION, "edge-rewrite")["qualifiedArn"]
    assert associations["origin-response"] == run.output_of(FUNCTION, "edge-resize")["qualifiedArn"]
    for arn, role in ((associations["origin-request"], "rewrite"), (associations["origin-response"], "resize")):
        name, version = arn.rsplit(":", 2)[-2:]
        assert name == run.one(FUNCTION, f"edge-{role}").inputs["name"] and version.isdigit()
        assert name.startswith(run.config.function_name(role) + "-")  # <prefix>-<role>-<suffix>
    (viewer,) = behaviour["functionAssociations"]
    assert viewer["eventType"] == "viewer-request"
    assert viewer["functionArn"].endswith(run.config.function_name("normalize"))


def test_edge_functions_follow_lambda_edge_rules(run: StackRun) -> None:
    edge = [f for f in run.of_type(FUNCTION) if f.name in ("edge-rewrite", "edge-resize")]
    assert len(edge) == 2
    for function in edge:
        inputs = function.inputs
        assert inputs["region"] == "us-east-1"
        assert inputs["architectures"] == ["x86_64"]
        assert inputs["publish"] is True
        assert inputs["runtime"] == "python3.13"
        assert "environment" not in inputs
        assert "layers" not in inputs
        assert inputs["timeout"] <= 30
        assert inputs["skipDestroy"] is True
        assert inputs["sourceCodeHash"]
    viewer = run.one("aws:cloudfront/function:Function").inputs
    assert viewer["runtime"] == "cloudfront-js-2.0" and viewer["publish"] is True
    assert json.dumps(list(run.config.widths), separators=(",", ":")) in viewer["code"]


def test_edge_roles_trust_lambda_and_edgelambda(run: StackRun) -> None:
    roles = run.of_type("aws:iam/role:Role")
    edge_roles = [r for r in roles if r.name.startswith("edge-")]
    assert len(edge_roles) == 2
    for role in edge_roles:
        (statement,) = statements(role.policy("assumeRolePolicy"))
        assert statement["Action"] == "sts:AssumeRole"
        assert sorted(statement["Principal"]["Service"]) == ["edgelambda.amazonaws.com", "lambda.amazonaws.com"]


@pytest.mark.parametrize("component", ["origin", "fallback"])
def test_both_buckets_are_hardened(run: StackRun, component: str) -> None:
    block = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{component}-public-access").inputs
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    ownership = run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{component}-ownership")
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    versioning = run.one("aws:s3/bucketVersioning:BucketVersioning", f"{component}-versioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    encryption = run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"{component}-encryption",
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert "bucketKeyEnabled" not in rule  # an S3 Bucket Key only matters with SSE-KMS


@pytest.mark.parametrize(("component", "readable"), [("origin", "variants/*"), ("fallback", "*")])
def test_bucket_policies_deny_plain_http_and_let_only_this_distribution_read(
    run: StackRun, component: str, readable: str
) -> None:
    bucket = run.config.primary_bucket if component == "origin" else run.config.fallback_bucket
    arn = f"arn:aws:s3:::{bucket}"
    distribution_arn = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2EXAMPLE"
    policy = {
        s["Sid"]: s for s in statements(run.one("aws:s3/bucketPolicy:BucketPolicy", f"{component}-policy").policy())
    }
    deny = policy["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(deny["Resource"]) == [arn, f"{arn}/*"]
    read = policy["CloudFrontReadsVariants"]
    assert read["Action"] == "s3:GetObject" and read["Resource"] == f"{arn}/{readable}"
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    listing = policy["CloudFrontSeesMissingKeysAs404"]
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == arn
    assert listing["Condition"] == read["Condition"]
    assert len(policy) == 3  # nothing else: no public grant, no write


def lifecycle_rules(run: StackRun, component: str) -> dict[str, dict[str, Any]]:
    lifecycle = run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{component}-lifecycle")
    return {rule["id"]: rule for rule in lifecycle.inputs["rules"]}


def test_only_variants_expire_in_the_primary(run: StackRun) -> None:
    rules = lifecycle_rules(run, "origin")
    expiring = rules["expire-variants"]
    assert expiring["filter"]["prefix"] == "variants/"
    assert expiring["expiration"]["days"] == run.config.variant_expiry_days
    assert expiring["noncurrentVersionExpiration"]["noncurrentDays"] == run.config.variant_expiry_days
    for rule in rules.values():
        if rule["id"] != "expire-variants":
            assert "expiration" not in rule and "noncurrentVersionExpiration" not in rule
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7


def test_the_fallback_keeps_current_variants_and_drops_replaced_ones(run: StackRun) -> None:
    rules = lifecycle_rules(run, "fallback")
    replaced = rules["expire-replaced-variants"]
    assert replaced["filter"]["prefix"] == ""
    assert replaced["noncurrentVersionExpiration"]["noncurrentDays"] == 7
    # only delete markers expire: a current variant never does
    assert replaced["expiration"] == {"expiredObjectDeleteMarker": True}
    assert "abort-incomplete-uploads" in rules


def test_destroy_empties_derived_buckets_and_follows_protect_for_originals(run: StackRun) -> None:
    assert run.one(BUCKET, "fallback-bucket").inputs["forceDestroy"] is True
    origin = run.one(BUCKET, "origin-bucket")
    assert origin.inputs["forceDestroy"] is (not run.config.protect_originals)
    assert origin.options["protect"] is run.config.protect_originals
    assert origin.options["retain_on_delete"] is run.config.protect_originals


def test_fallback_lives_in_another_region(run: StackRun) -> None:
    primary = run.one(BUCKET, "origin-bucket").inputs
    fallback = run.one(BUCKET, "fallback-bucket").inputs
    assert primary["region"] == run.config.primary_region
    assert fallback["region"] == run.config.fallback_region != primary["region"]
    for declared in run.declared:
        if declared.name.startswith("fallback-") and "region" in declared.inputs:
            assert declared.inputs["region"] == run.config.fallback_region


def test_cache_key_is_the_uri_alone_with_long_ttls_and_short_error_caching(run: StackRun) -> None:
    policy = run.one("aws:cloudfront/cachePolicy:CachePolicy").inputs
    key = policy["parametersInCacheKeyAndForwardedToOrigin"]
    assert key["headersConfig"]["headerBehavior"] == "none"
    assert key["cookiesConfig"]["cookieBehavior"] == "none"
    assert key["queryStringsConfig"]["queryStringBehavior"] == "none"
    assert policy["minTtl"] == 0 and policy["maxTtl"] == 31_536_000 and policy["defaultTtl"] >= 86_400
    errors = run.one(DISTRIBUTION).inputs["customErrorResponses"]
    assert {e["errorCode"] for e in errors} >= {403, 404, 500, 502, 503, 504}
    assert all(e["errorCachingMinTtl"] == run.config.error_caching_seconds <= 10 for e in errors)


def test_response_headers_vary_on_accept_and_add_security_headers(run: StackRun) -> None:
    policy = run.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy").inputs
    # Accept, and with clientHints (both stacks) the hints the viewer function reads
    vary = "Accept, Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width" if run.config.client_hints else "Accept"
    assert {"header": "Vary", "value": vary, "override": True} in policy["customHeadersConfig"]["items"]
    security = policy["securityHeadersConfig"]
    assert security["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31_536_000
    assert security["contentTypeOptions"]["override"] is True
    timing = policy["serverTimingHeadersConfig"]
    assert timing["enabled"] is True and timing["samplingRate"] == 100  # a percentage: every response
    # corsOrigins ["*"]: no CORS section, which would own Vary; the edge answers CORS itself
    assert run.config.cors_origins == ("*",) and "corsConfig" not in policy
    assert '"preflight":true' in run.one("aws:cloudfront/function:Function").inputs["code"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("mode", ["off", "required"])
def test_both_stacks_build_with_signing_on_and_off(stack: str, mode: str) -> None:
    run = run_stack(from_stack_file(stack, overrides={"signing": mode, "presetsOnly": mode == "required"}))
    code = run.one("aws:cloudfront/function:Function").inputs["code"]
    assert len(code.encode()) < 10 * 1024
    assert ("import cf from" in code) == (mode != "off")
    policies = run.of_type("aws:cloudfront/originRequestPolicy:OriginRequestPolicy")
    if mode == "off":
        assert policies == [] and "signing_secret" not in run.outputs
    else:
        (policy,) = policies
        assert policy.inputs["headersConfig"]["headers"]["items"] == ["x-image-cdn-url"]
        assert policy.inputs["queryStringsConfig"]["queryStringBehavior"] == "none"  # the cache key stays the URI
        assert run.outputs["signing_secret"].startswith(f"{run.config.name_prefix}-signing-")


def test_a_list_of_cors_origins_gets_cloudfronts_cors_section() -> None:
    config = dataclasses.replace(from_stack_file("dev"), cors_origins=("https://shop.example",))
    run = run_stack(config)
    cors = run.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy").inputs["corsConfig"]
    assert cors["accessControlAllowOrigins"]["items"] == ["https://shop.example"]
    assert cors["accessControlAllowMethods"]["items"] == ["GET", "HEAD", "OPTIONS"]
    assert "X-Image-Cdn-Substitute" in cors["accessControlExposeHeaders"]["items"]
    assert '"preflight":false' in run.one("aws:cloudfront/function:Function").inputs["code"]


def test_viewers_get_https_http3_and_ipv6(run: StackRun) -> None:
    distribution = run.one(DISTRIBUTION).inputs
    assert distribution["defaultCacheBehavior"]["viewerProtocolPolicy"] == "redirect-to-https"
    assert distribution["httpVersion"] == "http2and3"
    assert distribution["isIpv6Enabled"] is True
    assert distribution["priceClass"] == run.config.price_class


def test_dev_and_prod_differ_where_a_team_would_make_them_differ(stacks: dict[str, StackRun]) -> None:
    dev, prod = stacks["dev"], stacks["prod"]
    assert dev.one(DISTRIBUTION).inputs["priceClass"] == "PriceClass_100"
    assert prod.one(DISTRIBUTION).inputs["priceClass"] == "PriceClass_All"
    assert dev.config.variant_expiry_days < prod.config.variant_expiry_days
    memory = {s: run.one(FUNCTION, "edge-resize").inputs["memorySize"] for s, run in stacks.items()}
    assert memory["dev"] < memory["prod"]
    assert prod.one(BUCKET, "origin-bucket").options["protect"] is True
    assert prod.one(BUCKET, "origin-bucket").options["retain_on_delete"] is True
    assert dev.one(BUCKET, "origin-bucket").options["protect"] is False
    assert (
        dev.one(BUCKET, "origin-bucket").inputs["forceDestroy"],
        prod.one(BUCKET, "origin-bucket").inputs["forceDestroy"],
    ) == (True, False)
    retention = {
        s: {g.inputs["retentionInDays"] for g in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
        for s, run in stacks.items()
    }
    assert retention == {"dev": {7}, "prod": {90}}
    assert dev.of_type("aws:wafv2/webAcl:WebAcl") == [] and "webAclId" not in dev.one(DISTRIBUTION).inputs
    acl = prod.one("aws:wafv2/webAcl:WebAcl").inputs
    assert prod.one(DISTRIBUTION).inputs["webAclId"].endswith(acl["name"])
    assert dev.config.primary_bucket != prod.config.primary_bucket


def test_waf_is_scoped_to_cloudfront_with_rate_limit_and_managed_rules(stacks: dict[str, StackRun]) -> None:
    acl = stacks["prod"].one("aws:wafv2/webAcl:WebAcl").inputs
    assert acl["scope"] == "CLOUDFRONT" and acl["region"] == "us-east-1"
    rules = {rule["name"]: rule for rule in acl["rules"]}
    rate = rules["rate-per-ip"]["statement"]["rateBasedStatement"]
    assert rate["aggregateKeyType"] == "IP" and rate["limit"] == stacks["prod"].config.waf_rate_limit
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= set(rules)


def test_edge_log_groups_carry_the_stack_retention_in_every_listed_region(run: StackRun) -> None:
    groups = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    edge = [g for g in groups if g.inputs["name"].startswith("/aws/lambda/us-east-1.")]
    assert {g.inputs["region"] for g in edge} == set(run.config.log_regions)
    assert len(edge) == 2 * len(run.config.log_regions)


@pytest.mark.parametrize(
    ("price_class", "must_cover"),
    [
        ("PriceClass_100", {"us-east-1", "us-west-2", "eu-west-1", "eu-central-1"}),
        ("PriceClass_200", {"us-east-1", "eu-west-1", "ap-northeast-1", "ap-south-1"}),
        ("PriceClass_All", {"us-east-1", "eu-west-1", "ap-northeast-1", "ap-southeast-2", "sa-east-1"}),
    ],
)
def test_log_regions_default_to_the_regions_the_price_class_runs_lambda_edge_in(
    price_class: str, must_cover: set[str]
) -> None:
    from components.config import load

    config = load(
        {"aws:region": "eu-west-1", "fallbackRegion": "eu-central-1", "priceClass": price_class, "catalogAuth": "iam"},
        project="image-cdn",
        stack="x",
    )
    assert must_cover <= set(config.log_regions)
    if price_class == "PriceClass_100":
        assert not {"ap-northeast-1", "sa-east-1"} & set(config.log_regions)


def test_a_custom_domain_gets_a_us_east_1_certificate_and_modern_tls() -> None:
    base = from_stack_file("dev")
    config = dataclasses.replace(base, domain_name="img.example.com", hosted_zone_id="Z123EXAMPLE")
    run = run_stack(config)
    certificate = run.one("aws:acm/certificate:Certificate").inputs
    assert certificate["region"] == "us-east-1" and certificate["validationMethod"] == "DNS"
    distribution = run.one(DISTRIBUTION).inputs
    assert distribution["aliases"] == ["img.example.com"]
    viewer = distribution["viewerCertificate"]
    assert viewer["minimumProtocolVersion"] == "TLSv1.2_2021" and viewer["sslSupportMethod"] == "sni-only"
    assert viewer["acmCertificateArn"].startswith("arn:aws:acm:us-east-1:")
    assert {r.inputs["type"] for r in run.of_type("aws:route53/record:Record") if r.inputs.get("aliases")} == {
        "A",
        "AAAA",
    }
    assert run.outputs["example_url"].startswith("https://img.example.com/")


def test_a_given_certificate_is_used_as_is() -> None:
    arn = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/given"
    config = dataclasses.replace(from_stack_file("dev"), domain_name="img.example.com", certificate_arn=arn)
    run = run_stack(config)
    assert run.of_type("aws:acm/certificate:Certificate") == []
    assert run.one(DISTRIBUTION).inputs["viewerCertificate"]["acmCertificateArn"] == arn


def test_sync_job_is_triggered_by_uploads_and_a_schedule(run: StackRun) -> None:
    function = run.one(FUNCTION, "sync").inputs
    assert function["region"] == run.config.primary_region
    assert function["architectures"] == ["arm64"]
    assert function["handler"] == "sync.job.handler"
    notification = run.one("aws:s3/bucketNotification:BucketNotification").inputs
    assert notification["bucket"] == run.config.primary_bucket
    (target,) = notification["lambdaFunctions"]
    assert target["filterPrefix"] == "originals/"
    assert sorted(target["events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert target["lambdaFunctionArn"] == run.output_of(FUNCTION, "sync")["arn"]
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "sync-schedule").inputs
    assert rule["scheduleExpression"] == run.config.sync_schedule
    event_target = run.one("aws:cloudwatch/eventTarget:EventTarget", "sync-schedule-target").inputs
    assert event_target["arn"] == run.output_of("aws:sfn/stateMachine:StateMachine", "sync-state-machine")["arn"]
    assert json.loads(event_target["input"]) == {}
    assert run.outputs["sync_state_machine"] == event_target["arn"]


def test_the_sync_results_bucket_is_hardened_and_expires(run: StackRun) -> None:
    bucket = run.one(BUCKET, "sync-results-bucket").inputs
    assert bucket["bucket"] == f"{run.config.name_prefix}-sync" and bucket["region"] == run.config.primary_region
    assert bucket["forceDestroy"] is True
    rules = lifecycle_rules(run, "sync-results")
    assert rules["expire-results"]["expiration"]["days"] == 30
    policy = run.one("aws:s3/bucketPolicy:BucketPolicy", "sync-results-policy").policy()
    assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport"]


def test_sync_job_failures_go_to_a_dead_letter_queue(run: StackRun) -> None:
    queue = run.one("aws:sqs/queue:Queue", "sync-dead-letters").inputs
    assert queue["sqsManagedSseEnabled"] is True
    invoke = run.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "sync-retries").inputs
    assert invoke["maximumRetryAttempts"] == 2
    assert (
        invoke["destinationConfig"]["onFailure"]["destination"]
        == run.output_of("aws:sqs/queue:Queue", "sync-dead-letters")["arn"]
    )
    environment = run.one(FUNCTION, "sync").inputs["environment"]["variables"]
    assert environment["SYNC_DLQ_URL"] == run.output_of("aws:sqs/queue:Queue", "sync-dead-letters")["url"]
    assert environment["DISTRIBUTION_ID"] == "cdn-distribution-id"  # the id the mock gave the distribution


def test_invalidations_are_queued_and_drained_in_batches(run: StackRun) -> None:
    queue = run.one("aws:sqs/queue:Queue", "sync-invalidations").inputs
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["visibilityTimeoutSeconds"] >= run.one(FUNCTION, "sync").inputs["timeout"]
    redrive = json.loads(queue["redrivePolicy"])
    assert redrive["deadLetterTargetArn"] == run.output_of("aws:sqs/queue:Queue", "sync-dead-letters")["arn"]
    mapping = run.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs
    assert mapping["eventSourceArn"] == run.output_of("aws:sqs/queue:Queue", "sync-invalidations")["arn"]
    assert mapping["functionName"] == run.output_of(FUNCTION, "sync")["arn"]
    assert mapping["maximumBatchingWindowInSeconds"] >= 1 and mapping["batchSize"] > 10
    assert mapping["scalingConfig"]["maximumConcurrency"] == 2  # the fewest AWS allows: few racing writers
    environment = run.one(FUNCTION, "sync").inputs["environment"]["variables"]
    assert environment["INVALIDATION_QUEUE_URL"] == run.output_of("aws:sqs/queue:Queue", "sync-invalidations")["url"]

"""The ImageCatalog component on Pulumi's mocks: both stacks, a JWT stack, a stack without it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
from pulumi_mocks import ACCOUNT, StackRun, run_stack

from catalog import store
from components import bundle
from components.catalog import ROUTES, event_pattern
from components.config import from_stack_file, load
from localcdn.process import ROOT

FUNCTION = "aws:lambda/function:Function"
TABLE = "aws:dynamodb/table:Table"


@pytest.fixture(scope="module")
def stacks() -> dict[str, StackRun]:
    return {stack: run_stack(from_stack_file(stack)) for stack in ("dev", "prod")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_table_is_on_demand_with_its_indexes_and_recoverable_in_prod(
    stacks: dict[str, StackRun], stack: str
) -> None:
    run = stacks[stack]
    table = run.one(TABLE)
    inputs = table.inputs
    assert inputs["name"] == f"{run.config.name_prefix}-catalog" and inputs["billingMode"] == "PAY_PER_REQUEST"
    assert (inputs["hashKey"], inputs["rangeKey"]) == store.KEYS
    indexes = {
        index["name"]: tuple(k["attributeName"] for k in index["keySchemas"])
        for index in inputs["globalSecondaryIndexes"]
    }
    assert indexes == store.INDEXES
    assert all(index["projectionType"] == "ALL" for index in inputs["globalSecondaryIndexes"])
    assert inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}  # pending uploads expire
    prod = stack == "prod"
    assert inputs["pointInTimeRecovery"]["enabled"] is prod and inputs["deletionProtectionEnabled"] is prod
    assert table.options["protect"] is prod


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_route_is_behind_the_stacks_iam_authorizer(stacks: dict[str, StackRun], stack: str) -> None:
    run = stacks[stack]
    routes = {r.inputs["routeKey"]: r.inputs for r in run.of_type("aws:apigatewayv2/route:Route")}
    assert sorted(routes) == sorted(ROUTES)
    assert {r["authorizationType"] for r in routes.values()} == {"AWS_IAM"}
    assert run.of_type("aws:apigatewayv2/authorizer:Authorizer") == []
    integration = run.one("aws:apigatewayv2/integration:Integration").inputs
    api_function = run.output_of(FUNCTION, "catalog-api")
    assert integration["integrationType"] == "AWS_PROXY" and integration["payloadFormatVersion"] == "2.0"
    assert integration["integrationUri"] == api_function["invokeArn"]
    stage = run.one("aws:apigatewayv2/stage:Stage").inputs
    assert stage["name"] == "$default" and stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"]["throttlingRateLimit"] > 0 and stage["accessLogSettings"]["destinationArn"]
    assert run.outputs["catalog_api_url"].startswith("https://") and run.outputs["catalog_table"].endswith("-catalog")


def test_a_jwt_stack_puts_every_route_behind_its_issuer() -> None:
    config = load(
        {
            "aws:region": "eu-west-1",
            "fallbackRegion": "us-east-2",
            "catalogAuth": "jwt",
            "catalogJwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            "catalogJwtAudiences": ["app-client"],
            "catalogJwtScopes": ["images/write"],
        },
        project="image-cdn",
        stack="test",
    )
    run = run_stack(config)
    authorizer = run.one("aws:apigatewayv2/authorizer:Authorizer").inputs
    assert authorizer["authorizerType"] == "JWT"
    assert authorizer["identitySources"] == ["$request.header.Authorization"]
    assert authorizer["jwtConfiguration"] == {
        "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
        "audiences": ["app-client"],
    }
    authorizer_id = run.output_of("aws:apigatewayv2/authorizer:Authorizer", "catalog-jwt").get("id", "catalog-jwt-id")
    for route in run.of_type("aws:apigatewayv2/route:Route"):
        assert route.inputs["authorizationType"] == "JWT" and route.inputs["authorizationScopes"] == ["images/write"]
        assert route.inputs["authorizerId"] == authorizer_id


def test_a_stack_without_the_catalogue_has_none_of_it() -> None:
    config = load({"aws:region": "eu-west-1", "fallbackRegion": "us-east-2", "catalog": False}, project="p", stack="s")
    run = run_stack(config)
    assert not [d for d in run.declared if d.name.startswith("catalog")]
    assert not any(name.startswith("catalog") for name in run.outputs)
    assert run.one("aws:s3/bucketNotification:BucketNotification", "sync-originals-events").inputs.get(
        "eventbridge"
    ) in (None, False)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_s3_events_reach_the_metadata_function_through_eventbridge(stacks: dict[str, StackRun], stack: str) -> None:
    run = stacks[stack]
    bucket = run.config.primary_bucket
    notification = run.one("aws:s3/bucketNotification:BucketNotification", "sync-originals-events").inputs
    assert notification["eventbridge"] is True and notification["lambdaFunctions"]  # the sync job keeps its own
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "catalog-originals").inputs
    assert json.loads(rule["eventPattern"]) == event_pattern(bucket)
    assert event_pattern(bucket)["detail"] == {
        "bucket": {"name": [bucket]},
        "object": {"key": [{"prefix": "originals/"}]},
    }
    target = run.one("aws:cloudwatch/eventTarget:EventTarget", "catalog-originals-target").inputs
    metadata = run.output_of(FUNCTION, "catalog-metadata")
    assert target["arn"] == metadata["arn"] and target["deadLetterConfig"]["arn"].endswith("catalog-dead-letters")
    permissions = {p.name: p.inputs for p in run.of_type("aws:lambda/permission:Permission")}
    events = permissions["catalog-metadata-from-events"]
    assert (events["principal"], events["sourceArn"]) == (
        "events.amazonaws.com",
        f"arn:aws:events:{run.config.primary_region}:{ACCOUNT}:rule/{run.config.name_prefix}-catalog-originals",
    )
    gateway = permissions["catalog-api-from-gateway"]
    assert gateway["principal"] == "apigateway.amazonaws.com"
    assert gateway["sourceArn"] == f"arn:aws:execute-api:{run.config.primary_region}:{ACCOUNT}:a1b2c3d4e5/*/*"
    retries = run.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "catalog-metadata-retries")
    assert retries.inputs["destinationConfig"]["onFailure"]["destination"].endswith("catalog-dead-letters")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_functions_carry_what_they_run_and_nothing_more(stacks: dict[str, StackRun], stack: str) -> None:
    run = stacks[stack]
    functions = {f.name: f.inputs for f in run.of_type(FUNCTION)}
    metadata, api = functions["catalog-metadata"], functions["catalog-api"]
    assert metadata["handler"] == "catalog.ingest.handler" and api["handler"] == "catalog.api.handler"
    assert metadata["architectures"] == api["architectures"] == ["arm64"]
    cdn = "https://d111111abcdef8.cloudfront.net"
    assert metadata["environment"]["variables"] == {
        "CATALOG_TABLE": f"{run.config.name_prefix}-catalog",
        "CDN_URL": cdn,
    }
    assert api["environment"]["variables"]["MAX_UPLOAD_BYTES"] == str(run.config.max_upload_bytes)
    settings = run.config.edge_settings()
    vendor = (*bundle.IMAGING, "blurhash==1.1.5")
    metadata_bundle = bundle.build("catalog-metadata", settings, vendor=vendor, architecture="arm64")
    with zipfile.ZipFile(metadata_bundle) as z:
        names = set(z.namelist())
        assert {"catalog/ingest.py", "edge/imaging.py", "blurhash/__init__.py"} <= names
        assert any(n.startswith("_pillow_heif.cpython-313-aarch64") for n in names)
    with zipfile.ZipFile(bundle.build("catalog-api", settings, architecture="arm64")) as z:
        names = set(z.namelist())
        assert "catalog/api.py" in names and not any(n.startswith(("PIL/", "components/", "localcdn/")) for n in names)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_browsers_may_post_uploads_to_the_bucket_from_the_stacks_origins(
    stacks: dict[str, StackRun], stack: str
) -> None:
    run = stacks[stack]
    cors = run.one("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration").inputs
    assert cors["bucket"] == run.config.primary_bucket
    (rule,) = cors["corsRules"]
    assert rule["allowedMethods"] == ["POST"] and rule["allowedOrigins"] == list(run.config.cors_origins)
    api = run.one("aws:apigatewayv2/api:Api").inputs
    assert api["protocolType"] == "HTTP" and api["corsConfiguration"]["allowOrigins"] == list(run.config.cors_origins)


def test_the_component_is_importable_alone_and_builds_alone() -> None:
    """A platform team's own program: only ImageCatalog, on the mocks, in a fresh interpreter."""
    program = """
import sys
sys.path.insert(0, "tests")
import pulumi
from pulumi_mocks import Recorder
from components import ImageCatalog
recorder = Recorder()
pulumi.runtime.set_mocks(recorder, project="theirs", stack="s", preview=False)

@pulumi.runtime.test
def program():
    catalog = ImageCatalog("photos", {
        "name_prefix": "theirs", "region": "us-east-1",
        "settings": {"primary_bucket": "their-bucket", "primary_region": "us-east-1",
                     "fallback_bucket": "their-fallback", "fallback_region": "us-west-2"},
        "primary_bucket_name": "their-bucket", "primary_bucket_arn": "arn:aws:s3:::their-bucket",
        "cdn_url": "https://images.example.com", "auth": "iam"})
    return catalog.api_url.apply(lambda url: print("api", url))

program()
print(sorted({d.type.split(":")[1] for d in recorder.declared}))
print([t for t in {d.type for d in recorder.declared} if "cloudfront" in t])
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "api https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com" in done.stdout
    assert "dynamodb/table" in done.stdout and "apigatewayv2/route" in done.stdout
    assert "cloudfront/" not in done.stdout and "'s3/bucket'" not in done.stdout  # no CDN, no bucket came along

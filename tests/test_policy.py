"""The policy pack's rules, without the CLI: both stacks pass, and each bad example fails."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_mocks import StackRun, run_stack
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from components.config import from_stack_file
from policy import pack, rules


@pytest.fixture(scope="module")
def stacks() -> dict[str, StackRun]:
    return {stack: run_stack(from_stack_file(stack)) for stack in ("dev", "prod")}


def resources(run: StackRun) -> list[rules.Resource]:
    return [rules.Resource(d.type, d.name, copy.deepcopy(d.inputs), run.config.stack) for d in run.declared]


def find(found: list[rules.Resource], name: str) -> rules.Resource:
    return next(r for r in found if r.name == name)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_both_stacks_pass_every_rule(stacks: dict[str, StackRun], stack: str) -> None:
    assert rules.check(resources(stacks[stack])) == []


def _policy(document: dict[str, Any]) -> str:
    return json.dumps(document)


def _add_statement(resource: rules.Resource, statement: dict[str, Any]) -> None:
    document = json.loads(resource.props["policy"])
    document["Statement"].append(statement)
    resource.props["policy"] = json.dumps(document)  # type: ignore[index]


def _unbound_map(resource: rules.Resource) -> None:
    definition = json.loads(resource.props["definition"])
    del definition["States"]["Build"]["MaxConcurrency"]
    resource.props["definition"] = json.dumps(definition)  # type: ignore[index]


BAD: dict[str, tuple[Callable[[list[rules.Resource]], None], str]] = {
    "public access not blocked": (
        lambda rs: find(rs, "origin-public-access").props.__setitem__("blockPublicPolicy", False),
        "origin-public-access: blockPublicPolicy must be true",
    ),
    "public ACL": (
        lambda rs: find(rs, "fallback-bucket").props.__setitem__("acl", "public-read"),
        "fallback-bucket: acl public-read makes the bucket public",
    ),
    "bucket policy open to anyone": (
        lambda rs: _add_statement(
            find(rs, "origin-policy"),
            {"Sid": "Open", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
        ),
        "origin-policy: statement Open allows anyone",
    ),
    "plain http viewers": (
        lambda rs: (
            find(rs, "cdn-distribution").props["defaultCacheBehavior"].__setitem__("viewerProtocolPolicy", "allow-all")
        ),
        "cdn-distribution: viewerProtocolPolicy allow-all lets viewers use plain http",
    ),
    "old TLS on a custom certificate": (
        lambda rs: find(rs, "cdn-distribution").props.__setitem__(
            "viewerCertificate",
            {
                "acmCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x",
                "minimumProtocolVersion": "TLSv1.1_2016",
                "sslSupportMethod": "sni-only",
            },
        ),
        "cdn-distribution: minimumProtocolVersion TLSv1.1_2016 is older than TLSv1.2_2021",
    ),
    "http origin": (
        lambda rs: (
            find(rs, "cdn-distribution")
            .props["origins"][0]
            .__setitem__("customOriginConfig", {"originProtocolPolicy": "http-only"})
        ),
        "cdn-distribution: origin primary is reached over plain http",
    ),
    "wildcard action": (
        lambda rs: find(rs, "edge-rewrite-policy").props.__setitem__(
            "policy",
            _policy(
                {"Statement": [{"Sid": "All", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::x/*"}]}
            ),
        ),
        "edge-rewrite-policy: statement All grants every action (s3:*)",
    ),
    "wildcard resource beside DetectFaces": (
        lambda rs: find(rs, "edge-resize-policy").props.__setitem__(
            "policy",
            _policy(
                {
                    "Statement": [
                        {
                            "Sid": "Faces",
                            "Effect": "Allow",
                            "Action": ["rekognition:DetectFaces", "rekognition:IndexFaces"],
                            "Resource": "*",
                        }
                    ]
                }
            ),
        ),
        "edge-resize-policy: statement Faces allows on every resource",
    ),
    "signing secret deleted without recovery": (
        lambda rs: find(rs, "signing-secret").props.__setitem__("recoveryWindowInDays", 0),
        "signing-secret: a secret needs a recovery window of at least 7 days (got 0)",
    ),
    "key value store on the old runtime": (
        lambda rs: find(rs, "edge-normalize").props.__setitem__("runtime", "cloudfront-js-1.0"),
        "edge-normalize: a function with a KeyValueStore must run on cloudfront-js-2.0",
    ),
    "wildcard resource": (
        lambda rs: find(rs, "edge-resize-policy").props.__setitem__(
            "policy",
            _policy({"Statement": [{"Sid": "Any", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
        ),
        "edge-resize-policy: statement Any allows on every resource",
    ),
    "allow by exclusion": (
        lambda rs: find(rs, "sync-policy").props.__setitem__(
            "policy",
            _policy(
                {"Statement": [{"Sid": "Not", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::x"}]}
            ),
        ),
        "sync-policy: statement Not allows by exclusion (NotAction/NotResource)",
    ),
    "bucket without a public access block": (
        lambda rs: rs.remove(find(rs, "fallback-public-access")),
        "fallback-bucket: no BucketPublicAccessBlock for bucket image-cdn-dev-fallback",
    ),
    "bucket without encryption": (
        lambda rs: rs.remove(find(rs, "origin-encryption")),
        "origin-bucket: no server-side encryption for bucket image-cdn-dev-origin",
    ),
    "bucket that accepts plain http": (
        lambda rs: find(rs, "fallback-policy").props.__setitem__("policy", _policy({"Statement": []})),
        "fallback-bucket: bucket image-cdn-dev-fallback has no policy denying requests without TLS",
    ),
    "distributed map without a concurrency bound": (
        lambda rs: _unbound_map(find(rs, "sync-state-machine")),
        "sync-state-machine: Distributed Map Build has no MaxConcurrency from 1 to 10000",
    ),
    "versioned bucket whose old versions pile up": (
        lambda rs: rs.remove(find(rs, "fallback-lifecycle")),
        "fallback-versioning: bucket image-cdn-dev-fallback is versioned but no lifecycle rule expires old versions",
    ),
    "edge function with environment variables": (
        lambda rs: find(rs, "edge-resize").props.__setitem__("environment", {"variables": {"A": "1"}}),
        "edge-resize: Lambda@Edge takes no environment variables",
    ),
    "edge function on arm64": (
        lambda rs: find(rs, "edge-rewrite").props.__setitem__("architectures", ["arm64"]),
        "edge-rewrite: Lambda@Edge runs on x86_64 only",
    ),
    "edge function outside us-east-1": (
        lambda rs: find(rs, "edge-rewrite").props.__setitem__("region", "eu-west-1"),
        "edge-rewrite: Lambda@Edge must be created in us-east-1",
    ),
    "edge function not published": (
        lambda rs: find(rs, "edge-resize").props.__setitem__("publish", False),
        "edge-resize: Lambda@Edge needs publish=true (a numbered version)",
    ),
    "edge association on $LATEST": (
        lambda rs: (
            find(rs, "cdn-distribution")
            .props["defaultCacheBehavior"]["lambdaFunctionAssociations"][0]
            .__setitem__("lambdaArn", "arn:aws:lambda:us-east-1:1:function:image-cdn-dev-rewrite:$LATEST")
        ),
        "cdn-distribution: origin-request uses arn:aws:lambda:us-east-1:1:function:image-cdn-dev-rewrite:$LATEST, "
        "not a numbered version",
    ),
}


PROD_BAD: dict[str, tuple[Callable[[list[rules.Resource]], object], str]] = {
    "catalogue table without point-in-time recovery": (
        lambda rs: find(rs, "catalog-table").props.__setitem__("pointInTimeRecovery", {"enabled": False}),
        "catalog-table: point-in-time recovery must be on in prod",
    ),
    "catalogue table without deletion protection": (
        lambda rs: find(rs, "catalog-table").props.__setitem__("deletionProtectionEnabled", False),
        "catalog-table: deletion protection must be on in prod",
    ),
    "catalogue table with provisioned capacity": (
        lambda rs: find(rs, "catalog-table").props.__setitem__("billingMode", "PROVISIONED"),
        "catalog-table: billingMode must be PAY_PER_REQUEST (on-demand)",
    ),
    "upload route without an authorizer": (
        lambda rs: find(rs, "catalog-route-post-uploads").props.__setitem__("authorizationType", "NONE"),
        "catalog-route-post-uploads: POST /uploads can write and has no authorizer",
    ),
    "delete route without an authorizer": (
        lambda rs: find(rs, "catalog-route-delete-images-id").props.pop("authorizationType"),
        "catalog-route-delete-images-id: DELETE /images/{id} can write and has no authorizer",
    ),
}


@pytest.mark.parametrize("case", sorted(PROD_BAD))
def test_each_bad_catalogue_example_fails_in_prod(stacks: dict[str, StackRun], case: str) -> None:
    found = resources(stacks["prod"])
    spoil, expected = PROD_BAD[case]
    spoil(found)
    assert rules.check(found) == [expected]


def test_a_dev_table_may_go_without_recovery_and_a_read_route_without_an_authorizer(
    stacks: dict[str, StackRun],
) -> None:
    found = resources(stacks["dev"])
    table = find(found, "catalog-table")
    assert table.props["pointInTimeRecovery"] == {"enabled": False}  # dev: disposable
    find(found, "catalog-route-get-images").props.__setitem__("authorizationType", "NONE")
    assert rules.check(found) == []
    assert rules.stack_of("urn:pulumi:prod::image-cdn::aws:dynamodb/table:Table::catalog-table") == "prod"


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_example_fails_with_its_reason(stacks: dict[str, StackRun], case: str) -> None:
    found = resources(stacks["dev"])
    spoil, expected = BAD[case]
    spoil(found)
    assert rules.check(found) == [expected]


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def test_the_crossguard_policies_report_what_the_rules_find(stacks: dict[str, StackRun]) -> None:
    policies = {policy.name: policy for policy in pack.policies()}
    assert set(policies) == {
        "no-public-buckets",
        "https-only-modern-tls",
        "no-wildcard-iam",
        "every-bucket-hardened",
        "lambda-edge-constraints",
        "versions-do-not-pile-up",
        "bounded-distributed-maps",
        "catalogue-tables-recoverable",
        "no-unauthenticated-write-route",
        "signing-keys-guarded",
    }
    reported: list[str] = []
    public_block = find(resources(stacks["dev"]), "origin-public-access")
    props = {**public_block.props, "ignorePublicAcls": False}
    args = ResourceValidationArgs(public_block.type, props, "urn:x", public_block.name, _options(), None)
    policies["no-public-buckets"].validate(args, lambda message, urn: reported.append(message))
    assert reported == ["origin-public-access: ignorePublicAcls must be true"]

    table = find(resources(stacks["dev"]), "catalog-table")  # dev's table, as if it were prod's
    reported.clear()
    for stack in ("dev", "prod"):
        urn = f"urn:pulumi:{stack}::image-cdn::aws:dynamodb/table:Table::catalog-table"
        args = ResourceValidationArgs(table.type, dict(table.props), urn, table.name, _options(), None)
        policies["catalogue-tables-recoverable"].validate(args, lambda message, urn: reported.append(message))
    assert reported == [
        "catalog-table: point-in-time recovery must be on in prod",
        "catalog-table: deletion protection must be on in prod",
    ]

    stack = [
        PolicyResource(r.type, dict(r.props), f"urn:{r.name}", r.name, _options(), None, None, [], {})
        for r in resources(stacks["prod"])
        if r.name != "origin-encryption"
    ]
    reported.clear()
    policies["every-bucket-hardened"].validate(StackValidationArgs(stack), lambda m, urn: reported.append(m))
    assert reported == ["origin-bucket: no server-side encryption for bucket image-cdn-prod-origin"]

"""The policy pack's rules as plain functions, so they run (and are tested) without the CLI.

A rule takes resources as CrossGuard hands them over (type token and input properties,
camelCase) and returns the violations it found, each a sentence naming the resource
and what is wrong. `policy/__main__.py` wraps them in a CrossGuard PolicyPack.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
FUNCTION = "aws:lambda/function:Function"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
IAM_DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
}
MODERN_TLS = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")


# Stacks whose user data must survive a mistake (the stack's name, from each resource's URN).
PRODUCTION_STACKS = ("prod", "production")
TABLE = "aws:dynamodb/table:Table"
ROUTE = "aws:apigatewayv2/route:Route"
READ_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    props: Mapping[str, Any]
    stack: str = ""
    """The stack it belongs to (CrossGuard: from the URN, urn:pulumi:<stack>::...)."""


def stack_of(urn: str) -> str:
    """`urn:pulumi:prod::image-cdn::type::name` -> "prod"."""
    parts = urn.split(":")
    return parts[2] if len(parts) > 2 and urn.startswith("urn:pulumi:") else ""


def _document(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return dict(value) if isinstance(value, Mapping) else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [s for s in _as_list((document or {}).get("Statement", [])) if isinstance(s, dict)]


def _public(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(value == "*" or "*" in _as_list(value) for value in principal.values())
    return False


# -- resource rules -------------------------------------------------------------------------


def no_public_buckets(resource: Resource) -> list[str]:
    """Public access blocked on all four counts; no public ACL; no policy that lets anyone in."""
    props, found = resource.props, []
    if resource.type == PUBLIC_ACCESS_BLOCK:
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            if props.get(flag) is not True:
                found.append(f"{resource.name}: {flag} must be true")
    elif resource.type == BUCKET:
        if props.get("acl") in PUBLIC_ACLS:
            found.append(f"{resource.name}: acl {props['acl']} makes the bucket public")
    elif resource.type == BUCKET_POLICY:
        for statement in _statements(_document(props.get("policy"))):
            if (
                statement.get("Effect") == "Allow"
                and _public(statement.get("Principal"))
                and not statement.get("Condition")
            ):
                found.append(f"{resource.name}: statement {statement.get('Sid', '?')} allows anyone")
    return found


def https_only_modern_tls(resource: Resource) -> list[str]:
    """Viewers only over https; a custom certificate only with TLS 1.2 (2021 ciphers) or newer."""
    if resource.type != DISTRIBUTION:
        return []
    props, found = resource.props, []
    behaviours = [props.get("defaultCacheBehavior") or {}, *(props.get("orderedCacheBehaviors") or [])]
    for behaviour in behaviours:
        policy = behaviour.get("viewerProtocolPolicy")
        if policy is not None and policy not in ("redirect-to-https", "https-only"):
            found.append(f"{resource.name}: viewerProtocolPolicy {policy} lets viewers use plain http")
    certificate = props.get("viewerCertificate") or {}
    if certificate.get("acmCertificateArn") or certificate.get("iamCertificateId"):
        if certificate.get("minimumProtocolVersion") not in MODERN_TLS:
            found.append(
                f"{resource.name}: minimumProtocolVersion {certificate.get('minimumProtocolVersion')} "
                f"is older than {MODERN_TLS[0]}"
            )
        if certificate.get("sslSupportMethod") not in (None, "sni-only"):
            found.append(f"{resource.name}: sslSupportMethod should be sni-only")
    for origin in props.get("origins") or []:
        custom = origin.get("customOriginConfig") or {}
        if custom.get("originProtocolPolicy") == "http-only":
            found.append(f"{resource.name}: origin {origin.get('originId')} is reached over plain http")
    return found


# Actions that take no resource-level permissions: the Service Authorization Reference lists
# no resource type for them, and then a statement must name Resource "*" ("Actions, resources,
# and condition keys for Amazon Rekognition": DetectFaces). A statement of these alone may.
RESOURCE_LESS_ACTIONS = frozenset({"rekognition:DetectFaces"})


def no_wildcard_iam(resource: Resource) -> list[str]:
    """No `*` or `service:*` actions, no NotAction/NotResource allows, no Allow on Resource `*`
    (except for a statement of actions that take no resource, RESOURCE_LESS_ACTIONS)."""
    keys = IAM_DOCUMENTS.get(resource.type)
    if keys is None:
        return []
    found = []
    documents = [_document(resource.props.get(key)) for key in keys]
    documents += [
        _document(inline.get("policy"))
        for inline in resource.props.get("inlinePolicies") or []
        if isinstance(inline, Mapping)
    ]
    for document in documents:
        for statement in _statements(document):
            sid = statement.get("Sid", "?")
            for action in _as_list(statement.get("Action", [])):
                if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                    found.append(f"{resource.name}: statement {sid} grants every action ({action})")
            if statement.get("Effect") == "Allow":
                if "NotAction" in statement or "NotResource" in statement:
                    found.append(f"{resource.name}: statement {sid} allows by exclusion (NotAction/NotResource)")
                resource_less = set(_as_list(statement.get("Action", []))) <= RESOURCE_LESS_ACTIONS
                if "*" in _as_list(statement.get("Resource", [])) and not resource_less:
                    found.append(f"{resource.name}: statement {sid} allows on every resource")
    return found


def _map_states(states: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        if isinstance(state, Mapping):
            if state.get("Type") == "Map":
                yield name, state
            for nested in ("ItemProcessor", "Iterator"):
                if isinstance(state.get(nested), Mapping):
                    yield from _map_states(state[nested].get("States") or {})
            for branch in state.get("Branches") or []:
                yield from _map_states(branch.get("States") or {})


def bounded_distributed_maps(resource: Resource) -> list[str]:
    """A Distributed Map sets MaxConcurrency (unset, it runs up to 10,000 children at once and
    can take every Lambda concurrency the account has)."""
    if resource.type != STATE_MACHINE:
        return []
    definition = _document(resource.props.get("definition"))
    if definition is None:
        return []  # unknown during a preview
    found = []
    for name, state in _map_states(definition.get("States") or {}):
        mode = ((state.get("ItemProcessor") or {}).get("ProcessorConfig") or {}).get("Mode")
        limit = state.get("MaxConcurrency")
        if mode == "DISTRIBUTED" and not (isinstance(limit, int) and 0 < limit <= 10_000):
            found.append(f"{resource.name}: Distributed Map {name} has no MaxConcurrency from 1 to 10000")
    return found


def catalogue_tables_recoverable(resource: Resource) -> list[str]:
    """A DynamoDB table is on-demand; in a production stack it has point-in-time recovery and
    deletion protection (the catalogue is what users uploaded, described)."""
    if resource.type != TABLE:
        return []
    props, found = resource.props, []
    if props.get("billingMode") != "PAY_PER_REQUEST":
        found.append(f"{resource.name}: billingMode must be PAY_PER_REQUEST (on-demand)")
    if resource.stack in PRODUCTION_STACKS:
        if (props.get("pointInTimeRecovery") or {}).get("enabled") is not True:
            found.append(f"{resource.name}: point-in-time recovery must be on in {resource.stack}")
        if props.get("deletionProtectionEnabled") is not True:
            found.append(f"{resource.name}: deletion protection must be on in {resource.stack}")
    return found


def no_unauthenticated_write_route(resource: Resource) -> list[str]:
    """An HTTP API route that can change anything (any method but GET, HEAD, OPTIONS; ANY and
    $default included) has an authorizer: IAM, JWT or a Lambda authorizer."""
    if resource.type != ROUTE:
        return []
    route_key = str(resource.props.get("routeKey") or "")
    method = route_key.split(" ", 1)[0].upper()
    if method in READ_METHODS:
        return []
    if resource.props.get("authorizationType") in (None, "", "NONE"):
        return [f"{resource.name}: {route_key} can write and has no authorizer"]
    return []


def signing_keys_guarded(resource: Resource) -> list[str]:
    """URL signing: the secret survives a mistaken delete (a recovery window of at least 7 days,
    never a forced delete), and a function that reads a KeyValueStore runs on cloudfront-js-2.0
    (the only runtime with the store's helper methods)."""
    if resource.type == "aws:secretsmanager/secret:Secret":
        window = resource.props.get("recoveryWindowInDays")
        if window is not None and window < 7:
            return [f"{resource.name}: a secret needs a recovery window of at least 7 days (got {window})"]
    store = resource.props.get("keyValueStoreAssociations")
    reads_store = resource.type == "aws:cloudfront/function:Function" and bool(store)
    if reads_store and resource.props.get("runtime") != "cloudfront-js-2.0":
        return [f"{resource.name}: a function with a KeyValueStore must run on cloudfront-js-2.0"]
    return []


RESOURCE_RULES = (
    no_public_buckets,
    https_only_modern_tls,
    no_wildcard_iam,
    bounded_distributed_maps,
    catalogue_tables_recoverable,
    no_unauthenticated_write_route,
    signing_keys_guarded,
)


# -- stack rules --------------------------------------------------------------------------------


def _by_bucket(resources: Iterable[Resource], type_: str) -> dict[str, Resource]:
    return {str(r.props.get("bucket")): r for r in resources if r.type == type_ and r.props.get("bucket")}


def every_bucket_hardened(resources: list[Resource]) -> list[str]:
    """Every bucket: a public access block, encryption at rest, and a policy that refuses plain http."""
    found = []
    blocks = _by_bucket(resources, PUBLIC_ACCESS_BLOCK)
    encryption = _by_bucket(resources, ENCRYPTION)
    policies = _by_bucket(resources, BUCKET_POLICY)
    for bucket in (r for r in resources if r.type == BUCKET):
        name = bucket.props.get("bucket")
        if not name:
            continue  # named by AWS at creation: unknown during a preview
        if name not in blocks:
            found.append(f"{bucket.name}: no BucketPublicAccessBlock for bucket {name}")
        if name not in encryption and not bucket.props.get("serverSideEncryptionConfiguration"):
            found.append(f"{bucket.name}: no server-side encryption for bucket {name}")
        policy = _document(policies[name].props.get("policy")) if name in policies else None
        tls_only = any(
            s.get("Effect") == "Deny"
            and (s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
            for s in _statements(policy)
        )
        if not tls_only:
            found.append(f"{bucket.name}: bucket {name} has no policy denying requests without TLS")
    return found


def lambda_edge_constraints(resources: list[Resource]) -> list[str]:
    """Functions a distribution runs at the edge: us-east-1, a published numbered version,
    x86_64, no environment variables, no layers."""
    found = []
    functions = {str(r.props.get("name")): r for r in resources if r.type == FUNCTION and r.props.get("name")}
    for distribution in (r for r in resources if r.type == DISTRIBUTION):
        behaviours = [
            distribution.props.get("defaultCacheBehavior") or {},
            *(distribution.props.get("orderedCacheBehaviors") or []),
        ]
        for behaviour in behaviours:
            for association in behaviour.get("lambdaFunctionAssociations") or []:
                arn = association.get("lambdaArn")
                if not isinstance(arn, str):
                    continue  # unknown during a preview
                parts = arn.split(":")
                if len(parts) < 8 or not parts[7].isdigit():
                    found.append(
                        f"{distribution.name}: {association.get('eventType')} uses {arn}, not a numbered version"
                    )
                if len(parts) > 3 and parts[3] != "us-east-1":
                    found.append(f"{distribution.name}: {arn} is not in us-east-1")
                function = functions.get(parts[6] if len(parts) > 6 else "")
                if function is None:
                    continue
                props = function.props
                if props.get("region") not in (None, "us-east-1"):
                    found.append(f"{function.name}: Lambda@Edge must be created in us-east-1")
                if props.get("publish") is not True:
                    found.append(f"{function.name}: Lambda@Edge needs publish=true (a numbered version)")
                if props.get("architectures") not in (None, ["x86_64"]):
                    found.append(f"{function.name}: Lambda@Edge runs on x86_64 only")
                if (props.get("environment") or {}).get("variables"):
                    found.append(f"{function.name}: Lambda@Edge takes no environment variables")
                if props.get("layers"):
                    found.append(f"{function.name}: Lambda@Edge takes no layers")
    return found


def versions_do_not_pile_up(resources: list[Resource]) -> list[str]:
    """A versioned bucket has a lifecycle rule that expires noncurrent versions: otherwise every
    rewrite of an object (a rebuilt variant) is kept, and paid for, forever."""
    found = []
    lifecycles = _by_bucket(resources, LIFECYCLE)
    for versioning in (r for r in resources if r.type == VERSIONING):
        if (versioning.props.get("versioningConfiguration") or {}).get("status") != "Enabled":
            continue
        bucket = str(versioning.props.get("bucket"))
        rules_ = (lifecycles[bucket].props.get("rules") or []) if bucket in lifecycles else []
        if not any(rule.get("status") == "Enabled" and rule.get("noncurrentVersionExpiration") for rule in rules_):
            found.append(f"{versioning.name}: bucket {bucket} is versioned but no lifecycle rule expires old versions")
    return found


STACK_RULES = (every_bucket_hardened, lambda_edge_constraints, versions_do_not_pile_up)


def check(resources: list[Resource]) -> list[str]:
    """Every violation of every rule over a whole stack."""
    found = [message for resource in resources for rule in RESOURCE_RULES for message in rule(resource)]
    return found + [message for rule in STACK_RULES for message in rule(resources)]

"""Least privilege, proven on the mocks: every grant of every role, compared with the minimum."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from pulumi_mocks import ACCOUNT, StackRun, run_stack

from components.config import from_stack_file

WRITES = {
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectAcl",
    "s3:RestoreObject",
    "s3:PutObjectTagging",
    "s3:PutObjectRetention",
    "s3:AbortMultipartUpload",
}


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest) -> StackRun:
    return run_stack(from_stack_file(request.param))


def grants(run: StackRun) -> dict[str, set[tuple[str, str]]]:
    """role policy name -> {(action, resource)} of its Allow statements."""
    found: dict[str, set[tuple[str, str]]] = {}
    for declared in run.of_type("aws:iam/rolePolicy:RolePolicy"):
        pairs = found.setdefault(declared.name, set())
        for statement in declared.policy()["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            for action in _list(statement["Action"]):
                for resource in _list(statement["Resource"]):
                    pairs.add((action, resource))
    return found


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def secret_arn(run: StackRun) -> str:
    """The mock's ARN of the stack's signing secret (exactly one)."""
    (secret,) = run.of_type("aws:secretsmanager/secret:Secret")
    kind = "aws:secretsmanager/secret:Secret"
    return f"arn:aws:mock:{run.config.primary_region}:{ACCOUNT}:{kind}/{secret.inputs['name']}"


def sync_queues_and_invalidations(c: Any) -> set[tuple[str, str]]:
    """The sync function's grants beyond S3 and logs: its two queues, and invalidating its distribution."""
    queue = f"arn:aws:sqs:{c.primary_region}:{ACCOUNT}:{c.name_prefix}-sync-dead-letters"
    invalidations = f"arn:aws:sqs:{c.primary_region}:{ACCOUNT}:{c.name_prefix}-invalidations"
    distribution = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2EXAMPLE"
    return {
        ("sqs:SendMessage", queue),
        ("sqs:SendMessage", invalidations),
        ("sqs:ReceiveMessage", invalidations),
        ("sqs:DeleteMessage", invalidations),
        ("sqs:GetQueueAttributes", invalidations),
        ("cloudfront:CreateInvalidation", distribution),
        ("cloudfront:GetInvalidation", distribution),
        ("cloudfront:ListInvalidations", distribution),
    }


def test_every_role_has_exactly_the_minimum(run: StackRun) -> None:
    c = run.config
    primary, fallback = f"arn:aws:s3:::{c.primary_bucket}", f"arn:aws:s3:::{c.fallback_bucket}"
    logs = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")

    def edge_logs(function: str) -> set[tuple[str, str]]:
        name = run.one("aws:lambda/function:Function", f"edge-{function}").inputs["name"]  # <prefix>-<role>-<suffix>
        group = f"arn:aws:logs:*:{ACCOUNT}:log-group:/aws/lambda/us-east-1.{name}"
        return {(a, r) for a in logs for r in (group, group + ":*")}

    sync_group = f"arn:aws:logs:{c.primary_region}:{ACCOUNT}:log-group:/aws/lambda/{c.name_prefix}-sync"
    queue = f"arn:aws:sqs:{c.primary_region}:{ACCOUNT}:{c.name_prefix}-sync-dead-letters"
    function = f"arn:aws:lambda:{c.primary_region}:{ACCOUNT}:function:{c.name_prefix}-sync"
    machine = f"arn:aws:states:{c.primary_region}:{ACCOUNT}:stateMachine:{c.name_prefix}-sync"
    children = f"arn:aws:states:{c.primary_region}:{ACCOUNT}:execution:{c.name_prefix}-sync/*"
    results = f"arn:aws:s3:::{c.name_prefix}-sync/sync-results/*"
    listings = f"arn:aws:s3:::{c.name_prefix}-sync/listings/*"
    default = c.default_image
    # the stack's default image (dev): its own variants, in both buckets, and nothing else
    reads_default = (
        {("s3:GetObject", f"{primary}/variants/{default}/*"), ("s3:GetObject", f"{fallback}/{default}/*")}
        if default
        else set()
    )

    def regional_logs(function: str) -> set[tuple[str, str]]:
        group = f"arn:aws:logs:{c.primary_region}:{ACCOUNT}:log-group:/aws/lambda/{c.name_prefix}-{function}"
        return {(a, r) for a in logs for r in (group, group + ":*")}

    table = f"arn:aws:dynamodb:{c.primary_region}:{ACCOUNT}:table/{c.name_prefix}-catalog"
    catalog_queue = f"arn:aws:sqs:{c.primary_region}:{ACCOUNT}:{c.name_prefix}-catalog-dead-letters"
    uploads = f"{primary}/originals/????????-????-????-????-????????????/*"
    assert grants(run) == {
        "edge-rewrite-policy": edge_logs("rewrite"),
        "edge-resize-policy": edge_logs("resize")
        | {
            ("s3:GetObject", f"{primary}/originals/*"),
            ("s3:PutObject", f"{primary}/variants/*"),
            ("s3:PutObject", f"{fallback}/*"),
            # its memory of refused originals, read before decoding (no other object under variants/)
            ("s3:GetObject", f"{primary}/variants/*/_refused.*"),
        }
        | reads_default
        # crop=faces (dev): DetectFaces, which takes no resource ("*" is the only one it accepts)
        | ({("rekognition:DetectFaces", "*")} if "faces" in c.crops else set()),
        # reads originals/* (and lists that prefix), writes one table; failures to its dead-letter queue
        "catalog-metadata-policy": regional_logs("catalog-metadata")
        | {
            ("s3:GetObject", f"{primary}/originals/*"),
            ("s3:GetObjectVersion", f"{primary}/originals/*"),
            ("s3:ListBucket", primary),
            ("dynamodb:GetItem", table),
            ("dynamodb:PutItem", table),
            ("dynamodb:DeleteItem", table),
            ("sqs:SendMessage", catalog_queue),
        },
        # presigns uploads (and deletes on the owner's request) only at upload-shaped keys; reads the table
        "catalog-api-policy": regional_logs("catalog-api")
        | {("s3:PutObject", uploads), ("s3:DeleteObject", uploads)}
        | {
            (a, r)
            for a in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query")
            for r in (table, table + "/index/*")
        }
        # with signing on (both stacks): the current key, to sign the URLs it hands out
        | ({("secretsmanager:GetSecretValue", secret_arn(run))} if c.signing != "off" else set()),
        "sync-policy": {(a, r) for a in logs for r in (sync_group, sync_group + ":*")}
        | {
            ("s3:GetObject", f"{primary}/originals/*"),
            ("s3:ListBucket", primary),
            ("s3:ListBucketVersions", primary),
            ("s3:DeleteObject", f"{primary}/variants/*"),
            ("s3:ListBucket", fallback),
            ("s3:PutObject", f"{fallback}/*"),
            ("s3:DeleteObject", f"{fallback}/*"),
            # the plan's CSV of work, which the Distributed Map reads
            ("s3:PutObject", f"{listings}"),
            ("s3:AbortMultipartUpload", f"{listings}"),
        }
        | sync_queues_and_invalidations(c),
        "sync-states-policy": {
            ("lambda:InvokeFunction", function),
            ("states:StartExecution", machine),
            ("states:ListExecutions", machine),
            ("states:DescribeExecution", children),
            ("states:RedriveExecution", children),
            ("states:StopExecution", children),
            ("states:DescribeExecution", children.replace("/*", ":*")),
            ("states:RedriveExecution", children.replace("/*", ":*")),
            ("states:StopExecution", children.replace("/*", ":*")),
            ("s3:GetObject", listings),
            ("sqs:SendMessage", queue),
        }
        | {
            (a, results)
            for a in ("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload")
        },
        "sync-events-policy": {("states:StartExecution", machine)},
    }


def test_the_sync_job_lists_only_its_two_prefixes_of_the_primary(run: StackRun) -> None:
    # and the state machine lists nothing: the plan (the function) reads originals/, the Map reads its CSV
    states = run.one("aws:iam/rolePolicy:RolePolicy", "sync-states-policy").policy()
    assert not any("s3:ListBucket" in s["Action"] for s in states["Statement"])
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "sync-policy").policy()
    (listing,) = [s for s in policy["Statement"] if s["Sid"] == "ListOriginalsAndVariants"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["originals/*", "variants/*"]}}
    (versions,) = [s for s in policy["Statement"] if s["Sid"] == "SeeReplacedOriginals"]
    assert versions["Action"] == ["s3:ListBucketVersions"]
    assert versions["Condition"] == {"StringLike": {"s3:prefix": ["originals/*"]}}


def test_the_metadata_function_lists_only_the_originals(run: StackRun) -> None:
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "catalog-metadata-policy").policy()
    (listing,) = [s for s in policy["Statement"] if s["Sid"] == "ListOriginals"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["originals/*"]}}


UPLOADED = "originals/0f8fad5b-d9cb-469f-a165-70867728950e/beach.jpg"


@pytest.mark.parametrize(
    ("key", "writable"),
    [
        (UPLOADED, True),
        ("originals/0f8fad5b-d9cb-469f-a165-70867728950e/a/b.jpg", True),  # IAM's * crosses "/": still its folder
        ("originals/photo.jpg", False),
        ("originals/products/shoe.jpg", False),
        ("originals/0f8fad5b-d9cb-469f-a165-70867728950/x.jpg", False),  # one character short of a UUID
        ("originals/site/missing.png", False),
        ("variants/0f8fad5b-d9cb-469f-a165-70867728950e/x.jpg", False),
    ],
)
def test_only_the_catalogue_api_may_create_or_delete_and_only_upload_shaped_keys(
    run: StackRun, key: str, writable: bool
) -> None:
    target = f"arn:aws:s3:::{run.config.primary_bucket}/{key}"
    api = {
        action
        for action, resource in grants(run)["catalog-api-policy"]
        if action in WRITES and fnmatch.fnmatchcase(target, resource)
    }
    assert api == ({"s3:PutObject", "s3:DeleteObject"} if writable else set())


def test_no_wildcard_actions_and_no_unscoped_resources(run: StackRun) -> None:
    for role, pairs in grants(run).items():
        for action, resource in pairs:
            assert "*" not in action, (role, action)
            if action == "rekognition:DetectFaces":  # no resource-level permissions: "*" is required
                assert resource == "*" and role == "edge-resize-policy", (role, resource)
                continue
            assert resource != "*" and resource.startswith("arn:aws:"), (role, resource)


def test_faces_are_granted_only_when_the_stack_crops_to_faces() -> None:
    without = run_stack(from_stack_file("dev", overrides={"crops": ["center", "attention", "entropy"]}))
    assert not any(action.startswith("rekognition:") for pairs in grants(without).values() for action, _ in pairs)
    with_faces = run_stack(from_stack_file("prod", overrides={"crops": ["center", "entropy", "attention", "faces"]}))
    assert ("rekognition:DetectFaces", "*") in grants(with_faces)["edge-resize-policy"]


@pytest.mark.parametrize("mode", ["off", "optional", "required"])
def test_signing_keys_reach_only_the_store_and_the_secret(mode: str) -> None:
    """Only the catalogue's API may read the signing secret, exactly it, and only GetSecretValue (people
    sign with their own credentials); nothing gets the KeyValueStore's API; the viewer function is
    associated with exactly the stack's store, and only when signing is on."""
    run = run_stack(from_stack_file("dev", overrides={"signing": mode}))
    found = {(role, action, resource) for role, pairs in grants(run).items() for action, resource in pairs}
    secret_grants = {item for item in found if item[1].startswith("secretsmanager:")}
    assert not any(action.startswith("cloudfront-keyvaluestore:") for _, action, _ in found)
    assert secret_grants == (
        set() if mode == "off" else {("catalog-api-policy", "secretsmanager:GetSecretValue", secret_arn(run))}
    )
    stores = run.of_type("aws:cloudfront/keyValueStore:KeyValueStore")
    (viewer,) = run.of_type("aws:cloudfront/function:Function")
    associations = viewer.inputs.get("keyValueStoreAssociations") or []
    if mode == "off":
        assert stores == [] and associations == [] and run.of_type("aws:secretsmanager/secret:Secret") == []
        return
    (store,) = stores
    assert len(associations) == 1 and associations[0].endswith(f"/{store.inputs['name']}")
    keys = run.of_type("aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey")
    assert sorted(k.inputs["key"] for k in keys) == ["signing-key-1"]
    (secret,) = run.of_type("aws:secretsmanager/secret:Secret")
    assert secret.inputs["recoveryWindowInDays"] == 7


@pytest.mark.parametrize("key", ["originals/photo.jpg", "originals/a/b/c.png", "originals/", "originals/variants/x"])
def test_no_function_can_write_or_delete_an_original(run: StackRun, key: str) -> None:
    """Originals put in the bucket are never written or deleted by our code (the catalogue's API
    only reaches upload-shaped keys, tested above)."""
    target = f"arn:aws:s3:::{run.config.primary_bucket}/{key}"
    for role, pairs in grants(run).items():
        for action, resource in pairs:
            if action in WRITES or action.endswith("*"):
                assert not fnmatch.fnmatchcase(target, resource), f"{role} may {action} {target}"


def test_only_cloudfront_of_this_distribution_reads_the_buckets(run: StackRun) -> None:
    for declared in run.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        for statement in declared.policy()["Statement"]:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
                assert set(_list(statement["Action"])) <= {"s3:GetObject", "s3:ListBucket"}
                assert statement["Condition"]["StringEquals"]["AWS:SourceArn"].startswith("arn:aws:cloudfront::")
    origin = next(d for d in run.of_type("aws:s3/bucketPolicy:BucketPolicy") if d.name == "origin-policy")
    readable = [s["Resource"] for s in origin.policy()["Statement"] if s.get("Action") == "s3:GetObject"]
    assert readable == [f"arn:aws:s3:::{run.config.primary_bucket}/variants/*"]  # originals never served


def test_every_role_trusts_only_the_service_that_runs_it(run: StackRun) -> None:
    expected = {
        "edge-rewrite-role": {"lambda.amazonaws.com", "edgelambda.amazonaws.com"},
        "edge-resize-role": {"lambda.amazonaws.com", "edgelambda.amazonaws.com"},
        "sync-role": {"lambda.amazonaws.com"},
        "sync-states-role": {"states.amazonaws.com"},
        "sync-events-role": {"events.amazonaws.com"},
        "catalog-metadata-role": {"lambda.amazonaws.com"},
        "catalog-api-role": {"lambda.amazonaws.com"},
    }
    roles = {role.name: role for role in run.of_type("aws:iam/role:Role")}
    assert set(roles) == set(expected)
    for name, role in roles.items():
        (statement,) = role.policy("assumeRolePolicy")["Statement"]
        assert set(_list(statement["Principal"]["Service"])) == expected[name]
        assert statement["Action"] == "sts:AssumeRole"

"""`pulumi destroy` then `pulumi up` of the same stack, the same day.

What AWS keeps after a destroy, and for how long (the documents these tests are written from):
- Lambda@Edge: "You can delete a Lambda@Edge function only when the replicas of the function have
  been deleted by CloudFront ... Replicas are typically deleted within a few hours" (Delete
  Lambda@Edge functions and replicas, CloudFront Developer Guide). The stack retains the functions
  (`skip_destroy`), so their names stay taken for hours.
- Secrets Manager: a deleted secret waits out its recovery window (at least 7 days: DeleteSecret,
  AWS Secrets Manager API Reference) and its name with it ("You can't create this secret because a
  secret with this name is already scheduled for deletion"); ListSecrets leaves it out: "By
  default, secrets scheduled for deletion aren't included" (ListSecrets, IncludePlannedDeletion),
  and a `name` filter is a "Prefix match, case-sensitive" (Filter, same reference).

So the edge functions' and the secret's names end in a suffix from a RandomId in the stack's
state: a destroy drops it, the next up (fresh state: a fresh build on the mocks) draws another.
`ops sign` finds the live secret by prefix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pulumi_mocks import ACCOUNT, StackRun, run_stack

from components.config import from_stack_file
from components.signing import SecretLookupError, find_secret, is_secret_name, secret_prefix
from edge import signing
from localcdn.kvs import KeyValueStore
from localcdn.signing import LocalSigning
from ops import sign

RANDOM_ID = "random:index/randomId:RandomId"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
KVS_KEY = "aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey"
HEX8 = re.compile(r"[0-9a-f]{8}")


@pytest.fixture(scope="module")
def builds() -> dict[str, tuple[StackRun, StackRun]]:
    """Each stack built twice on fresh mocks: an up, and the up after a destroy (no state carried over)."""
    return {stack: (run_stack(from_stack_file(stack)), run_stack(from_stack_file(stack))) for stack in ("dev", "prod")}


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest, builds: dict[str, tuple[StackRun, StackRun]]) -> StackRun:
    return builds[request.param][0]


def suffix(run: StackRun, name: str) -> str:
    """The hex a RandomId of the stack drew (what the mock answered), after checking how it is declared."""
    declared = run.one(RANDOM_ID, name)
    assert declared.inputs["byteLength"] == 4
    assert "keepers" not in declared.inputs  # no keepers: an ordinary update never changes it
    value = str(run.output_of(RANDOM_ID, name)["hex"])
    assert HEX8.fullmatch(value), value
    return value


def names(run: StackRun) -> dict[str, str]:
    return {
        "rewrite": run.one(FUNCTION, "edge-rewrite").inputs["name"],
        "resize": run.one(FUNCTION, "edge-resize").inputs["name"],
        "secret": run.one(SECRET, "signing-secret").inputs["name"],
    }


# -- the names carry a suffix drawn by a RandomId of the stack ----------------------------------


def test_edge_function_names_end_in_the_suffix_edge_functions_drew(run: StackRun) -> None:
    drawn, prefix = suffix(run, "edge-name-suffix"), run.config.name_prefix
    assert run.one(RANDOM_ID, "edge-name-suffix").parent == "edge"  # a child: a destroy drops it
    behaviour = run.one("aws:cloudfront/distribution:Distribution").inputs["defaultCacheBehavior"]
    associated = {a["lambdaArn"].split(":")[-2] for a in behaviour["lambdaFunctionAssociations"]}
    assert associated == {f"{prefix}-rewrite-{drawn}", f"{prefix}-resize-{drawn}"}
    for role in ("rewrite", "resize"):
        function = run.one(FUNCTION, f"edge-{role}").inputs
        assert function["name"] == f"{prefix}-{role}-{drawn}"
        assert function["skipDestroy"] is True
        # exported, so that an operator deleting old retained functions knows which two to keep
        assert run.outputs[f"{role}_function"] == function["name"]
    # the viewer function is deleted with the stack (no replicas): its name stays plain
    assert run.one("aws:cloudfront/function:Function").inputs["name"] == f"{prefix}-normalize"


def test_the_edge_log_groups_and_grants_follow_the_suffixed_names(run: StackRun) -> None:
    drawn, prefix = suffix(run, "edge-name-suffix"), run.config.name_prefix
    for role in ("rewrite", "resize"):
        function = f"{prefix}-{role}-{drawn}"
        groups = [g for g in run.of_type(LOG_GROUP) if g.name.startswith(f"edge-{role}-logs-")]
        # "/aws/lambda/us-east-1.<FunctionName>" in each region that runs it (Edge function logs)
        assert sorted(g.inputs["region"] for g in groups) == sorted(run.config.log_regions)
        assert {g.inputs["name"] for g in groups} == {f"/aws/lambda/us-east-1.{function}"}
        statements = run.one("aws:iam/rolePolicy:RolePolicy", f"edge-{role}-policy").policy()["Statement"]
        (logs,) = [s for s in statements if s["Sid"] == "LogsInEveryRegion"]
        group = f"arn:aws:logs:*:{ACCOUNT}:log-group:/aws/lambda/us-east-1.{function}"
        assert logs["Resource"] == [group, group + ":*"]


def test_edge_functions_wait_for_their_log_groups(run: StackRun) -> None:
    """On a destroy the order reverses: the distribution goes, then the function is forgotten, then its
    groups are deleted, so no replica still serving logs into a deleted group that AWS would recreate."""
    for role in ("rewrite", "resize"):
        groups = {(LOG_GROUP, g.name) for g in run.of_type(LOG_GROUP) if g.name.startswith(f"edge-{role}-logs-")}
        assert groups and groups <= run.one(FUNCTION, f"edge-{role}").dependencies
    distribution = run.one("aws:cloudfront/distribution:Distribution").dependencies
    assert {(FUNCTION, "edge-rewrite"), (FUNCTION, "edge-resize")} <= distribution


def test_the_signing_secret_name_ends_in_the_suffix_url_signing_drew(run: StackRun) -> None:
    drawn, prefix = suffix(run, "signing-suffix"), run.config.name_prefix
    assert run.one(RANDOM_ID, "signing-suffix").parent == "signing"
    secret = run.one(SECRET, "signing-secret").inputs
    assert secret["name"] == f"{prefix}-signing-{drawn}" == secret_prefix(prefix) + drawn
    assert is_secret_name(secret["name"], prefix)
    # the recovery window is kept (policy pack: "no secret without a recovery window")
    assert secret["recoveryWindowInDays"] == 7
    # not "-" + six characters: Secrets Manager appends those to the ARN (CreateSecret, Name)
    assert not re.search(r"-[A-Za-z0-9]{6}$", secret["name"])
    assert run.outputs["signing_secret"] == secret["name"]
    # the store is deleted with the stack and keeps its plain name
    assert run.one("aws:cloudfront/keyValueStore:KeyValueStore").inputs["name"] == f"{prefix}-signing"


def test_the_catalogue_reads_the_suffixed_secret_by_its_arn(run: StackRun) -> None:
    arn = run.output_of(SECRET, "signing-secret")["arn"]
    assert arn.endswith(run.one(SECRET, "signing-secret").inputs["name"])
    readers = [
        f
        for f in run.of_type(FUNCTION)
        if "SIGNING_SECRET" in ((f.inputs.get("environment") or {}).get("variables") or {})
    ]
    assert [f.name for f in readers] == ["catalog-api"]
    (reader,) = readers
    assert reader.inputs["environment"]["variables"]["SIGNING_SECRET"] == arn
    statements = run.one("aws:iam/rolePolicy:RolePolicy", "catalog-api-policy").policy()["Statement"]
    (read,) = [s for s in statements if s["Sid"] == "ReadSigningKey"]
    assert (read["Action"], read["Resource"]) == (["secretsmanager:GetSecretValue"], [arn])
    # deployed after the secret holds its keys: never pointed at a secret without a current version
    assert (SECRET_VERSION, "signing-secret-version") in reader.dependencies


def test_a_rebuild_after_a_destroy_draws_new_names(builds: dict[str, tuple[StackRun, StackRun]]) -> None:
    for first, second in builds.values():
        before, after = names(first), names(second)
        for what in before:
            assert before[what] != after[what], what  # the retained / recovering ones never collide
            assert before[what][:-8] == after[what][:-8]  # only the suffix differs
        assert suffix(first, "edge-name-suffix") != suffix(second, "edge-name-suffix")
        assert suffix(first, "signing-suffix") != suffix(second, "signing-suffix")


def test_the_longest_prefix_keeps_a_lambda_name_within_64_characters() -> None:
    longest = "p" * 45  # what the stack config accepts for namePrefix
    built = run_stack(from_stack_file("dev", overrides={"namePrefix": longest}))
    for role in ("rewrite", "resize"):
        assert len(built.one(FUNCTION, f"edge-{role}").inputs["name"]) <= 64


# -- the secret's new value waits for the store --------------------------------------------------


def test_the_secret_version_is_written_after_every_key_of_the_store(run: StackRun) -> None:
    """Signers read the secret, the edge reads the store: the secret names a key only once the store has it."""
    keys = {(KVS_KEY, k.name) for k in run.of_type(KVS_KEY)}
    assert keys  # generation 1: one key (kid 1); from generation 2 on, two
    assert keys <= run.one(SECRET_VERSION, "signing-secret-version").dependencies
    for key in run.of_type(KVS_KEY):  # and not the other way round
        assert (SECRET_VERSION, "signing-secret-version") not in key.dependencies


def test_after_a_rotation_the_version_waits_for_both_keys() -> None:
    rotated = run_stack(from_stack_file("dev", overrides={"signingKeyGeneration": 4}))
    keys = {(KVS_KEY, k.name) for k in rotated.of_type(KVS_KEY)}
    assert len(keys) == 2 and keys <= rotated.one(SECRET_VERSION, "signing-secret-version").dependencies


# -- ops sign finds the live secret by prefix (moto's Secrets Manager) ---------------------------

STACK = from_stack_file("dev")
PREFIX, REGION = STACK.name_prefix, STACK.primary_region


@pytest.fixture
def secrets() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def put(client: Any, name: str, kid: str = "1", key: str = "k" * 64) -> None:
    client.create_secret(Name=name, SecretString=json.dumps({"current": kid, "keys": {kid: key}}))


def ops_sign(capsys: pytest.CaptureFixture[str], url: str = "/products/shoe.jpg?w=800") -> tuple[int, str, str]:
    code = sign.main([url, "--stack", "dev"])
    out, err = capsys.readouterr()
    return code, out, err


def test_ops_sign_finds_the_one_live_secret_by_prefix(secrets: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put(secrets, f"{PREFIX}-signing-0123abcd", kid="3", key="s" * 64)
    # not UrlSigning's: the name before suffixes, another suffix shape, another stack's prefix
    for other in (
        f"{PREFIX}-signing",
        f"{PREFIX}-signing-backup",
        f"{PREFIX}-signingx-0123abcd",
        f"x{PREFIX}-signing-0",
    ):
        put(secrets, other)
    code, out, err = ops_sign(capsys)
    assert (code, err) == (0, "")
    assert out.strip() == signing.sign("/products/shoe.jpg?w=800", "s" * 64, "3")


def test_ops_sign_passes_over_a_destroyed_stacks_secret_in_its_recovery_window(
    secrets: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put(secrets, f"{PREFIX}-signing-aaaaaaaa", kid="7", key="o" * 64)
    secrets.delete_secret(SecretId=f"{PREFIX}-signing-aaaaaaaa", RecoveryWindowInDays=7)  # the destroy
    put(secrets, f"{PREFIX}-signing-bbbbbbbb", kid="1", key="n" * 64)  # the up after it
    listed = secrets.list_secrets(Filters=[{"Key": "name", "Values": [secret_prefix(PREFIX)]}])["SecretList"]
    assert [s["Name"] for s in listed] == [f"{PREFIX}-signing-bbbbbbbb"]  # the document's default
    planned = secrets.list_secrets(IncludePlannedDeletion=True)["SecretList"]
    assert {s["Name"] for s in planned} == {f"{PREFIX}-signing-aaaaaaaa", f"{PREFIX}-signing-bbbbbbbb"}
    code, out, _ = ops_sign(capsys)
    assert code == 0 and out.strip() == signing.sign("/products/shoe.jpg?w=800", "n" * 64, "1")


def test_ops_sign_without_a_live_secret_says_so_in_one_line(secrets: Any, capsys: pytest.CaptureFixture[str]) -> None:
    put(secrets, f"{PREFIX}-signing-aaaaaaaa")
    secrets.delete_secret(SecretId=f"{PREFIX}-signing-aaaaaaaa", RecoveryWindowInDays=7)
    code, out, err = ops_sign(capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"ops sign: no live secret {PREFIX}-signing-* in {REGION}")


def test_ops_sign_with_two_live_secrets_names_both_and_signs_nothing(
    secrets: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    put(secrets, f"{PREFIX}-signing-aaaaaaaa")
    put(secrets, f"{PREFIX}-signing-bbbbbbbb")
    code, out, err = ops_sign(capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert f"2 live secrets match {PREFIX}-signing-* in {REGION}" in err
    assert f"{PREFIX}-signing-aaaaaaaa, {PREFIX}-signing-bbbbbbbb" in err


class LaggingList:
    """A client whose ListSecrets still lists a secret deleted a moment ago ("ListSecrets might not
    reflect changes from the last five minutes", ListSecrets), while DescribeSecret is current."""

    def __init__(self, listed: list[str], deleted: set[str]):
        self.listed, self.deleted = listed, deleted

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_secrets"
        listed = self.listed

        class Pages:
            def paginate(self, Filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
                (wanted,) = Filters[0]["Values"]
                return [{"SecretList": [{"Name": n} for n in listed if n.startswith(wanted)]}]

        return Pages()

    def describe_secret(self, SecretId: str) -> dict[str, Any]:
        return {"Name": SecretId, **({"DeletedDate": "2030-01-01"} if SecretId in self.deleted else {})}


def test_a_secret_listed_a_moment_after_its_delete_is_checked_again() -> None:
    old, new = f"{PREFIX}-signing-aaaaaaaa", f"{PREFIX}-signing-bbbbbbbb"
    assert find_secret(LaggingList([old, new], deleted={old}), PREFIX) == new
    with pytest.raises(SecretLookupError, match="no live secret"):
        find_secret(LaggingList([old, new], deleted={old, new}), PREFIX)


# -- the emulator makes the secret as UrlSigning does --------------------------------------------


def test_the_emulator_names_its_secret_as_url_signing_does_and_ops_sign_finds_it(secrets: Any) -> None:
    endpoint = f"https://secretsmanager.{REGION}.amazonaws.com"
    first = LocalSigning(KeyValueStore("signing"), endpoint, REGION, PREFIX)
    assert is_secret_name(first.name, PREFIX)
    assert find_secret(secrets, PREFIX) == first.name
    document = json.loads(secrets.get_secret_value(SecretId=first.name)["SecretString"])
    assert document == {"current": "1", "keys": {"1": first.keys["1"]}}
    first.rotate()  # a rotation writes the same secret again
    assert find_secret(secrets, PREFIX) == first.name
    # a destroy (the secret waits out its window) and another deployment: another suffix, found alone
    secrets.delete_secret(SecretId=first.name, RecoveryWindowInDays=7)
    second = LocalSigning(KeyValueStore("signing"), endpoint, REGION, PREFIX)
    assert second.name != first.name
    assert find_secret(secrets, PREFIX) == second.name

"""The reconcile state machine: valid Amazon States Language (checked by npm's asl-validator),
the shape the sync job needs, and a role with exactly the grants it uses."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pulumi_mocks import ACCOUNT, StackRun, run_stack

from components.config import from_stack_file

VALIDATOR = Path(__file__).parent / "asl" / "node_modules" / ".bin" / "asl-validator"
MACHINE = "aws:sfn/stateMachine:StateMachine"


@pytest.fixture(scope="module")
def stacks() -> dict[str, StackRun]:
    runs = {stack: run_stack(from_stack_file(stack)) for stack in ("dev", "prod")}
    runs["inventory"] = run_stack(dataclasses.replace(from_stack_file("prod"), sync_inventory=True))
    return runs


def definition_of(run: StackRun) -> dict[str, Any]:
    return dict(json.loads(run.one(MACHINE).inputs["definition"]))


def validate(definition: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not VALIDATOR.exists():
        if os.environ.get("CI"):
            pytest.fail("make test installs the validator (tests/asl, npm ci)")
        pytest.skip("run `make test` (it installs npm's asl-validator into tests/asl)")
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("stack", ["dev", "prod", "inventory"])
def test_the_definition_is_valid_amazon_states_language(
    stacks: dict[str, StackRun], stack: str, tmp_path: Path
) -> None:
    result = validate(definition_of(stacks[stack]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("spoil", "complaint"),
    [
        (lambda d: d["States"]["Build"].__setitem__("Next", "Nowhere"), "MISSING_TRANSITION_TARGET"),
        (lambda d: d["States"]["Build"].__setitem__("ToleratedFailurePercentage", 150), "SCHEMA_VALIDATION_FAILED"),
        (lambda d: d.__setitem__("StartAt", "Nothing"), "MISSING_TRANSITION_TARGET"),
    ],
)
def test_the_validator_refuses_a_broken_copy(
    stacks: dict[str, StackRun], spoil: Any, complaint: str, tmp_path: Path
) -> None:
    broken = copy.deepcopy(definition_of(stacks["dev"]))
    spoil(broken)
    result = validate(broken, tmp_path)
    assert result.returncode != 0 and complaint in result.stdout + result.stderr


def test_build_is_a_distributed_map_over_the_originals(stacks: dict[str, StackRun]) -> None:
    for stack in ("dev", "prod"):
        run = stacks[stack]
        build = definition_of(run)["States"]["Build"]
        assert build["Type"] == "Map" and build["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        reader = build["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:listObjectsV2"
        assert reader["Parameters"] == {"Bucket": run.config.primary_bucket, "Prefix": "originals/"}
        assert build["ItemBatcher"]["MaxItemsPerBatch"] == run.config.sync_batch_size
        assert build["MaxConcurrency"] == run.config.sync_concurrency
        assert build["ToleratedFailurePercentage"] == run.config.sync_tolerated_failure_percent
        assert build["ResultWriter"]["Parameters"]["Bucket"] == run.config.name_prefix + "-sync"
        task = build["ItemProcessor"]["States"]["BuildBatch"]
        assert task["Parameters"]["FunctionName"] == run.output_of("aws:lambda/function:Function", "sync")["arn"]
        (catch,) = task["Catch"]
        dead_letter = build["ItemProcessor"]["States"][catch["Next"]]
        assert dead_letter["Resource"] == "arn:aws:states:::sqs:sendMessage"
        assert dead_letter["Parameters"]["QueueUrl"] == run.output_of("aws:sqs/queue:Queue", "sync-dead-letters")["url"]
        assert build["ItemProcessor"]["States"][dead_letter["Next"]]["Type"] == "Fail"  # counts against the tolerance
    assert stacks["dev"].config.sync_concurrency < stacks["prod"].config.sync_concurrency


def test_the_sweep_is_a_loop_the_state_machine_drives(stacks: dict[str, StackRun]) -> None:
    states = definition_of(stacks["dev"])["States"]
    assert states["Build"]["Next"] == "StartSweep" and states["StartSweep"]["Next"] == "Sweep"
    sweep = states["Sweep"]
    assert sweep["Parameters"]["Payload"] == {"sweep.$": "$.sweep"} and sweep["ResultPath"] == "$.sweep"
    loop = states[sweep["Next"]]
    assert loop["Type"] == "Choice" and loop["Choices"][0]["Next"] == "Sweep" and loop["Default"] == "Done"
    # no state machine state reads the fallback bucket: a Distributed Map reads S3 in its own region only
    assert stacks["dev"].config.fallback_bucket not in json.dumps(states)


def test_with_an_inventory_a_manifest_starts_the_build_from_it(stacks: dict[str, StackRun]) -> None:
    run = stacks["inventory"]
    definition = definition_of(run)
    assert definition["StartAt"] == "Source"
    reader = definition["States"]["BuildFromInventory"]["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject" and reader["ReaderConfig"]["InputType"] == "MANIFEST"
    assert definition["States"]["BuildFromInventory"]["ItemBatcher"]["BatchInput"] == {"source": "inventory"}
    inventory = run.one("aws:s3/inventory:Inventory").inputs
    assert inventory["bucket"] == run.config.primary_bucket and inventory["filter"]["prefix"] == "originals/"
    assert set(inventory["optionalFields"]) >= {"ETag", "Size"}
    delivered = [t for t in run.of_type("aws:cloudwatch/eventTarget:EventTarget") if "inputTransformer" in t.inputs]
    (target,) = delivered
    assert '"manifest"' in target.inputs["inputTransformer"]["inputTemplate"]
    assert stacks["dev"].of_type("aws:s3/inventory:Inventory") == []


def test_the_schedule_starts_the_state_machine_and_nothing_invokes_the_function_but_events(
    stacks: dict[str, StackRun],
) -> None:
    for stack in ("dev", "prod"):
        run = stacks[stack]
        target = run.one("aws:cloudwatch/eventTarget:EventTarget", "sync-schedule-target")
        assert target.inputs["arn"] == run.output_of(MACHINE, "sync-state-machine")["arn"]
        assert target.inputs["roleArn"] == run.output_of("aws:iam/role:Role", "sync-events-role")["arn"]
        invoked = {
            (p.inputs["function"], p.inputs["principal"]) for p in run.of_type("aws:lambda/permission:Permission")
        }
        sync = f"{run.config.name_prefix}-sync"
        # the schedule no longer invokes the function itself: only S3's notification does
        assert {principal for function, principal in invoked if function == sync} == {"s3.amazonaws.com"}
        grants = json.dumps(
            [d.inputs["policy"] for d in run.of_type("aws:iam/rolePolicy:RolePolicy") if d.name == "sync-policy"]
        )
        assert "lambda:InvokeFunction" not in grants  # the function can call nothing, itself included
        function = run.one("aws:lambda/function:Function", "sync").inputs
        assert function["timeout"] == 900


def test_the_state_machine_role_has_exactly_what_the_definition_uses(stacks: dict[str, StackRun]) -> None:
    for stack, inventory in (("dev", False), ("inventory", True)):
        run = stacks[stack]
        c = run.config
        policy = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "sync-states-policy").inputs["policy"])
        pairs = {
            (action, resource)
            for statement in policy["Statement"]
            for action in statement["Action"]
            for resource in statement["Resource"]
        }
        region = c.primary_region
        machine = f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{c.name_prefix}-sync"
        results = f"arn:aws:s3:::{c.name_prefix}-sync"
        expected = {
            ("lambda:InvokeFunction", f"arn:aws:lambda:{region}:{ACCOUNT}:function:{c.name_prefix}-sync"),
            ("states:StartExecution", machine),
            ("states:DescribeExecution", f"arn:aws:states:{region}:{ACCOUNT}:execution:{c.name_prefix}-sync/*"),
            ("states:StopExecution", f"arn:aws:states:{region}:{ACCOUNT}:execution:{c.name_prefix}-sync/*"),
            ("s3:ListBucket", f"arn:aws:s3:::{c.primary_bucket}"),
            ("sqs:SendMessage", f"arn:aws:sqs:{region}:{ACCOUNT}:{c.name_prefix}-sync-dead-letters"),
        } | {
            (action, f"{results}/sync-results/*")
            for action in ("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload")
        }
        if inventory:
            expected.add(("s3:GetObject", f"{results}/inventory/*"))
        assert pairs == expected
        (listing,) = [s for s in policy["Statement"] if s["Sid"] == "ListOriginals"]
        assert listing["Condition"] == {"StringLike": {"s3:prefix": ["originals/*"]}}
        trust = json.loads(run.one("aws:iam/role:Role", "sync-states-role").inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}

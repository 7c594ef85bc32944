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

from components import reconcile
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


def test_build_is_a_distributed_map_over_the_plans_work(stacks: dict[str, StackRun]) -> None:
    for stack in ("dev", "prod"):
        run = stacks[stack]
        build = definition_of(run)["States"]["Build"]
        assert build["Type"] == "Map" and build["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        reader = build["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:getObject"
        assert reader["ReaderConfig"] == {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}
        assert reader["Parameters"] == {"Bucket.$": "$.plan.listing.Bucket", "Key.$": "$.plan.listing.Key"}
        assert build["ItemBatcher"]["MaxItemsPerBatch"] == run.config.sync_batch_size
        assert build["ItemBatcher"]["BatchInput"] == {"source": "plan"}
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


EXPRESS_MARGIN_SECONDS = 30


@pytest.mark.parametrize("stack", ["dev", "prod", "inventory"])
def test_no_batch_can_outlive_its_child_workflow(stacks: dict[str, StackRun], stack: str) -> None:
    # "Standard vs. Express workflows": an Express execution runs at most 5 minutes, and one that
    # is stopped then is counted as timed out, its Catch never running. A child is either Standard,
    # or every task in it ends, all retries taken, well inside the five minutes.
    maps = reconcile.distributed_maps(definition_of(stacks[stack]))
    assert maps
    for state in maps:
        processor = state["ItemProcessor"]
        if processor["ProcessorConfig"]["ExecutionType"] == "STANDARD":
            continue
        for task in processor["States"].values():
            if task["Type"] == "Task":
                assert reconcile.worst_case_seconds(task) <= reconcile.EXPRESS_LIMIT_SECONDS - EXPRESS_MARGIN_SECONDS


def test_the_worst_case_of_a_task_counts_every_attempt_and_wait() -> None:
    # The child task before this change: 240 s a try, a States.ALL retrier of 2 (5 s, x2) and the
    # Lambda service retrier of 6 (2 s, x2): nine attempts and 141 s of waiting.
    task = {"TimeoutSeconds": 240, "Retry": reconcile.RETRIES}
    assert reconcile.worst_case_seconds(task) == 9 * 240 + (2 + 4 + 8 + 16 + 32 + 64) + (5 + 10)
    # One timeout and one retry alone already outlive an Express child.
    assert (
        reconcile.worst_case_seconds(
            {"TimeoutSeconds": 240, "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}]}
        )
        > 300
    )
    # A batch's task outlasts the function, so the function's own timeout ends each attempt.
    assert reconcile.TASK_TIMEOUT_SECONDS > reconcile.FUNCTION_TIMEOUT_SECONDS


def test_the_plan_is_a_loop_the_state_machine_drives(stacks: dict[str, StackRun]) -> None:
    definition = definition_of(stacks["dev"])
    states = definition["States"]
    assert definition["StartAt"] == "Guard" and states["Guard"]["Next"] == "AlreadyRunning"
    assert states["AlreadyRunning"]["Default"] == "FromListing" and states["FromListing"]["Next"] == "Plan"
    plan = states["Plan"]
    assert plan["Parameters"]["Payload"]["plan"]["cursor.$"] == "$.plan.cursor" and plan["ResultPath"] == "$.plan"
    any_work = states[plan["Next"]]
    assert any_work["Type"] == "Choice" and any_work["Choices"][0]["Next"] == "Build"
    assert any_work["Default"] == states["Build"]["Next"] == "MoreToPlan"  # nothing to build: no Map Run
    loop = states["MoreToPlan"]
    assert loop["Type"] == "Choice" and loop["Choices"][0]["Next"] == "Plan" and loop["Default"] == "Done"
    assert plan["TimeoutSeconds"] > stacks["dev"].one("aws:lambda/function:Function", "sync").inputs["timeout"]
    # no state machine state reads the fallback bucket: a Distributed Map reads S3 in its own region only
    assert stacks["dev"].config.fallback_bucket not in json.dumps(states)


def test_with_an_inventory_a_manifest_starts_the_plan_from_it(stacks: dict[str, StackRun]) -> None:
    run = stacks["inventory"]
    definition = definition_of(run)
    states = definition["States"]
    assert definition["StartAt"] == "Guard" and states["AlreadyRunning"]["Default"] == "Source"
    assert states["Source"]["Choices"][0]["Next"] == "FromInventory"
    assert states["FromInventory"]["Parameters"] == {"cursor": None, "manifest.$": "$.manifest"}
    assert states["FromInventory"]["Next"] == "Plan"
    assert [m["Label"] for m in reconcile.distributed_maps(definition)] == ["Build"]
    inventory = run.one("aws:s3/inventory:Inventory").inputs
    assert inventory["bucket"] == run.config.primary_bucket and inventory["filter"]["prefix"] == "originals/"
    assert set(inventory["optionalFields"]) >= {"ETag", "Size"}
    delivered = [t for t in run.of_type("aws:cloudwatch/eventTarget:EventTarget") if "inputTransformer" in t.inputs]
    (target,) = delivered
    assert '"manifest"' in target.inputs["inputTransformer"]["inputTemplate"]
    assert stacks["dev"].of_type("aws:s3/inventory:Inventory") == []
    grants = json.loads(run.one("aws:iam/rolePolicy:RolePolicy", "sync-policy").inputs["policy"])
    (read,) = [s for s in grants["Statement"] if s["Sid"] == "ReadInventory"]
    assert read["Action"] == ["s3:GetObject"] and read["Resource"] == [
        f"arn:aws:s3:::{run.config.name_prefix}-sync/inventory/*"
    ]


@pytest.mark.parametrize("stack", ["dev", "prod", "inventory"])
def test_the_sync_function_reserves_its_share_and_no_map_asks_for_more(stacks: dict[str, StackRun], stack: str) -> None:
    # "Restrictions on Lambda@Edge": edge replicas share each Region's pool with regional functions;
    # reserved concurrency caps the sync function there ("Configuring reserved concurrency").
    run = stacks[stack]
    reserved = run.one("aws:lambda/function:Function", "sync").inputs["reservedConcurrentExecutions"]
    assert reserved == run.config.sync_reserved_concurrency
    for state in reconcile.distributed_maps(definition_of(run)):
        assert state["MaxConcurrency"] <= reserved
    mapping = run.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs
    assert mapping["scalingConfig"]["maximumConcurrency"] <= reserved


def test_a_sync_job_asked_for_more_batches_than_it_reserves_is_refused() -> None:
    from components.sync_job import SyncJob

    with pytest.raises(ValueError, match=r"expected concurrency from 1 to reserved_concurrency \(20\), got 50"):
        SyncJob("sync", {"concurrency": 50, "reserved_concurrency": 20})  # type: ignore[typeddict-item]


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
    for stack in ("dev", "inventory"):
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
        expected = (
            {
                ("lambda:InvokeFunction", f"arn:aws:lambda:{region}:{ACCOUNT}:function:{c.name_prefix}-sync"),
                ("states:StartExecution", machine),
                ("states:ListExecutions", machine),
            }
            | {
                (action, f"arn:aws:states:{region}:{ACCOUNT}:execution:{c.name_prefix}-sync{separator}*")
                for action in ("states:DescribeExecution", "states:RedriveExecution", "states:StopExecution")
                for separator in ("/", ":")
            }
            | {
                ("s3:GetObject", f"{results}/listings/*"),
                ("sqs:SendMessage", f"arn:aws:sqs:{region}:{ACCOUNT}:{c.name_prefix}-sync-dead-letters"),
            }
            | {
                (action, f"{results}/sync-results/*")
                for action in ("s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload")
            }
        )
        assert pairs == expected  # the same with an inventory: the function reads the report, not the machine
        trust = json.loads(run.one("aws:iam/role:Role", "sync-states-role").inputs["assumeRolePolicy"])
        assert trust["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}


def run_without_work(definition: dict[str, Any], legs: int, start: dict[str, Any]) -> list[str]:
    """The states a run enters when every plan leg finds nothing to build: Pass, Choice and Task
    states as ASL defines them, with the plan answering a cursor until its last leg."""
    states, name, data, done = definition["States"], definition["StartAt"], dict(start), 0
    entered: list[str] = []
    while True:
        entered.append(name)
        state = states[name]
        if state["Type"] in ("Succeed", "Fail"):
            return entered
        if state["Type"] == "Pass":
            data["plan"] = dict(state.get("Result") or {"cursor": None, "manifest": data.get("manifest")})
        elif state["Type"] == "Task" and state["Resource"].endswith("sfn:listExecutions"):
            data["guard"] = {"running": data.get("running", 1)}  # this run, and any other going
        elif state["Type"] == "Task":
            done += 1
            data["plan"] = {"cursor": None if done == legs else {"leg": done}, "work": 0, "listing": None}
        elif state["Type"] == "Choice":
            nxt = state["Default"]
            for rule in state["Choices"]:
                path = rule["Variable"].removeprefix("$.").split(".")
                value: Any = data
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                if (
                    ("IsPresent" in rule and (value is not None) == rule["IsPresent"])
                    or ("IsNull" in rule and (value is None) == rule["IsNull"])
                    or ("NumericGreaterThan" in rule and value is not None and value > rule["NumericGreaterThan"])
                ):
                    nxt = rule["Next"]
                    break
            name = nxt
            continue
        name = state["Next"]


@pytest.mark.parametrize("legs", [1, 3])
def test_the_cost_model_counts_the_transitions_a_run_makes(stacks: dict[str, StackRun], legs: int) -> None:
    from ops import cost

    entered = run_without_work(definition_of(stacks["dev"]), legs, {})
    assert "Build" not in entered and entered.count("Plan") == legs
    assert len(entered) == cost.reconcile_transitions(legs)
    manifest = {"manifest": {"Bucket": "b", "Key": "k"}}
    with_inventory = run_without_work(definition_of(stacks["inventory"]), legs, manifest)
    assert with_inventory[:4] == ["Guard", "AlreadyRunning", "Source", "FromInventory"]
    assert len(with_inventory) == cost.reconcile_transitions(legs, inventory=True)


@pytest.mark.parametrize("stack", ["dev", "inventory"])
def test_a_run_started_while_another_is_going_does_nothing(stacks: dict[str, StackRun], stack: str) -> None:
    # The schedule, an inventory report and `ops sync --on-aws` may each start one: two at once would ask
    # for twice the batches the sync function's reserved concurrency holds.
    entered = run_without_work(definition_of(stacks[stack]), 1, {"running": 2, "manifest": {"Bucket": "b", "Key": "k"}})
    assert entered == ["Guard", "AlreadyRunning", "Skipped"]
    guard = definition_of(stacks[stack])["States"]["Guard"]
    assert guard["Parameters"] == {
        "StateMachineArn.$": "$$.StateMachine.Id",
        "StatusFilter": "RUNNING",
        "MaxResults": 2,
    }

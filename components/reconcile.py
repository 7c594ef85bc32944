"""The reconcile state machine's definition (Amazon States Language) and its grants.

One Step Functions state machine runs the reconcile:

    FromListing | FromInventory   where the originals come from: a listing of `originals/`, or
                                  the S3 Inventory report whose arrival started the run
    Plan        the sync function walks the originals and the fallback bucket side by side
                (`sync.job.Sync.plan`): deletes orphans and retired variants, and writes the
                originals that need building to a CSV in the results bucket; a leg stops before
                the function's 15 minutes and hands back its cursor
    AnyWork?    nothing to build (the steady state): no Map Run at all
    Build       Distributed Map over that CSV: batches of `batch_size` originals to the sync
                function (`sync.job.run_batch`), each with what the plan saw in the fallback
    MoreToPlan? the next leg, until the cursor is null

A steady-state run is a few plan legs: ceil(N/1000) LISTs of `originals/`, one pass over the
fallback, no GET and no child workflow (bench/requests.py counts it; ops/cost.py prices it).

With a manifest or sitemap source (originals not in our bucket), the sync function first
streams the source into a CSV object in the results bucket (ListOriginals), and the
Distributed Map reads that with its CSV item reader (AWS, "ItemReader (Map)": InputType
CSV, CSVHeaderLocation FIRST_ROW). There is no orphan deletion then: an original is known gone
only by its absence from the manifest, and a broken manifest must not empty the fallback.

The plan is a loop of legs, not a Distributed Map, because it is one ordered pass over two
listings (the fallback is in another region by design, where a Distributed Map cannot read:
"ItemReader": the bucket must be in the same account and Region as the state machine).

Children are Standard workflows: an Express child ends at five minutes whatever its retries
("Standard vs. Express workflows": Express runs up to 5 minutes), and one that does is counted
as timed out, its Catch never running; a Standard child runs as long as its retries need, so a
batch that fails after them always reaches the dead-letter queue. A batch's task times out a
minute after the function would (so the function's own timeout ends an attempt and no retry
overlaps a still-running invocation: concurrency stays within MaxConcurrency). The definition is
plain data so that the tests can validate it with a real ASL validator (npm `asl-validator`)
and compare the role's grants with what it needs.
"""

from __future__ import annotations

from typing import Any

from components import iam

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SQS_SEND = "arn:aws:states:::sqs:sendMessage"
GET_OBJECT = "arn:aws:states:::s3:getObject"
LIST_EXECUTIONS = "arn:aws:states:::aws-sdk:sfn:listExecutions"
PUT_OBJECT = "arn:aws:states:::s3:putObject"
RESULTS_PREFIX = "sync-results"
INVENTORY_PREFIX = "inventory"
LISTING_PREFIX = "listings"  # sync.job.LISTING_PREFIX
# The sync function's timeout (Lambda's largest): a plan leg, a listing, or a batch.
FUNCTION_TIMEOUT_SECONDS = 900
# A task waits this much longer than the function may run, so that the function's own timeout
# ends an attempt (a Step Functions timeout would leave the invocation running beside its retry).
TASK_TIMEOUT_SECONDS = FUNCTION_TIMEOUT_SECONDS + 60
# Express workflows end at five minutes ("Standard vs. Express workflows"); what an Express
# child may take, retries included, must stay inside it with room to spare.
EXPRESS_LIMIT_SECONDS = 300
CHILD_EXECUTION_TYPE = "STANDARD"
# Lambda's transient errors (Step Functions' "Handling Lambda service exceptions" best practice).
LAMBDA_TRANSIENT = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


RETRIES = [
    {
        "ErrorEquals": LAMBDA_TRANSIENT,
        "IntervalSeconds": 2,
        "MaxAttempts": 6,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    },
    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 2},
]


def _dead_letter(queue_url: str, following: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": SQS_SEND,
        "Parameters": {"QueueUrl": queue_url, "MessageBody.$": "States.JsonToString($)"},
        "Next": following,
    }


def _processor(function_arn: str, dead_letter_queue_url: str, label: str) -> dict[str, Any]:
    """One child workflow: the batch to the sync function; on failure, to the dead-letter queue.

    State names are unique across the whole machine, nested ones included (ASL), hence the label."""
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": CHILD_EXECUTION_TYPE},
        "StartAt": f"{label}Batch",
        "States": {
            f"{label}Batch": {
                "Type": "Task",
                "Resource": LAMBDA_INVOKE,
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
                "Retry": RETRIES,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{label}DeadLetter"}],
                "End": True,
            },
            f"{label}DeadLetter": _dead_letter(dead_letter_queue_url, f"{label}Failed"),
            f"{label}Failed": {
                "Type": "Fail",
                "Error": "BatchFailed",
                "Cause": "the batch went to the dead-letter queue",
            },
        },
    }


def _function_task(
    function_arn: str,
    payload: dict[str, Any],
    selector: dict[str, str],
    result_path: str,
    timeout: int,
    dead_letter: str,
    following: str,
) -> dict[str, Any]:
    """One invocation of the sync function in the parent workflow, retried, its failure to the queue."""
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_arn, "Payload": payload},
        "ResultSelector": selector,
        "ResultPath": result_path,
        "TimeoutSeconds": timeout,
        "Retry": RETRIES,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": dead_letter}],
        "Next": following,
    }


def _map(
    reader: dict[str, Any],
    batch: dict[str, Any],
    processor: dict[str, Any],
    results_bucket: str,
    concurrency: int,
    tolerated_failure_percent: int,
    label: str,
    following: str = "StartSweep",
) -> dict[str, Any]:
    return {
        "Type": "Map",
        "Label": label,
        "ItemReader": reader,
        "ItemBatcher": {**batch, "MaxInputBytesPerBatch": 250_000},
        "MaxConcurrency": concurrency,
        "ToleratedFailurePercentage": tolerated_failure_percent,
        "ItemProcessor": processor,
        "ResultWriter": {"Resource": PUT_OBJECT, "Parameters": {"Bucket": results_bucket, "Prefix": RESULTS_PREFIX}},
        "ResultPath": None,  # the input passes on; the results are in S3
        "Next": following,
    }


def worst_case_seconds(task: dict[str, Any]) -> float:
    """The longest a Task state can run, every retry taken: each attempt up to its TimeoutSeconds,
    and every wait at its longest (IntervalSeconds x BackoffRate^n, capped by MaxDelaySeconds).
    Retriers count attempts separately, so the worst case takes each retrier's MaxAttempts
    ("Handling errors in Step Functions workflows": Retry)."""
    timeout = float(task.get("TimeoutSeconds", 60))
    attempts, waits = 1, 0.0
    for retrier in task.get("Retry", []):
        interval, rate = float(retrier.get("IntervalSeconds", 1)), float(retrier.get("BackoffRate", 2.0))
        cap = float(retrier.get("MaxDelaySeconds", float("inf")))
        for n in range(int(retrier.get("MaxAttempts", 3))):
            waits += min(cap, interval * rate**n)
            attempts += 1
    return attempts * timeout + waits


def distributed_maps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """Every distributed Map state of a definition, nested ones included."""
    found: list[dict[str, Any]] = []
    for state in definition.get("States", {}).values():
        processor = state.get("ItemProcessor") or state.get("Iterator") or {}
        if state.get("Type") == "Map" and processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            found.append(state)
        if processor:
            found.extend(distributed_maps(processor))
        for branch in state.get("Branches", []):
            found.extend(distributed_maps(branch))
    return found


def definition(
    *,
    function_arn: str,
    primary_bucket: str,
    results_bucket: str,
    dead_letter_queue_url: str,
    concurrency: int,
    batch_size: int,
    tolerated_failure_percent: int,
    inventory: bool,
    source: str = "s3",
) -> dict[str, Any]:
    """The state machine, as Amazon States Language. `source`: the stack's originalsSource kind."""

    def csv_reader(where: str) -> dict[str, Any]:
        return {
            "Resource": GET_OBJECT,
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket.$": f"{where}.Bucket", "Key.$": f"{where}.Key"},
        }

    def build(batch_source: str, reader: dict[str, Any], following: str) -> dict[str, Any]:
        batch = {"MaxItemsPerBatch": batch_size, "BatchInput": {"source": batch_source}}
        processor = _processor(function_arn, dead_letter_queue_url, "Build")
        return _map(
            reader, batch, processor, results_bucket, concurrency, tolerated_failure_percent, "Build", following
        )

    if source != "s3":
        return {
            "Comment": "image-cdn: fetch every listed original's standard set from the image service into the fallback",
            "StartAt": "ListOriginals",
            "States": {
                "ListOriginals": _function_task(
                    function_arn,
                    {"list": {"Bucket": results_bucket, "name.$": "$$.Execution.Name"}},
                    {"Bucket.$": "$.Payload.Bucket", "Key.$": "$.Payload.Key"},
                    "$.listing",
                    TASK_TIMEOUT_SECONDS,
                    "ListDeadLetter",
                    "Build",
                ),
                "ListDeadLetter": _dead_letter(dead_letter_queue_url, "ListFailed"),
                "ListFailed": {
                    "Type": "Fail",
                    "Error": "ListFailed",
                    "Cause": "the listing went to the dead-letter queue",
                },
                "Build": build("manifest", csv_reader("$.listing"), "Done"),
                "Done": {"Type": "Succeed"},
            },
        }

    states: dict[str, Any] = {
        # One run at a time: the schedule, an inventory report and `ops sync --on-aws` may each start one,
        # and two would ask for twice the batches the function's reserved concurrency holds.
        "Guard": {
            "Type": "Task",
            "Resource": LIST_EXECUTIONS,
            "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id", "StatusFilter": "RUNNING", "MaxResults": 2},
            "ResultSelector": {"running.$": "States.ArrayLength($.Executions)"},
            "ResultPath": "$.guard",
            "Retry": RETRIES,
            "Next": "AlreadyRunning",
        },
        "AlreadyRunning": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.guard.running", "NumericGreaterThan": 1, "Next": "Skipped"}],
            "Default": "Source" if inventory else "FromListing",
        },
        "Skipped": {"Type": "Succeed", "Comment": "another reconcile is running: this one does nothing"},
        "FromListing": {
            "Type": "Pass",
            "Result": {"cursor": None, "manifest": None},
            "ResultPath": "$.plan",
            "Next": "Plan",
        },
    }
    if inventory:
        states["FromInventory"] = {
            "Type": "Pass",
            "Parameters": {"cursor": None, "manifest.$": "$.manifest"},
            "ResultPath": "$.plan",
            "Next": "Plan",
        }
        states["Source"] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.manifest", "IsPresent": True, "Next": "FromInventory"}],
            "Default": "FromListing",
        }
    states["Plan"] = _function_task(
        function_arn,
        {
            "plan": {
                "bucket": results_bucket,
                "name.$": "$$.Execution.Name",
                "cursor.$": "$.plan.cursor",
                "manifest.$": "$.plan.manifest",
            }
        },
        {
            "cursor.$": "$.Payload.cursor",
            "manifest.$": "$.Payload.manifest",
            "work.$": "$.Payload.work",
            "listing.$": "$.Payload.listing",
            "deleted.$": "$.Payload.deleted",
        },
        "$.plan",
        TASK_TIMEOUT_SECONDS,
        "PlanDeadLetter",
        "AnyWork",
    )
    states["AnyWork"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.plan.work", "NumericGreaterThan": 0, "Next": "Build"}],
        "Default": "MoreToPlan",
    }
    states["Build"] = build("plan", csv_reader("$.plan.listing"), "MoreToPlan")
    states["MoreToPlan"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.plan.cursor", "IsNull": False, "Next": "Plan"}],
        "Default": "Done",
    }
    states["PlanDeadLetter"] = _dead_letter(dead_letter_queue_url, "PlanFailed")
    states["PlanFailed"] = {
        "Type": "Fail",
        "Error": "PlanFailed",
        "Cause": "a leg of the plan went to the dead-letter queue",
    }
    states["Done"] = {"Type": "Succeed"}
    return {
        "Comment": "image-cdn: build what is missing or stale in the fallback bucket, and delete what has no original",
        "StartAt": "Guard",
        "States": states,
    }


def state_machine_grants(
    *,
    account: str,
    region: str,
    state_machine_name: str,
    function_arn: str,
    primary_bucket_arn: str,
    results_bucket_arn: str,
    dead_letter_queue_arn: str,
    inventory: bool,
    source: str = "s3",
) -> str:
    """What the state machine's role needs, and nothing else (AWS, "IAM policies for using
    Distributed Map states": StartExecution on the state machine for its children,
    DescribeExecution and StopExecution on their executions, GetObject for the CSV reader,
    PutObject and the multipart actions for the ResultWriter). The plan, the originals and the
    fallback bucket are the sync function's business: the state machine reads only the CSV of
    work the function wrote (`primary_bucket_arn` and `inventory` are kept for the callers)."""
    machine = f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
    executions = f"arn:aws:states:{region}:{account}:execution:{state_machine_name}/*"
    statements = [
        iam.allow("RunBatches", ["lambda:InvokeFunction"], [function_arn]),
        iam.allow("StartChildren", ["states:StartExecution"], [machine]),
        # whether another run is going (the Guard state): ListExecutions on the state machine
        iam.allow("OneRunAtATime", ["states:ListExecutions"], [machine]),
        # children are `<name>/<label>:<id>`; the IAM example of "IAM policies for using Distributed Map
        # states" has been published with either separator: both are granted. Redriving a Map Run
        # restarts its children ("Redriving Map Runs").
        iam.allow(
            "WatchChildren",
            ["states:DescribeExecution", "states:RedriveExecution", "states:StopExecution"],
            [executions, f"arn:aws:states:{region}:{account}:execution:{state_machine_name}:*"],
        ),
        iam.allow("ReadListing", ["s3:GetObject"], [f"{results_bucket_arn}/{LISTING_PREFIX}/*"]),
        iam.allow(
            "WriteResults",
            ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
            [f"{results_bucket_arn}/{RESULTS_PREFIX}/*"],
        ),
        iam.allow("DeadLetters", ["sqs:SendMessage"], [dead_letter_queue_arn]),
    ]
    return iam.document(*statements)

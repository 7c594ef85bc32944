"""The reconcile state machine's definition (Amazon States Language) and its grants.

One Step Functions state machine fans the sync job's batches out:

    Source?  (Choice: an S3 Inventory manifest in the input, or not)
      Build            Distributed Map over `originals/`: the ListObjectsV2 reader
      BuildFromInventory  ... or the S3 Inventory manifest reader
        each batch of `batch_size` originals -> the sync function (`edge.sync.run_batch`)
    Sweep, MoreToSweep  the sync function walks the fallback bucket from a cursor and
        deletes what has no original; the Choice loops until the cursor is null

With a manifest or sitemap source (originals not in our bucket), the sync function first
streams the source into a CSV object in the results bucket (ListOriginals), and the
Distributed Map reads that with its CSV item reader (AWS, "ItemReader (Map)": InputType
CSV, CSVHeaderLocation FIRST_ROW). There is no sweep then: an original is known gone only
by its absence from the manifest, which a sweep could check only by holding the manifest.

The sweep is a loop, not a second Distributed Map, because a Distributed Map reads S3
only in its own region ("ItemReader": the bucket must be in the same account and
Region as the state machine), and the fallback bucket is in another region by design.
Each leg stops before the Lambda's time is up and hands back its cursor; Step Functions,
not the function, starts the next one.

Children are Express workflows (a batch is short); a batch that fails after its retries
sends its input to the dead-letter queue and fails, and the map stops only past the
tolerated failure percentage. Results go to the job's own bucket. The definition is
plain data so that the tests can validate it with a real ASL validator (npm
`asl-validator`) and compare the role's grants with what it needs.
"""

from __future__ import annotations

from typing import Any

from components import iam
from edge.settings import ORIGINAL_PREFIX

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SQS_SEND = "arn:aws:states:::sqs:sendMessage"
LIST_OBJECTS = "arn:aws:states:::s3:listObjectsV2"
GET_OBJECT = "arn:aws:states:::s3:getObject"
PUT_OBJECT = "arn:aws:states:::s3:putObject"
RESULTS_PREFIX = "sync-results"
INVENTORY_PREFIX = "inventory"
LISTING_PREFIX = "listings"  # edge.sync.LISTING_PREFIX
# Streaming a manifest of millions of lines into the listing: the sync function's own timeout.
LISTING_TIMEOUT_SECONDS = 900
# An Express child runs at most 5 minutes; a batch must be done well within it.
BATCH_TIMEOUT_SECONDS = 240
# A leg of the sweep: the sync function's own timeout.
SWEEP_TIMEOUT_SECONDS = 900
# Lambda's transient errors (Step Functions' "Handling Lambda service exceptions" best practice).
LAMBDA_TRANSIENT = [
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
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
        "StartAt": f"{label}Batch",
        "States": {
            f"{label}Batch": {
                "Type": "Task",
                "Resource": LAMBDA_INVOKE,
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "TimeoutSeconds": BATCH_TIMEOUT_SECONDS,
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

    def build(source: str, reader: dict[str, Any], label: str, following: str = "StartSweep") -> dict[str, Any]:
        batch = {"MaxItemsPerBatch": batch_size, "BatchInput": {"source": source}}
        processor = _processor(function_arn, dead_letter_queue_url, label)
        return _map(reader, batch, processor, results_bucket, concurrency, tolerated_failure_percent, label, following)

    if source != "s3":
        csv = {
            "Resource": GET_OBJECT,
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket.$": "$.listing.Bucket", "Key.$": "$.listing.Key"},
        }
        return {
            "Comment": "image-cdn: fetch every listed original's standard set from the image service into the fallback",
            "StartAt": "ListOriginals",
            "States": {
                "ListOriginals": _function_task(
                    function_arn,
                    {"list": {"Bucket": results_bucket, "name.$": "$$.Execution.Name"}},
                    {"Bucket.$": "$.Payload.Bucket", "Key.$": "$.Payload.Key"},
                    "$.listing",
                    LISTING_TIMEOUT_SECONDS,
                    "ListDeadLetter",
                    "Build",
                ),
                "ListDeadLetter": _dead_letter(dead_letter_queue_url, "ListFailed"),
                "ListFailed": {
                    "Type": "Fail",
                    "Error": "ListFailed",
                    "Cause": "the listing went to the dead-letter queue",
                },
                "Build": build("manifest", csv, "Build", "Done"),
                "Done": {"Type": "Succeed"},
            },
        }

    listing = {"Resource": LIST_OBJECTS, "Parameters": {"Bucket": primary_bucket, "Prefix": ORIGINAL_PREFIX}}
    states: dict[str, Any] = {"Build": build("listing", listing, "Build")}
    start = "Build"
    if inventory:
        manifest = {
            "Resource": GET_OBJECT,
            "ReaderConfig": {"InputType": "MANIFEST"},
            "Parameters": {"Bucket.$": "$.manifest.Bucket", "Key.$": "$.manifest.Key"},
        }
        states["BuildFromInventory"] = build("inventory", manifest, "BuildFromInventory")
        states["Source"] = {
            "Type": "Choice",
            "Choices": [{"Variable": "$.manifest", "IsPresent": True, "Next": "BuildFromInventory"}],
            "Default": "Build",
        }
        start = "Source"
    states["StartSweep"] = {"Type": "Pass", "Result": {"after": ""}, "ResultPath": "$.sweep", "Next": "Sweep"}
    states["Sweep"] = _function_task(
        function_arn,
        {"sweep.$": "$.sweep"},
        {"after.$": "$.Payload.after", "deleted.$": "$.Payload.deleted"},
        "$.sweep",
        SWEEP_TIMEOUT_SECONDS,
        "SweepDeadLetter",
        "MoreToSweep",
    )
    states["MoreToSweep"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.sweep.after", "IsNull": False, "Next": "Sweep"}],
        "Default": "Done",
    }
    states["SweepDeadLetter"] = _dead_letter(dead_letter_queue_url, "SweepFailed")
    states["SweepFailed"] = {"Type": "Fail", "Error": "SweepFailed", "Cause": "the sweep went to the dead-letter queue"}
    states["Done"] = {"Type": "Succeed"}
    return {
        "Comment": "image-cdn: build every original's standard set into the fallback bucket, then sweep out orphans",
        "StartAt": start,
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
    DescribeExecution and StopExecution on their executions, ListBucket for the
    ListObjectsV2 reader, GetObject for a manifest reader, PutObject and the multipart
    actions for the ResultWriter). The fallback bucket is the sync function's business:
    the state machine never reads it."""
    machine = f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
    executions = f"arn:aws:states:{region}:{account}:execution:{state_machine_name}/*"
    statements = [
        iam.allow("RunBatches", ["lambda:InvokeFunction"], [function_arn]),
        iam.allow("StartChildren", ["states:StartExecution"], [machine]),
        iam.allow("WatchChildren", ["states:DescribeExecution", "states:StopExecution"], [executions]),
        {
            **iam.allow("ListOriginals", ["s3:ListBucket"], [primary_bucket_arn]),
            "Condition": {"StringLike": {"s3:prefix": [f"{ORIGINAL_PREFIX}*"]}},
        },
        iam.allow(
            "WriteResults",
            ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
            [f"{results_bucket_arn}/{RESULTS_PREFIX}/*"],
        ),
        iam.allow("DeadLetters", ["sqs:SendMessage"], [dead_letter_queue_arn]),
    ]
    if source != "s3":
        # The manifest's listing replaces the bucket listing.
        statements[3] = iam.allow("ReadListing", ["s3:GetObject"], [f"{results_bucket_arn}/{LISTING_PREFIX}/*"])
    if inventory:
        statements.append(iam.allow("ReadInventory", ["s3:GetObject"], [f"{results_bucket_arn}/{INVENTORY_PREFIX}/*"]))
    return iam.document(*statements)

"""SyncJob: keeps the fallback bucket full, on upload and on a schedule."""

from __future__ import annotations

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components import bundle, iam
from edge.settings import ORIGINAL_PREFIX, VARIANT_PREFIX, Settings


class SyncJobArgs(TypedDict):
    """Arguments of `SyncJob`."""

    name_prefix: str
    settings: Settings
    """Bundled as config.json: the same grammar and limits as the edge."""
    region: str
    """The primary region (where the originals are)."""
    primary_bucket_name: pulumi.Input[str]
    primary_bucket_arn: pulumi.Input[str]
    fallback_bucket_arn: pulumi.Input[str]
    schedule: str
    """EventBridge schedule of the reconcile run, e.g. rate(1 day)."""
    memory_mb: NotRequired[int]
    log_retention_days: NotRequired[int]
    distribution_id: NotRequired[pulumi.Input[str]]
    distribution_arn: NotRequired[pulumi.Input[str]]
    """When given, replaced originals get their cached copies invalidated."""


class SyncJob(pulumi.ComponentResource):
    """A regional Lambda (arm64, Pillow vendored) running `edge/sync.py`.

    Triggered by the primary bucket's `originals/` ObjectCreated and ObjectRemoved
    notifications (this component owns the bucket's notification configuration) and by
    an EventBridge schedule. Cached copies of replaced or deleted originals are
    invalidated through a queue that keeps within CloudFront's limits. Failures go to an
    SQS dead-letter queue: originals that are not images are reported there by the job
    itself (once), and invocations that still fail after Lambda's two retries land there too. A reconcile run that nears
    the 15-minute limit re-invokes the function with its cursor.

    IAM: read `originals/`, list the two prefixes it works in, write and delete in the
    fallback bucket and delete under `variants/`; nothing else in S3.
    """

    function_arn: pulumi.Output[str]
    dead_letter_queue_url: pulumi.Output[str]

    def __init__(self, name: str, args: SyncJobArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:SyncJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix, region = args["name_prefix"], args["region"]
        function_name = f"{prefix}-sync"
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        self.dead_letters = aws.sqs.Queue(
            f"{name}-dead-letters",
            name=f"{prefix}-sync-dead-letters",
            region=region,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,
            opts=child,
        )
        # Invalidations wait here until CloudFront has room for them (edge/invalidation.py):
        # a batch is drained by this same function, what does not fit is sent back delayed.
        self.invalidations = aws.sqs.Queue(
            f"{name}-invalidations",
            name=f"{prefix}-invalidations",
            region=region,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,
            # AWS: at least the function's timeout; six times is advised
            visibility_timeout_seconds=6 * 900,
            redrive_policy=self.dead_letters.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})
            ),
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/lambda/{function_name}",
            region=region,
            retention_in_days=args.get("log_retention_days", 14),
            opts=child,
        )
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(iam.REGIONAL_TRUST, sort_keys=True),
            description="image-cdn sync job",
            opts=child,
        )
        archive = bundle.build("sync", args["settings"], with_pillow=True, architecture="arm64")
        self.function = aws.lambda_.Function(
            name,
            name=function_name,
            region=region,
            runtime=bundle.LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler="edge.sync.handler",
            role=self.role.arn,
            code=pulumi.FileArchive(str(archive)),
            source_code_hash=bundle.source_hash(archive),
            memory_size=args.get("memory_mb", 1024),
            timeout=900,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "SYNC_DLQ_URL": self.dead_letters.url,
                    "INVALIDATION_QUEUE_URL": self.invalidations.url,
                    "DISTRIBUTION_ID": args.get("distribution_id") or "",
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group]),
        )
        policy = pulumi.Output.all(
            account,
            args["primary_bucket_arn"],
            args["fallback_bucket_arn"],
            self.dead_letters.arn,
            self.invalidations.arn,
            self.function.arn,
            args.get("distribution_arn") or "",
        ).apply(lambda v: _policy(v[0], region, function_name, v[1], v[2], v[3], v[4], v[5], v[6]))
        self.grants = aws.iam.RolePolicy(f"{name}-policy", role=self.role.id, policy=policy, opts=child)
        aws.lambda_.EventSourceMapping(
            f"{name}-invalidation-batches",
            event_source_arn=self.invalidations.arn,
            function_name=self.function.arn,
            region=region,
            batch_size=1000,
            maximum_batching_window_in_seconds=60,  # one invalidation for a minute of changes
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=2),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.grants]),
        )

        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-retries",
            function_name=self.function.name,
            region=region,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=6 * 3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.dead_letters.arn
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.grants]),
        )

        from_bucket = aws.lambda_.Permission(
            f"{name}-from-s3",
            function=self.function.name,
            region=region,
            action="lambda:InvokeFunction",
            principal="s3.amazonaws.com",
            source_arn=args["primary_bucket_arn"],
            source_account=account,
            opts=child,
        )
        self.notification = aws.s3.BucketNotification(
            f"{name}-originals-events",
            bucket=args["primary_bucket_name"],
            region=region,
            lambda_functions=[
                aws.s3.BucketNotificationLambdaFunctionArgs(
                    lambda_function_arn=self.function.arn,
                    events=["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    filter_prefix=ORIGINAL_PREFIX,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[from_bucket]),
        )

        self.schedule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            name=f"{prefix}-sync",
            region=region,
            schedule_expression=args["schedule"],
            description="reconcile the fallback bucket with the originals",
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-schedule-target",
            rule=self.schedule.name,
            region=region,
            arn=self.function.arn,
            input=json.dumps({"reconcile": {}}),
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-from-schedule",
            function=self.function.name,
            region=region,
            action="lambda:InvokeFunction",
            principal="events.amazonaws.com",
            source_arn=self.schedule.arn,
            opts=child,
        )

        self.function_arn = self.function.arn
        self.dead_letter_queue_url = self.dead_letters.url
        self.register_outputs({"function_arn": self.function_arn, "dead_letter_queue_url": self.dead_letter_queue_url})


def _policy(
    account: str,
    region: str,
    function_name: str,
    primary: str,
    fallback: str,
    queue: str,
    invalidations: str,
    function_arn: str,
    distribution_arn: str,
) -> str:
    statements = [
        iam.regional_logs(account, region, function_name),
        iam.allow("ReadOriginals", ["s3:GetObject"], [f"{primary}/{ORIGINAL_PREFIX}*"]),
        {
            **iam.allow("ListOriginalsAndVariants", ["s3:ListBucket"], [primary]),
            "Condition": {"StringLike": {"s3:prefix": [f"{ORIGINAL_PREFIX}*", f"{VARIANT_PREFIX}*"]}},
        },
        {
            **iam.allow("SeeReplacedOriginals", ["s3:ListBucketVersions"], [primary]),
            "Condition": {"StringLike": {"s3:prefix": [f"{ORIGINAL_PREFIX}*"]}},
        },
        iam.allow("DropStaleVariants", ["s3:DeleteObject"], [f"{primary}/{VARIANT_PREFIX}*"]),
        iam.allow("ListFallback", ["s3:ListBucket"], [fallback]),
        iam.allow("WriteFallback", ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], [f"{fallback}/*"]),
        iam.allow("ReportFailures", ["sqs:SendMessage"], [queue]),
        iam.allow(
            "QueueInvalidations",
            ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"],
            [invalidations],
        ),
        iam.allow("ResumeItself", ["lambda:InvokeFunction"], [function_arn]),
    ]
    if distribution_arn:
        statements.append(
            iam.allow(
                "InvalidateReplaced",
                ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation", "cloudfront:ListInvalidations"],
                [distribution_arn],
            )
        )
    return iam.document(*statements)

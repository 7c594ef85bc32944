"""SyncJob: keeps the fallback bucket full, on upload, and on a schedule through Step Functions."""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components import bundle, iam, reconcile
from components.buckets import HardenedBucket, attach_policy, deny_insecure_transport
from components.image_settings import ImageSettings, to_settings
from edge.settings import ORIGINAL_PREFIX, VARIANT_PREFIX, Settings

STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
EVENTS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
RESULTS_DAYS = 30


class SyncJobArgs(TypedDict):
    """Arguments of `SyncJob`."""

    name_prefix: str
    """Prefix of the function's, the state machine's and the queues' names."""
    settings: ImageSettings
    """Bundled as config.json: the same grammar and limits as the edge."""
    region: str
    """The primary region (where the originals are)."""
    primary_bucket_name: pulumi.Input[str]
    """The ImageOrigin bucket's name (its `originals/` events start the function)."""
    primary_bucket_arn: pulumi.Input[str]
    """The ImageOrigin bucket's ARN."""
    fallback_bucket_arn: pulumi.Input[str]
    """The FallbackBucket's ARN (the function writes the standard set there)."""
    schedule: str
    """EventBridge schedule of the reconcile, e.g. rate(1 day)."""
    memory_mb: NotRequired[int]
    """The function's memory; default 1024."""
    log_retention_days: NotRequired[int]
    """Days the function's and the state machine's logs are kept; default 14."""
    distribution_id: NotRequired[pulumi.Input[str]]
    """The distribution whose cached copies of replaced originals are invalidated."""
    distribution_arn: NotRequired[pulumi.Input[str]]
    """When given, replaced originals get their cached copies invalidated."""
    concurrency: NotRequired[int]
    """Batches of the reconcile running at once (the Distributed Map's MaxConcurrency); default 10, at
    most `reserved_concurrency`."""
    reserved_concurrency: NotRequired[int]
    """The function's reserved concurrency (default 20): its share of the Region's pool, which
    Lambda@Edge replicas in that Region share too; a floor and a ceiling for the sync job."""
    batch_size: NotRequired[int]
    """Originals per batch (one sync function invocation); default 10."""
    tolerated_failure_percent: NotRequired[int]
    """Failed batches, in percent, the reconcile goes on past; default 5."""
    inventory: NotRequired[bool]
    """Read the originals from a daily S3 Inventory instead of listing them (for very large buckets)."""
    eventbridge: NotRequired[bool]
    """Also send the primary bucket's events to EventBridge (the image catalogue takes them there)."""
    service_key_secret: NotRequired[str]
    """With a signed third-party primary (thumbor, imgproxy): the name or ARN of the Secrets Manager
    secret that holds the service's URL signing key. The function reads it at run time (a regional
    Lambda can; cached per container for 5 minutes), so the key is never in its code bundle; the role
    may read that one secret."""


class SyncResults(HardenedBucket):
    """The job's own bucket in the primary region: the reconcile's results (and S3 Inventory reports).

    Step Functions writes a Distributed Map's results, and reads an inventory manifest,
    only in its own region; this bucket is there for that. Everything expires after
    RESULTS_DAYS; derived data only, so `pulumi destroy` empties it.
    """

    def __init__(self, name: str, bucket_name: str, region: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:SyncResults", name, bucket_name, region, "", opts, force_destroy=True)
        self.lifecycle = self._lifecycle(
            [
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-results",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=RESULTS_DAYS),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=1
                    ),
                )
            ]
        )
        self._done()

    def allow_inventory_from(self, source_bucket_arn: pulumi.Input[str], account: pulumi.Input[str]) -> None:
        """TLS only, and S3 may deliver inventory reports of exactly this source bucket."""
        policy = pulumi.Output.all(self.bucket.arn, source_bucket_arn, account).apply(
            lambda v: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        deny_insecure_transport(v[0]),
                        {
                            "Sid": "S3DeliversInventory",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "s3:PutObject",
                            "Resource": f"{v[0]}/{reconcile.INVENTORY_PREFIX}/*",
                            "Condition": {
                                "ArnLike": {"aws:SourceArn": v[1]},
                                "StringEquals": {"aws:SourceAccount": v[2]},
                            },
                        },
                    ],
                },
                sort_keys=True,
            )
        )
        attach_policy(self._name, self.bucket, self._region, policy, self, self._hardening)

    def tls_only(self) -> None:
        policy = self.bucket.arn.apply(
            lambda arn: json.dumps(
                {"Version": "2012-10-17", "Statement": [deny_insecure_transport(arn)]}, sort_keys=True
            )
        )
        attach_policy(self._name, self.bucket, self._region, policy, self, self._hardening)


class SyncJob(pulumi.ComponentResource):
    """A regional Lambda (arm64, Pillow vendored) running `sync/job.py`, and the state machine
    that fans the reconcile out (components/reconcile.py).

    Per object: the primary bucket's `originals/` ObjectCreated and ObjectRemoved
    notifications invoke the function (this component owns the bucket's notification
    configuration; with `eventbridge`, the same events also go to EventBridge, for
    other consumers such as the image catalogue). On a schedule (and from `python -m ops sync --on-aws`): the state
    machine builds every original's standard set in batches on a Distributed Map, then
    sweeps the fallback bucket for orphans; with `inventory`, a daily S3 Inventory of
    `originals/` starts it too, and its manifest replaces the listing. Cached copies of
    replaced or deleted originals are invalidated through a queue that keeps within
    CloudFront's limits. Failures go to an SQS dead-letter queue: originals that are not
    images are reported there by the job itself (once); batches that still fail after
    their retries, and invocations that fail after Lambda's two retries, land there too.

    IAM: the function reads `originals/`, lists the prefixes it works in, writes and
    deletes in the fallback bucket and deletes under `variants/`; the state machine
    invokes the function, lists `originals/`, writes its results, and starts its own
    children; EventBridge may only start the state machine.
    """

    function_arn: pulumi.Output[str]
    """The sync function."""
    dead_letter_queue_url: pulumi.Output[str]
    """The dead-letter queue: what could not be synced, and why."""
    dead_letter_queue_name: pulumi.Output[str]
    """Its name (its metrics' QueueName)."""
    state_machine_arn: pulumi.Output[str]
    """The reconcile (start it to rebuild the whole fallback)."""
    results_bucket: pulumi.Output[str]
    """Where the reconcile writes its results and listings."""

    def __init__(self, name: str, args: SyncJobArgs, opts: pulumi.ResourceOptions | None = None):
        concurrency, reserved = args.get("concurrency", 10), args.get("reserved_concurrency", 20)
        if not 1 <= concurrency <= reserved:
            raise ValueError(
                f"SyncJob {name}: expected concurrency from 1 to reserved_concurrency ({reserved}), got {concurrency}"
            )
        super().__init__("image-cdn:index:SyncJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix, region = args["name_prefix"], args["region"]
        function_name, machine_name = f"{prefix}-sync", f"{prefix}-sync"
        inventory = args.get("inventory", False)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        self.dead_letters = aws.sqs.Queue(
            f"{name}-dead-letters",
            name=f"{prefix}-sync-dead-letters",
            region=region,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,
            opts=child,
        )
        # Invalidations wait here until CloudFront has room for them (sync/invalidation.py):
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
        settings = to_settings(args["settings"])
        key_secret = args.get("service_key_secret") or ""
        archive = pulumi.Output.from_input(
            bundle.build("sync", settings, vendor=bundle.sync_wheels(settings), architecture="arm64")
        )
        self.function = aws.lambda_.Function(
            name,
            name=function_name,
            region=region,
            runtime=bundle.LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler=bundle.handler("sync"),
            role=self.role.arn,
            code=archive.apply(lambda path: pulumi.FileArchive(str(path))),
            source_code_hash=archive.apply(bundle.source_hash),
            memory_size=args.get("memory_mb", 1024),
            timeout=reconcile.FUNCTION_TIMEOUT_SECONDS,
            # Lambda@Edge replicas in this Region draw on the same pool ("Restrictions on Lambda@Edge"):
            # reserved concurrency caps the sync job there ("Configuring reserved concurrency").
            reserved_concurrent_executions=reserved,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "SYNC_DLQ_URL": self.dead_letters.url,
                    "INVALIDATION_QUEUE_URL": self.invalidations.url,
                    "DISTRIBUTION_ID": args.get("distribution_id") or "",
                    # The secret's name, not the key: read at run time (sync/job.py, service_key).
                    **({"SERVICE_KEY_SECRET": key_secret} if key_secret else {}),
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.log_group]),
        )
        self.results = SyncResults(f"{name}-results", f"{prefix}-sync", region, child)
        policy = pulumi.Output.all(
            account,
            args["primary_bucket_arn"],
            args["fallback_bucket_arn"],
            self.dead_letters.arn,
            self.invalidations.arn,
            args.get("distribution_arn") or "",
            self.results.bucket_arn,
        ).apply(
            lambda v: _function_grants(
                v[0],
                region,
                function_name,
                v[1],
                v[2],
                v[3],
                v[4],
                v[5],
                results=v[6],
                settings=settings,
                inventory=inventory,
                key_secret=key_secret,
            )
        )
        self.grants = aws.iam.RolePolicy(f"{name}-policy", role=self.role.id, policy=policy, opts=child)

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
            eventbridge=args.get("eventbridge", False),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[from_bucket]),
        )

        # -- the reconcile on Step Functions -------------------------------------------------
        self.states_role = aws.iam.Role(
            f"{name}-states-role",
            assume_role_policy=json.dumps(STATES_TRUST, sort_keys=True),
            description="image-cdn reconcile state machine",
            opts=child,
        )
        definition = pulumi.Output.all(
            self.function.arn, args["primary_bucket_name"], self.results.bucket_name, self.dead_letters.url
        ).apply(
            lambda v: json.dumps(
                reconcile.definition(
                    function_arn=v[0],
                    primary_bucket=v[1],
                    results_bucket=v[2],
                    dead_letter_queue_url=v[3],
                    concurrency=concurrency,
                    batch_size=args.get("batch_size", 10),
                    tolerated_failure_percent=args.get("tolerated_failure_percent", 5),
                    inventory=inventory,
                    source=settings.originals_source,
                ),
                sort_keys=True,
            )
        )
        self.state_machine = aws.sfn.StateMachine(
            f"{name}-state-machine",
            name=machine_name,
            region=region,
            type="STANDARD",
            role_arn=self.states_role.arn,
            definition=definition,
            opts=child,
        )
        states_policy = pulumi.Output.all(
            account, self.function.arn, args["primary_bucket_arn"], self.results.bucket_arn, self.dead_letters.arn
        ).apply(
            lambda v: reconcile.state_machine_grants(
                account=v[0],
                region=region,
                state_machine_name=machine_name,
                function_arn=v[1],
                primary_bucket_arn=v[2],
                results_bucket_arn=v[3],
                dead_letter_queue_arn=v[4],
                inventory=inventory,
                source=settings.originals_source,
            )
        )
        aws.iam.RolePolicy(f"{name}-states-policy", role=self.states_role.id, policy=states_policy, opts=child)

        self.events_role = aws.iam.Role(
            f"{name}-events-role",
            assume_role_policy=json.dumps(EVENTS_TRUST, sort_keys=True),
            description="EventBridge starts the image-cdn reconcile",
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-events-policy",
            role=self.events_role.id,
            policy=self.state_machine.arn.apply(
                lambda arn: iam.document(iam.allow("StartReconcile", ["states:StartExecution"], [arn]))
            ),
            opts=child,
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
            arn=self.state_machine.arn,
            role_arn=self.events_role.arn,
            input=json.dumps({}),
            opts=child,
        )
        if inventory:
            self._inventory(name, prefix, region, args["primary_bucket_name"], args["primary_bucket_arn"], account)
        else:
            self.results.tls_only()

        self.function_arn = self.function.arn
        self.dead_letter_queue_url = self.dead_letters.url
        self.dead_letter_queue_name = self.dead_letters.name
        self.state_machine_arn = self.state_machine.arn
        self.results_bucket = self.results.bucket_name
        self.register_outputs(
            {
                "function_arn": self.function_arn,
                "dead_letter_queue_url": self.dead_letter_queue_url,
                "dead_letter_queue_name": self.dead_letter_queue_name,
                "state_machine_arn": self.state_machine_arn,
                "results_bucket": self.results_bucket,
            }
        )

    def _inventory(
        self,
        name: str,
        prefix: str,
        region: str,
        primary_bucket_name: pulumi.Input[str],
        primary_bucket_arn: pulumi.Input[str],
        account: pulumi.Output[str],
    ) -> None:
        """A daily S3 Inventory of `originals/` into the results bucket; each report starts the reconcile."""
        child = pulumi.ResourceOptions(parent=self)
        self.results.allow_inventory_from(primary_bucket_arn, account)
        aws.s3.Inventory(
            f"{name}-inventory",
            bucket=primary_bucket_name,
            region=region,
            name="originals",
            included_object_versions="Current",
            schedule=aws.s3.InventoryScheduleArgs(frequency="Daily"),
            filter=aws.s3.InventoryFilterArgs(prefix=ORIGINAL_PREFIX),
            optional_fields=["Size", "ETag", "LastModifiedDate"],
            destination=aws.s3.InventoryDestinationArgs(
                bucket=aws.s3.InventoryDestinationBucketArgs(
                    bucket_arn=self.results.bucket_arn, format="CSV", prefix=reconcile.INVENTORY_PREFIX
                )
            ),
            opts=child,
        )
        aws.s3.BucketNotification(
            f"{name}-results-events", bucket=self.results.bucket_name, region=region, eventbridge=True, opts=child
        )
        delivered = aws.cloudwatch.EventRule(
            f"{name}-inventory-delivered",
            name=f"{prefix}-sync-inventory",
            region=region,
            description="a new S3 Inventory report of the originals starts the reconcile",
            event_pattern=self.results.bucket_name.apply(
                lambda bucket: json.dumps(
                    {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {
                            "bucket": {"name": [bucket]},
                            "object": {"key": [{"wildcard": f"{reconcile.INVENTORY_PREFIX}/*/manifest.checksum"}]},
                        },
                    },
                    sort_keys=True,
                )
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-inventory-target",
            rule=delivered.name,
            region=region,
            arn=self.state_machine.arn,
            role_arn=self.events_role.arn,
            input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                input_paths={"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"},
                input_template='{"manifest": {"Bucket": <bucket>, "Key": <key>}}',
            ),
            opts=child,
        )


def _function_grants(
    account: str,
    region: str,
    function_name: str,
    primary: str,
    fallback: str,
    queue: str,
    invalidations: str,
    distribution_arn: str,
    *,
    results: str = "",
    settings: Settings | None = None,
    inventory: bool = False,
    key_secret: str = "",
) -> str:
    """The function's grants. A third-party primary (`primary_kind` http) keeps no variants in our
    bucket, so nothing there is deleted; it reads the validators of what it stored in the fallback
    and may abort a streamed multipart upload. A manifest source replaces listing `originals/` by
    reading the manifest (an S3 object: exactly that one) and writing the CSV listing."""
    http = settings is not None and settings.primary_kind == "http"
    source = settings.originals_source if settings is not None else "s3"
    listed = [f"{ORIGINAL_PREFIX}*"] if http else [f"{ORIGINAL_PREFIX}*", f"{VARIANT_PREFIX}*"]
    statements = [iam.regional_logs(account, region, function_name)]
    if source == "s3":
        statements += [
            iam.allow("ReadOriginals", ["s3:GetObject"], [f"{primary}/{ORIGINAL_PREFIX}*"]),
            {
                **iam.allow("ListOriginalsAndVariants", ["s3:ListBucket"], [primary]),
                "Condition": {"StringLike": {"s3:prefix": listed}},
            },
            {
                **iam.allow("SeeReplacedOriginals", ["s3:ListBucketVersions"], [primary]),
                "Condition": {"StringLike": {"s3:prefix": [f"{ORIGINAL_PREFIX}*"]}},
            },
        ]
    else:
        location = settings.originals_location if settings is not None else ""
        if location.startswith("s3://"):
            statements.append(iam.allow("ReadManifest", ["s3:GetObject"], [f"arn:aws:s3:::{location[5:]}"]))
    if results:
        # The plan's CSV of work (or a manifest's listing), which the Distributed Map reads.
        statements.append(
            iam.allow(
                "WriteListing",
                ["s3:AbortMultipartUpload", "s3:PutObject"],
                [f"{results}/{reconcile.LISTING_PREFIX}/*"],
            )
        )
    if key_secret:
        statements.append(
            iam.allow("ReadServiceKey", ["secretsmanager:GetSecretValue"], [secret_arn(key_secret, region, account)])
        )
    if inventory and source == "s3":
        statements.append(iam.allow("ReadInventory", ["s3:GetObject"], [f"{results}/{reconcile.INVENTORY_PREFIX}/*"]))
    if not http:
        statements.append(iam.allow("DropStaleVariants", ["s3:DeleteObject"], [f"{primary}/{VARIANT_PREFIX}*"]))
    statements += [
        iam.allow("ListFallback", ["s3:ListBucket"], [fallback]),
        iam.allow(
            "WriteFallback",
            ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
            if http
            else ["s3:DeleteObject", "s3:PutObject"],
            [f"{fallback}/*"],
        ),
        iam.allow("ReportFailures", ["sqs:SendMessage"], [queue]),
        iam.allow(
            "QueueInvalidations",
            ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"],
            [invalidations],
        ),
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


def secret_arn(secret: str, region: str, account: str) -> str:
    """The ARN a grant names for a secret given by ARN or by name. Secrets Manager ends a secret's ARN
    with a hyphen and six random characters, so a name is granted as `<name>-??????` ("Secrets Manager
    ARN" and "Use wildcards in resource policies": the six `?` match exactly those six characters)."""
    if secret.startswith("arn:"):
        return secret
    return f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}-??????"

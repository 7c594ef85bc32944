"""Monitoring: the alarms and the dashboard of one image service.

Where each signal lives (AWS's documents):
- CloudFront's metrics (`AWS/CloudFront`, dimensions DistributionId and Region=Global, and
  FunctionName for a CloudFront Function) are read in us-east-1 only (CloudFront Developer
  Guide, "Types of CloudFront metrics"). OriginLatency is one of the additional metrics, which
  a monitoring subscription turns on (CloudFront Developer Guide, "Turn on additional metrics").
- Lambda@Edge: the review could not settle where a replica's metrics are kept, so the alarms
  work under either reading. (1) A replica logs in the region that ran it, to
  `/aws/lambda/us-east-1.<name>` (CloudFront Developer Guide, "Edge function logs"), and its
  `AWS/Lambda` metrics are kept in that region too, under the FunctionName `us-east-1.<name>`:
  every region the stack serves gets alarms on the replicas' Errors and Throttles. (2) The
  CloudFront Developer Guide ("CloudWatch metrics and CloudWatch Logs for Lambda functions")
  says that to get Lambda@Edge metric data from the CloudWatch API "you must use the US East
  (N. Virginia) Region", and its "Viewing CloudFront and Lambda@Edge metrics" lists default
  Lambda@Edge metrics (execution errors, invalid responses, throttles) at no additional cost,
  which CloudFront answers as 503 function execution error, 502 Lambda validation error and 503
  Lambda limit exceeded ("Troubleshooting error responses from your origin"). The guide names
  no metric for them; `AWS/CloudFront` LambdaExecutionError, LambdaValidationError and
  LambdaLimitExceededErrors, with DistributionId and Region=Global, are the names in CloudWatch
  dashboards published in public repositories (not in an AWS document), the last also seen
  without its final "s": both spellings are watched (EDGE_ERRORS_AT_CLOUDFRONT).
- The children of a Distributed Map report `AWS/States` metrics under the state machine's ARN
  followed by `/<the Map's Label or a UUID>` (Step Functions Developer Guide, "Viewing a
  Distributed Map Run execution"): every Map of the reconcile has a Label (`map_labels`), and
  a batch is lost when its child execution fails, times out or is aborted (ExecutionsFailed,
  ExecutionsTimedOut, ExecutionsAborted: Step Functions' execution metrics), each watched.

The fallback signal: `resize` logs `{"event": "fallback", "substitute": ...}` for every answer
the fallback bucket gives, and a metric filter on its log group in each region counts them
(FallbackResponses, Substitutes). A primary that serves never reaches the fallback, so any
count is an outage or a missing variant.

Notifications: an alarm's SNS action is kept in the alarm's own region here (a topic per region,
each with the same subscribers): CloudWatch's documents show same-region topics, and whether a
topic in another region may be named is not stated, so the choice that works under either
reading is taken. Email addresses each confirm every topic once (SNS sends one confirmation per
subscription). Chat webhooks are not subscribed: SNS would send them a SubscriptionConfirmation
and deliver nothing until someone opened its SubscribeURL. The alarm relay (`alerts/relay.py`), a
regional Lambda subscribed to every topic with protocol "lambda" (no confirmation), posts each
notification to them; a notification it could not deliver after Lambda's retries waits in a
queue, and that queue has its own alarm (to the emails).
"""

import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from alerts import relay
from components import bundle, iam, reconcile

CLOUDFRONT_REGION = "us-east-1"
EDGE_PREFIX = "us-east-1."
# CloudFront's additional metrics, billed as custom metrics once a subscription turns them on
# (CloudFront Developer Guide, "Viewing CloudFront and Lambda@Edge metrics": cache hit rate, origin
# latency, and the error rates of 401, 403, 404, 502, 503 and 504).
ADDITIONAL_METRICS = (
    "CacheHitRate",
    "OriginLatency",
    "401ErrorRate",
    "403ErrorRate",
    "404ErrorRate",
    "502ErrorRate",
    "503ErrorRate",
    "504ErrorRate",
)
# resize's fallback log lines, as counted in every edge region (custom metrics, one per region each).
FALLBACK_FILTERS = (
    ("FallbackResponses", '{ $.event = "fallback" }'),
    ("Substitutes", '{ ($.event = "fallback") && ($.substitute IS TRUE) }'),
)
# Reading (1): the replicas' AWS/Lambda metrics, in each region.
EDGE_ERRORS_IN_REGION = ("Errors", "Throttles")
# Reading (2): Lambda@Edge failures as CloudFront counts them, in us-east-1 (module docstring).
EDGE_ERRORS_AT_CLOUDFRONT = (
    "LambdaExecutionError",
    "LambdaValidationError",
    "LambdaLimitExceededErrors",
    "LambdaLimitExceededError",
)
# How a Distributed Map's child execution (one batch) ends without succeeding.
MAP_RUN_LOSSES = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
# SNS delivers to a Lambda function in another region; from an opt-in region the function's policy
# names `sns.<region>.amazonaws.com`, and nothing is delivered from a region enabled by default to a
# function in an opt-in one (SNS Developer Guide, "Sending Amazon SNS messages to an Amazon SQS queue
# or AWS Lambda function in a different Region", whose table these are, and "Prerequisites for
# integrating Amazon SNS with Lambda functions across regions": every region launched after March
# 20, 2019 is opt-in, which adds the newer ones listed last).
SNS_OPT_IN_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-south-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-northeast-3",
        "eu-south-1",
        "eu-south-2",
        "eu-central-2",
        "il-central-1",
        "me-south-1",
        "me-central-1",
        "ca-west-1",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ap-east-2",
        "mx-central-1",
    }
)
# Each webhook may take relay.TIMEOUT_SECONDS to connect and as long again to answer.
RELAY_TIMEOUT_SECONDS = int(relay.MAX_WEBHOOKS * 2 * relay.TIMEOUT_SECONDS) + 20
# Lambda: 4 KB for all of a function's environment variables (Lambda Developer Guide, "Lambda quotas").
ENVIRONMENT_LIMIT_BYTES = 4096
# What `reconcile.definition` needs besides its options: placeholders (the labels do not depend on them).
_RECONCILE_PLACEHOLDERS: dict[str, Any] = {
    "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:sync",
    "primary_bucket": "originals",
    "results_bucket": "results",
    "dead_letter_queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/dead-letters",
    "concurrency": 10,
    "batch_size": 10,
    "tolerated_failure_percent": 5,
    "inventory": False,
}


class MonitoringArgs(TypedDict):
    """Arguments of `Monitoring`."""

    name_prefix: str
    """Prefix of the alarms', the topics' and the dashboard's names."""
    distribution_id: pulumi.Input[str]
    """The FailoverDistribution's id."""
    viewer_function_name: pulumi.Input[str]
    """EdgeFunctions' `viewer_function_name` (a CloudFront Function)."""
    rewrite_function_name: pulumi.Input[str]
    """EdgeFunctions' `rewrite_function_name`."""
    resize_function_name: pulumi.Input[str]
    """EdgeFunctions' `resize_function_name`."""
    resize_log_group: pulumi.Input[str]
    """EdgeFunctions' `resize_log_group`: the log group `resize` writes in every edge region."""
    edge_regions: Sequence[str]
    """The regions the stack serves from (EdgeFunctions' `log_regions`)."""
    primary_region: str
    """The primary region (the sync job's queue and state machine, the alarm relay)."""
    sync_dead_letter_queue_name: pulumi.Input[str]
    """SyncJob's `dead_letter_queue_name`."""
    sync_state_machine_arn: pulumi.Input[str]
    """SyncJob's `state_machine_arn`."""
    reconcile_map_labels: NotRequired[Sequence[str]]
    """The Labels of the reconcile's Map states (`reconcile_labels` of the definition SyncJob builds);
    default: those of the default definition (a listing of `originals/`, no inventory)."""
    emails: NotRequired[Sequence[str]]
    """Email addresses the alarms notify (each confirms one subscription per alarm region)."""
    webhooks: NotRequired[pulumi.Input[Sequence[str]]]
    """Chat webhooks (https; a JSON {"text": ...} body: Slack, Mattermost, Google Chat) the alarm relay
    posts every notification to. Credentials: kept secret, in the relay's encrypted environment."""
    log_retention_days: NotRequired[int]
    """Days the alarm relay's logs are kept; default 14."""
    error_rate_percent: NotRequired[float]
    """The distribution's 5xx rate, in percent, that raises an alarm; default 1."""
    client_error_rate_percent: NotRequired[float]
    """The distribution's 4xx rate, in percent, that raises an alarm; default 20."""
    origin_latency_ms: NotRequired[int]
    """The p90 of the time to first byte from the origins that raises an alarm; default 3000."""
    fallback_responses: NotRequired[int]
    """Answers from the fallback bucket in five minutes, in one region, that raise an alarm; default 1."""


@dataclass(frozen=True)
class Watch:
    """One metric an alarm reads."""

    namespace: str
    name: str
    dimensions: Mapping[str, Any]
    statistic: str


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: its metric, or several (then it reads their sum), and when it fires."""

    what: str
    region: str
    description: str
    watches: Mapping[str, Watch]
    threshold: float
    period: int = 60
    evaluations: int = 5


@dataclass(frozen=True)
class MetricCounts:
    """What CloudWatch bills monthly per metric for one Monitoring."""

    alarm_metrics: int
    """Metrics the alarms evaluate (a metric math alarm counts each metric it reads)."""
    custom_metrics: int
    """CloudFront's additional metrics and the metric filters' metrics (one per filter and region)."""


@dataclass
class _Relay:
    region: str
    queue_name: pulumi.Input[str]
    subscriptions: list[aws.sns.TopicSubscription] = field(default_factory=list)


def map_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every Map state of an Amazon States Language definition, with its name: nested ones too (a
    Map's ItemProcessor or Iterator, a Parallel state's Branches)."""

    def walk(states: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for name, state in (states or {}).items():
            if not isinstance(state, Mapping):
                continue
            if state.get("Type") == "Map":
                yield name, state
            for nested in ("ItemProcessor", "Iterator"):
                if isinstance(state.get(nested), Mapping):
                    yield from walk(state[nested].get("States"))
            for branch in state.get("Branches") or []:
                if isinstance(branch, Mapping):
                    yield from walk(branch.get("States"))

    yield from walk(definition.get("States"))


def distributed(state: Mapping[str, Any]) -> bool:
    """A Map state that runs child workflow executions (ProcessorConfig Mode DISTRIBUTED)."""
    processor = state.get("ItemProcessor")
    config = processor.get("ProcessorConfig") if isinstance(processor, Mapping) else None
    return isinstance(config, Mapping) and config.get("Mode") == "DISTRIBUTED"


def map_labels(definition: Mapping[str, Any]) -> list[str]:
    """The Label of every Map state that has one, in the definition's order, each once.

    A Distributed Map without a Label reports its children's metrics under a UUID, which no alarm
    can name: that is refused here, naming the state."""
    labels: list[str] = []
    for name, state in map_states(definition):
        label = state.get("Label")
        if isinstance(label, str) and label:
            if label not in labels:
                labels.append(label)
        elif distributed(state):
            raise ValueError(
                f"Distributed Map {name} has no Label: its batches' metrics would be under a UUID, "
                "which no alarm can name"
            )
    return labels


def reconcile_labels(**options: Any) -> list[str]:
    """The Map labels of `reconcile.definition(**options)` (the options SyncJob builds it with:
    `inventory`, `source`, ...); the bucket, queue and function names it needs are placeholders."""
    return map_labels(reconcile.definition(**(_RECONCILE_PLACEHOLDERS | options)))


def relay_region(primary_region: str) -> str:
    """Where the alarm relay runs: the primary region, unless it is an opt-in region (SNS delivers
    nothing from a region enabled by default to a function there); then us-east-1."""
    return CLOUDFRONT_REGION if primary_region in SNS_OPT_IN_REGIONS else primary_region


def sns_principal(topic_region: str, function_region: str) -> str:
    """The service principal a topic in `topic_region` invokes a function in `function_region` as."""
    if topic_region != function_region and topic_region in SNS_OPT_IN_REGIONS:
        return f"sns.{topic_region}.amazonaws.com"
    return "sns.amazonaws.com"


def webhook_environment(urls: Sequence[str]) -> str:
    """The relay's environment value for these webhooks (a JSON list), refused by name and position
    (never by URL: a webhook's URL is its credential) if the relay could not use it."""
    urls = list(urls)
    for i, url in enumerate(urls):
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"Monitoring webhooks[{i}]: expected an https:// URL with a host (the URL is not shown)")
    if len(urls) > relay.MAX_WEBHOOKS:
        raise ValueError(f"Monitoring webhooks: expected at most {relay.MAX_WEBHOOKS}, got {len(urls)}")
    value = json.dumps(urls)
    size = len(relay.WEBHOOKS_VARIABLE) + len(value.encode("utf-8"))
    if size > ENVIRONMENT_LIMIT_BYTES:
        raise ValueError(
            f"Monitoring webhooks: {size} bytes; Lambda takes at most {ENVIRONMENT_LIMIT_BYTES} bytes of environment"
        )
    return value


def alarm_plan(args: MonitoringArgs, *, relay_queue: pulumi.Input[str] | None = None) -> list[AlarmSpec]:
    """Every alarm Monitoring creates for `args`, in order; `relay_queue`: the alarm relay's
    undelivered-notifications queue, when there is a relay. Dimension values may be Outputs."""
    primary = args["primary_region"]
    edge_regions = list(dict.fromkeys(args["edge_regions"]))
    namespace = f"ImageCdn/{args['name_prefix']}"
    labels = args.get("reconcile_map_labels")
    labels = list(dict.fromkeys(labels)) if labels is not None else reconcile_labels()
    distribution = {"DistributionId": args["distribution_id"], "Region": "Global"}
    viewer = {"FunctionName": args["viewer_function_name"], "Region": "Global"}
    rewrite = _join(EDGE_PREFIX, args["rewrite_function_name"])
    resize = _join(EDGE_PREFIX, args["resize_function_name"])
    machine = args["sync_state_machine_arn"]

    def one(namespace: str, metric: str, dimensions: Mapping[str, Any], statistic: str) -> dict[str, Watch]:
        return {"m": Watch(namespace, metric, dimensions, statistic)}

    plan = [
        AlarmSpec(
            "5xx-rate",
            CLOUDFRONT_REGION,
            "The distribution answers 5xx (both origins failing, or a function error)",
            one("AWS/CloudFront", "5xxErrorRate", distribution, "Average"),
            threshold=args.get("error_rate_percent", 1.0),
        ),
        AlarmSpec(
            "4xx-rate",
            CLOUDFRONT_REGION,
            "Many 4xx answers (broken links, refused URLs, or an attack)",
            one("AWS/CloudFront", "4xxErrorRate", distribution, "Average"),
            threshold=args.get("client_error_rate_percent", 20.0),
        ),
        AlarmSpec(
            "origin-latency",
            CLOUDFRONT_REGION,
            "Slow misses: p90 time to first byte from the origins",
            one("AWS/CloudFront", "OriginLatency", distribution, "p90"),
            threshold=float(args.get("origin_latency_ms", 3000)),
        ),
    ]
    plan += [
        AlarmSpec(
            f"viewer-{metric.removeprefix('Function').lower()}",
            CLOUDFRONT_REGION,
            f"The viewer function: {metric}",
            one("AWS/CloudFront", metric, viewer, "Sum"),
            threshold=1.0,
        )
        for metric in ("FunctionExecutionErrors", "FunctionThrottles")
    ]
    plan += [
        AlarmSpec(
            f"edge-at-cloudfront-{metric.lower()}",
            CLOUDFRONT_REGION,
            f"Lambda@Edge failures as CloudFront counts them ({metric}; rewrite + resize)",
            one("AWS/CloudFront", metric, distribution, "Sum"),
            threshold=1.0,
        )
        for metric in EDGE_ERRORS_AT_CLOUDFRONT
    ]
    for region in edge_regions:
        plan += [
            AlarmSpec(
                f"edge-{metric.lower()}-{region}",
                region,
                f"Lambda@Edge {metric.lower()} in {region} (rewrite + resize)",
                {
                    "rewrite": Watch("AWS/Lambda", metric, {"FunctionName": rewrite}, "Sum"),
                    "resize": Watch("AWS/Lambda", metric, {"FunctionName": resize}, "Sum"),
                },
                threshold=1.0,
            )
            for metric in EDGE_ERRORS_IN_REGION
        ]
        plan.append(
            AlarmSpec(
                f"fallback-serving-{region}",
                region,
                f"The fallback bucket is answering in {region}: the primary is failing",
                one(namespace, "FallbackResponses", {}, "Sum"),
                threshold=float(args.get("fallback_responses", 1)),
                period=300,
                evaluations=1,
            )
        )
    queue = {"QueueName": args["sync_dead_letter_queue_name"]}
    plan += [
        AlarmSpec(
            "sync-dead-letters",
            primary,
            "Originals the sync job could not process (see the dead-letter queue)",
            one("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum"),
            threshold=1.0,
            period=300,
            evaluations=1,
        ),
        # The run itself: a STANDARD execution with no TimeoutSeconds, which only a person can abort.
        AlarmSpec(
            "reconcile-failed",
            primary,
            "A reconcile run failed",
            one("AWS/States", "ExecutionsFailed", {"StateMachineArn": machine}, "Sum"),
            threshold=1.0,
            period=300,
            evaluations=1,
        ),
    ]
    for label in labels:
        batches = {"StateMachineArn": _join(machine, "/", label)}
        plan += [
            AlarmSpec(
                f"reconcile-{label.lower()}-{metric.removeprefix('Executions').lower()}",
                primary,
                f"Reconcile batches of {label} lost ({metric}; their originals are in the dead-letter "
                "queue, or, timed out or aborted, not yet built)",
                one("AWS/States", metric, batches, "Sum"),
                threshold=1.0,
                period=300,
                evaluations=1,
            )
            for metric in MAP_RUN_LOSSES
        ]
    if relay_queue is not None:
        plan.append(
            AlarmSpec(
                "alarm-relay-failed",
                relay_region(primary),
                "Alarm notifications the relay could not post to the chat webhooks (see its queue and logs)",
                one("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": relay_queue}, "Maximum"),
                threshold=1.0,
                period=300,
                evaluations=1,
            )
        )
    return plan


def metric_counts(
    edge_regions: Sequence[str], *, reconcile_map_labels: Sequence[str] | None = None, webhooks: bool = False
) -> MetricCounts:
    """The alarm metrics and custom metrics `Monitoring` creates for these inputs (counted from
    `alarm_plan`, which the component builds its alarms from); for the cost estimate."""
    args: MonitoringArgs = {
        "name_prefix": "count",
        "distribution_id": "E0",
        "viewer_function_name": "viewer",
        "rewrite_function_name": "rewrite",
        "resize_function_name": "resize",
        "resize_log_group": "resize",
        "edge_regions": edge_regions,
        "primary_region": CLOUDFRONT_REGION,
        "sync_dead_letter_queue_name": "dead-letters",
        "sync_state_machine_arn": "arn:aws:states:us-east-1:123456789012:stateMachine:sync",
    }
    if reconcile_map_labels is not None:
        args["reconcile_map_labels"] = reconcile_map_labels
    plan = alarm_plan(args, relay_queue="relay-failed" if webhooks else None)
    return _counts(plan, list(dict.fromkeys(edge_regions)))


def _join(*parts: pulumi.Input[str]) -> pulumi.Input[str]:
    """Plain strings joined as a string (no Output is made outside a program: `metric_counts`), else an Output."""
    if all(isinstance(part, str) for part in parts):
        return "".join(str(part) for part in parts)
    return pulumi.Output.concat(*parts)


def _counts(plan: Sequence[AlarmSpec], edge_regions: Sequence[str]) -> MetricCounts:
    return MetricCounts(
        alarm_metrics=sum(len(spec.watches) for spec in plan),
        custom_metrics=len(ADDITIONAL_METRICS) + len(FALLBACK_FILTERS) * len(edge_regions),
    )


class Monitoring(pulumi.ComponentResource):
    """CloudWatch alarms and a dashboard for what breaks an image service, notifying SNS topics.

    Alarms: the distribution's 5xx and 4xx error rates and origin latency, the viewer function's
    errors and throttles, and the Lambda@Edge failures CloudFront counts (us-east-1); the Lambda@Edge
    replicas' errors and throttles and the fallback serving, in every region the stack serves; the
    sync dead-letter queue's depth, the reconcile's failed runs, and its batches failed, timed out
    or aborted in every Map of its definition (primary region). Email addresses are subscribed to
    every topic; chat webhooks get every notification through the alarm relay (a Lambda
    subscribed to every topic). The dashboard shows the same signals, each from the region that
    holds it.
    """

    dashboard_name: pulumi.Output[str]
    """The CloudWatch dashboard."""
    dashboard_url: pulumi.Output[str]
    """A console link to it."""
    alarm_topic_arns: pulumi.Output[list[str]]
    """The SNS topic of each region that has alarms."""
    alarm_names: pulumi.Output[list[str]]
    """Every alarm's name."""

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix, primary = args["name_prefix"], args["primary_region"]
        edge_regions = list(dict.fromkeys(args["edge_regions"]))
        namespace = f"ImageCdn/{prefix}"
        regions = list(dict.fromkeys([CLOUDFRONT_REGION, primary, *edge_regions]))
        labels = args.get("reconcile_map_labels")
        labels = list(dict.fromkeys(labels)) if labels is not None else reconcile_labels()

        self._alarm_prefix = prefix
        self.topics: dict[str, aws.sns.Topic] = {}
        for region in regions:
            topic = aws.sns.Topic(f"{name}-alarms-{region}", name=f"{prefix}-alarms", region=region, opts=child)
            self.topics[region] = topic
            for i, email in enumerate(args.get("emails", [])):
                aws.sns.TopicSubscription(
                    f"{name}-email-{region}-{i}",
                    topic=topic.arn,
                    protocol="email",
                    endpoint=email,
                    region=region,
                    opts=child,
                )
        webhooks = args.get("webhooks")
        self.relay_function: aws.lambda_.Function | None = None
        self.relay = self._relay(name, args, webhooks) if webhooks else None

        # OriginLatency (and the cache hit rate the dashboard shows) are additional metrics.
        self.subscription = aws.cloudfront.MonitoringSubscription(
            f"{name}-additional-metrics",
            distribution_id=args["distribution_id"],
            monitoring_subscription=aws.cloudfront.MonitoringSubscriptionMonitoringSubscriptionArgs(
                realtime_metrics_subscription_config=aws.cloudfront.MonitoringSubscriptionMonitoringSubscriptionRealtimeMetricsSubscriptionConfigArgs(
                    realtime_metrics_subscription_status="Enabled"
                )
            ),
            opts=child,
        )

        for region in edge_regions:
            for metric, pattern in FALLBACK_FILTERS:
                aws.cloudwatch.LogMetricFilter(
                    f"{name}-{metric.lower()}-{region}",
                    name=f"{prefix}-{metric}",
                    log_group_name=args["resize_log_group"],
                    pattern=pattern,
                    metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                        name=metric, namespace=namespace, value="1", default_value="0", unit="Count"
                    ),
                    region=region,
                    opts=child,
                )
        planned: MonitoringArgs = {**args, "reconcile_map_labels": labels}
        plan = alarm_plan(planned, relay_queue=self.relay.queue_name if self.relay else None)
        self.alarms = [self._alarm(name, spec) for spec in plan]
        self.counts = _counts(plan, edge_regions)
        """What it created, as CloudWatch bills it (`metric_counts` gives the same without a program)."""

        rewrite = pulumi.Output.concat(EDGE_PREFIX, args["rewrite_function_name"])
        resize = pulumi.Output.concat(EDGE_PREFIX, args["resize_function_name"])
        body = pulumi.Output.all(
            args["distribution_id"],
            args["viewer_function_name"],
            rewrite,
            resize,
            args["sync_dead_letter_queue_name"],
            args["sync_state_machine_arn"],
        ).apply(
            lambda v: json.dumps(
                dashboard(prefix, primary, edge_regions, *v, reconcile_map_labels=labels), sort_keys=True
            )
        )
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard", dashboard_name=prefix, dashboard_body=body, region=primary, opts=child
        )
        self.dashboard_name = self.dashboard.dashboard_name
        self.dashboard_url = self.dashboard.dashboard_name.apply(
            lambda d: (
                f"https://{primary}.console.aws.amazon.com/cloudwatch/home?region={primary}#dashboards/dashboard/{d}"
            )
        )
        self.alarm_topic_arns = pulumi.Output.all(*(t.arn for t in self.topics.values()))
        self.alarm_names = pulumi.Output.all(*(a.name for a in self.alarms))
        self.register_outputs(
            {
                "dashboard_name": self.dashboard_name,
                "dashboard_url": self.dashboard_url,
                "alarm_topic_arns": self.alarm_topic_arns,
                "alarm_names": self.alarm_names,
            }
        )

    def _relay(self, name: str, args: MonitoringArgs, webhooks: pulumi.Input[Sequence[str]]) -> _Relay:
        """The alarm relay (alerts/relay.py): a regional function subscribed to every topic.

        Its webhooks are in its environment, which Lambda encrypts at rest (Lambda Developer Guide,
        "Data encryption at rest for AWS Lambda"), as a secret of the program's state, never in its
        code; a notification it could not deliver after Lambda's retries goes to its queue."""
        child = pulumi.ResourceOptions(parent=self)
        prefix = args["name_prefix"]
        region = relay_region(args["primary_region"])
        function_name = f"{prefix}-alarm-relay"
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        if isinstance(webhooks, list | tuple):
            webhook_environment(webhooks)  # refused now, by position, rather than at deploy
        listed: pulumi.Output[str] = pulumi.Output.from_input(webhooks).apply(webhook_environment)
        environment: pulumi.Output[str] = pulumi.Output.secret(listed)

        undelivered = aws.sqs.Queue(
            f"{name}-relay-failed",
            name=f"{prefix}-alarm-relay-failed",
            region=region,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-relay-logs",
            name=f"/aws/lambda/{function_name}",
            region=region,
            retention_in_days=args.get("log_retention_days", 14),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-relay-role",
            assume_role_policy=json.dumps(iam.REGIONAL_TRUST, sort_keys=True),
            description="image-cdn alarm relay",
            opts=child,
        )
        grants = aws.iam.RolePolicy(
            f"{name}-relay-policy",
            role=role.id,
            # Its logs, and the on-failure destination (Lambda sends it with the function's role).
            policy=pulumi.Output.all(account, undelivered.arn).apply(
                lambda v: iam.document(
                    iam.regional_logs(v[0], region, function_name),
                    iam.allow("KeepUndelivered", ["sqs:SendMessage"], [v[1]]),
                )
            ),
            opts=child,
        )
        archive = bundle.plain("alarm-relay")
        function = aws.lambda_.Function(
            f"{name}-relay",
            name=function_name,
            region=region,
            runtime=bundle.LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler=bundle.handler("alarm-relay"),
            role=role.arn,
            code=pulumi.FileArchive(str(archive)),
            source_code_hash=bundle.source_hash(archive),
            memory_size=128,
            timeout=RELAY_TIMEOUT_SECONDS,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={relay.WEBHOOKS_VARIABLE: environment}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group]),
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-relay-retries",
            function_name=function.name,
            region=region,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=3 * 3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=undelivered.arn
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[grants]),
        )
        made = _Relay(region, undelivered.name)
        for topic_region, topic in self.topics.items():
            # protocol "lambda" needs no confirmation; the permission lets exactly this topic invoke it.
            allowed = aws.lambda_.Permission(
                f"{name}-relay-from-{topic_region}",
                function=function.name,
                region=region,
                action="lambda:InvokeFunction",
                principal=sns_principal(topic_region, region),
                source_arn=topic.arn,
                opts=child,
            )
            made.subscriptions.append(
                aws.sns.TopicSubscription(
                    f"{name}-relay-{topic_region}",
                    topic=topic.arn,
                    protocol="lambda",
                    endpoint=function.arn,
                    region=topic_region,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[allowed]),
                )
            )
        self.relay_function = function
        return made

    def _alarm(self, name: str, spec: AlarmSpec) -> aws.cloudwatch.MetricAlarm:
        """One alarm, notifying its region's topic when it fires and when it clears.

        Three breaching minutes of five for the per-minute signals; one period for counts that
        should be zero. Missing data is not breaching: edge metrics are sparse (no request, no point).
        """
        topic = self.topics[spec.region].arn
        common: dict[str, Any] = {
            "name": f"{self._alarm_prefix}-{spec.what}",
            "alarm_description": spec.description,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "threshold": spec.threshold,
            "evaluation_periods": spec.evaluations,
            "datapoints_to_alarm": min(3, spec.evaluations),
            "treat_missing_data": "notBreaching",
            "alarm_actions": [topic],
            "ok_actions": [topic],
            "region": spec.region,
        }
        if len(spec.watches) == 1:
            (watch,) = spec.watches.values()
            common |= {
                "namespace": watch.namespace,
                "metric_name": watch.name,
                "dimensions": dict(watch.dimensions),
                "period": spec.period,
            }
            if watch.statistic.startswith("p"):
                common["extended_statistic"] = watch.statistic
            else:
                common["statistic"] = watch.statistic
        else:
            queries = [
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=query_id,
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=watch.namespace,
                        metric_name=watch.name,
                        dimensions=dict(watch.dimensions),
                        period=spec.period,
                        stat=watch.statistic,
                    ),
                )
                for query_id, watch in spec.watches.items()
            ]
            total = " + ".join(spec.watches)
            queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(id="total", expression=total, return_data=True))
            common["metric_queries"] = queries
        return aws.cloudwatch.MetricAlarm(f"{name}-{spec.what}", opts=pulumi.ResourceOptions(parent=self), **common)


def dashboard(
    prefix: str,
    primary: str,
    edge_regions: Sequence[str],
    distribution_id: str,
    viewer: str,
    rewrite: str,
    resize: str,
    dead_letters: str,
    machine: str,
    *,
    reconcile_map_labels: Sequence[str] = (),
) -> dict[str, Any]:
    """The dashboard's body (CloudWatch dashboard body structure): each widget reads its own region."""
    namespace = f"ImageCdn/{prefix}"
    dist = ["DistributionId", distribution_id, "Region", "Global"]

    def widget(title: str, region: str, metrics: list[list[Any]], stat: str = "Sum", **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 8,
            "height": 6,
            "properties": {"title": title, "region": region, "metrics": metrics, "stat": stat, "period": 60, **extra},
        }

    widgets = [
        widget("Requests", CLOUDFRONT_REGION, [["AWS/CloudFront", "Requests", *dist]]),
        widget(
            "Error rates (%)",
            CLOUDFRONT_REGION,
            [["AWS/CloudFront", "5xxErrorRate", *dist], ["AWS/CloudFront", "4xxErrorRate", *dist]],
            stat="Average",
        ),
        widget("Cache hit rate (%)", CLOUDFRONT_REGION, [["AWS/CloudFront", "CacheHitRate", *dist]], stat="Average"),
        widget("Origin latency p90 (ms)", CLOUDFRONT_REGION, [["AWS/CloudFront", "OriginLatency", *dist]], stat="p90"),
        widget(
            "Viewer function",
            CLOUDFRONT_REGION,
            [
                ["AWS/CloudFront", m, "FunctionName", viewer, "Region", "Global"]
                for m in ("FunctionInvocations", "FunctionExecutionErrors", "FunctionThrottles")
            ],
        ),
        widget(
            "Lambda@Edge at CloudFront",
            CLOUDFRONT_REGION,
            [["AWS/CloudFront", m, *dist] for m in EDGE_ERRORS_AT_CLOUDFRONT],
        ),
    ]
    for region in edge_regions:
        widgets.append(
            widget(
                f"Lambda@Edge {region}",
                region,
                [
                    ["AWS/Lambda", m, "FunctionName", f]
                    for f in (rewrite, resize)
                    for m in ("Invocations", *EDGE_ERRORS_IN_REGION)
                ],
            )
        )
        widgets.append(
            widget(
                f"Fallback serving {region}",
                region,
                [[namespace, metric] for metric, _ in FALLBACK_FILTERS],
            )
        )
    widgets.append(
        widget(
            "Sync",
            primary,
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dead_letters, {"stat": "Maximum"}],
                ["AWS/States", "ExecutionsFailed", "StateMachineArn", machine],
                *(
                    ["AWS/States", metric, "StateMachineArn", f"{machine}/{label}"]
                    for label in reconcile_map_labels
                    for metric in MAP_RUN_LOSSES
                ),
            ],
        )
    )
    return {"widgets": widgets}

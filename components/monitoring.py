"""Monitoring: the alarms and the dashboard of one image service.

Where each signal lives (AWS's documents):
- CloudFront's metrics (`AWS/CloudFront`, dimensions DistributionId and Region=Global, and
  FunctionName for a CloudFront Function) are read in us-east-1 only (CloudFront Developer
  Guide, "Types of CloudFront metrics"). OriginLatency is one of the additional metrics, which
  a monitoring subscription turns on (CloudFront Developer Guide, "Turn on additional metrics").
- A Lambda@Edge replica logs in the region that ran it, to `/aws/lambda/us-east-1.<name>`
  (CloudFront Developer Guide, "Edge function logs"), and its `AWS/Lambda` metrics are kept in
  that region too, under the FunctionName `us-east-1.<name>`: every region the stack serves gets
  its own alarms, on the replicas' Errors and Throttles and on the fallback signal below.
- The children of a Distributed Map report `AWS/States` metrics under the state machine's ARN
  followed by `/<the Map's Label>` (Step Functions Developer Guide, "Viewing a Distributed Map
  Run execution"): the reconcile's failed batches are ExecutionsFailed there.

The fallback signal: `resize` logs `{"event": "fallback", "substitute": ...}` for every answer
the fallback bucket gives, and a metric filter on its log group in each region counts them
(FallbackResponses, Substitutes). A primary that serves never reaches the fallback, so any
count is an outage or a missing variant.

Notifications: an alarm's SNS action is kept in the alarm's own region here (a topic per region,
each with the same subscribers): CloudWatch's documents show same-region topics, and whether a
topic in another region may be named is not stated, so the choice that works under either
reading is taken. Email and HTTPS subscribers each confirm every topic once (SNS sends one
confirmation per subscription).
"""

import json
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

CLOUDFRONT_REGION = "us-east-1"
EDGE_PREFIX = "us-east-1."
# The Distributed Map's Label in components/reconcile.py: its children's metrics carry it.
RECONCILE_MAP_LABEL = "Build"


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
    """The primary region (the sync job's queue and state machine)."""
    sync_dead_letter_queue_name: pulumi.Input[str]
    """SyncJob's `dead_letter_queue_name`."""
    sync_state_machine_arn: pulumi.Input[str]
    """SyncJob's `state_machine_arn`."""
    emails: NotRequired[Sequence[str]]
    """Email addresses the alarms notify (each confirms one subscription per region)."""
    webhooks: NotRequired[Sequence[str]]
    """https:// endpoints the alarms notify (a chat webhook, for instance)."""
    error_rate_percent: NotRequired[float]
    """The distribution's 5xx rate, in percent, that raises an alarm; default 1."""
    client_error_rate_percent: NotRequired[float]
    """The distribution's 4xx rate, in percent, that raises an alarm; default 20."""
    origin_latency_ms: NotRequired[int]
    """The p90 of the time to first byte from the origins that raises an alarm; default 3000."""
    fallback_responses: NotRequired[int]
    """Answers from the fallback bucket in five minutes, in one region, that raise an alarm; default 1."""


class Monitoring(pulumi.ComponentResource):
    """CloudWatch alarms and a dashboard for what breaks an image service, notifying SNS topics.

    Alarms: the distribution's 5xx and 4xx error rates and origin latency, the viewer function's
    errors and throttles (us-east-1); the Lambda@Edge replicas' errors and throttles and the
    fallback serving, in every region the stack serves; the sync dead-letter queue's depth and
    the reconcile's failed runs and failed batches (primary region). The dashboard shows the
    same signals, each from the region that holds it.
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
            for i, url in enumerate(args.get("webhooks", [])):
                aws.sns.TopicSubscription(
                    f"{name}-webhook-{region}-{i}",
                    topic=topic.arn,
                    protocol="https",
                    endpoint=url,
                    endpoint_auto_confirms=False,
                    region=region,
                    opts=child,
                )

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

        self.alarms: list[aws.cloudwatch.MetricAlarm] = []
        distribution = {"DistributionId": args["distribution_id"], "Region": "Global"}
        viewer = {"FunctionName": args["viewer_function_name"], "Region": "Global"}
        self._alarm(
            name,
            "5xx-rate",
            CLOUDFRONT_REGION,
            "The distribution answers 5xx (both origins failing, or a function error)",
            metric=("AWS/CloudFront", "5xxErrorRate", distribution, "Average"),
            threshold=args.get("error_rate_percent", 1.0),
        )
        self._alarm(
            name,
            "4xx-rate",
            CLOUDFRONT_REGION,
            "Many 4xx answers (broken links, refused URLs, or an attack)",
            metric=("AWS/CloudFront", "4xxErrorRate", distribution, "Average"),
            threshold=args.get("client_error_rate_percent", 20.0),
        )
        self._alarm(
            name,
            "origin-latency",
            CLOUDFRONT_REGION,
            "Slow misses: p90 time to first byte from the origins",
            metric=("AWS/CloudFront", "OriginLatency", distribution, "p90"),
            threshold=float(args.get("origin_latency_ms", 3000)),
        )
        for metric in ("FunctionExecutionErrors", "FunctionThrottles"):
            self._alarm(
                name,
                f"viewer-{metric.removeprefix('Function').lower()}",
                CLOUDFRONT_REGION,
                f"The viewer function: {metric}",
                metric=("AWS/CloudFront", metric, viewer, "Sum"),
                threshold=1.0,
            )

        rewrite = pulumi.Output.concat(EDGE_PREFIX, args["rewrite_function_name"])
        resize = pulumi.Output.concat(EDGE_PREFIX, args["resize_function_name"])
        for region in edge_regions:
            for metric in ("Errors", "Throttles"):
                self._alarm(
                    name,
                    f"edge-{metric.lower()}-{region}",
                    region,
                    f"Lambda@Edge {metric.lower()} in {region} (rewrite + resize)",
                    expression=(
                        "rewrite + resize",
                        {
                            "rewrite": ("AWS/Lambda", metric, {"FunctionName": rewrite}, "Sum"),
                            "resize": ("AWS/Lambda", metric, {"FunctionName": resize}, "Sum"),
                        },
                    ),
                    threshold=1.0,
                )
            for metric, pattern in (
                ("FallbackResponses", '{ $.event = "fallback" }'),
                ("Substitutes", '{ ($.event = "fallback") && ($.substitute IS TRUE) }'),
            ):
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
            self._alarm(
                name,
                f"fallback-serving-{region}",
                region,
                f"The fallback bucket is answering in {region}: the primary is failing",
                metric=(namespace, "FallbackResponses", {}, "Sum"),
                threshold=float(args.get("fallback_responses", 1)),
                period=300,
                evaluations=1,
            )

        machine = pulumi.Output.from_input(args["sync_state_machine_arn"])
        self._alarm(
            name,
            "sync-dead-letters",
            primary,
            "Originals the sync job could not process (see the dead-letter queue)",
            metric=(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": args["sync_dead_letter_queue_name"]},
                "Maximum",
            ),
            threshold=1.0,
            period=300,
            evaluations=1,
        )
        self._alarm(
            name,
            "reconcile-failed",
            primary,
            "A reconcile run failed",
            metric=("AWS/States", "ExecutionsFailed", {"StateMachineArn": machine}, "Sum"),
            threshold=1.0,
            period=300,
            evaluations=1,
        )
        self._alarm(
            name,
            "reconcile-failed-batches",
            primary,
            "Reconcile batches failed (their originals went to the dead-letter queue)",
            metric=(
                "AWS/States",
                "ExecutionsFailed",
                {"StateMachineArn": machine.apply(lambda arn: f"{arn}/{RECONCILE_MAP_LABEL}")},
                "Sum",
            ),
            threshold=1.0,
            period=300,
            evaluations=1,
        )

        body = pulumi.Output.all(
            args["distribution_id"],
            args["viewer_function_name"],
            rewrite,
            resize,
            args["sync_dead_letter_queue_name"],
            machine,
        ).apply(lambda v: json.dumps(dashboard(prefix, primary, edge_regions, *v), sort_keys=True))
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

    def _alarm(
        self,
        name: str,
        what: str,
        region: str,
        description: str,
        *,
        threshold: float,
        metric: tuple[str, str, dict[str, Any], str] | None = None,
        expression: tuple[str, dict[str, tuple[str, str, dict[str, Any], str]]] | None = None,
        period: int = 60,
        evaluations: int = 5,
    ) -> None:
        """One alarm, notifying its region's topic when it fires and when it clears.

        Three breaching minutes of five for the per-minute signals; one period for counts that
        should be zero. Missing data is not breaching: edge metrics are sparse (no request, no point).
        """
        topic = self.topics[region].arn
        common: dict[str, Any] = {
            "name": f"{self._alarm_prefix}-{what}",
            "alarm_description": description,
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "threshold": threshold,
            "evaluation_periods": evaluations,
            "datapoints_to_alarm": min(3, evaluations),
            "treat_missing_data": "notBreaching",
            "alarm_actions": [topic],
            "ok_actions": [topic],
            "region": region,
        }
        if metric is not None:
            namespace, metric_name, dimensions, statistic = metric
            common |= {"namespace": namespace, "metric_name": metric_name, "dimensions": dimensions, "period": period}
            if statistic.startswith("p"):
                common["extended_statistic"] = statistic
            else:
                common["statistic"] = statistic
        else:
            assert expression is not None
            formula, inputs = expression
            queries = [
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=query_id,
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=ns, metric_name=metric_name, dimensions=dims, period=period, stat=stat
                    ),
                )
                for query_id, (ns, metric_name, dims, stat) in inputs.items()
            ]
            queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(id="total", expression=formula, return_data=True))
            common["metric_queries"] = queries
        alarm = aws.cloudwatch.MetricAlarm(f"{name}-{what}", opts=pulumi.ResourceOptions(parent=self), **common)
        self.alarms.append(alarm)


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
    ]
    for region in edge_regions:
        widgets.append(
            widget(
                f"Lambda@Edge {region}",
                region,
                [
                    ["AWS/Lambda", m, "FunctionName", f]
                    for f in (rewrite, resize)
                    for m in ("Invocations", "Errors", "Throttles")
                ],
            )
        )
        widgets.append(
            widget(
                f"Fallback serving {region}",
                region,
                [[namespace, "FallbackResponses"], [namespace, "Substitutes"]],
            )
        )
    widgets.append(
        widget(
            "Sync",
            primary,
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dead_letters, {"stat": "Maximum"}],
                ["AWS/States", "ExecutionsFailed", "StateMachineArn", machine],
                ["AWS/States", "ExecutionsFailed", "StateMachineArn", f"{machine}/{RECONCILE_MAP_LABEL}"],
            ],
        )
    )
    return {"widgets": widgets}

"""Alarms and the dashboard on the mocks; the same signals in the emulator and its gallery."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from browsers import CHROMIUM_FLAGS, require
from pulumi_mocks import StackRun, run_stack

from components import reconcile
from components.config import ConfigError, from_stack_file, load
from components.monitoring import (
    ADDITIONAL_METRICS,
    EDGE_PREFIX,
    map_labels,
    map_states,
    metric_counts,
    reconcile_labels,
)
from edge import resize
from edge.settings import Settings
from localcdn.metrics import Metrics
from localcdn.process import Emulator

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
MACHINE = "aws:sfn/stateMachine:StateMachine"
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
ROOT = Path(__file__).resolve().parent.parent
# How a Distributed Map's child execution can end without succeeding: Step Functions' execution
# metrics ("Monitoring Step Functions metrics using Amazon CloudWatch") other than started/succeeded.
LOST = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
# What `reconcile.definition` needs besides its options.
RECONCILE: dict[str, Any] = {
    "function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:x-sync",
    "primary_bucket": "x-origin",
    "results_bucket": "x-sync",
    "dead_letter_queue_url": "https://sqs.eu-west-1.amazonaws.com/123456789012/x-sync-dead-letters",
    "concurrency": 10,
    "batch_size": 10,
    "tolerated_failure_percent": 5,
    "inventory": False,
}


def _edge_function_names(run: StackRun) -> tuple[str, str]:
    """`us-east-1.<name>` of rewrite and resize, as the stack names them (the replicas' FunctionName)."""
    associations = run.one("aws:cloudfront/distribution:Distribution").inputs["defaultCacheBehavior"]
    arns = {a["eventType"]: a["lambdaArn"] for a in associations["lambdaFunctionAssociations"]}
    # arn:aws:lambda:us-east-1:<account>:function:<name>:<version>
    rewrite, resize = (arns[event].split(":")[6] for event in ("origin-request", "origin-response"))
    return f"{EDGE_PREFIX}{rewrite}", f"{EDGE_PREFIX}{resize}"


@pytest.fixture(scope="module")
def prod() -> StackRun:
    return run_stack(from_stack_file("prod"))


def test_dev_has_no_alarms_and_prod_has_them(prod: StackRun) -> None:
    dev = run_stack(from_stack_file("dev"))
    assert not dev.of_type(ALARM) and not dev.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert "dashboard_url" not in dev.outputs
    assert prod.of_type(ALARM) and prod.outputs["dashboard_url"].startswith("https://eu-west-1.console.aws.amazon.com/")


def test_every_region_the_stack_serves_has_its_edge_alarms_and_fallback_filter(prod: StackRun) -> None:
    config = prod.config
    alarms = {a.inputs["name"]: a.inputs for a in prod.of_type(ALARM)}
    rewrite_name, resize_name = _edge_function_names(prod)
    assert len(config.log_regions) == 13  # PriceClass_All: every regional edge cache's region
    for region in config.log_regions:
        for metric in ("errors", "throttles"):
            alarm = alarms[f"{config.name_prefix}-edge-{metric}-{region}"]
            assert alarm["region"] == region
            functions = {q["metric"]["dimensions"]["FunctionName"] for q in alarm["metricQueries"] if "metric" in q}
            assert functions == {resize_name, rewrite_name}
        fallback = alarms[f"{config.name_prefix}-fallback-serving-{region}"]
        assert (fallback["region"], fallback["metricName"], fallback["threshold"]) == (region, "FallbackResponses", 1)
    filters = prod.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    assert {(f.inputs["region"], f.inputs["metricTransformation"]["name"]) for f in filters} == {
        (region, metric) for region in config.log_regions for metric in ("FallbackResponses", "Substitutes")
    }
    # The filters read the very log group EdgeFunctions creates with its retention in that region.
    groups = {(g.inputs["name"], g.inputs["region"]) for g in prod.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert all((f.inputs["logGroupName"], f.inputs["region"]) in groups for f in filters)


def test_cloudfront_and_sync_alarms_read_where_aws_keeps_those_metrics(prod: StackRun) -> None:
    config = prod.config
    alarms = {a.inputs["name"].removeprefix(config.name_prefix + "-"): a.inputs for a in prod.of_type(ALARM)}
    for name in ("5xx-rate", "4xx-rate", "origin-latency", "viewer-executionerrors", "viewer-throttles"):
        assert alarms[name]["region"] == "us-east-1" and alarms[name]["namespace"] == "AWS/CloudFront"
        assert alarms[name]["dimensions"]["Region"] == "Global"
    assert alarms["origin-latency"]["extendedStatistic"] == "p90"
    (subscription,) = prod.of_type("aws:cloudfront/monitoringSubscription:MonitoringSubscription")
    assert subscription.inputs["distributionId"] == alarms["5xx-rate"]["dimensions"]["DistributionId"]
    (queue,) = [q for q in prod.of_type("aws:sqs/queue:Queue") if q.inputs["name"].endswith("sync-dead-letters")]
    assert alarms["sync-dead-letters"]["dimensions"] == {"QueueName": queue.inputs["name"]}
    assert alarms["sync-dead-letters"]["region"] == config.primary_region
    machine = prod.output_of(MACHINE, "sync-state-machine")["arn"]
    assert alarms["reconcile-failed"]["dimensions"] == {"StateMachineArn": machine}
    assert alarms["reconcile-failed"]["region"] == config.primary_region


def test_alarms_notify_a_topic_in_their_own_region_with_the_stacks_subscribers(prod: StackRun) -> None:
    topics = {t.inputs["region"]: t for t in prod.of_type("aws:sns/topic:Topic")}
    for alarm in prod.of_type(ALARM):
        region = alarm.inputs["region"]
        assert region in topics
        arn = prod.output_of("aws:sns/topic:Topic", topics[region].name)["arn"]
        assert alarm.inputs["alarmActions"] == [arn] and alarm.inputs["okActions"] == [arn]
        assert alarm.inputs["treatMissingData"] == "notBreaching"
    subscriptions = prod.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert {(s.inputs["region"], s.inputs["protocol"], s.inputs["endpoint"]) for s in subscriptions} == {
        (region, "email", "image-cdn-oncall@example.com") for region in topics
    }


def _maps(node: Any) -> list[dict[str, Any]]:
    """Every object with "Type": "Map" anywhere in a definition (found apart from `map_states`)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("Type") == "Map":
            found.append(node)
        for value in node.values():
            found += _maps(value)
    elif isinstance(node, list):
        for value in node:
            found += _maps(value)
    return found


def _distributed(state: dict[str, Any]) -> bool:
    return bool(state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED")


@pytest.fixture(scope="module")
def reconciles(prod: StackRun) -> dict[str, StackRun]:
    """The three reconciles a stack can build: a listing of originals/, with S3 Inventory, from a manifest."""
    return {
        "listing": prod,
        "inventory": run_stack(from_stack_file("prod", overrides={"syncInventory": True})),
        "manifest": run_stack(from_stack_file("thirdparty", overrides={"monitoring": True})),
    }


@pytest.mark.parametrize("kind", ["listing", "inventory", "manifest"])
def test_every_map_of_the_reconcile_the_stack_builds_has_its_lost_batch_alarms(
    reconciles: dict[str, StackRun], kind: str
) -> None:
    """Children of a Distributed Map report AWS/States metrics under `<state machine ARN>/<Label>`
    (Step Functions Developer Guide, "Viewing a Distributed Map Run execution"): for every Map of
    the definition the stack really deploys, a failed, a timed-out and an aborted batch each alarm."""
    run = reconciles[kind]
    (machine,) = run.of_type(MACHINE)
    maps = _maps(json.loads(machine.inputs["definition"]))
    assert maps and all(m.get("Label") for m in maps), "a Map without a Label reports under a UUID"
    arn = run.output_of(MACHINE, machine.name)["arn"]
    states = [a.inputs for a in run.of_type(ALARM) if a.inputs.get("namespace") == "AWS/States"]
    watched = {(a["metricName"], a["dimensions"]["StateMachineArn"]) for a in states}
    assert watched == {("ExecutionsFailed", arn)} | {(m, f"{arn}/{s['Label']}") for s in maps for m in LOST}
    for alarm in states:
        assert alarm["region"] == run.config.primary_region and alarm["statistic"] == "Sum"
        assert (alarm["threshold"], alarm["period"], alarm["evaluationPeriods"]) == (1, 300, 1)


def test_map_labels_walks_item_processors_iterators_and_parallel_branches() -> None:
    """Amazon States Language nests states in a Map's ItemProcessor (or its older Iterator) and in a
    Parallel state's Branches; a Map may sit in any of them."""

    def distributed(label: str, states: dict[str, Any]) -> dict[str, Any]:
        processor = {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
            "StartAt": next(iter(states)),
        }
        return {"Type": "Map", "Label": label, "ItemProcessor": {**processor, "States": states}, "End": True}

    inner = distributed("Inner", {"Work": {"Type": "Pass", "End": True}})
    deep = distributed("Deep", {"Work2": {"Type": "Pass", "End": True}})
    inline = {"Type": "Map", "Iterator": {"StartAt": "Deep", "States": {"Deep": deep}}, "End": True}
    fan = {
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "Inner", "States": {"Inner": inner}},
            {"StartAt": "Inline", "States": {"Inline": inline}},
        ],
        "End": True,
    }
    definition = {"StartAt": "Outer", "States": {"Outer": distributed("Outer", {"Fan": fan})}}
    assert [name for name, _ in map_states(definition)] == ["Outer", "Inner", "Inline", "Deep"]
    assert map_labels(definition) == ["Outer", "Inner", "Deep"]  # the inline Map has no child executions


def test_a_distributed_map_without_a_label_is_refused_by_name() -> None:
    unlabelled = {
        "Type": "Map",
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "States": {}},
        "End": True,
    }
    with pytest.raises(ValueError, match=r"Distributed Map Sweep has no Label: .* under a UUID"):
        map_labels({"StartAt": "Sweep", "States": {"Sweep": unlabelled}})


@pytest.mark.parametrize("options", [{}, {"inventory": True}, {"source": "jsonl"}])
def test_every_distributed_map_of_the_reconcile_has_a_label(options: dict[str, Any]) -> None:
    """Without a Label, Step Functions puts a UUID in the children's StateMachineArn: no alarm can name it."""
    definition = reconcile.definition(**(RECONCILE | options))
    distributed = [m for m in _maps(definition) if _distributed(m)]
    assert distributed and all(isinstance(m.get("Label"), str) and m["Label"] for m in distributed)
    assert reconcile_labels(**options) == [m["Label"] for m in _maps(definition) if "Label" in m]


def test_monitoring_defaults_to_the_labels_of_the_default_reconcile() -> None:
    labels = [m["Label"] for m in _maps(reconcile.definition(**RECONCILE))]  # a listing, no inventory
    assert reconcile_labels() == labels
    regions = ["us-east-1", "eu-west-1"]
    unwatched = metric_counts(regions, reconcile_map_labels=[])
    assert metric_counts(regions).alarm_metrics == unwatched.alarm_metrics + len(LOST) * len(labels)


def test_an_edge_failure_raises_an_alarm_under_either_reading_of_where_its_metrics_live(prod: StackRun) -> None:
    config = prod.config
    alarms = [a.inputs for a in prod.of_type(ALARM)]
    # Reading 1: AWS/Lambda in the region that ran the replica, FunctionName us-east-1.<name>.
    edge = set(_edge_function_names(prod))
    for region in config.log_regions:
        in_region = [a for a in alarms if a["region"] == region and "metricQueries" in a]
        read = {
            (q["metric"]["namespace"], q["metric"]["metricName"], q["metric"]["dimensions"]["FunctionName"])
            for a in in_region
            for q in a["metricQueries"]
            if "metric" in q
        }
        assert read == {("AWS/Lambda", m, f) for m in ("Errors", "Throttles") for f in edge}
    # Reading 2: us-east-1, AWS/CloudFront, per distribution (DistributionId, Region=Global): the
    # 503 execution error, the 502 validation error, the 503 limit exceeded (CloudFront Developer
    # Guide, "Troubleshooting error responses from your origin").
    (subscription,) = prod.of_type("aws:cloudfront/monitoringSubscription:MonitoringSubscription")
    distribution = {"DistributionId": subscription.inputs["distributionId"], "Region": "Global"}
    at_cloudfront = [
        a for a in alarms if a.get("namespace") == "AWS/CloudFront" and a["metricName"].startswith("Lambda")
    ]
    assert {a["metricName"] for a in at_cloudfront} >= {
        "LambdaExecutionError",
        "LambdaValidationError",
        "LambdaLimitExceededErrors",
    }
    for alarm in at_cloudfront:
        assert alarm["region"] == "us-east-1" and alarm["dimensions"] == distribution
        assert (alarm["statistic"], alarm["threshold"], alarm["comparisonOperator"]) == (
            "Sum",
            1,
            "GreaterThanOrEqualToThreshold",
        )


def _billed(run: StackRun) -> tuple[int, int]:
    """Alarm metrics (a metric math alarm counts each metric it reads) and custom metrics, from the
    declared resources: CloudFront's eight additional metrics per subscription (cache hit rate,
    origin latency, the 401/403/404/502/503/504 error rates) and one metric per filter."""
    alarm_metrics = sum(
        1 if "metricName" in a.inputs else sum(1 for q in a.inputs["metricQueries"] if "metric" in q)
        for a in run.of_type(ALARM)
    )
    subscriptions = run.of_type("aws:cloudfront/monitoringSubscription:MonitoringSubscription")
    filters = run.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
    return alarm_metrics, 8 * len(subscriptions) + len(filters)


@pytest.mark.parametrize("kind", ["listing", "inventory", "manifest"])
def test_metric_counts_are_what_the_component_creates(reconciles: dict[str, StackRun], kind: str) -> None:
    run = reconciles[kind]
    labels = [m["Label"] for m in _maps(json.loads(run.one(MACHINE).inputs["definition"]))]
    counts = metric_counts(
        run.config.log_regions, reconcile_map_labels=labels, webhooks=bool(run.config.alarm_webhooks)
    )
    assert (counts.alarm_metrics, counts.custom_metrics) == _billed(run)
    assert len(ADDITIONAL_METRICS) == 8


def test_prod_metric_counts_by_hand(prod: StackRun) -> None:
    regions = len(prod.config.log_regions)
    counts = metric_counts(prod.config.log_regions)
    # us-east-1: 5xx, 4xx, origin latency, viewer errors and throttles, and the 4 Lambda@Edge metrics
    # CloudFront counts; per region: errors and throttles of rewrite + resize (2 metrics each), the
    # fallback; primary: dead letters, failed runs, and Build's failed, timed-out, aborted batches.
    assert counts.alarm_metrics == 5 + 4 + regions * (2 * 2 + 1) + 2 + 3 == 79
    assert counts.custom_metrics == 8 + 2 * regions == 34


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    return text[start : text.index("\n#", start + 1)]


def test_the_readmes_count_of_email_confirmations_is_the_codes(prod: StackRun) -> None:
    found = re.search(r"one subscription per alarm region: (\d+) for prod", _readme_section("Alarms and the dashboard"))
    assert found, "the README states how many subscriptions an address confirms in prod"
    topics = prod.of_type("aws:sns/topic:Topic")
    address = prod.config.alarm_emails[0]
    confirmations = [
        s
        for s in prod.of_type("aws:sns/topicSubscription:TopicSubscription")
        if s.inputs["protocol"] == "email" and s.inputs["endpoint"] == address
    ]
    assert int(found.group(1)) == len(topics) == len(confirmations)


def test_the_dashboard_reads_each_widget_from_its_region(prod: StackRun) -> None:
    (dashboard,) = prod.of_type("aws:cloudwatch/dashboard:Dashboard")
    widgets = json.loads(dashboard.inputs["dashboardBody"])["widgets"]
    regions = {w["properties"]["region"] for w in widgets}
    assert regions == {"us-east-1", prod.config.primary_region, *prod.config.log_regions}
    titles = [w["properties"]["title"] for w in widgets]
    assert "Error rates (%)" in titles and f"Fallback serving {prod.config.log_regions[-1]}" in titles


def test_alarm_endpoints_are_checked_by_name() -> None:
    good = {"aws:region": "eu-west-1", "fallbackRegion": "us-east-2", "catalogAuth": "iam"}
    with pytest.raises(ConfigError, match="image-cdn:alarmEmails: expected a list of email addresses"):
        load({**good, "alarmEmails": ["not-an-address"]}, project="image-cdn", stack="t")
    with pytest.raises(ConfigError, match="image-cdn:alarmWebhooks: expected a list of https:// URLs"):
        load({**good, "alarmWebhooks": ["http://chat.example.com/hook"]}, project="image-cdn", stack="t")
    on = load({**good, "monitoring": True, "alarmWebhooks": ["https://chat.example.com/hook"]}, project="p", stack="t")
    assert on.monitoring and on.alarm_webhooks == ("https://chat.example.com/hook",)


def _fallback_event(uri: str, requested: str) -> dict[str, Any]:
    settings = Settings()
    request = {
        "uri": uri,
        "querystring": "",
        "headers": {"x-image-cdn-requested": [{"key": "X-Image-Cdn-Requested", "value": requested}]},
        "origin": {"s3": {"domainName": f"{settings.fallback_bucket}.s3.{settings.fallback_region}.amazonaws.com"}},
    }
    response = {"status": "200", "headers": {"content-type": [{"key": "Content-Type", "value": "image/webp"}]}}
    return {"Records": [{"cf": {"request": request, "response": response}}]}


def test_resize_logs_every_fallback_answer_as_the_metric_filters_expect(capsys: pytest.CaptureFixture[str]) -> None:
    exact = "/samples/a.jpg/w_640_q_60.webp"
    resize.handle(_fallback_event(exact, exact), Settings())
    resize.handle(_fallback_event(exact, "/samples/a.jpg/w_640_q_90.avif"), Settings())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    events = [line for line in lines if line.get("event") == "fallback"]
    # Filter patterns: { $.event = "fallback" } and { ($.event = "fallback") && ($.substitute IS TRUE) }
    assert [e["substitute"] for e in events] == [False, True]


def test_the_metrics_model_counts_like_the_stacks_filters() -> None:
    metrics = Metrics()
    metrics.count(120.0, 200, "Miss", "primary", {})
    metrics.count(121.0, 200, "Hit", "primary", {})
    metrics.count(122.0, 200, "Miss", "fallback", {})
    metrics.count(185.0, 200, "Miss", "fallback", {"X-Image-Cdn-Substitute": "/a.jpg/w_640_q_60.webp"})
    metrics.count(186.0, 200, "Hit", "fallback", {"X-Image-Cdn-Substitute": "/a.jpg/w_640_q_60.webp"})
    metrics.count(187.0, 404, "Miss", "primary", {})
    snap = metrics.snapshot(190.0)
    by_minute = {point["minute"]: point for point in snap["series"]}  # type: ignore[attr-defined]
    assert by_minute[120] == {
        "minute": 120,
        "requests": 3,
        "hits": 1,
        "misses": 2,
        "errors_4xx": 0,
        "errors_5xx": 0,
        "failovers": 1,
        "substitutes": 0,
    }
    # A cached substitute is a hit: no origin ran, so resize logged nothing and the filter counts nothing.
    assert (by_minute[180]["failovers"], by_minute[180]["substitutes"], by_minute[180]["errors_4xx"]) == (1, 1, 1)
    assert len(snap["series"]) == 60 and snap["totals"]["requests"] == 6  # type: ignore[arg-type,index]


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    emulator = Emulator(home=tmp_path_factory.mktemp("home"))
    yield emulator
    emulator.stop()


def test_the_emulator_serves_the_signals_of_an_outage(cdn: Emulator) -> None:
    before = cdn.get("/_localcdn/metrics").json()["totals"]
    cdn.request("DELETE", "/_localcdn/cache")
    cdn.primary("down")
    try:
        assert cdn.get("/samples/landscape.jpg?w=640&fm=webp", CHROMIUM).header("X-Origin") == "fallback"
        assert cdn.get("/samples/landscape.jpg?w=600&q=90", CHROMIUM).header("X-Image-Cdn-Substitute")
        assert cdn.get("/samples/landscape.jpg?w=600&q=90", CHROMIUM).header("X-Cache") == "Hit"
    finally:
        cdn.primary("up")
    after = cdn.get("/_localcdn/metrics").json()
    grew = {k: after["totals"][k] - before[k] for k in before}
    assert grew == {
        "requests": 3,
        "hits": 1,
        "misses": 2,
        "errors_4xx": 0,
        "errors_5xx": 0,
        "failovers": 2,
        "substitutes": 1,
    }
    assert after["series"][-1]["requests"] >= 3


@pytest.mark.browser
def test_the_gallery_charts_the_signals_live(cdn: Emulator, tmp_path: Path) -> None:
    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS[1:])
        try:
            page = browser.new_page()
            page.goto(cdn.base + "/", wait_until="load")
            page.wait_for_function(
                "document.querySelector('#metrics figure[data-signal=requests] output').textContent.includes('in all')"
            )
            charts = page.evaluate(
                "[...document.querySelectorAll('#metrics figure')].map(f => ({signal: f.dataset.signal,"
                " points: f.querySelector('polyline').getAttribute('points'),"
                " text: f.querySelector('output').textContent}))"
            )
        finally:
            browser.close()
    assert [c["signal"] for c in charts] == ["requests", "hits", "misses", "failovers", "substitutes"]
    requests = next(c for c in charts if c["signal"] == "requests")
    assert len(requests["points"].split()) == 30  # the last 30 minutes, one point each
    total = cdn.get("/_localcdn/metrics").json()["totals"]["requests"]
    assert total > 0 and int(requests["text"].split("·")[1].split()[0]) <= total

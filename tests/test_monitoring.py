"""Alarms and the dashboard on the mocks; the same signals in the emulator and its gallery."""

import json
from pathlib import Path
from typing import Any

import pytest
from browsers import CHROMIUM_FLAGS, require
from pulumi_mocks import StackRun, run_stack

from components.config import ConfigError, from_stack_file, load
from components.monitoring import EDGE_PREFIX, RECONCILE_MAP_LABEL
from edge import resize
from edge.settings import Settings
from localcdn.metrics import Metrics
from localcdn.process import Emulator

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"


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
    resize_name = f"{EDGE_PREFIX}{config.function_name('resize')}"
    rewrite_name = f"{EDGE_PREFIX}{config.function_name('rewrite')}"
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
    machine = prod.output_of("aws:sfn/stateMachine:StateMachine", "sync-state-machine")["arn"]
    assert alarms["reconcile-failed"]["dimensions"] == {"StateMachineArn": machine}
    assert alarms["reconcile-failed-batches"]["dimensions"] == {"StateMachineArn": f"{machine}/{RECONCILE_MAP_LABEL}"}
    (definition,) = [m.inputs["definition"] for m in prod.of_type("aws:sfn/stateMachine:StateMachine")]
    assert f'"Label": "{RECONCILE_MAP_LABEL}"' in definition  # the label the batch metrics carry


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
    response = {"status": "200", "headers": {}}
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

"""The alarm relay: AWS's event shapes in, chat messages out to webhooks on loopback; its wiring on the mocks.

Shapes, from AWS:
- the Lambda event SNS delivers: Lambda Developer Guide, "Using AWS Lambda with Amazon SNS",
  "Example Amazon SNS Message Event" (LAMBDA_GUIDE_EVENT, verbatim but for the signature);
- the CloudWatch alarm message inside it: AWS's Lambda event library, aws/aws-lambda-go,
  events/testdata/cloudwatch-alarm-sns-payload-single-metric.json and
  cloudwatch-alarm-sns-payload-multiple-metrics.json (their Message strings, verbatim).
"""

from __future__ import annotations

import ast
import copy
import datetime
import http.server
import ipaddress
import json
import ssl
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pulumi.runtime import rpc
from pulumi_mocks import ACCOUNT, StackRun, run_stack

from alerts import relay
from components.config import from_stack_file
from components.monitoring import (
    RELAY_TIMEOUT_SECONDS,
    metric_counts,
    relay_region,
    sns_principal,
    webhook_environment,
)
from policy import rules

LAMBDA_GUIDE_EVENT: dict[str, Any] = {
    "Records": [
        {
            "EventVersion": "1.0",
            "EventSubscriptionArn": (
                "arn:aws:sns:us-east-2:123456789012:sns-lambda:21be56ed-a058-49f5-8c98-aedd2564c486"
            ),
            "EventSource": "aws:sns",
            "Sns": {
                "SignatureVersion": "1",
                "Timestamp": "2019-01-02T12:45:07.000Z",
                "Signature": "EXAMPLE",
                "SigningCertUrl": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
                "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "Message": "Hello from SNS!",
                "MessageAttributes": {
                    "Test": {"Type": "String", "Value": "TestString"},
                    "TestBinary": {"Type": "Binary", "Value": "TestBinary"},
                },
                "Type": "Notification",
                "UnsubscribeUrl": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe&amp;SubscriptionArn=arn:aws:sns:us-east-2:123456789012:test-lambda:21be56ed-a058-49f5-8c98-aedd2564c486",
                "TopicArn": "arn:aws:sns:us-east-2:123456789012:sns-lambda",
                "Subject": "TestInvoke",
            },
        }
    ]
}
SINGLE_METRIC = (
    '{"AlarmName": "EXAMPLE","AlarmDescription": "EXAMPLE","AWSAccountId": "123456789012","NewStateVa'
    'lue": "ALARM","NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [1234.0 (06/0'
    "3/15 17:43:27)] was greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transi"
    'tion).","StateChangeTime": "2015-06-03T17:43:27.123+0000","Region": "EXAMPLE","AlarmArn": "arn:a'
    'ws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE","OldStateValue": "INSUFFICIENT_DATA","Trigger'
    '": {"MetricName": "NetworkOut","Namespace": "AWS/EC2","StatisticType": "Statistic","Statistic": '
    '"AVERAGE","Unit": "Bytes","Dimensions": [{"value": "TestInstance","name": "InstanceId"}],"Period'
    '": 60,"EvaluationPeriods": 1,"ComparisonOperator": "GreaterThanThreshold","Threshold": 0.0,"Trea'
    'tMissingData": "- TreatMissingData:                    missing","EvaluateLowSampleCountPercentil'
    'e": ""}}'
)
MULTIPLE_METRICS = (
    '{"AlarmName":"EXAMPLE","AlarmDescription":"EXAMPLE","AWSAccountId":"EXAMPLE","NewStateValue":"AL'
    'ARM","NewStateReason":"Threshold Crossed: 1 out of the last 1 datapoints [1234.0 (06/03/15 17:43'
    ':27)] was greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition).","S'
    'tateChangeTime":"2015-06-03T17:43:27.123+0000","Region":"EXAMPLE","AlarmArn":"arn:aws:cloudwatch'
    ':REGION:ACCOUNT_NUMBER:alarm:EXAMPLE","OldStateValue":"INSUFFICIENT_DATA","Trigger":{"Period":60'
    ',"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":0.0,"TreatMissing'
    'Data":"- TreatMissingData:                    missing","EvaluateLowSampleCountPercentile":"","Me'
    'trics":[{"Expression":"m1*1","Id":"e1","Label":"Expression1","ReturnData":true},{"Id":"m1","Metr'
    'icStat":{"Metric":{"Dimensions":[{"value":"TestInstance","name":"InstanceId"}],"MetricName":"Net'
    'workOut","Namespace":"AWS/EC2"},"Period":60,"Stat":"Average"},"ReturnData":false}]}}'
)
REASON = (
    "Threshold Crossed: 1 out of the last 1 datapoints [1234.0 (06/03/15 17:43:27)] was greater than the "
    "threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition)."
)
ESCAPED_REASON = REASON.replace(">", "&gt;")  # as the chat text carries it: Slack shows &gt; as >
# One of our alarms, in the documented fields (a metric math alarm: Trigger.Metrics).
OURS = {
    "AlarmName": "image-cdn-prod-edge-errors-ap-south-1",
    "AlarmDescription": "Lambda@Edge errors in ap-south-1 (rewrite + resize)",
    "AWSAccountId": "123456789012",
    "NewStateValue": "ALARM",
    "NewStateReason": (
        "Threshold Crossed: 3 out of the last 5 datapoints were greater than or equal to the threshold (1.0)."
    ),
    "StateChangeTime": "2025-03-04T05:06:07.890+0000",
    "Region": "Asia Pacific (Mumbai)",
    "AlarmArn": "arn:aws:cloudwatch:ap-south-1:123456789012:alarm:image-cdn-prod-edge-errors-ap-south-1",
    "OldStateValue": "OK",
    "Trigger": {"Period": 60, "EvaluationPeriods": 5, "Threshold": 1.0, "Metrics": []},
}
TOKEN = "T0000000/B0000000/XXXXXXXXXXXXXXXXXXXXXXXX"  # what a chat webhook's path carries


def sns_event(message: str, subject: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(LAMBDA_GUIDE_EVENT)
    event["Records"][0]["Sns"]["Message"] = message
    event["Records"][0]["Sns"]["Subject"] = subject
    return event


# -- a chat webhook on loopback, over TLS with a certificate the test makes ------------------


@dataclass
class Hooks:
    """An https server on 127.0.0.1 (a port the OS picks), answering by path, recording every POST."""

    port: int
    cert: Path
    trust: ssl.SSLContext
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.received]


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "hook.pem", directory / "hook.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooks]:
    cert, key = _certificate(tmp_path_factory.mktemp("tls"))
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, dict(self.headers.items()), body))
            try:
                if self.path.endswith("/fail"):
                    self._answer(500, b"internal error")
                elif self.path.endswith("/slow"):
                    time.sleep(2.0)
                    self._answer(200, b"ok")
                elif self.path.endswith("/moved"):
                    self.send_response(302)
                    self.send_header("Location", "/services/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._answer(200, b"ok")
            except OSError:
                pass  # the relay gave up waiting

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hooks(server.server_address[1], cert, ssl.create_default_context(cafile=str(cert)), received)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hook(hooks: Hooks) -> Hooks:
    hooks.received.clear()
    return hooks


def logged(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], str]:
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")], captured.out + captured.err


def texts(hook: Hooks) -> list[str]:
    return [json.loads(body)["text"] for _, _, body in hook.received]


# -- the runtime -----------------------------------------------------------------------------------


def test_an_alarm_reaches_every_webhook_as_one_plain_text_message(hook: Hooks) -> None:
    urls = [hook.url(f"/services/{TOKEN}/a"), hook.url(f"/services/{TOKEN}/b")]
    deliveries = relay.relay(sns_event(json.dumps(OURS), 'ALARM: "x" in Asia Pacific (Mumbai)'), urls, tls=hook.trust)
    assert [(d.host, d.status, d.ok) for d in deliveries] == [(hook.host, 200, True)] * 2
    assert hook.paths() == [f"/services/{TOKEN}/a", f"/services/{TOKEN}/b"]
    for _, headers, body in hook.received:
        assert headers["Content-Type"] == "application/json"
        assert set(json.loads(body)) == {"text"}
    (text,) = set(texts(hook))
    assert text.splitlines() == [
        "ALARM: image-cdn-prod-edge-errors-ap-south-1 in ap-south-1",
        "Lambda@Edge errors in ap-south-1 (rewrite + resize)",
        OURS["NewStateReason"].replace(">", "&gt;"),  # chat markup escaped (Slack reads &gt; as >)
        "OK → ALARM at 2025-03-04T05:06:07.890+0000",
        "https://ap-south-1.console.aws.amazon.com/cloudwatch/home?region=ap-south-1"
        "#alarmsV2:alarm/image-cdn-prod-edge-errors-ap-south-1",
    ]


@pytest.mark.parametrize("message", [SINGLE_METRIC, MULTIPLE_METRICS], ids=["single-metric", "metric-math"])
def test_the_alarm_messages_of_awss_event_library_are_relayed_as_alarms(hook: Hooks, message: str) -> None:
    relay.relay(sns_event(message, "TestInvoke"), [hook.url("/services/a")], tls=hook.trust)
    # Its AlarmArn holds placeholders (REGION): the Region field names the region, and no console link.
    assert texts(hook) == [
        f"ALARM: EXAMPLE in EXAMPLE\nEXAMPLE\n{ESCAPED_REASON}\n"
        "INSUFFICIENT_DATA → ALARM at 2015-06-03T17:43:27.123+0000"
    ]


def test_the_lambda_guides_example_event_is_relayed_as_its_subject_and_text(hook: Hooks) -> None:
    relay.relay(LAMBDA_GUIDE_EVENT, [hook.url("/services/a")], tls=hook.trust)
    assert texts(hook) == ["TestInvoke\nHello from SNS!"]


def test_a_message_written_by_a_stranger_pings_no_one_and_links_nowhere(hook: Hooks) -> None:
    # An alarm description or a hand-published message is text, never chat markup: Slack's
    # <!channel> and <url|label>, and the @channel / @all a Mattermost or Google Chat reads.
    hostile = {**OURS, "AlarmDescription": "<!channel> <https://evil.example|open me> & @all @here"}
    relay.relay(sns_event(json.dumps(hostile)), [hook.url("/services/a")], tls=hook.trust)
    (text,) = texts(hook)
    description = text.splitlines()[1]
    assert "<" not in text and ">" not in text
    assert description == "&lt;!channel&gt; &lt;https://evil.example|open me&gt; &amp; @\u200ball @\u200bhere"


def test_webhooks_left_without_time_are_not_tried_and_fail_the_invocation(
    hook: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    left = iter([60.0, 1.0])  # time for the first webhook, not for the second
    urls = [hook.url("/services/a"), hook.url("/services/b")]
    with pytest.raises(relay.RelayFailed) as failed:
        relay.relay(sns_event(json.dumps(OURS)), urls, tls=hook.trust, deadline=lambda: next(left))
    assert hook.paths() == ["/services/a"]
    assert str(failed.value) == f"1 of 2 deliveries failed: {hook.host} (not tried: out of time)"


def test_each_delivery_is_logged_with_its_host_and_status_never_its_url(
    hook: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    relay.relay(sns_event(json.dumps(OURS)), [hook.url(f"/services/{TOKEN}")], tls=hook.trust)
    lines, everything = logged(capsys)
    assert lines == [{"event": "delivered", "host": hook.host, "status": 200}]
    assert TOKEN not in everything and "/services" not in everything


def test_a_webhook_answering_500_fails_the_invocation_after_the_others_were_tried(
    hook: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    urls = [hook.url(f"/services/{TOKEN}/fail"), hook.url(f"/services/{TOKEN}/ok")]
    with pytest.raises(relay.RelayFailed) as failed:
        relay.relay(sns_event(json.dumps(OURS)), urls, tls=hook.trust)
    assert hook.paths() == [f"/services/{TOKEN}/fail", f"/services/{TOKEN}/ok"]  # the second still got it
    assert str(failed.value) == f"1 of 2 deliveries failed: {hook.host} (500)"
    lines, everything = logged(capsys)
    assert lines == [
        {"event": "failed", "host": hook.host, "status": 500},
        {"event": "delivered", "host": hook.host, "status": 200},
    ]
    assert TOKEN not in everything + str(failed.value)


def test_a_webhook_that_does_not_answer_in_time_fails_the_invocation(
    hook: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(relay.RelayFailed, match=r"\(timeout\)"):
        relay.relay(sns_event(json.dumps(OURS)), [hook.url(f"/services/{TOKEN}/slow")], timeout=0.5, tls=hook.trust)
    assert time.monotonic() - started < 1.8  # gave up before the webhook answered
    lines, _ = logged(capsys)
    assert lines == [{"event": "failed", "host": hook.host, "status": "timeout"}]


def test_a_redirect_is_not_followed(hook: Hooks) -> None:
    with pytest.raises(relay.RelayFailed, match=r"\(302\)"):
        relay.relay(sns_event(json.dumps(OURS)), [hook.url("/services/moved")], tls=hook.trust)
    assert hook.paths() == ["/services/moved"]


def test_a_webhook_whose_certificate_is_not_trusted_gets_nothing(hook: Hooks) -> None:
    with pytest.raises(relay.RelayFailed, match=r"\(error: SSLCertVerificationError\)"):
        relay.relay(sns_event(json.dumps(OURS)), [hook.url("/services/a")])  # the system's trust store
    assert hook.received == []


def test_only_https_webhooks_are_posted_to(hook: Hooks) -> None:
    with pytest.raises(relay.RelayFailed, match=r"refused: not https"):
        relay.relay(sns_event("x"), [f"http://127.0.0.1:{hook.port}/services/a"], tls=hook.trust)
    assert hook.received == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (sns_event("not json {"), "not json {"),
        (sns_event('{"AlarmName": 5, "NewStateValue": "ALARM"}'), '{"AlarmName": 5, "NewStateValue": "ALARM"}'),
        (sns_event('{"Records": [{"eventSource": "aws:s3"}]}', "S3"), 'S3\n{"Records": [{"eventSource": "aws:s3"}]}'),
        (sns_event("[" * 100_000), "[" * (relay.MAX_TEXT - 1) + "…"),
        ({"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification"}}]}, None),
        ({"Records": "nope"}, '{"Records": "nope"}'),
        ({"hello": "world"}, '{"hello": "world"}'),
        (None, "null"),
        ("a string", '"a string"'),
    ],
    ids=[
        "not-json",
        "wrong-types",
        "other-json",
        "deep-nesting",
        "no-message",
        "bad-records",
        "not-sns",
        "none",
        "str",
    ],
)
def test_a_malformed_or_foreign_message_is_relayed_as_its_raw_text(
    hook: Hooks, event: Any, expected: str | None
) -> None:
    relay.relay(event, [hook.url("/services/a")], tls=hook.trust)
    (text,) = texts(hook)
    if expected is None:
        assert json.loads(text) == event["Records"][0]
    else:
        assert text == expected
    assert len(text) <= relay.MAX_TEXT


def test_the_handler_posts_to_the_webhooks_in_its_environment(hook: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(relay.WEBHOOKS_VARIABLE, json.dumps([hook.url("/services/a"), hook.url("/services/b")]))
    monkeypatch.setenv("SSL_CERT_FILE", str(hook.cert))  # the default trust store, as on Lambda, plus the test's
    assert relay.handler(sns_event(json.dumps(OURS)), None) == {"delivered": 2}
    assert hook.paths() == ["/services/a", "/services/b"]


def test_the_handler_without_webhooks_posts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(relay.WEBHOOKS_VARIABLE, raising=False)
    assert relay.handler(LAMBDA_GUIDE_EVENT, None) == {"delivered": 0}


@pytest.mark.parametrize("value", ["https://chat.example.com/" + TOKEN, '{"url": "x"}', json.dumps(["x"] * 11)])
def test_a_bad_environment_fails_by_name_without_showing_its_value(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(relay.WEBHOOKS_VARIABLE, value)
    with pytest.raises(relay.RelayFailed, match=relay.WEBHOOKS_VARIABLE) as failed:
        relay.handler(LAMBDA_GUIDE_EVENT, None)
    assert TOKEN not in str(failed.value)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (f"https://hooks.slack.com/services/{TOKEN}", "hooks.slack.com"),
        ("https://user:password@chat.example.com:8443/hooks/abc?token=1", "chat.example.com:8443"),
        ("https://chat.example.com:notaport/x", "chat.example.com"),
        ("not a url", "?"),
    ],
)
def test_only_the_host_of_a_webhook_is_ever_logged(url: str, host: str) -> None:
    assert relay.host_of(url) == host


def test_the_relay_package_needs_only_the_standard_library() -> None:
    """Its bundle is `alerts/` alone: it never imports the project's other packages, pulumi, or a wheel."""
    root = Path(relay.__file__).parent
    imported = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__", "alerts"}, imported


# -- the component, on the mocks -----------------------------------------------------------------

HOOK_A = f"https://hooks.slack.com/services/{TOKEN}"
HOOK_B = "https://chat.example.com/hooks/xxx-generatedkey-xxx"
FUNCTION = "aws:lambda/function:Function"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


@pytest.fixture(scope="module")
def relayed() -> StackRun:
    return run_stack(from_stack_file("prod", overrides={"alarmWebhooks": [HOOK_A, HOOK_B]}))


def _relay_function(run: StackRun) -> Any:
    (function,) = [f for f in run.of_type(FUNCTION) if f.inputs["name"].endswith("-alarm-relay")]
    return function


def test_the_relay_is_subscribed_to_every_alarm_topic_and_needs_no_confirmation(relayed: StackRun) -> None:
    function = _relay_function(relayed)
    arn = relayed.output_of(FUNCTION, function.name)["arn"]
    topics = {
        t.inputs["region"]: relayed.output_of("aws:sns/topic:Topic", t.name)["arn"]
        for t in relayed.of_type("aws:sns/topic:Topic")
    }
    subscriptions = relayed.of_type(SUBSCRIPTION)
    assert {
        (s.inputs["region"], s.inputs["topic"], s.inputs["endpoint"])
        for s in subscriptions
        if s.inputs["protocol"] == "lambda"
    } == {(region, topic, arn) for region, topic in topics.items()}
    # Email stays as it was (a person confirms), and no webhook is an SNS endpoint.
    assert {s.inputs["protocol"] for s in subscriptions} == {"email", "lambda"}
    assert sum(s.inputs["protocol"] == "email" for s in subscriptions) == len(topics)
    assert not any(HOOK_A in json.dumps(s.inputs) or HOOK_B in json.dumps(s.inputs) for s in subscriptions)
    # SNS may invoke it: one permission per topic, that topic's ARN only.
    permissions = [p.inputs for p in relayed.of_type("aws:lambda/permission:Permission") if "relay" in p.name]
    assert sorted(p["sourceArn"] for p in permissions) == sorted(topics.values())
    for permission in permissions:
        assert (permission["principal"], permission["action"]) == ("sns.amazonaws.com", "lambda:InvokeFunction")
        assert (permission["function"], permission["region"]) == (
            function.inputs["name"],
            relayed.config.primary_region,
        )


def test_the_relay_is_a_regional_arm64_python_function_that_retries_and_keeps_what_it_could_not_post(
    relayed: StackRun,
) -> None:
    function = _relay_function(relayed).inputs
    assert (function["region"], function["runtime"], function["architectures"], function["handler"]) == (
        relayed.config.primary_region,
        "python3.13",
        ["arm64"],
        "alerts.relay.handler",
    )
    assert function["timeout"] == RELAY_TIMEOUT_SECONDS >= relay.MAX_WEBHOOKS * 2 * relay.TIMEOUT_SECONDS
    (retries,) = [
        c.inputs
        for c in relayed.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
        if "relay" in c.name
    ]
    (queue,) = [q for q in relayed.of_type("aws:sqs/queue:Queue") if q.inputs["name"].endswith("-alarm-relay-failed")]
    queue_arn = relayed.output_of("aws:sqs/queue:Queue", queue.name)["arn"]
    assert retries["maximumRetryAttempts"] == 2
    assert retries["destinationConfig"]["onFailure"]["destination"] == queue_arn
    alarms = relayed.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    (alarm,) = [a.inputs for a in alarms if a.inputs["name"].endswith("-alarm-relay-failed")]
    assert (
        alarm["dimensions"] == {"QueueName": queue.inputs["name"]} and alarm["region"] == relayed.config.primary_region
    )


def test_webhook_urls_are_secret_and_never_in_the_code(relayed: StackRun) -> None:
    environment = _relay_function(relayed).inputs["environment"]
    # Pulumi's wire marks a secret with its signature key: the state keeps it encrypted.
    assert environment[rpc._special_sig_key] == rpc._special_secret_sig
    assert json.loads(environment["value"]["variables"][relay.WEBHOOKS_VARIABLE]) == [HOOK_A, HOOK_B]
    with zipfile.ZipFile(_relay_function(relayed).inputs["code"].path) as bundle:
        names = bundle.namelist()
        contents = b"".join(bundle.read(name) for name in names)
    assert names and all(name.startswith("alerts/") for name in names)  # no edge/, no config.json
    assert TOKEN.encode() not in contents and b"hooks.slack.com/services/T" not in contents


def test_the_relays_role_may_log_and_keep_undelivered_notifications_and_nothing_else(relayed: StackRun) -> None:
    c = relayed.config
    policy = relayed.one("aws:iam/rolePolicy:RolePolicy", "monitoring-relay-policy").policy()
    pairs = {(a, r) for s in policy["Statement"] for a in s["Action"] for r in s["Resource"]}
    group = f"arn:aws:logs:{c.primary_region}:{ACCOUNT}:log-group:/aws/lambda/{c.name_prefix}-alarm-relay"
    queue = f"arn:aws:sqs:{c.primary_region}:{ACCOUNT}:{c.name_prefix}-alarm-relay-failed"
    logs = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
    assert pairs == {(a, r) for a in logs for r in (group, group + ":*")} | {("sqs:SendMessage", queue)}
    (statement,) = relayed.one("aws:iam/role:Role", "monitoring-relay-role").policy("assumeRolePolicy")["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_the_stack_with_the_relay_passes_the_policy_pack(relayed: StackRun) -> None:
    resources = [rules.Resource(d.type, d.name, copy.deepcopy(d.inputs), "prod") for d in relayed.declared]
    assert rules.check(resources) == []


def test_the_relay_adds_one_alarm_metric(relayed: StackRun) -> None:
    with_relay = metric_counts(relayed.config.log_regions, webhooks=True)
    without = metric_counts(relayed.config.log_regions)
    alarms = relayed.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    billed = sum(
        1 if "metricName" in a.inputs else sum("metric" in q for q in a.inputs["metricQueries"]) for a in alarms
    )
    assert with_relay.alarm_metrics == billed == without.alarm_metrics + 1
    assert with_relay.custom_metrics == without.custom_metrics


def test_an_opt_in_region_delivers_with_its_own_principal_and_is_never_the_relays_home() -> None:
    """SNS Developer Guide, "Prerequisites for integrating Amazon SNS with Lambda functions across
    regions": a function in US East (N. Virginia) subscribed to a topic in Asia Pacific (Hong Kong)
    names sns.ap-east-1.amazonaws.com; nothing is delivered from a region enabled by default to an
    opt-in region."""
    assert sns_principal("ap-east-1", "us-east-1") == "sns.ap-east-1.amazonaws.com"
    assert sns_principal("eu-west-1", "us-east-1") == "sns.amazonaws.com"
    assert sns_principal("ap-east-1", "ap-east-1") == "sns.amazonaws.com"
    assert relay_region("eu-west-1") == "eu-west-1" and relay_region("ap-east-1") == "us-east-1"


@pytest.mark.parametrize(
    ("webhooks", "error"),
    [
        ([HOOK_A, f"http://chat.example.com/{TOKEN}"], r"webhooks\[1\]: expected an https:// URL"),
        ([f"https:///{TOKEN}"], r"webhooks\[0\]: expected an https:// URL with a host"),
        ([HOOK_A] * 11, r"expected at most 10, got 11"),
        ([f"https://chat.example.com/{'x' * 4100}"], r"Lambda takes at most 4096 bytes"),
    ],
)
def test_a_webhook_the_relay_could_not_use_is_refused_without_showing_it(webhooks: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error) as refused:
        webhook_environment(webhooks)
    assert TOKEN not in str(refused.value) and "x" * 100 not in str(refused.value)

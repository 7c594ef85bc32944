"""The alarm relay: CloudWatch alarm notifications, from the alarm topics, to chat webhooks.

Why a function: SNS sends an https endpoint a SubscriptionConfirmation and delivers nothing until
someone opens its SubscribeURL, which a chat webhook never does. A Lambda subscription needs no
confirmation; this function turns the notification into a chat message and POSTs it.

What arrives (AWS's shapes):
- SNS invokes the function asynchronously with {"Records": [{"EventSource": "aws:sns", "Sns":
  {"Type": "Notification", "Subject": ..., "Message": "<the message, a string>", ...}}]} (Lambda
  Developer Guide, "Using AWS Lambda with Amazon SNS", "Example Amazon SNS Message Event").
- CloudWatch publishes an alarm's state change as a JSON string: AlarmName, AlarmDescription,
  AWSAccountId, NewStateValue, NewStateReason, StateChangeTime, Region (a display name such as
  "US East (N. Virginia)"), AlarmArn, OldStateValue and Trigger (MetricName, Namespace and
  Dimensions, or Metrics for a metric math alarm). The CloudWatch User Guide does not print the
  message; these are the shapes of AWS's own Lambda event library (aws/aws-lambda-go,
  events/testdata/cloudwatch-alarm-sns-payload-single-metric.json and
  cloudwatch-alarm-sns-payload-multiple-metrics.json).
Anything else (a message published by hand, a malformed one) is relayed as its raw text.

What leaves: one POST per webhook of {"text": "..."} (application/json), plain text without
markup: the body the incoming webhooks of Slack, Mattermost and Google Chat take. Discord (which
wants "content") and Microsoft Teams workflows (which want a card) are not supported.

Failures: a webhook that answers anything but 2xx, redirects, or does not answer within
TIMEOUT_SECONDS is logged as one JSON line naming its host and the status, never its URL (a chat
webhook's path is its credential); once every webhook has been tried the invocation fails, so
Lambda retries the event (twice, for an asynchronous invocation) and then hands it to the
function's on-failure destination (Lambda Developer Guide, "Invoking a Lambda function
asynchronously"). A retry posts to every webhook again: a chat that answered may show the alarm
twice, rather than the one that did not never showing it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WEBHOOKS_VARIABLE = "ALARM_WEBHOOKS"
"""The function's environment variable holding the webhooks, a JSON list of URLs."""
TIMEOUT_SECONDS = 5.0
"""How long one webhook may take to connect, and then to answer."""
MAX_WEBHOOKS = 10
"""Webhooks one function serves: each may take TIMEOUT_SECONDS twice, within the function's timeout."""
MAX_TEXT = 3000
"""A chat message stays short: an alarm's text is a few hundred characters; a raw message is cut here."""
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


class RelayFailed(RuntimeError):
    """A delivery that did not happen; the message names hosts, never a webhook's URL."""


@dataclass(frozen=True)
class Delivery:
    """One message posted to one webhook."""

    host: str
    status: int | str
    """The HTTP status, or why there was none ("timeout", "error: <kind>", "refused: ...")."""

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and 200 <= self.status < 300


def host_of(url: str) -> str:
    """What may be logged of a webhook: its host (and an explicit port), never its path, query or user."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "?"
    return f"{host}:{port}" if port else host


def messages(event: Any) -> list[tuple[str | None, str]]:
    """(subject, message) of each SNS record of a Lambda event; anything else as its JSON text."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records:
        return [(None, _raw(event))]
    found: list[tuple[str | None, str]] = []
    for record in records:
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if isinstance(sns, Mapping) and isinstance(sns.get("Message"), str):
            subject = sns.get("Subject")
            found.append((subject if isinstance(subject, str) and subject else None, sns["Message"]))
        else:
            found.append((None, _raw(record)))
    return found


def text(message: str, subject: str | None = None) -> str:
    """The chat text of one SNS message: an alarm's state change in a few lines, anything else raw."""
    alarm = _alarm(message)
    if alarm is None:
        return _cut(f"{subject}\n{message}" if subject else message)
    name, new = alarm["AlarmName"], alarm["NewStateValue"]
    code = _region_code(alarm.get("AlarmArn"))
    region = code or _string(alarm.get("Region"))
    lines = [f"{new}: {name}" + (f" in {region}" if region else "")]
    lines += [line for line in (_string(alarm.get("AlarmDescription")), _string(alarm.get("NewStateReason"))) if line]
    old, when = _string(alarm.get("OldStateValue")), _string(alarm.get("StateChangeTime"))
    if old or when:
        lines.append((f"{old} → {new}" if old else new) + (f" at {when}" if when else ""))
    if code:
        quoted = urllib.parse.quote(name, safe="")
        lines.append(f"https://{code}.console.aws.amazon.com/cloudwatch/home?region={code}#alarmsV2:alarm/{quoted}")
    return _cut("\n".join(lines))


def plain(value: str) -> str:
    """`value` as text that no chat reads as markup: Slack's control characters escaped ("Formatting
    text for app surfaces", "Escaping text": & < > as &amp; &lt; &gt;, so `<!channel>` or
    `<https://x|y>` in an alarm description or a hand-published message neither pings nor links),
    and a zero-width space after an @ that starts a word, so that `@channel`, `@all` or `@here` pings no one in
    Mattermost or Google Chat either."""
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"(?<!\w)@(?=\w)", "@\u200b", escaped)  # a mention starts a word: Lambda@Edge stays


def post(url: str, body: bytes, *, timeout: float = TIMEOUT_SECONDS, tls: ssl.SSLContext | None = None) -> int | str:
    """POST `body` (JSON) to one webhook: its HTTP status, or why there was none. Never raises.

    Only https; a redirect is not followed (urllib would turn the POST into a GET without its body).
    `tls`: the context that checks the server's certificate (the system's trust store by default).
    """
    if urllib.parse.urlsplit(url).scheme != "https":
        return "refused: not https"
    opener = urllib.request.build_opener(_NoRedirect(), urllib.request.HTTPSHandler(context=tls))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "image-cdn-alarm-relay"},
    )
    # Only the kind of an error is kept: the text of some (an HTTPError's URL) would name the webhook.
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except urllib.error.URLError as error:
        return "timeout" if isinstance(error.reason, TimeoutError) else f"error: {type(error.reason).__name__}"
    except TimeoutError:
        return "timeout"
    except (OSError, http.client.HTTPException, ValueError) as error:
        return f"error: {type(error).__name__}"


def relay(
    event: Any,
    webhooks: Sequence[str],
    *,
    timeout: float = TIMEOUT_SECONDS,
    tls: ssl.SSLContext | None = None,
    deadline: Callable[[], float] | None = None,
) -> list[Delivery]:
    """Post every message of `event` to every webhook, logging each delivery as one JSON line.
    `deadline`: the seconds the invocation has left (a webhook is tried only with 2 x `timeout` left).

    Raises RelayFailed once all have been tried if any did not answer 2xx."""
    deliveries = []
    for subject, message in messages(event):
        body = json.dumps({"text": _cut(plain(text(message, subject)))}).encode("utf-8")
        for url in webhooks:
            if deadline is not None and deadline() < 2 * timeout:
                # Not enough time left for a connect and an answer: not tried, so the invocation
                # fails in time (rather than being cut off by its own timeout with nothing logged)
                # and Lambda's retry tries it again.
                delivery = Delivery(host_of(url), "not tried: out of time")
            else:
                delivery = Delivery(host_of(url), post(url, body, timeout=timeout, tls=tls))
            log({"event": "delivered" if delivery.ok else "failed", "host": delivery.host, "status": delivery.status})
            deliveries.append(delivery)
    failed = [d for d in deliveries if not d.ok]
    if failed:
        hosts = ", ".join(f"{d.host} ({d.status})" for d in failed)
        raise RelayFailed(f"{len(failed)} of {len(deliveries)} deliveries failed: {hosts}")
    return deliveries


def configured(value: str) -> list[str]:
    """The webhooks of the function's environment (WEBHOOKS_VARIABLE: a JSON list of URLs)."""
    try:
        urls = json.loads(value) if value.strip() else []
    except ValueError:
        urls = None
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise RelayFailed(f"{WEBHOOKS_VARIABLE}: expected a JSON list of https:// URLs")
    if len(urls) > MAX_WEBHOOKS:
        raise RelayFailed(f"{WEBHOOKS_VARIABLE}: expected at most {MAX_WEBHOOKS} webhooks, got {len(urls)}")
    return urls


def handler(event: Any, context: Any) -> dict[str, int]:
    """The Lambda entry point (SNS, asynchronous)."""
    webhooks = configured(os.environ.get(WEBHOOKS_VARIABLE, ""))
    if not webhooks:
        log({"event": "no-webhooks"})
        return {"delivered": 0}
    left = getattr(context, "get_remaining_time_in_millis", None)
    deadline = (lambda: left() / 1000) if callable(left) else None
    return {"delivered": len(relay(event, webhooks, deadline=deadline))}


def log(fields: Mapping[str, Any]) -> None:
    print(json.dumps(dict(fields), sort_keys=True, default=str), flush=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def _alarm(message: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(message)
    except (ValueError, RecursionError):
        return None
    alarm = isinstance(parsed, dict) and all(isinstance(parsed.get(k), str) for k in ("AlarmName", "NewStateValue"))
    return parsed if alarm else None


def _region_code(arn: Any) -> str | None:
    """arn:aws:cloudwatch:<region>:<account>:alarm:<name> -> <region>."""
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[3] if len(parts) > 3 and parts[2] == "cloudwatch" and _REGION.fullmatch(parts[3]) else None


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _raw(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _cut(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"

"""IAM documents in one place, so tests can list every grant the service makes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

EDGE_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "edgelambda.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}

REGIONAL_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def allow(sid: str, actions: Sequence[str], resources: Sequence[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources)}


def edge_logs(account: str, function_name: str) -> dict[str, Any]:
    """Lambda@Edge logs in the region that ran it, as `/aws/lambda/us-east-1.<name>`."""
    return allow(
        "LogsInEveryRegion",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        [
            f"arn:aws:logs:*:{account}:log-group:/aws/lambda/us-east-1.{function_name}",
            f"arn:aws:logs:*:{account}:log-group:/aws/lambda/us-east-1.{function_name}:*",
        ],
    )


def regional_logs(account: str, region: str, function_name: str) -> dict[str, Any]:
    return allow(
        "Logs",
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        [
            f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}",
            f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}:*",
        ],
    )


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)

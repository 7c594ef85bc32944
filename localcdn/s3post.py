"""S3's browser-based upload (POST Object), as the emulator's S3 front answers it.

moto stores what it is given but checks no POST policy, so the checks S3 makes are
modelled here, each from AWS's documents, and the object is then written to moto:

- "Browser-Based Uploads Using POST (AWS Signature Version 4)" and "Calculating a
  Signature": the form carries `key`, `policy`, `x-amz-algorithm` (AWS4-HMAC-SHA256),
  `x-amz-credential`, `x-amz-date`, `x-amz-signature`, and `file` last (fields after
  it are ignored); the signature is the hex HMAC-SHA256 of the base64 policy under the
  SigV4 signing key of the credential's date, region and `s3`.
- "POST Policy": the policy's `expiration` has not passed; every condition holds
  (exact match as `{"field": value}` or `["eq", "$field", value]`, `["starts-with",
  "$field", prefix]`, `["content-length-range", min, max]` on the file's size); and
  "each form field that you specify in a form (except x-amz-signature, file, policy,
  and field names that have an x-ignore- prefix) must appear in the list of
  conditions". Field names are matched without regard to case.
- the answer: `success_action_status` 200, 201 (with a PostResponse document) or 204
  (the default); refusals are S3's XML errors: 403 AccessDenied (policy), 403
  SignatureDoesNotMatch, 400 EntityTooLarge / EntityTooSmall, 400 InvalidArgument.

Only SigV4 is taken: the project signs with it (SigV2 is deprecated and refused in the
newer regions). `${filename}` in the key is not expanded (nothing here uses it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

UNCOVERED = ("x-amz-signature", "file", "policy")
IGNORED_PREFIX = "x-ignore-"
REQUIRED = ("key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
SUCCESS_STATUSES = ("200", "201", "204")
# The form fields that become the object's headers (the rest of x-amz-* sign the form).
STORED_HEADERS = ("content-type", "cache-control", "content-disposition", "content-encoding", "expires")


class PostRefused(Exception):
    """What S3 answers instead of storing: its status and XML error."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(f"{status} {code}: {message}")

    def xml(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{html.escape(self.message)}</Message></Error>"
        ).encode()


@dataclass
class Upload:
    """What a form that passed every check stores."""

    bucket: str
    key: str
    body: bytes
    content_type: str | None
    metadata: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 204


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check(bucket: str, form: list[tuple[str, Any]], secret_of: Any, now: datetime | None = None) -> Upload:
    """The upload a POST form asks for, or PostRefused. `form`: (name, value) in the order sent,
    `file` as bytes; `secret_of(access_key)` the secret, None for an unknown key."""
    fields: dict[str, Any] = {}
    for name, value in form:
        lower = name.lower()
        if lower in fields:
            raise PostRefused(400, "InvalidArgument", f"POST requires exactly one value for {name}")
        fields[lower] = value
        if lower == "file":
            break  # "fields after the file field are ignored"
    if "file" not in fields:
        raise PostRefused(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    for name in REQUIRED:
        if name not in fields:
            raise PostRefused(400, "InvalidArgument", f"Bucket POST must contain a field named '{name}'.")
    if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
        raise PostRefused(400, "InvalidArgument", "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm.")
    _check_signature(fields, secret_of)
    policy = _policy(str(fields["policy"]))
    now = now or datetime.now(UTC)
    expiration = _expiration(policy.get("expiration"))
    if now >= expiration:
        raise PostRefused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    body: bytes = fields["file"]
    covered = {"bucket"}
    for condition in policy.get("conditions") or []:
        covered |= _apply(condition, fields, bucket, len(body))
    extra = [
        name for name in fields if name not in UNCOVERED and not name.startswith(IGNORED_PREFIX) and name not in covered
    ]
    if extra:
        raise PostRefused(403, "AccessDenied", "Invalid according to Policy: Extra input fields: " + ", ".join(extra))
    status = str(fields.get("success_action_status", "204"))
    return Upload(
        bucket=bucket,
        key=str(fields["key"]),
        body=body,
        content_type=fields.get("content-type"),
        metadata={k[len("x-amz-meta-") :]: str(v) for k, v in fields.items() if k.startswith("x-amz-meta-")},
        headers={k: str(v) for k, v in fields.items() if k in STORED_HEADERS and k != "content-type"},
        status=int(status) if status in SUCCESS_STATUSES else 204,
    )


def _check_signature(fields: dict[str, Any], secret_of: Any) -> None:
    credential = str(fields["x-amz-credential"]).split("/")
    if len(credential) != 5 or credential[3] != "s3" or credential[4] != "aws4_request":
        raise PostRefused(400, "AuthorizationQueryParametersError", "x-amz-credential is malformed")
    access_key, date, region = credential[:3]
    secret = secret_of(access_key)
    if secret is None:
        raise PostRefused(
            403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."
        )
    if not str(fields["x-amz-date"]).startswith(date):
        raise PostRefused(400, "AuthorizationQueryParametersError", "x-amz-date does not match the credential's date")
    expected = hmac.new(signing_key(secret, date, region), str(fields["policy"]).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(fields["x-amz-signature"])):
        raise PostRefused(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )


def _policy(encoded: str) -> dict[str, Any]:
    try:
        policy = json.loads(base64.b64decode(encoded, validate=True))
    except (ValueError, binascii.Error):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from None
    if not isinstance(policy, dict) or "expiration" not in policy or not isinstance(policy.get("conditions"), list):
        raise PostRefused(400, "InvalidPolicyDocument", "Invalid Policy: expiration and conditions are required.")
    return policy


def _expiration(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PostRefused(
            400, "InvalidPolicyDocument", f"Invalid Policy: Invalid 'expiration' value: {value}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _failed(condition: Any) -> PostRefused:
    return PostRefused(
        403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"
    )


def _apply(condition: Any, fields: dict[str, Any], bucket: str, size: int) -> set[str]:
    """Check one condition; returns the (lowercased) field names it covers."""
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, value),) = condition.items()
        condition = ["eq", "$" + name, value]
    if not isinstance(condition, list) or len(condition) != 3:
        raise PostRefused(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
    operator = str(condition[0]).lower()
    if operator == "content-length-range":
        low, high = int(condition[1]), int(condition[2])
        if size < low:
            raise PostRefused(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size")
        if size > high:
            raise PostRefused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        return set()
    target = str(condition[1])
    if not target.startswith("$") or operator not in ("eq", "starts-with"):
        raise PostRefused(400, "InvalidPolicyDocument", f"Invalid Policy: Invalid Condition: {json.dumps(condition)}")
    name = target[1:].lower()
    actual = bucket if name == "bucket" else fields.get(name)
    if isinstance(actual, bytes) or actual is None:
        actual = "" if actual is None else "<file>"
    expected = str(condition[2])
    ok = actual == expected if operator == "eq" else str(actual).startswith(expected)
    if not ok:
        raise _failed(condition)
    return {name}

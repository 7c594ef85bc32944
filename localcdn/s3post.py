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
- "Authenticating Requests: Browser-Based Uploads Using POST (AWS Signature Version 4)": the
  credential's access key names the signer, S3 must know it (403 InvalidAccessKeyId) and the
  signature must verify with its secret; and ("POST Object") "to add an object to a bucket, you
  must have WRITE access": the upload is the signer's PutObject, allowed only where its IAM
  policy lets it write (403 AccessDenied): `Signers` holds what S3 knows, each
  signer's writable keys as IAM resource patterns (`*` any run of characters, `/` included, `?`
  exactly one character).
- the answer: `success_action_status` 200, 201 (with a PostResponse document) or 204
  (the default); refusals are S3's XML errors: 403 AccessDenied (policy or permission), 403
  SignatureDoesNotMatch, 403 InvalidAccessKeyId, 400 EntityTooLarge / EntityTooSmall, 400
  InvalidArgument.
- "POST Object": "Parameters that are passed to PUT through HTTP headers are instead passed as
  form fields": the object's Content-Type is the form's `Content-Type` field (which the policy
  must cover, like any field), never the type a browser gives the file part.

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
import re
from collections.abc import Callable
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


@dataclass(frozen=True)
class Signer:
    """A principal S3 knows by its access key: its secret, and the object keys its IAM policy lets
    it put in the bucket (resource patterns below `arn:aws:s3:::<bucket>/`)."""

    secret: str
    writes: tuple[str, ...]

    def may_put(self, key: str) -> bool:
        return any(_iam_pattern(pattern).fullmatch(key) for pattern in self.writes)


class Signers:
    """The access keys S3 knows (`check`'s `secret_of` and `may_put`); none but these."""

    def __init__(self, signers: dict[str, Signer] | None = None):
        self._signers = dict(signers or {})

    def secret(self, access_key: str) -> str | None:
        signer = self._signers.get(access_key)
        return signer.secret if signer is not None else None

    def may_put(self, access_key: str, key: str) -> bool:
        signer = self._signers.get(access_key)
        return signer is not None and signer.may_put(key)


def _iam_pattern(pattern: str) -> re.Pattern[str]:
    """An IAM resource pattern as a regex: `*` any run of characters (`/` too), `?` exactly one."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check(
    bucket: str,
    form: list[tuple[str, Any]],
    secret_of: Callable[[str], str | None],
    now: datetime | None = None,
    *,
    may_put: Callable[[str, str], bool] | None = None,
) -> Upload:
    """The upload a POST form asks for, or PostRefused. `form`: (name, value) in the order sent,
    `file` as bytes; `secret_of(access_key)` the secret, None for an unknown key; `may_put(access_key,
    key)` whether the signer may write that key (`Signers.may_put`; None: the policy alone decides)."""
    fields: dict[str, Any] = {}
    for name, value in form:
        lower = name.lower()
        if lower in fields:
            raise PostRefused(400, "InvalidArgument", f"POST requires exactly one value for {name}")
        if lower == "file":
            fields[lower] = value.encode() if isinstance(value, str) else bytes(value)
            break  # "fields after the file field are ignored"
        # Every other field is text (a browser may send any of them as a file part).
        fields[lower] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if "file" not in fields:
        raise PostRefused(400, "InvalidArgument", "POST requires exactly one file upload per request.")
    for name in REQUIRED:
        if name not in fields:
            raise PostRefused(400, "InvalidArgument", f"Bucket POST must contain a field named '{name}'.")
    if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
        raise PostRefused(400, "InvalidArgument", "Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm.")
    access_key = _check_signature(fields, secret_of)
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
    key = str(fields["key"])
    if may_put is not None and not may_put(access_key, key):
        # The signer's own permission: a policy it signed for a key it may not write stores nothing.
        raise PostRefused(403, "AccessDenied", "Access Denied")
    status = str(fields.get("success_action_status", "204"))
    return Upload(
        bucket=bucket,
        key=key,
        body=body,
        content_type=fields.get("content-type"),
        metadata={k[len("x-amz-meta-") :]: str(v) for k, v in fields.items() if k.startswith("x-amz-meta-")},
        headers={k: str(v) for k, v in fields.items() if k in STORED_HEADERS and k != "content-type"},
        status=int(status) if status in SUCCESS_STATUSES else 204,
    )


def _check_signature(fields: dict[str, Any], secret_of: Callable[[str], str | None]) -> str:
    """The signer's access key, once the signature verifies with its secret."""
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
    return access_key


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

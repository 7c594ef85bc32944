"""S3 for a miss: one object's GET and PUT, signed, retried and timed out, without boto3's cold start.

Why not boto3 here (the measured need): through boto3, a fresh `resize` container's first JPEG
miss at 640 px took 270 ms against 40 ms for the same miss warm, +229 ms for importing boto3 and
building its S3 client before any work; through this module it takes 84 ms against 28 ms (+56 ms,
Pillow's and the codecs' first use). `make bench`, "Cold and warm misses" in BENCHMARKS.md. A miss
only ever GETs and PUTs single objects, so this module does that through obstore (developmentseed's
binding of the Apache Arrow project's Rust `object_store`): SigV4 signing, retries with backoff on
5xx and connection errors, connect and request timeouts, credentials from the environment. boto3
stays where a miss is rare (Rekognition, `crop=faces`) and for the keys obstore's paths cannot
carry (`expressible`).

`Client` answers the subset of boto3's S3 client that `resize` uses (`get_object`, `put_object`)
with boto3's shapes, and refuses with `S3Error`, which carries botocore's `ClientError.response`
shape: the handler reads one error the same way from either, and tests may still hand it boto3
clients (moto's).

Credentials: Lambda puts the execution role's keys in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_SESSION_TOKEN for the execution environment (Lambda Developer Guide, "Defined runtime
environment variables"); obstore reads the same three, as boto3's environment provider does.
Addressing: virtual-hosted style, which S3 recommends over path style (S3 User Guide, "Virtual
hosting of general purpose buckets"); path style for a bucket name with a dot (the wildcard
certificate does not cover it, same document) and for an endpoint override. The override is read
from botocore's variables, AWS_ENDPOINT_URL_S3 then AWS_ENDPOINT_URL, so one environment points
boto3 and this module at the same local S3 (Lambda@Edge itself has no environment to set them in).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

# S3's own error code, when obstore's message carries the XML error body.
_CODE = re.compile(r"<Code>([A-Za-z0-9.]+)</Code>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A request obstore gave up on with no S3 code: our name, so a log line still says which.
UNAVAILABLE = "Unavailable"


class S3Error(Exception):
    """S3 refused or could not be reached; `.response` is shaped like botocore's ClientError's."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


def error_code(error: BaseException) -> str | None:
    """The S3 error code of an `S3Error` or a botocore `ClientError`; None for anything else."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    return str(response.get("Error", {}).get("Code", ""))


def expressible(key: str) -> bool:
    """Whether obstore sends exactly this key: its paths drop a leading or trailing '/' and
    refuse empty, '.' and '..' segments and control characters (object_store's `Path::parse`).
    `variants.validate_key` already refuses such keys; a key from elsewhere takes boto3."""
    segments = key.split("/")
    return bool(key) and not _CONTROL.search(key) and all(s not in ("", ".", "..") for s in segments)


class _Body:
    """An object's body as boto3 gives it: read once, or closed unread."""

    def __init__(self, result: Any):
        self._result: Any = result

    def read(self) -> bytes:
        result, self._result = self._result, None
        return bytes(result.bytes()) if result is not None else b""

    def close(self) -> None:
        self._result = None


class Client:
    """GET and PUT of single objects in one region's buckets (see the module's docstring)."""

    def __init__(
        self,
        region: str,
        *,
        connect_timeout: float = 2.0,
        timeout: float = 10.0,
        retries: int = 1,
        endpoint: str | None = None,
        credentials: Mapping[str, str] | None = None,
    ):
        """`timeout` bounds a whole request, body included; `retries` are attempts after the first.
        `credentials` (access_key_id, secret_access_key, session_token) replace the environment's."""
        self.region = region
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.retries = retries
        self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.credentials = dict(credentials or {})
        self._stores: dict[str, Any] = {}
        self._boto3: Any = None

    def _store(self, bucket: str) -> Any:
        store = self._stores.get(bucket)
        if store is None:
            from datetime import timedelta

            from obstore.store import S3Store

            config: dict[str, Any] = {"region": self.region, **self.credentials}
            if self.endpoint:
                config.update(endpoint=self.endpoint, virtual_hosted_style_request=False)
            else:
                config["virtual_hosted_style_request"] = "." not in bucket
            store = self._stores[bucket] = S3Store(
                bucket,
                config=config,  # type: ignore[arg-type]  # a TypedDict built key by key
                client_options={
                    "connect_timeout": timedelta(seconds=self.connect_timeout),
                    "timeout": timedelta(seconds=self.timeout),
                    "allow_http": bool(self.endpoint and self.endpoint.startswith("http://")),
                },
                retry_config={
                    "max_retries": self.retries,
                    "backoff": {
                        "init_backoff": timedelta(milliseconds=100),
                        "max_backoff": timedelta(seconds=1),
                        "base": 2,
                    },
                    "retry_timeout": timedelta(seconds=self.timeout),
                },
            )
        return store

    def _slow(self) -> Any:
        """boto3, for a key obstore cannot carry: same budget, created only if one comes."""
        if self._boto3 is None:
            import boto3
            from botocore.config import Config

            keys = {
                "aws_access_key_id": self.credentials.get("access_key_id"),
                "aws_secret_access_key": self.credentials.get("secret_access_key"),
                "aws_session_token": self.credentials.get("session_token"),
            }
            self._boto3 = boto3.client(
                "s3",
                region_name=self.region,
                endpoint_url=self.endpoint,
                config=Config(
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.timeout,
                    retries={"total_max_attempts": self.retries + 1, "mode": "standard"},
                    s3={"addressing_style": "path" if self.endpoint else "auto"},
                ),
                **{name: value for name, value in keys.items() if value},
            )
        return self._boto3

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # boto3's argument names
        """The object's Body, ContentLength, ETag and ContentType; S3Error when it cannot be read."""
        if not expressible(Key):
            return dict(self._slow().get_object(Bucket=Bucket, Key=Key))
        import obstore

        try:
            result = obstore.get(self._store(Bucket), Key)
        except Exception as error:
            raise _refusal(error) from error
        meta = result.meta
        return {
            "Body": _Body(result),
            "ContentLength": int(meta["size"]),
            "ETag": str(meta.get("e_tag") or ""),
            "ContentType": str(result.attributes.get("Content-Type", "binary/octet-stream")),
        }

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        ContentType: str | None = None,
        CacheControl: str | None = None,
        Metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Store the object with its type, cache lifetime and user metadata; S3Error on failure."""
        if not expressible(Key):
            extra: dict[str, Any] = {"Metadata": dict(Metadata or {})}
            extra.update({k: v for k, v in (("ContentType", ContentType), ("CacheControl", CacheControl)) if v})
            return dict(self._slow().put_object(Bucket=Bucket, Key=Key, Body=Body, **extra))
        import obstore

        attributes: dict[str, str] = dict(Metadata or {})  # any other name is user metadata (x-amz-meta-)
        if ContentType:
            attributes["Content-Type"] = ContentType
        if CacheControl:
            attributes["Cache-Control"] = CacheControl
        try:
            answer = obstore.put(self._store(Bucket), Key, Body, attributes=attributes)
        except Exception as error:
            raise _refusal(error) from error
        return {"ETag": answer.get("e_tag") or ""}


def _refusal(error: Exception) -> S3Error:
    """obstore's error as S3's code: the code in S3's XML body when the message carries it, else
    by its class (missing, denied), else UNAVAILABLE (retries spent, timeouts, connections)."""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    message = str(error)
    found = _CODE.search(message)
    if found:
        code = found.group(1)
    elif isinstance(error, FileNotFoundError):  # obstore's NotFoundError is one
        code = "NoSuchKey"
    elif isinstance(error, PermissionDeniedError):
        code = "AccessDenied"
    elif isinstance(error, UnauthenticatedError):
        code = "InvalidAccessKeyId"
    else:
        code = UNAVAILABLE
    return S3Error(code, message.split("\n", 1)[0][:500])

"""A local S3 (moto's server, in this process, loopback only) holding the stack's two buckets.

moto's server checks no signature and takes S3's browser upload (POST Object) unsigned, so on its
own it would store whatever a web page in the user's browser posts to it (a form needs no CORS):
an HTML "variant" under `variants/`, served back by the distribution. Its only clients are the
emulator's own SDKs (boto3, edge.s3), which reach it at 127.0.0.1:<port> and send no `Origin` and
no `Sec-Fetch-*` header; `ClientsOnly` refuses everything else (a browser's request, or another
Host, as DNS rebinding sends) with S3's AccessDenied.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from edge.settings import ORIGINAL_PREFIX, VARIANT_PREFIX, Settings
from localcdn.guard import LOOPBACK_NAMES, authority

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif"}
# moto's server logs every S3 call through werkzeug; the distribution logs what matters.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Only the emulator's own clients reach its S3: no browser request, no other Host</Message></Error>"
)


class ClientsOnly:
    """moto's WSGI app behind one check: Host one of the loopback names at moto's port (or the address
    it listens on), and no header a browser adds (`Origin`, `Sec-Fetch-*`)."""

    def __init__(self, app: WSGIApp, host: str):
        self.app, self.host = app, host
        self.hosts: tuple[str, ...] = ()

    def listening(self, port: int) -> None:
        self.hosts = tuple(authority(name, port) for name in (*LOOPBACK_NAMES, self.host))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        browser = "HTTP_ORIGIN" in environ or any(name.startswith("HTTP_SEC_FETCH_") for name in environ)
        if browser or str(environ.get("HTTP_HOST", "")).lower() not in self.hosts:
            headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(REFUSED)))]
            start_response("403 Forbidden", headers)
            return [REFUSED]
        return self.app(environ, start_response)


class GuardedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer (moto 5.2) serving its app behind `ClientsOnly`."""

    def _server_entry(self) -> None:
        guarded = ClientsOnly(DomainDispatcherApplication(create_backend_app), self._ip_address)
        self._server = make_server(self._ip_address, self._port, guarded, True, request_handler=MotoRequestHandler)
        guarded.listening(int(self._server.server_address[1]))
        self._server_ready_event.set()
        self._server.serve_forever()


class LocalS3:
    """moto on 127.0.0.1 (a port of its choosing), with clients the edge handlers can use."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1"):
        self.settings = settings
        self._server = GuardedMotoServer(ip_address=host, port=0, verbose=False)
        self._server.start()
        bound_host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{bound_host}:{port}"
        self._clients: dict[str, Any] = {}
        self._edge_clients: dict[str, Any] = {}
        for bucket, region in (
            (settings.primary_bucket, settings.primary_region),
            (settings.fallback_bucket, settings.fallback_region),
        ):
            client = self.client(region)
            if region == "us-east-1":
                client.create_bucket(Bucket=bucket)
            else:
                client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
            client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def client(self, region: str) -> Any:
        """The S3 client for a region (what `resize.handle` takes as its factory)."""
        if region not in self._clients:
            self._clients[region] = boto3.client(
                "s3",
                region_name=region,
                endpoint_url=self.endpoint,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
            )
        return self._clients[region]

    def edge_client(self, region: str) -> Any:
        """The client `resize` uses on AWS (edge.s3, obstore), pointed at this S3: the emulator's
        misses go through the same S3 code as a deployed function's, not through boto3."""
        if region not in self._edge_clients:
            from edge.s3 import Client

            local = {"access_key_id": "local", "secret_access_key": "local"}
            self._edge_clients[region] = Client(region, endpoint=self.endpoint, credentials=local)
        return self._edge_clients[region]

    def stop(self) -> None:
        self._server.stop()

    # -- originals ---------------------------------------------------------------

    def put_original(self, key: str, data: bytes) -> None:
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        self.client(self.settings.primary_region).put_object(
            Bucket=self.settings.primary_bucket, Key=ORIGINAL_PREFIX + key, Body=data, ContentType=content_type
        )

    @staticmethod
    def folder_originals(folder: Path) -> dict[str, Path]:
        """Every image below `folder`, keyed by its relative path (what it is uploaded as)."""
        return {
            path.relative_to(folder).as_posix(): path
            for path in sorted(folder.rglob("*"))
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
        }

    def objects(self, bucket: str, prefix: str = "") -> Iterator[dict[str, Any]]:
        region = self.region_of(bucket)
        pages = self.client(region).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Contents", [])

    def originals(self) -> list[tuple[str, int]]:
        """(key, size) of every original."""
        return [
            (item["Key"][len(ORIGINAL_PREFIX) :], item["Size"])
            for item in self.objects(self.settings.primary_bucket, ORIGINAL_PREFIX)
        ]

    def variants_of(self, key: str) -> list[tuple[str, int]]:
        """(spec, size) of every stored variant of one original."""
        prefix = f"{VARIANT_PREFIX}{key}/"
        return [
            (item["Key"][len(prefix) :], item["Size"])
            for item in self.objects(self.settings.primary_bucket, prefix)
            if "/" not in item["Key"][len(prefix) :]
        ]

    def region_of(self, bucket: str) -> str:
        return self.settings.primary_region if bucket == self.settings.primary_bucket else self.settings.fallback_region

    # -- what an S3 origin behind an OAC answers ------------------------------------

    def origin_get(
        self, bucket: str, uri: str, readable_prefix: str, byte_range: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """GET <uri> as CloudFront would through its OAC: the bucket policy lets it read
        `readable_prefix` and list the bucket, so a missing key is a 404 and anything
        outside the prefix a 403. With `byte_range` (a Range CloudFront forwards), S3's 206."""
        key = unquote(uri[1:])
        if not key.startswith(readable_prefix):
            return 403, {"Content-Type": "application/xml"}, b"<Error><Code>AccessDenied</Code></Error>"
        try:
            ranged = {"Range": byte_range} if byte_range else {}
            answer = self.client(self.region_of(bucket)).get_object(Bucket=bucket, Key=key, **ranged)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = (
                404
                if code in ("NoSuchKey", "404")
                else int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            )
            return status, {"Content-Type": "application/xml"}, f"<Error><Code>{code}</Code></Error>".encode()
        headers = {
            "Content-Type": answer.get("ContentType", "application/octet-stream"),
            "ETag": answer.get("ETag", ""),
        }
        if answer.get("CacheControl"):
            headers["Cache-Control"] = answer["CacheControl"]
        if answer.get("LastModified"):
            headers["Last-Modified"] = answer["LastModified"].strftime("%a, %d %b %Y %H:%M:%S GMT")
        if answer.get("ContentRange"):
            headers["Content-Range"] = answer["ContentRange"]
        # User metadata comes back as x-amz-meta-<name> ("Working with object metadata", S3 User
        # Guide): resize knows a refusal's tombstone by x-amz-meta-refused.
        for name, value in (answer.get("Metadata") or {}).items():
            headers[f"x-amz-meta-{name}"] = value
        status = int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 200))
        return status, headers, answer["Body"].read()

"""Shared fixtures: settings, images (real ones when present, generated always), a moto S3."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from edge.settings import Settings
from localcdn import samples
from localcdn.process import Emulator

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(
        primary_bucket="test-origin",
        primary_region="eu-west-1",
        fallback_bucket="test-fallback",
        fallback_region="eu-central-1",
    )


@pytest.fixture(scope="session")
def shared() -> Path | None:
    return samples.shared_images()


@pytest.fixture(scope="session")
def photo_jpeg() -> bytes:
    return samples.jpeg(samples.photo(1600, 1200), gps=True)


class FakeS3:
    """moto S3 with both buckets; `factory` is what the handlers take to get a client."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.clients: dict[str, Any] = {}
        for bucket, region in (
            (settings.primary_bucket, settings.primary_region),
            (settings.fallback_bucket, settings.fallback_region),
        ):
            self.factory(region).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
            # versioned, as ImageOrigin and FallbackBucket are
            self.factory(region).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def factory(self, region: str) -> Any:
        if region not in self.clients:
            self.clients[region] = boto3.client("s3", region_name=region)
        return self.clients[region]

    def put_original(self, key: str, data: bytes) -> None:
        self.factory(self.settings.primary_region).put_object(
            Bucket=self.settings.primary_bucket, Key=f"originals/{key}", Body=data
        )

    def keys(self, bucket: str) -> list[str]:
        region = (
            self.settings.primary_region if bucket == self.settings.primary_bucket else self.settings.fallback_region
        )
        pages = self.factory(region).get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def get(self, bucket: str, key: str) -> dict[str, Any]:
        region = (
            self.settings.primary_region if bucket == self.settings.primary_bucket else self.settings.fallback_region
        )
        return dict(self.factory(region).get_object(Bucket=bucket, Key=key))


@pytest.fixture
def s3(settings: Settings) -> Iterator[FakeS3]:
    with mock_aws():
        yield FakeS3(settings)


@pytest.fixture(scope="module")
def cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """`python -m localcdn --stack dev` for one test module, stopped with Ctrl-C after it."""
    emulator = Emulator(home=tmp_path_factory.mktemp("home"))
    yield emulator
    emulator.stop()


class CatalogEnv:
    """The catalogue's handlers on moto: the primary bucket (versioned), the table, and helpers
    that call them as API Gateway and EventBridge would."""

    OWNER = "arn:aws:iam::123456789012:user/alice"

    def __init__(self, settings: Settings):
        from botocore.config import Config

        from catalog.config import CatalogConfig
        from catalog.store import Catalogue, create_table

        region = settings.primary_region
        self.settings = settings
        self.s3 = boto3.client("s3", region_name=region, config=Config(signature_version="s3v4"))
        self.s3.create_bucket(Bucket=settings.primary_bucket, CreateBucketConfiguration={"LocationConstraint": region})
        self.s3.put_bucket_versioning(Bucket=settings.primary_bucket, VersioningConfiguration={"Status": "Enabled"})
        self.dynamodb = boto3.client("dynamodb", region_name=region)
        create_table(self.dynamodb, "catalog")
        self.catalogue = Catalogue(self.dynamodb, "catalog")
        self.config = CatalogConfig(settings=settings, table="catalog", cdn_url="https://img.example.com")

    def call(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None, who: str = OWNER
    ) -> tuple[int, Any]:
        import json

        from catalog import api

        authorizer = {"jwt": {"claims": {"sub": who[4:]}}} if who.startswith("jwt:") else {"iam": {"userArn": who}}
        event = {
            "version": "2.0",
            "rawPath": path,
            "queryStringParameters": query,
            "requestContext": {"http": {"method": method}, "authorizer": authorizer},
            "body": body if isinstance(body, str) or body is None else json.dumps(body),
        }
        answer = api.handle(event, self.config, self.catalogue, self.s3)
        return int(answer["statusCode"]), json.loads(answer["body"])

    def event(self, kind: str, key: str) -> dict[str, Any]:
        from catalog import ingest

        event = {
            "detail-type": kind,
            "source": "aws.s3",
            "detail": {"bucket": {"name": self.settings.primary_bucket}, "object": {"key": key}},
        }
        return ingest.handle(event, self.config, self.catalogue, self.s3)

    def put(self, key: str, data: bytes, **metadata: str) -> None:
        self.s3.put_object(Bucket=self.settings.primary_bucket, Key=key, Body=data, Metadata=metadata)

    def upload(self, filename: str, data: bytes, tags: list[str] | None = None, who: str = OWNER) -> dict[str, Any]:
        """POST /uploads, then the object S3 would store from that form, then its created event."""
        status, answer = self.call(
            "POST", "/uploads", {"filename": filename, "content_type": "image/jpeg", "tags": tags or []}, who=who
        )
        assert status == 201, answer
        fields = answer["upload"]["fields"]
        meta = {k[len("x-amz-meta-") :]: v for k, v in fields.items() if k.startswith("x-amz-meta-")}
        self.put(answer["key"], data, **meta)
        self.event("Object Created", answer["key"])
        return dict(answer)


@pytest.fixture
def catalog_env(settings: Settings) -> Iterator[CatalogEnv]:
    with mock_aws():
        yield CatalogEnv(settings)

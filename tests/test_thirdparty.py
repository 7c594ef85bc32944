"""A third-party image service as the primary origin (`primaryOrigin` kind http): the stack's config
and its checks, the stack on the mocks (custom origin, origin group, grants, the key from Secrets
Manager), and the sync job fetching the standard set from a real thumbor, listed by a manifest or
a sitemap."""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image
from pulumi_mocks import ACCOUNT, SERVICE_KEY, StackRun, run_stack
from test_least_privilege import grants, sync_queues_and_invalidations
from test_reconcile import definition_of, validate

from components.config import ConfigError, StackConfig, from_stack_file, load
from edge import templates, variants
from edge.settings import Settings
from localcdn import samples, thumbor
from localcdn.storage import LocalS3
from sync import job as sync_module
from sync import sources
from sync.job import Original, Sync

BASE = {"aws:region": "eu-west-1", "fallbackRegion": "eu-central-1", "catalog": False}
HTTP = {"kind": "http", "domain": "assets.example.com", "urlTemplate": "imgix"}


def problems(**values: Any) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(BASE | values, project="image-cdn", stack="t")
    return raised.value.problems


def loaded(**values: Any) -> StackConfig:
    return load(BASE | values, project="image-cdn", stack="t")


# -- the stack's config ------------------------------------------------------------------------


def test_each_ready_template_loads_and_s3_stays_the_default() -> None:
    assert loaded().primary_kind == "s3" and loaded().originals_source == "s3"
    assert loaded(primaryOrigin=HTTP).edge_settings().primary_template == "imgix"
    cloudinary = loaded(primaryOrigin=HTTP | {"urlTemplate": "cloudinary", "pathPrefix": "/demo"})
    assert cloudinary.edge_settings().primary_path == "/demo"
    signed = loaded(primaryOrigin=HTTP | {"urlTemplate": "thumbor", "keySecret": "team/thumbor"})
    assert signed.primary_key_secret == "team/thumbor"
    assert signed.edge_settings().service_key == ""  # the key itself never enters the config


def test_an_origin_without_tls_is_refused_naming_the_key() -> None:
    assert problems(primaryOrigin=HTTP | {"protocol": "http"}) == [
        'image-cdn:primaryOrigin.protocol: expected https (CloudFront reaches the service over TLS only), got "http"'
    ]
    (problem,) = problems(primaryOrigin=HTTP | {"domain": "http://assets.example.com"})
    assert problem.startswith("image-cdn:primaryOrigin.domain: expected a host name served over HTTPS")


def test_a_template_that_cannot_express_a_parameter_is_refused() -> None:
    (problem,) = problems(primaryOrigin=HTTP | {"urlTemplate": "/{key}?w={width}&q={quality}&fm={format}"})
    assert problem.startswith("image-cdn:primaryOrigin.urlTemplate: expected a template that expresses {height}, {fit}")
    assert "{crop}" in problem  # the default crops include entropy and attention
    assert problem.endswith('got "/{key}?w={width}&q={quality}&fm={format}"')
    full = "/{key}?w={width}&h={height}&fit={fit}&crop={crop}&q={quality}&fm={format}"
    assert loaded(primaryOrigin=HTTP | {"urlTemplate": full}).primary_template == full
    # one crop only and one format only: the template may leave them to the service
    narrow = "/{key}?w={width}&h={height}&fit={fit}&q={quality}"
    assert loaded(primaryOrigin=HTTP | {"urlTemplate": narrow}, crops=["center"], formats=["webp"],
                  standardFormats=["webp"]).primary_template == narrow  # fmt: skip
    (unknown,) = problems(primaryOrigin=HTTP | {"urlTemplate": full + "&s={signature}"})
    assert unknown.startswith("image-cdn:primaryOrigin.urlTemplate: expected placeholders among {key}")


def test_signed_services_need_a_secret_and_unsigned_ones_refuse_one() -> None:
    (problem,) = problems(primaryOrigin=HTTP | {"urlTemplate": "thumbor"})
    assert problem.startswith("image-cdn:primaryOrigin.keySecret: expected the name or ARN of the Secrets Manager")
    (problem,) = problems(primaryOrigin=HTTP | {"keySecret": "team/imgix"})
    assert problem.startswith("image-cdn:primaryOrigin.keySecret: expected to be set only for thumbor or imgproxy")
    (problem,) = problems(primaryOrigin=HTTP | {"urlTemplate": "imgproxy", "keySecret": "team/imgproxy"})
    assert problem.startswith("image-cdn:primaryOrigin.source: expected where imgproxy reads originals")


def test_a_manifest_the_stack_may_not_read_is_refused() -> None:
    http = {"primaryOrigin": HTTP}
    foreign = {"kind": "jsonl", "location": "s3://someone-else/originals.jsonl"}
    (problem,) = problems(**http, originalsSource=foreign)
    assert problem == (
        "image-cdn:originalsSource.location: expected an object in the primary bucket (image-cdn-t-origin) or in a "
        "bucket listed in originalsSource.readBuckets (the sync job is granted s3:GetObject on it), "
        'got "s3://someone-else/originals.jsonl"'
    )
    assert loaded(**http, originalsSource=foreign | {"readBuckets": ["someone-else"]}).originals_object == (
        "someone-else",
        "originals.jsonl",
    )
    (plain,) = problems(**http, originalsSource={"kind": "sitemap", "location": "http://example.com/sitemap.xml"})
    assert plain.startswith("image-cdn:originalsSource.location: expected s3://bucket/key or an https:// URL")
    (ours,) = problems(originalsSource={"kind": "jsonl", "location": "https://example.com/m.jsonl"})
    assert ours.startswith("image-cdn:originalsSource: expected kind: s3 while primaryOrigin is kind s3")


def test_what_only_our_renderer_does_is_refused_with_a_service() -> None:
    found = problems(primaryOrigin=HTTP, defaultImage="site/missing.png", watermark={"image": "site/mark.png"})
    assert sorted(p.split(":")[1] for p in found) == ["defaultImage", "watermark"]


# -- the stack on the mocks --------------------------------------------------------------------


@pytest.fixture(scope="module")
def thirdparty() -> StackRun:
    return run_stack(from_stack_file("thirdparty"))


def test_the_primary_is_a_custom_origin_https_only_in_the_same_origin_group(thirdparty: StackRun) -> None:
    distribution = thirdparty.one("aws:cloudfront/distribution:Distribution").inputs
    primary, fallback = distribution["origins"]
    assert primary["originId"] == "primary" and primary["domainName"] == "thumbor.example.com"
    assert "originAccessControlId" not in primary and "originPath" not in primary
    custom = primary["customOriginConfig"]
    assert (custom["originProtocolPolicy"], custom["originSslProtocols"]) == ("https-only", ["TLSv1.2"])
    assert (custom["originReadTimeout"], primary["connectionTimeout"], primary["connectionAttempts"]) == (10, 2, 1)
    assert fallback["domainName"].startswith("image-cdn-thirdparty-fallback.s3.") and fallback["originAccessControlId"]
    (group,) = distribution["originGroups"]
    assert [m["originId"] for m in group["members"]] == ["primary", "fallback"]
    assert group["failoverCriteria"]["statusCodes"] == [500, 502, 503, 504]
    # one origin access control: the fallback bucket's
    assert [o.name for o in thirdparty.of_type("aws:cloudfront/originAccessControl:OriginAccessControl")] == [
        "cdn-fallback-oac"
    ]


def bundled_config(run: StackRun, function: str) -> dict[str, Any]:
    # the edge functions' names end in a random suffix (`<prefix>-rewrite-<hex>`): found by resource name
    names = {"-rewrite": "edge-rewrite", "-resize": "edge-resize", "-sync": "sync"}
    (declared,) = [d for d in run.of_type("aws:lambda/function:Function") if d.name == names[function]]
    archive = declared.inputs["code"]
    path = archive.path if hasattr(archive, "path") else archive
    with zipfile.ZipFile(path) as zipped:
        return dict(json.loads(zipped.read("edge/config.json")))


def test_the_services_key_reaches_only_the_bundles_that_build_its_urls(thirdparty: StackRun) -> None:
    assert bundled_config(thirdparty, "-rewrite")["service_key"] == SERVICE_KEY  # Lambda@Edge: no secret at run time
    # The sync job is regional: its bundle holds no key, only the secret's name in its environment.
    assert bundled_config(thirdparty, "-sync")["service_key"] == ""
    (sync,) = [d for d in thirdparty.of_type("aws:lambda/function:Function") if d.name == "sync"]
    assert sync.inputs["environment"]["variables"]["SERVICE_KEY_SECRET"] == thirdparty.config.primary_key_secret
    with zipfile.ZipFile(sync.inputs["code"].path) as zipped:
        assert not any(SERVICE_KEY.encode() in zipped.read(name) for name in zipped.namelist())
    assert bundled_config(thirdparty, "-resize")["service_key"] == ""
    assert SERVICE_KEY not in json.dumps(thirdparty.outputs, default=str)
    for run in (run_stack(from_stack_file("dev")),):
        assert bundled_config(run, "-rewrite")["primary_kind"] == "s3"


def test_every_role_of_the_thirdparty_stack_has_exactly_the_minimum(thirdparty: StackRun) -> None:
    c = thirdparty.config
    fallback = f"arn:aws:s3:::{c.fallback_bucket}"
    logs = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
    resize = thirdparty.one("aws:lambda/function:Function", "edge-resize").inputs["name"]  # <prefix>-resize-<hex>
    group = f"arn:aws:logs:*:{ACCOUNT}:log-group:/aws/lambda/us-east-1.{resize}"
    sync_group = f"arn:aws:logs:{c.primary_region}:{ACCOUNT}:log-group:/aws/lambda/{c.name_prefix}-sync"
    results = f"arn:aws:s3:::{c.name_prefix}-sync"
    found = grants(thirdparty)
    # resize renders nothing: no bucket at all
    assert found["edge-resize-policy"] == {(a, r) for a in logs for r in (group, group + ":*")}
    assert found["sync-policy"] == {(a, r) for a in logs for r in (sync_group, sync_group + ":*")} | {
        # the manifest, exactly that object; the listing it becomes
        ("s3:GetObject", "arn:aws:s3:::image-cdn-thirdparty-origin/manifests/originals.jsonl"),
        ("s3:PutObject", f"{results}/listings/*"),
        ("s3:AbortMultipartUpload", f"{results}/listings/*"),
        # the fallback: list, read what it stored (validators), write, delete, abort a streamed upload
        ("s3:ListBucket", fallback),
        ("s3:GetObject", f"{fallback}/*"),
        ("s3:PutObject", f"{fallback}/*"),
        ("s3:DeleteObject", f"{fallback}/*"),
        ("s3:AbortMultipartUpload", f"{fallback}/*"),
        # the service's signing key, read at run time: that one secret (its ARN ends in six random characters)
        (
            "secretsmanager:GetSecretValue",
            f"arn:aws:secretsmanager:{c.primary_region}:{ACCOUNT}:secret:{c.primary_key_secret}-??????",
        ),
    } | sync_queues_and_invalidations(c)
    states = found["sync-states-policy"]
    assert ("s3:GetObject", f"{results}/listings/*") in states
    assert not any(action == "s3:ListBucket" for action, _ in states)  # no bucket listing: the manifest's
    assert not any(c.primary_bucket in resource for pairs in found.values() for _, resource in pairs
                   if "manifests/" not in resource)  # fmt: skip


def test_the_state_machine_lists_the_manifest_then_maps_over_its_csv(thirdparty: StackRun, tmp_path: Path) -> None:
    definition = definition_of(thirdparty)
    assert definition["StartAt"] == "ListOriginals"
    listing = definition["States"]["ListOriginals"]
    assert listing["Parameters"]["Payload"]["list"]["name.$"] == "$$.Execution.Name"
    build = definition["States"]["Build"]
    assert build["ItemReader"]["ReaderConfig"] == {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}
    assert build["Next"] == "Done" and "Sweep" not in definition["States"]
    result = validate(definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the sync job against a real thumbor ---------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> Iterator[thumbor.ThumborPrimary]:
    if thumbor.executable() is None:
        if os.environ.get("CI"):
            pytest.fail("make test installs thumbor (make thumbor)")
        pytest.skip("no thumbor here: `make thumbor` (make test does it)")
    primary = thumbor.ThumborPrimary()
    yield primary
    primary.stop()


@pytest.fixture
def world(service: thumbor.ThumborPrimary, request: pytest.FixtureRequest) -> Iterator[tuple[Settings, LocalS3]]:
    # moto's buckets outlive one server in a process: a pair of names per test
    name = request.node.name[5:30].replace("_", "-").strip("-")
    base = Settings(primary_bucket=f"{name}-o", fallback_bucket=f"{name}-f", widths=(160, 320, 640, 1024))
    settings = service.settings(base)
    storage = LocalS3(settings)
    yield settings, storage
    storage.stop()


def manifest_settings(settings: Settings, location: str) -> Settings:
    return Settings(**(settings.as_dict() | {"originals_source": "jsonl", "originals_location": location}))


def stored(storage: LocalS3, settings: Settings) -> dict[str, dict[str, Any]]:
    client = storage.client(settings.fallback_region)
    found = {}
    for item in client.list_objects_v2(Bucket=settings.fallback_bucket).get("Contents", []):
        found[item["Key"]] = client.head_object(Bucket=settings.fallback_bucket, Key=item["Key"])
    return found


def test_a_manifest_sync_fetches_every_standard_variant_from_the_service_once(
    service: thumbor.ThumborPrimary, world: tuple[Settings, LocalS3]
) -> None:
    settings, storage = world
    originals = {"shop/shoe.jpg": samples.photo(1200, 800, seed=3), "shop/bag.png": samples.photo(900, 900, seed=4)}
    for key, image in originals.items():
        service.mirror(key, samples.jpeg(image) if key.endswith(".jpg") else samples.png(image))
    lines = [json.dumps({"key": "shop/shoe.jpg", "etag": "v1"}), '"shop/bag.png"', "not json", '{"key": "../x"}']
    primary = storage.client(settings.primary_region)
    primary.put_object(Bucket=settings.primary_bucket, Key="manifests/m.jsonl", Body="\n".join(lines).encode())
    stack = manifest_settings(settings, f"s3://{settings.primary_bucket}/manifests/m.jsonl")
    reports: list[dict[str, str]] = []
    sync = Sync(stack, storage.client, report=reports.append, service_base=service.base)
    first = sync.reconcile()
    standard = variants.standard_set("x", stack)
    assert (first.originals, first.built, first.failed) == (2, 2 * len(standard), 0)
    assert [r["line"] for r in reports] == ["3", "4"]  # the bad lines, reported, and nothing else
    held = stored(storage, stack)
    for key in originals:
        for variant in variants.standard_set(key, stack):
            name = variants.format(variant)[1:]
            assert held[name]["ContentType"] == f"image/{variant.fmt}", name
            assert held[name]["Metadata"]["service-etag"]  # kept for the conditional request
            assert held[name]["CacheControl"] == stack.variant_cache_control
    fallback = storage.client(stack.fallback_region)
    body = fallback.get_object(Bucket=stack.fallback_bucket, Key="shop/shoe.jpg/w_640_q_60.webp")["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (640, 427)
    assert "shop/shoe.jpg/_set.v1" in held  # a versioned line: its set is marked with the version
    # Again: the versioned original needs no request at all; the other is asked conditionally, 304s.
    again = Sync(stack, storage.client, report=reports.append, service_base=service.base).reconcile()
    assert (again.built, again.skipped, again.failed) == (0, 2 * len(standard), 0)


def test_a_missing_original_and_an_error_page_are_reported_never_stored(
    service: thumbor.ThumborPrimary, world: tuple[Settings, LocalS3]
) -> None:
    settings, storage = world
    reports: list[dict[str, str]] = []
    sync = Sync(settings, storage.client, report=reports.append, service_base=service.base)
    gone = sync.build(Original("nowhere/missing.jpg", "v7", 0), set())
    assert (gone.built, gone.failed) == (0, 1) and reports[0]["reason"].startswith("404 from the service")
    assert [k for k in stored(storage, settings)] == ["nowhere/missing.jpg/_failed.v7"]
    assert sync.build(Original("nowhere/missing.jpg", "v7", 0), {"_failed.v7"}).skipped == len(sync.standard)


class _Site(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def do_GET(self) -> None:
        kind, body = self.pages.get(self.path, ("text/plain", b""))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_sitemap_and_its_index_are_read_element_by_element(site: str) -> None:
    image = "http://www.google.com/schemas/sitemap-image/1.1"
    page = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:image="{image}">'
        "<url><loc>https://shop.example.com/p/1</loc><image:image><image:loc>https://cdn.example.com/demo/a/b%20c.jpg"
        "</image:loc></image:image><image:image><image:loc>https://cdn.example.com/demo/a/d.png</image:loc>"
        "</image:image></url>"
        "<url><loc>https://cdn.example.com/demo/e.webp</loc><lastmod>2026-11-01</lastmod></url>"
        "</urlset>"
    ).encode()
    index = (
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://example.com/one.xml</loc></sitemap>"
        b"<sitemap><loc>http://example.com/plain.xml</loc></sitemap></sitemapindex>"
    )
    _Site.pages = {"/one.xml": ("application/xml", page), "/index.xml": ("application/xml", index)}
    import urllib3

    http = urllib3.PoolManager()
    reports: list[dict[str, str]] = []

    def follow(url: str) -> Any:  # the test's site stands in for https://example.com
        return sources.open_stream(site + url.removeprefix("https://example.com"), lambda region: None, http)

    found = list(
        sources.sitemap(
            sources.open_stream(site + "/index.xml", lambda region: None, http),
            reports.append,
            Original.of,
            path_prefix="/demo",
            follow=follow,
        )
    )
    assert [(o.key, bool(o.etag)) for o in found] == [("a/b c.jpg", False), ("a/d.png", False), ("e.webp", True)]
    assert reports == [{"source": "sitemap", "url": "http://example.com/plain.xml",
                        "reason": "not followed (https only, one level)"}]  # fmt: skip
    with pytest.raises(sources.SourceError):
        sources.open_stream(site + "/absent.xml", lambda region: None, http)


def test_a_json_lines_manifest_streams_in_bounded_reads() -> None:
    """A manifest far larger than any read: lines come one by one, an over-long one is refused."""
    reads: list[int] = []

    class Stream(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            reads.append(size if size is not None else -1)
            return super().read(size)

    lines = [json.dumps({"key": f"k/{n:06d}.jpg"}) for n in range(20_000)]
    lines.insert(5, json.dumps({"key": "x" * (sources.MAX_LINE_BYTES + 10)}))
    reports: list[dict[str, str]] = []
    found = list(sources.jsonl(Stream("\n".join(lines).encode()), reports.append, Original.of))
    assert len(found) == 20_000 and found[-1].key == "k/019999.jpg"
    assert max(reads) == sources.READ_BYTES
    assert reports == [{"source": "manifest", "line": "6", "reason": f"longer than {sources.MAX_LINE_BYTES} bytes"}]


def test_a_response_over_the_limit_is_not_stored(
    service: thumbor.ThumborPrimary, world: tuple[Settings, LocalS3]
) -> None:
    settings, storage = world
    small = Settings(**(settings.as_dict() | {"max_input_bytes": 1024}))
    service.mirror("big/photo.jpg", samples.jpeg(samples.photo(1600, 1200, seed=5)))
    reports: list[dict[str, str]] = []
    summary = Sync(small, storage.client, report=reports.append, service_base=service.base).build(
        Original("big/photo.jpg", "", 0), set()
    )
    assert summary.failed == 1 and "over maxInputBytes" in reports[0]["reason"]
    held = {k: v["ContentLength"] for k, v in stored(storage, small).items() if k.startswith("big/photo.jpg/w_")}
    assert len(held) < len(variants.standard_set("big/photo.jpg", small))  # the large ones are not there
    assert all(size <= 1024 for size in held.values())
    assert "big/photo.jpg/_set." not in "".join(held)  # and the set is not marked complete
    # A service that sends no Content-Length (or a wrong one) is cut off while streaming.
    capped = sync_module._Capped(io.BytesIO(b"x" * 2000), 1024)
    assert len(capped.read(1000)) == 1000
    with pytest.raises(sync_module._TooBig):
        capped.read(1000)


def test_the_thumbor_drill_serves_every_request_across_a_kill() -> None:
    """`make drill ORIGIN=thumbor`, short: thumbor killed for the down phase, 0 failed requests."""
    import subprocess
    import sys

    from localcdn.process import ROOT

    if thumbor.executable() is None:
        pytest.fail("make test installs thumbor (make thumbor)") if os.environ.get("CI") else pytest.skip("no thumbor")
    command = [sys.executable, "-m", "ops", "drill", "--origin", "thumbor", "--seconds", "12", "--clients", "2",
               "--expire-every", "1.5", "--json"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout)["report"]
    assert {row["phase"] for row in rows} == {"1:up", "2:down", "3:error", "4:up"}
    for row in rows:
        assert row["failed"] == 0 and row["served"] == row["requests"] > 0, row
        if row["phase"] in ("1:up", "4:up"):
            assert row["primary"] > 0  # served by thumbor
        else:
            assert row["primary"] == 0 and row["fallback"] > 0


def test_templates_are_the_ones_the_stack_names() -> None:
    variant = variants.Variant("a/b.jpg", 320, None, 60, "webp")
    custom = dataclasses.replace(loaded(primaryOrigin=HTTP | {
        "urlTemplate": "/i/{key}?w={width}&h={height}&fit={fit}&crop={crop}&q={quality}&fm={format}",
        "pathPrefix": "/shop"}))  # fmt: skip
    assert templates.service_url(variant, custom.edge_settings()) == (
        "/shop/i/a/b.jpg?w=320&h=0&fit=cover&crop=center&q=60&fm=webp"
    )


@pytest.mark.parametrize(
    "secret",
    [
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:team/thumbor",  # partial: no 6-character suffix
        "arn:aws:secretsmanager:us-east-2:111122223333:secret:team/thumbor-AbCdEf",  # another region
    ],
)
def test_a_key_secret_arn_the_sync_job_could_not_read_is_refused(secret: str) -> None:
    # The sync function reads it in the primary region, granted exactly this ARN ("You can specify a
    # partial ARN too", Secrets Manager's SecretId: but a partial ARN never matches an IAM grant).
    (problem,) = problems(primaryOrigin=HTTP | {"urlTemplate": "thumbor", "keySecret": secret})
    assert problem.startswith(
        "image-cdn:primaryOrigin.keySecret: expected a secret's name, or its full ARN in eu-west-1"
    )


def test_a_full_key_secret_arn_in_the_primary_region_is_taken() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:team/thumbor-AbCdEf"
    assert loaded(primaryOrigin=HTTP | {"urlTemplate": "thumbor", "keySecret": arn}).primary_key_secret == arn


def test_an_origins_own_date_never_makes_a_second_date_header() -> None:
    # thumbor (ORIGIN=thumbor) and S3 send Date; uvicorn writes the response's own.
    from types import SimpleNamespace

    from localcdn.server import _response_headers

    answer = SimpleNamespace(
        headers={"Date": "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Type": "image/webp", "Content-Length": "9"},
        body=b"12345",
    )
    headers = _response_headers(answer)
    assert "date" not in {name.lower() for name in headers}
    assert headers["Content-Type"] == "image/webp" and headers["Content-Length"] == "5"

"""`python -m ops upload DIR --tags a,b --stack S` and `python -m ops images --tag a --stack S`.

Both talk to the stack's catalogue API: on AWS, the HTTP API named `<prefix>-catalog`
(found with your credentials, or given with --api), each request signed with SigV4 for
`execute-api` (catalogAuth iam) or carrying --token / IMAGE_CDN_TOKEN (catalogAuth jwt).
Uploads go as the API says: a presigned POST straight to the bucket, the file streamed
by `requests`; then `--wait` follows each one until the catalogue has read it.

Against the emulator: `--api http://127.0.0.1:8080/api`; requests are then signed with
the emulator's credentials (any access key, here IMAGE_CDN_LOCAL_USER or `local`, with
the secret `local`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from catalog.keys import UPLOAD_TYPES
from components.config import StackConfig, from_stack_file
from ops import cli

SUFFIXES = {suffix: content_type for content_type, suffixes in UPLOAD_TYPES.items() for suffix in suffixes}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any):
        self.status, self.body = status, body
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{status}: {message}")


class Client:
    """The catalogue API, signed (SigV4) or with a bearer token."""

    def __init__(
        self, url: str, region: str, *, token: str | None = None, session: Any = None, stack: str | None = None
    ):
        import requests

        self.stack = stack
        self.url = url.rstrip("/")
        self.region = region
        self.token = token
        self.http = requests.Session()
        self.credentials: Any = None
        if token is None:
            import boto3

            self.credentials = (session or boto3.Session()).get_credentials()
            if self.credentials is None:
                from botocore.exceptions import NoCredentialsError

                raise NoCredentialsError()

    def call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        url = self.url + path + (("?" + urlencode(query)) if query else "")
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = "Bearer " + self.token
        else:
            request = AWSRequest(method=method, url=url, data=data, headers=headers)
            SigV4Auth(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
            headers = dict(request.headers.items())
        answer = self.http.request(method, url, data=data or None, headers=headers, timeout=60)
        serving = answer.headers.get("X-Localcdn-Stack")  # only the emulator names its stack
        if self.stack is not None and serving is not None and serving != self.stack:
            raise cli.Usage(
                f"the emulator at {self.url} runs stack {serving}, not {self.stack}", f"pass --stack {serving}"
            )
        try:
            payload = answer.json()
        except ValueError:
            payload = answer.text
        if answer.status_code >= 400:
            raise ApiError(answer.status_code, payload)
        return payload

    def post_form(self, url: str, fields: dict[str, str], path: Path, content_type: str) -> None:
        """The presigned POST: the signed fields, then the file (S3 ignores fields after it)."""
        with path.open("rb") as stream:
            answer = self.http.post(url, data=fields, files={"file": (path.name, stream, content_type)}, timeout=600)
        if answer.status_code >= 300:
            raise ApiError(answer.status_code, answer.text[:500])


def images_below(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            yield path


def find_api(config: StackConfig) -> str:
    """The stack's catalogue API endpoint, looked up on AWS by its name."""
    import boto3

    client = boto3.client("apigatewayv2", region_name=config.primary_region)
    name = f"{config.name_prefix}-catalog"
    for page in client.get_paginator("get_apis").paginate():
        for item in page.get("Items", []):
            if item.get("Name") == name:
                return str(item["ApiEndpoint"])
    raise cli.Unavailable(
        f"no HTTP API named {name} in {config.primary_region}", "is the stack deployed (pulumi up)? or pass --api URL"
    )


def upload(client: Client, folder: Path, tags: list[str], *, wait: bool, err: TextIO, out: TextIO) -> dict[str, Any]:
    import requests
    from tqdm import tqdm

    paths = list(images_below(folder))
    chosen = set(paths)
    others = sorted(
        path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file() and path not in chosen
    )
    if others:
        named = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        what = "file that is not an image" if len(others) == 1 else "files that are not images"
        err.write(f"skipping {len(others)} {what} ({named}; images are {', '.join(sorted(SUFFIXES))})\n")
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    with tqdm(total=len(paths), unit="image", file=err, disable=None) as bar:
        for path in paths:
            content_type = SUFFIXES[path.suffix.lower()]
            try:
                signed = client.call(
                    "POST",
                    "/uploads",
                    {"filename": path.name, "content_type": content_type, "tags": tags, "bytes": path.stat().st_size},
                )
                client.post_form(signed["upload"]["url"], signed["upload"]["fields"], path, content_type)
                entry: dict[str, Any] = {"file": str(path), "id": signed["id"], "key": signed["key"]}
                if wait:
                    entry.update(follow(client, signed["id"]))
                done.append(entry)
            except (requests.ConnectionError, requests.Timeout):
                raise  # the API is not there: one line for the whole command (python -m ops), not one per file
            except (ApiError, OSError) as error:
                failed.append({"file": str(path), "error": str(error)})
            bar.update(1)
    for entry in done:
        status = entry.get("status", "uploaded")
        why = f": {entry.get('reason') or 'no reason given'}" if status == "rejected" else ""
        if status == "pending":
            why = ": not catalogued yet (python -m ops images --status ready shows it once it is)"
        out.write(f"{entry['id']}  {status:9}  {entry['file']}{why}\n")
    for entry in failed:
        out.write(f"failed     {entry['file']}: {entry['error']}\n")
    return {"uploaded": done, "failed": failed}


def follow(client: Client, image_id: str, timeout: float = 120) -> dict[str, Any]:
    """Wait until the catalogue has read the upload: its status (and why, if rejected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = client.call("GET", f"/images/{image_id}")
        if image.get("status") != "pending":
            return {k: image[k] for k in ("status", "reason", "width", "height", "format") if k in image}
        time.sleep(1)
    return {"status": "pending"}


def main(argv: list[str] | None = None, command: str = "upload") -> int:
    parser = cli.Parser(
        prog=f"python -m ops {command}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", required=True, help="the stack whose catalogue to use")
    parser.add_argument("--api", type=cli.url, help="the catalogue API's URL (default: looked up on AWS)")
    parser.add_argument("--token", default=os.environ.get("IMAGE_CDN_TOKEN"), help="a JWT (catalogAuth jwt)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    if command == "upload":
        parser.add_argument("folder", type=Path, help="upload every image below this folder")
        parser.add_argument("--tags", default="", help="comma-separated tags for every upload")
        parser.add_argument(
            "--wait",
            action="store_true",
            help="wait until each upload is catalogued; exit 1 if any was rejected (each with its reason)",
        )
    else:
        for name in ("tag", "after", "before", "min-width", "status", "limit", "cursor"):
            parser.add_argument(f"--{name}")
        parser.add_argument("--all", action="store_true", help="follow the cursor to the last page")
    args = parser.parse_args(argv)
    if command == "upload" and not args.folder.is_dir():
        raise cli.Usage(f"{args.folder} is not a folder", "python -m ops upload FOLDER --stack STACK")
    config = from_stack_file(args.stack)  # a missing or bad stack is python -m ops's to report
    if not config.catalog:
        raise cli.Usage(f"stack {args.stack} has no catalogue (image-cdn:catalog is false)")
    token = args.token if config.catalog_auth == "jwt" else None
    if config.catalog_auth == "jwt" and not token:
        raise cli.Usage("this stack's catalogue takes a JWT: pass --token or set IMAGE_CDN_TOKEN")
    tags: list[str] = []
    if command == "upload":
        from catalog.api import tags_of
        from edge.problems import Problem

        try:  # the API's own rule, before anything is sent
            tags = tags_of([t for t in args.tags.split(",") if t.strip()], "--tags")
        except Problem as problem:
            raise cli.Usage(str(problem), "for example: --tags trip,2026") from None
    api = args.api or find_api(config)
    session = None
    if urlsplit(api).hostname in ("127.0.0.1", "localhost", "::1"):
        if urlsplit(api).path.rstrip("/") != "/api":
            raise cli.Usage(f"{api} is not the emulator's catalogue API", f"pass --api {api.rstrip('/')}/api")
        import boto3

        # The emulator's credentials: any access key (it names you), the secret `local`.
        user = os.environ.get("IMAGE_CDN_LOCAL_USER", "local")
        session = boto3.Session(aws_access_key_id=user, aws_secret_access_key="local")
    client = Client(api, config.primary_region, token=token, session=session, stack=args.stack)
    try:
        if command == "upload":
            result = upload(client, args.folder, tags, wait=args.wait, err=sys.stderr, out=sys.stdout)
            if args.json:
                print(json.dumps(result))
            statuses = [entry.get("status") for entry in result["uploaded"]]
            counts = {
                "rejected by the catalogue": statuses.count("rejected"),
                "not catalogued in time": statuses.count("pending"),
                "not uploaded": len(result["failed"]),
            }
            problems = [f"{n} {what}" for what, n in counts.items() if n]
            if problems:
                total = len(result["uploaded"]) + len(result["failed"])
                print(f"ops upload: {', '.join(problems)} (of {total})", file=sys.stderr)
                return 1
            return 0
        return list_images(client, args)
    except ApiError as error:
        said = error.body.get("message") if isinstance(error.body, dict) else None
        refused = f"the catalogue refused ({error.status}): {said or json.dumps(error.body)}"
        # a 400 names what was wrong with what you gave; anything else is the service or your access
        raise (cli.Usage if error.status == 400 else cli.Unavailable)(refused) from None


def list_images(client: Client, args: argparse.Namespace) -> int:
    query = {
        name: str(getattr(args, name.replace("-", "_")))
        for name in ("tag", "after", "before", "min_width", "status", "limit", "cursor")
        if getattr(args, name.replace("-", "_"), None) is not None
    }
    images: list[dict[str, Any]] = []
    while True:
        page = client.call("GET", "/images", query=query)
        images.extend(page["images"])
        if not (args.all and page.get("cursor")):
            break
        query["cursor"] = page["cursor"]
    if args.json:
        print(json.dumps({"images": images, "cursor": page.get("cursor")}))
        return 0
    for image in images:
        size = f"{image.get('width', '?')}x{image.get('height', '?')}"
        tags = ",".join(image.get("tags") or [])
        when, fmt = image.get("uploaded_at", ""), image.get("format", "")
        print(f"{image['id']}  {when}  {size:>11}  {fmt:5}  {tags:20}  {image['key']}")
    if page.get("cursor") and not args.all:
        print(f"more: --cursor {page['cursor']}", file=sys.stderr)
    return 0


def upload_main(argv: list[str] | None = None) -> int:
    return main(argv, "upload")


def images_main(argv: list[str] | None = None) -> int:
    return main(argv, "images")

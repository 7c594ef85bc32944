"""`python -m ops sign URL --stack S`: a signed image URL, with the stack's current key.

The key comes from the stack's Secrets Manager secret (`<namePrefix>-signing-<suffix>`, written
by `UrlSigning`; the suffix is drawn per deployment, so the secret is found by its prefix), on AWS
with the caller's credentials, or from a running emulator's (`--emulator http://127.0.0.1:8080`:
its moto endpoint holds the same secret; `--expires-in` then counts on the emulator's clock, which
`POST /_localcdn/clock` moves forward). Apps do the same with
`edge.signing.sign(url, secret, kid, expires=...)`, reading the secret the stack exports
(`signing_secret`).

A URL is signed only if the viewer function could serve it: a path starting with `/` (with an
optional query) or an absolute https URL, whose path and query pass the stack's grammar
(`edge.variants.normalize`); anything else is refused with the viewer function's own message.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from components.config import from_stack_file
from components.config.derive import SecretLookupError, find_secret
from edge import signing, variants
from edge.problems import Problem, shown
from edge.settings import Settings
from ops import cli

SHAPE = (
    "a path starting with / and an optional query (/products/shoe.jpg?w=800), "
    "or an absolute https URL (https://img.example.com/products/shoe.jpg?w=800)"
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def secrets_client(region: str, endpoint: str | None = None) -> Any:
    """boto3's Secrets Manager client, on AWS or on the emulator's moto endpoint."""
    import boto3

    extra: dict[str, Any] = {}
    if endpoint:
        extra = {"endpoint_url": endpoint, "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return boto3.client("secretsmanager", region_name=region, **extra)


def read_secret(client: Any, name: str) -> tuple[str, str]:
    """(kid, secret) of the current key in the stack's secret."""
    document = json.loads(client.get_secret_value(SecretId=name)["SecretString"])
    kid = str(document["current"])
    return kid, str(document["keys"][kid])


def target(url: str) -> str:
    """The path and query of a URL to sign (`cli.Usage` for anything else): a path, or an absolute
    https URL (http too for the emulator on loopback); never a fragment, which no browser sends."""
    if url.startswith("/") and not url.startswith("//"):
        rest = url
    else:
        parts = urlsplit(url)
        secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
        if not (secure and parts.netloc):
            raise cli.Usage(f"{shown(url)} is not a URL to sign: expected {SHAPE}")
        rest = url[len(f"{parts.scheme}://{parts.netloc}") :] or "/"
    if "#" in rest:
        raise cli.Usage(f"{shown(url)} has a fragment (#...), which a browser never sends: sign the URL without it")
    return rest


def check(rest: str, settings: Settings) -> None:
    """Refuse, with the viewer function's own message, a URL it would refuse however it is signed."""
    path, _, query = rest.partition("?")
    try:
        variants.normalize(path, query, None, settings, None, signed=True)
    except Problem as problem:
        raise cli.Usage(f"the viewer function would refuse {shown(rest)}: {problem.message}") from None


def emulator_expiry(base: str, expires_in: int) -> int:
    """Unix seconds `expires_in` from now on the emulator's clock, which `POST /_localcdn/clock` moves
    forward: the expiry its own signer computes."""
    body = json.dumps({"url": "/", "expires_in": expires_in}).encode()
    request = urllib.request.Request(base + "/_localcdn/sign", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(json.loads(answer.read())["expires"])


def main(argv: list[str]) -> int:
    parser = cli.Parser(prog="python -m ops sign", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a path with its query (/products/shoe.jpg?w=800) or an absolute https URL")
    parser.add_argument("--stack", required=True, help="the stack whose key signs (its Pulumi.<stack>.yaml)")
    parser.add_argument(
        "--expires-in", type=cli.positive_int, default=None, metavar="SECONDS", help="refuse the URL after this"
    )
    parser.add_argument(
        "--secret",
        default=None,
        metavar="NAME",
        help="the signing secret's name or ARN (default: the one live secret named <prefix>-signing-*)",
    )
    parser.add_argument(
        "--emulator", type=cli.url, default=None, metavar="URL", help="sign with a running emulator's key and clock"
    )
    args = parser.parse_args(argv)
    rest = target(args.url)
    config = from_stack_file(args.stack)  # a missing or bad stack is python -m ops's to report
    if config.signing == "off":
        raise cli.Usage(f"stack {args.stack} has image-cdn:signing off: nothing checks signatures")
    check(rest, config.edge_settings())
    endpoint = None
    if args.emulator:
        with urllib.request.urlopen(args.emulator + "/_localcdn/health", timeout=10) as answer:
            health = json.loads(answer.read())
        if health.get("stack") != args.stack:
            raise cli.Usage(
                f"the emulator at {args.emulator} runs stack {health.get('stack')}, not {args.stack}",
                f"pass --stack {health.get('stack')}",
            )
        endpoint = health["s3_endpoint"]
    region = config.primary_region
    # No credentials, no access: python -m ops says so in a line; anything else is a bug, with its trace.
    client = secrets_client(region, endpoint)
    try:
        name = args.secret or find_secret(client, config.name_prefix)
    except SecretLookupError as error:
        print(f"ops sign: {error}", file=sys.stderr)
        return 1
    kid, secret = read_secret(client, name)
    expires = None
    if args.expires_in:
        expires = (
            emulator_expiry(args.emulator, args.expires_in) if args.emulator else int(time.time()) + args.expires_in
        )
    try:
        signed = signing.sign(args.url, secret, kid, expires=expires)
    except ValueError as error:
        raise cli.Usage(f"cannot sign {args.url!r}: {error}") from None
    print(signed)
    return 0

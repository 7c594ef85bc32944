"""`python -m ops sign URL --stack S`: a signed image URL, with the stack's current key.

The key comes from the stack's Secrets Manager secret (`<namePrefix>-signing-<suffix>`, written
by `UrlSigning`; the suffix is drawn per deployment, so the secret is found by its prefix), on AWS
with the caller's credentials, or from a running emulator's (`--emulator http://127.0.0.1:8080`:
its moto endpoint holds the same secret). Apps do the same with
`edge.signing.sign(url, secret, kid, expires=...)`, reading the secret the stack exports
(`signing_secret`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from typing import Any

from components.config import ConfigError, from_stack_file
from components.signing import SecretLookupError, find_secret, secret_prefix
from edge import signing


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops sign", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a path with its query (/products/shoe.jpg?w=800) or a whole URL")
    parser.add_argument("--stack", required=True, help="the stack whose key signs (its Pulumi.<stack>.yaml)")
    parser.add_argument("--expires-in", type=int, default=None, metavar="SECONDS", help="refuse the URL after this")
    parser.add_argument("--emulator", default=None, metavar="URL", help="sign with a running emulator's key")
    args = parser.parse_args(argv)
    try:
        config = from_stack_file(args.stack)
    except (ConfigError, FileNotFoundError) as error:
        print(f"ops sign: {error}", file=sys.stderr)
        return 2
    if config.signing == "off":
        print(f"ops sign: stack {args.stack} has image-cdn:signing off: nothing checks signatures", file=sys.stderr)
        return 2
    if args.expires_in is not None and args.expires_in < 1:
        print("ops sign: --expires-in must be a positive number of seconds", file=sys.stderr)
        return 2
    endpoint = None
    if args.emulator:
        with urllib.request.urlopen(args.emulator.rstrip("/") + "/_localcdn/health", timeout=10) as answer:
            endpoint = json.loads(answer.read())["s3_endpoint"]
    region = config.primary_region
    try:
        client = secrets_client(region, endpoint)
        name = find_secret(client, config.name_prefix)
        kid, secret = read_secret(client, name)
    except SecretLookupError as error:
        print(f"ops sign: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # no credentials, no access: one line, not a trace
        where = f"{secret_prefix(config.name_prefix)}* in {region}"
        print(f"ops sign: cannot read the secret {where}: {error}", file=sys.stderr)
        return 1
    expires = int(time.time()) + args.expires_in if args.expires_in else None
    print(signing.sign(args.url, secret, kid, expires=expires))
    return 0

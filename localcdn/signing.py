"""The emulator's URL signing: what `UrlSigning` deploys, made locally.

The same shapes as on AWS: the keys of `components.signing.slots` (two at a time), each
written to the distribution's KeyValueStore model as `signing-key-<kid>`, and the secret
`<prefix>-signing-<suffix>` (`{"current": kid, "keys": {kid: secret}}`) in moto's Secrets
Manager, on the emulator's moto endpoint, where `python -m ops sign --emulator URL` finds it
by prefix and reads it as it does on AWS. The suffix, like the keys, is random per run: each
run is a new deployment (UrlSigning draws the suffix once per deployment).
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import boto3

from components.config.derive import SUFFIX_BYTES, secret_name, slots
from edge import signing
from localcdn.kvs import KeyValueStore


class LocalSigning:
    """Keys in the store and the secret; `rotate` is `signingKeyGeneration + 1` and `pulumi up`."""

    def __init__(self, kvs: KeyValueStore, endpoint: str, region: str, name_prefix: str, generation: int = 1):
        self.kvs = kvs
        self.name = secret_name(name_prefix, secrets.token_hex(SUFFIX_BYTES))
        self._lock = threading.Lock()
        self._secrets = boto3.client(
            "secretsmanager",
            region_name=region,
            endpoint_url=endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        self.generation = 0
        self.keys: dict[str, str] = {}
        self._apply(generation)

    def _apply(self, generation: int) -> None:
        wanted = {str(kid) for kid in slots(generation).values()}
        for kid in sorted(set(self.keys) - wanted):
            self.kvs.delete(signing.KEY_PREFIX + kid)
            del self.keys[kid]
        for kid in sorted(wanted - set(self.keys)):
            self.keys[kid] = secrets.token_hex(32)
            self.kvs.put(signing.KEY_PREFIX + kid, self.keys[kid])
        self.generation = generation
        document = json.dumps({"current": str(generation), "keys": self.keys}, sort_keys=True)
        if not self._secrets.list_secrets(Filters=[{"Key": "name", "Values": [self.name]}])["SecretList"]:
            self._secrets.create_secret(Name=self.name, SecretString=document)
        else:
            self._secrets.put_secret_value(SecretId=self.name, SecretString=document)

    def rotate(self) -> dict[str, Any]:
        with self._lock:
            self._apply(self.generation + 1)
            return self.state()

    def state(self) -> dict[str, Any]:
        return {"current": str(self.generation), "kids": sorted(self.keys, key=int), "secret": self.name}

    def sign(self, url: str, expires: int | None = None) -> str:
        kid = str(self.generation)
        return signing.sign(url, self.keys[kid], kid, expires=expires)

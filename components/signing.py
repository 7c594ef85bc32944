"""UrlSigning: the keys that sign image URLs, held in Secrets Manager and in a CloudFront KeyValueStore."""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from edge.signing import KEY_PREFIX

# Secrets Manager keeps a deleted secret this long before it is gone (7 is its minimum).
RECOVERY_DAYS = 7


def slots(generation: int) -> dict[str, int]:
    """Which key id each of the two slots holds at a generation: odd ids in "a", even ids in "b".

    The current key is `generation`; the previous one (`generation - 1`) stays in the other
    slot, so a URL signed before a rotation keeps working until the rotation after it.
    """
    held = {("a" if kid % 2 else "b"): kid for kid in (generation, generation - 1) if kid >= 1}
    return dict(sorted(held.items()))


class UrlSigningArgs(TypedDict):
    """Arguments of `UrlSigning`."""

    name_prefix: str
    """Prefix of the store's and the secret's names."""
    generation: int
    """The current key id (stack config `signingKeyGeneration`); raise it by one to rotate."""
    region: NotRequired[str]
    """Where the secret lives (the primary region: where apps and `ops sign` read it)."""


class UrlSigning(pulumi.ComponentResource):
    """Two HMAC keys, generated here (random), written to a Secrets Manager secret that signers
    read (`{"current": kid, "keys": {kid: secret}}`) and to a KeyValueStore that the viewer
    function reads (`signing-key-<kid>`).

    Rotation: `pulumi config set signingKeyGeneration <n+1>` then `pulumi up`. The slot of
    key n-1 gets a new key n+1 (Pulumi replaces the password whose keeper changed), key n stays,
    and signers switch to n+1 as soon as they read the secret again.
    """

    key_value_store_arn: pulumi.Output[str]
    """The CloudFront KeyValueStore the viewer function reads the keys from."""
    key_ids: pulumi.Output[list[str]]
    """The store's key resources' ids: give them to EdgeFunctions (`signing_key_ids`)."""
    secret_arn: pulumi.Output[str]
    """The Secrets Manager secret signers read (`{"current": kid, "keys": {kid: secret}}`)."""
    secret_name: pulumi.Output[str]
    """Its name (what `ops sign` and the catalogue read)."""

    def __init__(self, name: str, args: UrlSigningArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:UrlSigning", name, None, opts)
        prefix, generation = args["name_prefix"], args["generation"]
        child = pulumi.ResourceOptions(parent=self)
        self.store = aws.cloudfront.KeyValueStore(
            f"{name}-keys", name=f"{prefix}-signing", comment="image-cdn URL signing keys", opts=child
        )
        self.passwords = {
            slot: random.RandomPassword(
                f"{name}-key-{slot}",
                length=64,
                special=False,
                keepers={"kid": str(kid)},
                opts=child,
            )
            for slot, kid in slots(generation).items()
        }
        self.keys = [
            aws.cloudfront.KeyvaluestoreKey(
                f"{name}-kvs-{slot}",
                key_value_store_arn=self.store.arn,
                key=f"{KEY_PREFIX}{kid}",
                value=self.passwords[slot].result,
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            for slot, kid in slots(generation).items()
        ]
        region = args.get("region")
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=f"{prefix}-signing",
            description="image-cdn URL signing keys: {current, keys: {kid: secret}}",
            recovery_window_in_days=RECOVERY_DAYS,
            region=region,
            opts=child,
        )
        held = slots(generation)

        def document(secrets: list[str]) -> str:
            keys = {str(kid): secret for kid, secret in zip(held.values(), secrets, strict=True)}
            return json.dumps({"current": str(generation), "keys": keys}, sort_keys=True)

        # The passwords are secret outputs, and so is anything computed from them.
        secret_string = pulumi.Output.all(*(self.passwords[slot].result for slot in held)).apply(document)
        self.version = aws.secretsmanager.SecretVersion(
            f"{name}-secret-version",
            secret_id=self.secret.id,
            secret_string=secret_string,
            region=region,
            opts=child,
        )
        self.key_value_store_arn = self.store.arn
        self.key_ids = pulumi.Output.all(*(key.id for key in self.keys))
        self.secret_arn = self.secret.arn
        self.secret_name = self.secret.name
        self.register_outputs(
            {
                "key_value_store_arn": self.key_value_store_arn,
                "key_ids": self.key_ids,
                "secret_arn": self.secret_arn,
                "secret_name": self.secret_name,
            }
        )

"""UrlSigning: the keys that sign image URLs, held in Secrets Manager and in a CloudFront KeyValueStore."""

import json
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config.derive import (  # noqa: F401 - the names the signers and the emulator import from here too
    RECOVERY_DAYS,
    SUFFIX_BYTES,
    SecretLookupError,
    find_secret,
    is_secret_name,
    secret_name,
    secret_prefix,
    slots,
)
from edge.signing import KEY_PREFIX


class UrlSigningArgs(TypedDict):
    """Arguments of `UrlSigning`."""

    name_prefix: str
    """Prefix of the store's name (`<prefix>-signing`) and of the secret's (`<prefix>-signing-<suffix>`)."""
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
    and signers switch to n+1 as soon as they read the secret again. The secret's new value is
    written only once the store holds the new key, so a signer never signs with a key the edge
    does not know yet.

    The secret's name is `<prefix>-signing-<suffix>`, the suffix drawn once (a RandomId child):
    a destroyed stack's secret keeps its name for the recovery window, and the next `pulumi up`
    of the same stack makes a secret of another name. Signers find it by the outputs, or by
    prefix (`python -m ops sign`).
    """

    key_value_store_arn: pulumi.Output[str]
    """The CloudFront KeyValueStore the viewer function reads the keys from."""
    key_ids: pulumi.Output[list[str]]
    """The store's key resources' ids: give them to EdgeFunctions (`signing_key_ids`)."""
    secret_arn: pulumi.Output[str]
    """The Secrets Manager secret signers read (`{"current": kid, "keys": {kid: secret}}`); known once
    it holds the keys."""
    secret_name: pulumi.Output[str]
    """Its name, `<prefix>-signing-<suffix>` (what `ops sign` finds by prefix); known once it holds the keys."""

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
        # No keepers: the suffix stays for the stack's life; only a destroy (which drops it) and
        # the next up change it (Random Provider, Pulumi Registry: random values are held steady
        # "until the inputs are changed").
        self.suffix = random.RandomId(f"{name}-suffix", byte_length=SUFFIX_BYTES, opts=child)
        region = args.get("region")
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=self.suffix.hex.apply(lambda suffix: secret_name(prefix, suffix)),
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
        # After the store's keys: the secret names the new current key only once the viewer
        # function can verify it (the secret is what signers read; the store is what the edge reads).
        # A plain `dependsOn` edge: a key replaced delete-before-replace does not force the version's
        # replacement too (pulumi/pulumi, step_generator.go, calculateDependentReplacements: "the edge
        # ... may be a simple `dependsOn` edge such that a change to B does not actually influence any
        # of B's input properties"); the version is updated after the keys.
        self.version = aws.secretsmanager.SecretVersion(
            f"{name}-secret-version",
            secret_id=self.secret.id,
            secret_string=secret_string,
            region=region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.keys),
        )
        self.key_value_store_arn = self.store.arn
        self.key_ids = pulumi.Output.all(*(key.id for key in self.keys))
        # Known once the secret holds its value: what takes the ARN (the catalogue's API) is
        # deployed after it, never pointed at a secret without a current version.
        self.secret_arn = pulumi.Output.all(self.secret.arn, self.version.id).apply(lambda v: str(v[0]))
        self.secret_name = pulumi.Output.all(self.secret.name, self.version.id).apply(lambda v: str(v[0]))
        self.register_outputs(
            {
                "key_value_store_arn": self.key_value_store_arn,
                "key_ids": self.key_ids,
                "secret_arn": self.secret_arn,
                "secret_name": self.secret_name,
            }
        )

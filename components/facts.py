"""What the deployed stack and its local stand-ins (the emulator, the operator commands) share,
without importing the Pulumi SDK: `make serve` and the operator commands run without it installed
(tests/test_serve_install.py). The components import these from here."""

import re
from typing import Any

from edge.settings import CDN_CACHE_SECONDS

# -- FailoverDistribution ------------------------------------------------------------------------

FAILOVER_STATUS_CODES = [500, 502, 503, 504]
ERROR_CODES = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]
ONE_YEAR = CDN_CACHE_SECONDS
ONE_DAY = 86_400

# -- UrlSigning ------------------------------------------------------------------------------------

# Secrets Manager keeps a deleted secret this long before it is gone (7 is its minimum).
RECOVERY_DAYS = 7

# The secret's name ends in 8 hex characters drawn once per stack (a RandomId of 4 bytes, kept in
# state). A secret scheduled for deletion keeps its name for its whole recovery window: CreateSecret
# answers "You can't create this secret because a secret with this name is already scheduled for
# deletion" (quoted in terraform-provider-aws issue #10259, "aws_secretsmanager_secret does not
# rebuild deleted secret"), and even a forced delete frees the name only after "a short delay"
# (DeleteSecret, AWS Secrets Manager API Reference, ForceDeleteWithoutRecovery). With a fixed name,
# a destroyed stack's secret would block the next `pulumi up` of the same stack for RECOVERY_DAYS;
# a destroy drops the RandomId and the next up draws another name, so the window stays 7 days (the
# policy pack's "no secret without a recovery window"). Not 6 characters: "Do not end your secret
# name with a hyphen followed by six characters" (CreateSecret, Name: Secrets Manager appends
# those to the ARN, and a partial-ARN lookup would misread them).
SUFFIX_BYTES = 4
_SUFFIX = re.compile(r"[0-9a-f]{8}")


def secret_prefix(name_prefix: str) -> str:
    """What every name of the stack's signing secret starts with: `<prefix>-signing-`."""
    return f"{name_prefix}-signing-"


def secret_name(name_prefix: str, suffix: str) -> str:
    """The signing secret's name: `<prefix>-signing-<8 hex characters>`."""
    return secret_prefix(name_prefix) + suffix


def is_secret_name(name: str, name_prefix: str) -> bool:
    """Whether `name` is one UrlSigning (or the emulator) gives the stack's secret."""
    prefix = secret_prefix(name_prefix)
    return name.startswith(prefix) and _SUFFIX.fullmatch(name[len(prefix) :]) is not None


class SecretLookupError(Exception):
    """No live signing secret for a prefix, or more than one."""


def find_secret(client: Any, name_prefix: str) -> str:
    """The name of the stack's live signing secret, found with `client` (boto3's Secrets Manager).

    ListSecrets with a `name` filter: "Prefix match, case-sensitive" (Filter, AWS Secrets Manager
    API Reference), and "By default, secrets scheduled for deletion aren't included"
    (ListSecrets, IncludePlannedDeletion): a destroyed stack's secret, in its recovery window, is
    left out. ListSecrets "might not reflect changes from the last five minutes" (same page), so
    two names are checked again with DescribeSecret, which is current: one with a DeletedDate is
    being deleted. None, or more than one live: SecretLookupError, naming them.
    """
    prefix = secret_prefix(name_prefix)
    where = f"{prefix}* in {getattr(getattr(client, 'meta', None), 'region_name', None) or 'its region'}"
    pages = client.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [prefix]}])
    listed = {str(entry["Name"]) for page in pages for entry in page["SecretList"]}
    names = sorted(name for name in listed if is_secret_name(name, name_prefix))
    if len(names) > 1:
        names = [name for name in names if not client.describe_secret(SecretId=name).get("DeletedDate")]
    if not names:
        raise SecretLookupError(f"no live secret {where} (is the stack up? ListSecrets can lag by five minutes)")
    if len(names) > 1:
        raise SecretLookupError(
            f"{len(names)} live secrets match {where}: {', '.join(names)}; one stack per prefix: delete the stray one"
        )
    return names[0]


def slots(generation: int) -> dict[str, int]:
    """Which key id each of the two slots holds at a generation: odd ids in "a", even ids in "b".

    The current key is `generation`; the previous one (`generation - 1`) stays in the other
    slot, so a URL signed before a rotation keeps working until the rotation after it.
    """
    held = {("a" if kid % 2 else "b"): kid for kid in (generation, generation - 1) if kid >= 1}
    return dict(sorted(held.items()))

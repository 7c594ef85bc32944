"""image-cdn's policy pack: `pulumi preview --policy-pack policy` (see README, Security)."""

from pack import policies  # type: ignore[import-not-found]
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name="image-cdn", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())

"""DistributionReadGrant: the bucket policy that lets one distribution read an origin bucket.

Python programs call `ImageOrigin.allow_distribution` / `FallbackBucket.allow_distribution`;
a program in another language cannot call a component's method through the package, and makes
this component instead, with the same policy (`buckets.cloudfront_read_policy`).
"""

from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.buckets import cloudfront_read_policy
from edge.settings import VARIANT_PREFIX

# What CloudFront may read in each kind of origin bucket: never the originals.
READABLE = {"primary": VARIANT_PREFIX + "*", "fallback": "*"}


class DistributionReadGrantArgs(TypedDict):
    """Arguments of `DistributionReadGrant`."""

    origin: str
    """primary (an ImageOrigin: CloudFront may read `variants/` only) or fallback (a FallbackBucket: every key)."""
    bucket_name: pulumi.Input[str]
    """The bucket's `bucket_name` output (known once its public access block is in place)."""
    bucket_arn: pulumi.Input[str]
    """The bucket's `bucket_arn` output."""
    region: str
    """The bucket's region."""
    distribution_arn: pulumi.Input[str]
    """FailoverDistribution's `distribution_arn`: the one distribution (through its OAC) that may read."""


class DistributionReadGrant(pulumi.ComponentResource):
    """TLS only, and exactly one distribution may read what CloudFront serves from this bucket."""

    policy_id: pulumi.Output[str]
    """The bucket policy's id (the bucket's name)."""

    def __init__(self, name: str, args: DistributionReadGrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:DistributionReadGrant", name, None, opts)
        if args["origin"] not in READABLE:
            raise ValueError(
                f"DistributionReadGrant origin: expected one of {', '.join(READABLE)}, got {args['origin']!r}"
            )
        readable = READABLE[args["origin"]]
        policy = pulumi.Output.all(args["bucket_arn"], args["distribution_arn"]).apply(
            lambda arns: cloudfront_read_policy(arns[0], readable, arns[1])
        )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=args["bucket_name"],
            region=args["region"],
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.policy_id = self.policy.id
        self.register_outputs({"policy_id": self.policy_id})

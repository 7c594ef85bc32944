"""FallbackBucket: pre-built standard variants in a second region."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.buckets import grant_cloudfront, harden


class FallbackBucketArgs(TypedDict):
    """Arguments of `FallbackBucket`."""

    bucket_name: str
    """Globally unique bucket name."""
    region: str
    """A region other than the primary's (pulumi-aws 7 per-resource region)."""


class FallbackBucket(pulumi.ComponentResource):
    """The secondary origin: `<key>/w_<W>_q_<Q>.<fmt>` for the standard set only.

    Same hardening as the primary; nothing expires (the sync job keeps it full and
    removes what no longer has an original). Call `allow_distribution` once the
    distribution exists.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]

    def __init__(self, name: str, args: FallbackBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:FallbackBucket", name, None, opts)
        self._name = name
        self._region = args["region"]
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args["bucket_name"],
            region=args["region"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._hardening = harden(name, self.bucket, args["region"], self)
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.regional_domain_name = self.bucket.bucket_regional_domain_name
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "regional_domain_name": self.regional_domain_name,
            }
        )

    def allow_distribution(self, distribution_arn: pulumi.Input[str]) -> aws.s3.BucketPolicy:
        """Let exactly this distribution (through its OAC) read the standard variants."""
        return grant_cloudfront(self._name, self.bucket, self._region, "*", distribution_arn, self, self._hardening)

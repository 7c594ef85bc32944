"""FallbackBucket: pre-built standard variants in a second region."""

from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.buckets import HardenedBucket

# Versioned like every bucket here, but its data is derived: a replaced standard variant
# stays recoverable this long (say, after a bad sync run), then goes.
NONCURRENT_DAYS = 7


class FallbackBucketArgs(TypedDict):
    """Arguments of `FallbackBucket`."""

    bucket_name: str
    """Globally unique bucket name."""
    region: str
    """A region other than the primary's (pulumi-aws 7 per-resource region)."""


class FallbackBucket(HardenedBucket):
    """The secondary origin: `<key>/w_<W>_q_<Q>.<fmt>` for the standard set only.

    Same hardening as the primary. Current variants never expire (the sync job keeps
    the set full and removes what no longer has an original); noncurrent versions go
    after `NONCURRENT_DAYS`, with their delete markers. Derived data only, so
    `pulumi destroy` empties and deletes it (`force_destroy`). Call
    `allow_distribution` once the distribution exists: CloudFront may then read every key.
    """

    # Declared again here, where Pulumi's analyser reads an output's docstring (its class's own source).
    bucket_name: pulumi.Output[str]
    """The bucket's name."""
    bucket_arn: pulumi.Output[str]
    """The bucket's ARN."""
    regional_domain_name: pulumi.Output[str]
    """The bucket's regional domain name: the fallback origin of FailoverDistribution."""

    def __init__(self, name: str, args: FallbackBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "image-cdn:index:FallbackBucket",
            name,
            args["bucket_name"],
            args["region"],
            "*",
            opts,
            force_destroy=True,
        )
        self.lifecycle = self._lifecycle(
            [
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-replaced-variants",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=NONCURRENT_DAYS
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
                )
            ]
        )
        self._done()

"""ImageOrigin: the primary bucket, holding `originals/` and `variants/`."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.buckets import HardenedBucket
from edge.settings import VARIANT_PREFIX


class ImageOriginArgs(TypedDict):
    """Arguments of `ImageOrigin`."""

    bucket_name: str
    """Globally unique bucket name."""
    region: str
    """The primary region."""
    variant_expiry_days: int
    """Days after which a stored variant (and a noncurrent version of one) expires."""
    protect: NotRequired[bool]
    """Refuse to delete the bucket and retain it on destroy (originals are the user's data); default False.
    Unprotected, `pulumi destroy` empties and deletes it, originals included."""


class ImageOrigin(HardenedBucket):
    """The originals + variants bucket CloudFront fails over from.

    Uploaders write `originals/<key>`; the resize function writes `variants/...`.
    Hardened (owner-enforced, public access blocked, versioned, encrypted, TLS only),
    and readable only by this service's distribution, and only under `variants/`:
    originals are never served as they are (they may be huge and carry GPS data).
    Call `allow_distribution` once the distribution exists.
    """

    # Declared again here, where Pulumi's analyser reads an output's docstring (its class's own source).
    bucket_name: pulumi.Output[str]
    """The bucket's name."""
    bucket_arn: pulumi.Output[str]
    """The bucket's ARN."""
    regional_domain_name: pulumi.Output[str]
    """The bucket's regional domain name: the primary origin of FailoverDistribution."""

    def __init__(self, name: str, args: ImageOriginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "image-cdn:index:ImageOrigin",
            name,
            args["bucket_name"],
            args["region"],
            VARIANT_PREFIX + "*",
            opts,
            protect=args.get("protect", False),
            # Unprotected (dev): `pulumi destroy` removes the originals too. Protected
            # (prod): the bucket is retained, never emptied.
            force_destroy=not args.get("protect", False),
        )
        days = args["variant_expiry_days"]
        self.lifecycle = self._lifecycle(
            [
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-variants",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=VARIANT_PREFIX),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=days
                    ),
                )
            ]
        )
        self._done()

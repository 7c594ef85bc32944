"""ImageOrigin: the primary bucket, holding `originals/` and `variants/`."""

from __future__ import annotations

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
    """Refuse to delete the bucket (originals are the user's data); default False."""


class ImageOrigin(HardenedBucket):
    """The originals + variants bucket CloudFront fails over from.

    Uploaders write `originals/<key>`; the resize function writes `variants/...`.
    Hardened (owner-enforced, public access blocked, versioned, encrypted, TLS only),
    and readable only by this service's distribution, and only under `variants/`:
    originals are never served as they are (they may be huge and carry GPS data).
    Call `allow_distribution` once the distribution exists.
    """

    def __init__(self, name: str, args: ImageOriginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            "image-cdn:index:ImageOrigin",
            name,
            args["bucket_name"],
            args["region"],
            VARIANT_PREFIX + "*",
            opts,
            protect=args.get("protect", False),
        )
        days = args["variant_expiry_days"]
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=self.bucket.id,
            region=args["region"],
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-variants",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=VARIANT_PREFIX),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=days
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=7
                    ),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._hardening),
        )
        self._done()

"""ImageOrigin: the primary bucket, holding `originals/` and `variants/`."""

from __future__ import annotations

from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from components.buckets import grant_cloudfront, harden
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


class ImageOrigin(pulumi.ComponentResource):
    """The originals + variants bucket CloudFront fails over from.

    Uploaders write `originals/<key>`; the resize function writes `variants/...`.
    Hardened (owner-enforced, public access blocked, versioned, encrypted, TLS only),
    and readable only by this service's distribution, and only under `variants/`:
    originals are never served as they are (they may be huge and carry GPS data).
    Call `allow_distribution` once the distribution exists.
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]

    def __init__(self, name: str, args: ImageOriginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:ImageOrigin", name, None, opts)
        self._name = name
        self._region = args["region"]
        protect = args.get("protect", False)
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args["bucket_name"],
            region=args["region"],
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self._hardening = harden(name, self.bucket, args["region"], self)
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
        """Let exactly this distribution (through its OAC) read `variants/*`."""
        return grant_cloudfront(
            self._name, self.bucket, self._region, VARIANT_PREFIX + "*", distribution_arn, self, self._hardening
        )

"""Hardening shared by every bucket the service owns, and their CloudFront read grant."""

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def harden(name: str, bucket: aws.s3.Bucket, region: str, parent: pulumi.Resource) -> list[pulumi.Resource]:
    """Owner-enforced, all public access blocked, versioned, encrypted at rest."""
    opts = pulumi.ResourceOptions(parent=parent)
    return [
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            region=region,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=opts,
        ),
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            region=region,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        ),
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            region=region,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=opts,
        ),
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            region=region,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    # SSE-S3. (An S3 Bucket Key only changes anything with SSE-KMS, so none is set.)
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=opts,
        ),
    ]


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    """The statement every bucket policy here starts with: nothing over plain http."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def cloudfront_read_policy(bucket_arn: str, readable: str, distribution_arn: str) -> str:
    """TLS only; CloudFront (this distribution's OAC only) may read `readable` and list.

    ListBucket lets a missing key answer 404 rather than 403, which the edge code
    treats as "not built yet"; viewers can only issue object GETs through CloudFront.
    """
    from_this_distribution = {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    statements: list[dict[str, Any]] = [
        deny_insecure_transport(bucket_arn),
        {
            "Sid": "CloudFrontReadsVariants",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/{readable}",
            "Condition": from_this_distribution,
        },
        {
            "Sid": "CloudFrontSeesMissingKeysAs404",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": from_this_distribution,
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def attach_policy(
    name: str,
    bucket: aws.s3.Bucket,
    region: str,
    policy: pulumi.Input[str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> aws.s3.BucketPolicy:
    """A bucket's policy, attached after its public access block (which it must not fight)."""
    return aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.id,
        region=region,
        policy=policy,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
    )


class HardenedBucket(pulumi.ComponentResource):
    """What ImageOrigin and FallbackBucket share: the bucket, its hardening, its outputs,
    and the CloudFront read grant. Subclasses add their own children, then `_done()`."""

    bucket_name: pulumi.Output[str]
    """The bucket's name."""
    bucket_arn: pulumi.Output[str]
    """The bucket's ARN."""
    regional_domain_name: pulumi.Output[str]
    """The bucket's regional domain name (the distribution's S3 origin)."""

    def __init__(
        self,
        type_: str,
        name: str,
        bucket_name: str,
        region: str,
        readable: str,
        opts: pulumi.ResourceOptions | None,
        *,
        protect: bool = False,
        force_destroy: bool = False,
    ):
        super().__init__(type_, name, None, opts)
        self._name, self._region, self._readable = name, region, readable
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=bucket_name,
            region=region,
            # `pulumi destroy` empties it (every version) before deleting it; without this,
            # a bucket with objects refuses to go and the destroy fails.
            force_destroy=force_destroy,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self._hardening = harden(name, self.bucket, region, self)
        # Known once the hardening is in place: what a program attaches with the name (a bucket
        # policy from another language's program, DistributionReadGrant) comes after the
        # public access block it must not race.
        self.bucket_name = pulumi.Output.all(self.bucket.bucket, *(r.urn for r in self._hardening)).apply(
            lambda values: str(values[0])
        )
        self.bucket_arn = self.bucket.arn
        self.regional_domain_name = self.bucket.bucket_regional_domain_name

    def _lifecycle(
        self, rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs]
    ) -> aws.s3.BucketLifecycleConfiguration:
        """The bucket's lifecycle rules, plus the one every bucket gets: abort uploads left incomplete."""
        abort = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        )
        return aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-lifecycle",
            bucket=self.bucket.id,
            region=self._region,
            rules=[*rules, abort],
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._hardening),
        )

    def _done(self) -> None:
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "regional_domain_name": self.regional_domain_name,
            }
        )

    def allow_distribution(self, distribution_arn: pulumi.Input[str]) -> aws.s3.BucketPolicy:
        """TLS only, and exactly this distribution (through its OAC) may read what CloudFront serves."""
        policy = pulumi.Output.all(self.bucket.arn, distribution_arn).apply(
            lambda arns: cloudfront_read_policy(arns[0], self._readable, arns[1])
        )
        return attach_policy(self._name, self.bucket, self._region, policy, self, self._hardening)

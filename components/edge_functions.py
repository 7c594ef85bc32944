"""EdgeFunctions: the viewer CloudFront Function and the two Lambda@Edge functions."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import bundle, iam
from components.image_settings import ImageSettings, to_settings
from edge.resize import REFUSED_MARKER
from edge.settings import ORIGINAL_PREFIX, VARIANT_PREFIX, Settings

EDGE_REGION = "us-east-1"
# The Lambda@Edge functions' names end in 8 hex characters (a RandomId of 4 bytes, drawn once and
# kept in state): a retained function of a destroyed stack keeps its name for hours ("You can delete
# a Lambda@Edge function only when the replicas of the function have been deleted by CloudFront ...
# Replicas are typically deleted within a few hours", Delete Lambda@Edge functions and replicas,
# CloudFront Developer Guide), and the next `pulumi up` of the same stack draws another suffix.
NAME_SUFFIX_BYTES = 4


def function_name(name_prefix: str, role: str, suffix: str) -> str:
    """A Lambda@Edge function's name: `<prefix>-<role>-<suffix>` (at most 64 characters, Lambda's limit)."""
    return f"{name_prefix}-{role}-{suffix}"


class EdgeFunctionsArgs(TypedDict):
    """Arguments of `EdgeFunctions`."""

    name_prefix: str
    """Prefix of the function names (`<prefix>-normalize`, `<prefix>-rewrite-<suffix>`, `<prefix>-resize-<suffix>`;
    at most 47 characters, so that a name stays within Lambda's 64)."""
    settings: ImageSettings
    """Baked into each bundle as config.json and into the viewer function's CONFIG line."""
    primary_bucket_arn: pulumi.Input[str]
    """The ImageOrigin bucket's ARN (resize reads `originals/*` and writes `variants/*` there)."""
    fallback_bucket_arn: pulumi.Input[str]
    """The FallbackBucket's ARN (resize may read it for a substitute)."""
    rewrite_memory_mb: NotRequired[int]
    """Memory of `rewrite` (origin request); default 128."""
    resize_memory_mb: NotRequired[int]
    """Memory of `resize` (origin response, the renderer); default 1536."""
    resize_timeout_seconds: NotRequired[int]
    """At most 30 (origin events); default 30."""
    log_retention_days: NotRequired[int]
    """Days the functions' log groups keep their events; default 14."""
    log_regions: NotRequired[Sequence[str]]
    """Regions whose `/aws/lambda/us-east-1.<name>` log groups are created with the retention."""
    key_value_store_arn: NotRequired[pulumi.Input[str]]
    """The signing keys' KeyValueStore, associated with the viewer function (signing on)."""
    signing_key_ids: NotRequired[pulumi.Input[Sequence[str]]]
    """The store's keys (UrlSigning's `key_ids`): the viewer function is published after them."""
    service_key: NotRequired[pulumi.Input[str]]
    """With a signed third-party primary (thumbor, imgproxy): the URL signing secret, baked into the
    rewrite bundle only (the one function at the edge that builds the service's URLs)."""


class EdgeFunctions(pulumi.ComponentResource):
    """`normalize` (viewer request), `rewrite` (origin request), `resize` (origin response).

    Lambda@Edge rules: us-east-1, a published numbered version, x86_64, no environment
    variables (config.json travels in the bundle), a role trusted by lambda and
    edgelambda. Each function has its own role: rewrite touches no S3 at all; resize
    reads `originals/*`, writes `variants/*` and the fallback bucket, nothing else.

    Destroying: CloudFront deletes the replicas hours after the last association is
    gone, and until then AWS refuses to delete the function. The functions are
    therefore created with `skip_destroy`: `pulumi destroy` forgets them, and they
    are deleted later (README, "Destroying a stack"). Their names end in a suffix drawn
    once (a RandomId child, `<prefix>-rewrite-<suffix>`): a destroy drops it and the next
    `pulumi up` draws another, so the forgotten functions never block a new stack of the
    same name. The log groups outlive the distribution on a destroy (the functions depend
    on them), so no replica can log into a deleted group and have AWS create it again.
    """

    viewer_function_arn: pulumi.Output[str]
    """The viewer-request CloudFront Function (`normalize`)."""
    viewer_function_name: pulumi.Output[str]
    """Its name (its metrics' FunctionName)."""
    rewrite_qualified_arn: pulumi.Output[str]
    """`rewrite`'s published version, for the origin-request association."""
    resize_qualified_arn: pulumi.Output[str]
    """`resize`'s published version, for the origin-response association."""
    rewrite_version: pulumi.Output[str]
    """`rewrite`'s version number."""
    resize_version: pulumi.Output[str]
    """`resize`'s version number."""
    rewrite_function_name: pulumi.Output[str]
    """`rewrite`'s name; its replicas log and count as `us-east-1.<name>` in each region."""
    resize_function_name: pulumi.Output[str]
    """`resize`'s name; its replicas log and count as `us-east-1.<name>` in each region."""
    resize_log_group: pulumi.Output[str]
    """The log group `resize` writes in each of `log_regions` (known once every region's group exists)."""

    def __init__(self, name: str, args: EdgeFunctionsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:EdgeFunctions", name, None, opts)
        prefix, settings = args["name_prefix"], to_settings(args["settings"])
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        store = args.get("key_value_store_arn")
        self.viewer = aws.cloudfront.Function(
            f"{name}-normalize",
            name=f"{prefix}-normalize",
            runtime="cloudfront-js-2.0",
            comment="viewer request -> canonical variant path",
            code=_after(bundle.viewer_code(settings), args.get("signing_key_ids")),
            publish=True,
            key_value_store_associations=[store] if store is not None else None,
            opts=child,
        )

        # No keepers: the suffix stays for the stack's life; only a destroy (which drops it) and the
        # next up change it (Random Provider, Pulumi Registry: random values are held steady "until
        # the inputs are changed").
        self.name_suffix = random.RandomId(f"{name}-name-suffix", byte_length=NAME_SUFFIX_BYTES, opts=child)
        rewrite_name = self.name_suffix.hex.apply(lambda suffix: function_name(prefix, "rewrite", suffix))
        resize_name = self.name_suffix.hex.apply(lambda suffix: function_name(prefix, "resize", suffix))
        rewrite_policy = pulumi.Output.all(account, rewrite_name).apply(
            lambda values: iam.document(iam.edge_logs(values[0], values[1]))
        )
        self.rewrite_role = self._role(f"{name}-rewrite", rewrite_policy)
        resize_policy = pulumi.Output.all(
            account, resize_name, args["primary_bucket_arn"], args["fallback_bucket_arn"]
        ).apply(lambda values: iam.document(*_resize_grants(values[0], values[1], values[2], values[3], settings)))
        self.resize_role = self._role(f"{name}-resize", resize_policy)

        groups = {
            (role, region): aws.cloudwatch.LogGroup(
                f"{name}-{role}-logs-{region}",
                name=function.apply(lambda f: f"/aws/lambda/{EDGE_REGION}.{f}"),
                region=region,
                retention_in_days=args.get("log_retention_days", 14),
                opts=child,
            )
            for role, function in (("rewrite", rewrite_name), ("resize", resize_name))
            for region in args.get("log_regions", [EDGE_REGION])
        }
        self.log_groups = list(groups.values())

        self.rewrite = self._function(
            f"{name}-rewrite",
            rewrite_name,
            bundle.handler("rewrite"),
            bundle.keyed_archive(args.get("service_key"), lambda k: bundle.build("rewrite", settings.with_key(k))),
            self.rewrite_role[0],
            memory=args.get("rewrite_memory_mb", 128),
            timeout=5,
            after=[self.rewrite_role[1], *(g for (role, _), g in groups.items() if role == "rewrite")],
        )
        self.resize = self._function(
            f"{name}-resize",
            resize_name,
            bundle.handler("resize"),
            pulumi.Output.from_input(bundle.build("resize", settings, vendor=bundle.resize_wheels(settings))),
            self.resize_role[0],
            memory=args.get("resize_memory_mb", 1536),
            timeout=args.get("resize_timeout_seconds", 30),
            after=[self.resize_role[1], *(g for (role, _), g in groups.items() if role == "resize")],
        )

        self.viewer_function_arn = self.viewer.arn
        self.rewrite_qualified_arn = self.rewrite.qualified_arn
        self.resize_qualified_arn = self.resize.qualified_arn
        self.rewrite_version = self.rewrite.version
        self.resize_version = self.resize.version
        self.viewer_function_name = self.viewer.name
        self.rewrite_function_name = self.rewrite.name
        self.resize_function_name = self.resize.name
        resize_groups = [group.name for (role, _), group in groups.items() if role == "resize"]
        self.resize_log_group = pulumi.Output.all(*resize_groups).apply(lambda names: names[0])
        self.register_outputs(
            {
                "viewer_function_name": self.viewer_function_name,
                "rewrite_function_name": self.rewrite_function_name,
                "resize_function_name": self.resize_function_name,
                "resize_log_group": self.resize_log_group,
                "viewer_function_arn": self.viewer_function_arn,
                "rewrite_qualified_arn": self.rewrite_qualified_arn,
                "resize_qualified_arn": self.resize_qualified_arn,
                "rewrite_version": self.rewrite_version,
                "resize_version": self.resize_version,
            }
        )

    def _role(self, name: str, policy: pulumi.Output[str]) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(iam.EDGE_TRUST, sort_keys=True),
            description="Lambda@Edge execution role (image-cdn)",
            opts=pulumi.ResourceOptions(parent=self),
        )
        grants = aws.iam.RolePolicy(
            f"{name}-policy", role=role.id, policy=policy, opts=pulumi.ResourceOptions(parent=self)
        )
        return role, grants

    def _function(
        self,
        name: str,
        function_name: pulumi.Input[str],
        handler: str,
        archive: pulumi.Output[Path],
        role: aws.iam.Role,
        *,
        memory: int,
        timeout: int,
        after: list[pulumi.Resource],
    ) -> aws.lambda_.Function:
        # After its role's grants and its log groups; on a destroy, in the reverse order: the
        # distribution goes first (disabled, then deleted once Deployed: DeleteDistribution,
        # CloudFront API Reference), then the function is forgotten, then its log groups go.
        # Lambda@Edge logs "creating log streams in the AWS Regions where the functions are
        # invoked" (Edge function logs, CloudFront Developer Guide): a group deleted while the
        # distribution still serves would come back without a retention, outside the stack.
        return aws.lambda_.Function(
            name,
            name=function_name,
            region=EDGE_REGION,
            runtime=bundle.LAMBDA_RUNTIME,
            architectures=["x86_64"],
            handler=handler,
            role=role.arn,
            code=archive.apply(lambda path: pulumi.FileArchive(str(path))),
            source_code_hash=archive.apply(bundle.source_hash),
            publish=True,
            memory_size=memory,
            timeout=timeout,
            skip_destroy=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after),
        )


def _after(value: str, dependencies: pulumi.Input[Sequence[str]] | None) -> pulumi.Input[str]:
    """`value`, as an output of `dependencies`: what takes it is created after the resources behind
    them (a dependency another language's program can pass, where a resource list would not serialise)."""
    if dependencies is None:
        return value
    return pulumi.Output.from_input(dependencies).apply(lambda _: value)


def _resize_grants(
    account: str, function_name: str, primary: str, fallback: str, settings: Settings
) -> list[dict[str, object]]:
    """Read originals (and so the watermark), write variants, read its own refusals' markers; with
    `crop=faces`, DetectFaces; with a default image, read that image's own variants in both buckets.
    With a third-party primary: logs only."""
    if settings.primary_kind == "http":
        # A third-party service renders: resize only passes its answers (and the fallback's) through.
        return [iam.edge_logs(account, function_name)]
    grants = [
        iam.edge_logs(account, function_name),
        iam.allow("ReadOriginals", ["s3:GetObject"], [f"{primary}/{ORIGINAL_PREFIX}*"]),
        iam.allow("WriteVariants", ["s3:PutObject"], [f"{primary}/{VARIANT_PREFIX}*", f"{fallback}/*"]),
        # Its own memory of refused originals (`variants/<key>/_refused.<etag>`, edge/resize.py), read
        # before decoding: a refusal is paid for once. No other object under variants/.
        iam.allow("ReadRefusals", ["s3:GetObject"], [f"{primary}/{VARIANT_PREFIX}*/{REFUSED_MARKER}*"]),
    ]
    if "faces" in settings.crops:
        # DetectFaces has no resource-level permissions: "*" is the only resource it takes.
        grants.append(iam.allow("DetectFaces", ["rekognition:DetectFaces"], ["*"]))
    if settings.default_image:
        default = settings.default_image
        grants.append(
            iam.allow(
                "ReadDefaultImage",
                ["s3:GetObject"],
                [f"{primary}/{VARIANT_PREFIX}{default}/*", f"{fallback}/{default}/*"],
            )
        )
    return grants

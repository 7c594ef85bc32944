"""ImageCatalog: uploads straight to S3, metadata on upload, and queries, in the primary region."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from catalog import keys, store
from catalog.config import ROUTES, UPLOAD_SECONDS
from components import bundle, iam
from components.image_settings import ImageSettings, to_settings
from edge.settings import ORIGINAL_PREFIX

AUTHORIZERS = ("iam", "jwt")
# The API's routes (catalog/config.py, which catalog/api.py serves); every one is behind the authorizer.
# What the metadata function carries beside Pillow and pillow-heif.
API_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "latency": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
}


class ImageCatalogArgs(TypedDict):
    """Arguments of `ImageCatalog`."""

    name_prefix: str
    """Prefix of the API's, the functions' and the table's names."""
    settings: ImageSettings
    """Bundled as config.json: buckets, widths and image limits (the edge's)."""
    region: str
    """The primary region (the originals bucket's)."""
    primary_bucket_name: pulumi.Input[str]
    """The ImageOrigin bucket's name (uploads go to its `originals/`)."""
    primary_bucket_arn: pulumi.Input[str]
    """The ImageOrigin bucket's ARN."""
    cdn_url: pulumi.Input[str]
    """https://<distribution or custom domain>: what the API's image URLs start with."""
    auth: str
    """"iam" (SigV4-signed requests) or "jwt" (tokens of `jwt_issuer` for `jwt_audiences`)."""
    jwt_issuer: NotRequired[str]
    """With auth "jwt": the issuer URL of the tokens."""
    jwt_audiences: NotRequired[Sequence[str]]
    """With auth "jwt": the audiences a token must name one of."""
    jwt_scopes: NotRequired[Sequence[str]]
    """Scopes every route requires (a token must carry one of them)."""
    cors_origins: NotRequired[Sequence[str]]
    """Web origins that may call the API and POST uploads to the bucket from a browser; default ["*"]."""
    max_upload_bytes: NotRequired[int]
    """The largest upload the presigned POST allows; default 50 MiB."""
    signing_secret_arn: NotRequired[pulumi.Input[str]]
    """With signing on: the API reads the current key (GetSecretValue on this secret only) and signs its URLs."""
    protect: NotRequired[bool]
    """Point-in-time recovery, deletion protection and Pulumi `protect` on the table (prod)."""
    log_retention_days: NotRequired[int]
    """Days the functions' and the API's logs are kept; default 14."""
    metadata_memory_mb: NotRequired[int]
    """The metadata function's memory; default 1024."""


class ImageCatalog(pulumi.ComponentResource):
    """An HTTP API (API Gateway v2) for uploads and queries, a metadata function, and one DynamoDB table.

    - `POST /uploads` answers a presigned S3 POST for `originals/<new id>/<safe name>`
      (size range, image content type, owner and tags pinned, `UPLOAD_SECONDS` to use
      it): the bytes go from the client to S3, never through Lambda.
    - S3 sends the primary bucket's events to EventBridge (`SyncJob(eventbridge=True)`,
      or your own `BucketNotification` with `eventbridge=True`); a rule sends the
      `originals/` ones to the metadata function, which writes one item per original.
    - `GET /images`, `GET/PATCH/DELETE /images/{id}`: queries and owner-only writes.

    IAM: the metadata function reads `originals/*` (and lists that prefix, so a missing
    key is a 404), writes the table, and sends what it cannot process to its
    dead-letter queue; the API function reads and writes the table, and may create and
    delete only upload-shaped keys (`originals/<uuid>/*`): it signs the uploads it
    hands out, and deletes on its owner's request. API Gateway and EventBridge may
    invoke only their own function.
    """

    api_url: pulumi.Output[str]
    """The HTTP API's URL (`POST /uploads`, `GET /images`, ...)."""
    table_name: pulumi.Output[str]
    """The DynamoDB table of image metadata."""
    metadata_function_arn: pulumi.Output[str]
    """The function that writes an item per uploaded original."""
    api_function_arn: pulumi.Output[str]
    """The API's function."""
    dead_letter_queue_url: pulumi.Output[str]
    """What the metadata function could not process."""

    def __init__(self, name: str, args: ImageCatalogArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:ImageCatalog", name, None, opts)
        if args["auth"] not in AUTHORIZERS:
            raise ValueError(f"ImageCatalog auth: expected one of {', '.join(AUTHORIZERS)}, got {args['auth']!r}")
        if args["auth"] == "jwt" and not (args.get("jwt_issuer") and args.get("jwt_audiences")):
            raise ValueError("ImageCatalog auth jwt: expected jwt_issuer and jwt_audiences")
        child = pulumi.ResourceOptions(parent=self)
        prefix, region, settings = args["name_prefix"], args["region"], to_settings(args["settings"])
        protect = args.get("protect", False)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        origins = list(args.get("cors_origins", ["*"]))

        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=f"{prefix}-catalog",
            region=region,
            billing_mode="PAY_PER_REQUEST",
            hash_key=store.KEYS[0],
            range_key=store.KEYS[1],
            attributes=[aws.dynamodb.TableAttributeArgs(name=n, type=t) for n, t in store.attribute_definitions()],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=index,
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=hash_key, key_type="HASH"),
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(attribute_name=range_key, key_type="RANGE"),
                    ],
                    projection_type="ALL",
                )
                for index, (hash_key, range_key) in store.INDEXES.items()
            ],
            ttl=aws.dynamodb.TableTtlArgs(attribute_name=store.TTL_ATTRIBUTE, enabled=True),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=protect),
            deletion_protection_enabled=protect,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        self.dead_letters = aws.sqs.Queue(
            f"{name}-dead-letters",
            name=f"{prefix}-catalog-dead-letters",
            region=region,
            sqs_managed_sse_enabled=True,
            message_retention_seconds=14 * 24 * 3600,
            opts=child,
        )
        environment = {"CATALOG_TABLE": self.table.name, "CDN_URL": args["cdn_url"]}
        retention = args.get("log_retention_days", 14)

        # -- metadata on upload --------------------------------------------------------------
        metadata_name = f"{prefix}-catalog-metadata"
        metadata_policy = pulumi.Output.all(
            account, args["primary_bucket_arn"], self.table.arn, self.dead_letters.arn
        ).apply(
            lambda v: iam.document(
                iam.regional_logs(v[0], region, metadata_name),
                iam.allow("ReadOriginals", ["s3:GetObject", "s3:GetObjectVersion"], [f"{v[1]}/{ORIGINAL_PREFIX}*"]),
                {
                    **iam.allow("ListOriginals", ["s3:ListBucket"], [v[1]]),
                    "Condition": {"StringLike": {"s3:prefix": [f"{ORIGINAL_PREFIX}*"]}},
                },
                iam.allow("WriteCatalogue", ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"], [v[2]]),
                iam.allow("ReportFailures", ["sqs:SendMessage"], [v[3]]),
            )
        )
        self.metadata = self._function(
            f"{name}-metadata",
            metadata_name,
            bundle.handler("catalog-metadata"),
            bundle.build("catalog-metadata", settings, vendor=bundle.METADATA, architecture="arm64"),
            metadata_policy,
            region=region,
            memory=args.get("metadata_memory_mb", 1024),
            timeout=60,
            environment=environment,
            retention=retention,
        )
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-metadata-retries",
            function_name=self.metadata.name,
            region=region,
            maximum_retry_attempts=2,
            maximum_event_age_in_seconds=6 * 3600,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=self.dead_letters.arn
                )
            ),
            opts=child,
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-originals",
            name=f"{prefix}-catalog-originals",
            region=region,
            description="originals created or deleted -> the image catalogue",
            event_pattern=pulumi.Output.from_input(args["primary_bucket_name"]).apply(
                lambda bucket: json.dumps(event_pattern(bucket), sort_keys=True)
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-originals-target",
            rule=rule.name,
            region=region,
            arn=self.metadata.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_event_age_in_seconds=24 * 3600, maximum_retry_attempts=185
            ),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.dead_letters.arn),
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-metadata-from-events",
            function=self.metadata.name,
            region=region,
            action="lambda:InvokeFunction",
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        # EventBridge delivers to the dead-letter queue itself when it cannot invoke the function.
        aws.sqs.QueuePolicy(
            f"{name}-dead-letters-policy",
            queue_url=self.dead_letters.url,
            region=region,
            policy=pulumi.Output.all(self.dead_letters.arn, rule.arn).apply(
                lambda v: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "EventBridgeDeadLetters",
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sqs:SendMessage",
                                "Resource": v[0],
                                "Condition": {"ArnEquals": {"aws:SourceArn": v[1]}},
                            }
                        ],
                    },
                    sort_keys=True,
                )
            ),
            opts=child,
        )

        # -- the API ------------------------------------------------------------------------
        api_name = f"{prefix}-catalog-api"
        secret = args.get("signing_secret_arn")
        api_policy = pulumi.Output.all(account, args["primary_bucket_arn"], self.table.arn, secret or "").apply(
            lambda v: iam.document(
                iam.regional_logs(v[0], region, api_name),
                *([iam.allow("ReadSigningKey", ["secretsmanager:GetSecretValue"], [v[3]])] if v[3] else []),
                iam.allow(
                    "SignUploadsAndDeleteThem", ["s3:DeleteObject", "s3:PutObject"], [f"{v[1]}/{keys.IAM_UPLOAD_KEYS}"]
                ),
                iam.allow(
                    "ReadAndWriteCatalogue",
                    ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                    [v[2], f"{v[2]}/index/*"],
                ),
            )
        )
        self.api_function = self._function(
            f"{name}-api",
            api_name,
            bundle.handler("catalog-api"),
            bundle.build("catalog-api", settings, architecture="arm64"),
            api_policy,
            region=region,
            memory=512,
            timeout=10,
            environment={
                **environment,
                "MAX_UPLOAD_BYTES": str(args.get("max_upload_bytes", 50 * 1024 * 1024)),
                "UPLOAD_SECONDS": str(UPLOAD_SECONDS),
                **({"SIGNING_SECRET": secret} if secret is not None else {}),
            },
            retention=retention,
        )
        self.api = aws.apigatewayv2.Api(
            f"{name}-http-api",
            name=f"{prefix}-catalog",
            region=region,
            protocol_type="HTTP",
            description="image-cdn catalogue: uploads and queries",
            cors_configuration=aws.apigatewayv2.ApiCorsConfigurationArgs(
                allow_origins=origins,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=["authorization", "content-type", "x-amz-date", "x-amz-security-token"],
                max_age=3600,
            ),
            opts=child,
        )
        integration = aws.apigatewayv2.Integration(
            f"{name}-integration",
            api_id=self.api.id,
            region=region,
            integration_type="AWS_PROXY",
            integration_uri=self.api_function.invoke_arn,
            payload_format_version="2.0",
            timeout_milliseconds=10_000,
            opts=child,
        )
        authorizer = None
        if args["auth"] == "jwt":
            authorizer = aws.apigatewayv2.Authorizer(
                f"{name}-jwt",
                api_id=self.api.id,
                region=region,
                name=f"{prefix}-catalog-jwt",
                authorizer_type="JWT",
                identity_sources=["$request.header.Authorization"],
                jwt_configuration=aws.apigatewayv2.AuthorizerJwtConfigurationArgs(
                    issuer=args.get("jwt_issuer"), audiences=list(args.get("jwt_audiences", []))
                ),
                opts=child,
            )
        scopes = list(args.get("jwt_scopes", [])) if authorizer is not None else []
        for route in ROUTES:
            slug = route.lower().replace(" /", "-").replace("/", "-").replace("{", "").replace("}", "")
            aws.apigatewayv2.Route(
                f"{name}-route-{slug}",
                api_id=self.api.id,
                region=region,
                route_key=route,
                target=integration.id.apply(lambda i: f"integrations/{i}"),
                authorization_type="JWT" if authorizer is not None else "AWS_IAM",
                authorizer_id=authorizer.id if authorizer is not None else None,
                authorization_scopes=scopes or None,
                opts=child,
            )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=f"/aws/apigateway/{prefix}-catalog",
            region=region,
            retention_in_days=retention,
            opts=child,
        )
        self.stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self.api.id,
            region=region,
            name="$default",
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=200, throttling_rate_limit=100
            ),
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=access_logs.arn, format=json.dumps(API_LOG_FORMAT, sort_keys=True)
            ),
            opts=child,
        )
        aws.lambda_.Permission(
            f"{name}-api-from-gateway",
            function=self.api_function.name,
            region=region,
            action="lambda:InvokeFunction",
            principal="apigateway.amazonaws.com",
            source_arn=self.api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
            opts=child,
        )
        # Browsers POST the upload form straight to the bucket: S3 answers CORS for it.
        aws.s3.BucketCorsConfiguration(
            f"{name}-upload-cors",
            bucket=args["primary_bucket_name"],
            region=region,
            cors_rules=[
                aws.s3.BucketCorsConfigurationCorsRuleArgs(
                    allowed_methods=["POST"], allowed_origins=origins, allowed_headers=["*"], max_age_seconds=3600
                )
            ],
            opts=child,
        )

        self.api_url = self.api.api_endpoint
        self.table_name = self.table.name
        self.metadata_function_arn = self.metadata.arn
        self.api_function_arn = self.api_function.arn
        self.dead_letter_queue_url = self.dead_letters.url
        self.register_outputs(
            {
                "api_url": self.api_url,
                "table_name": self.table_name,
                "metadata_function_arn": self.metadata_function_arn,
                "api_function_arn": self.api_function_arn,
                "dead_letter_queue_url": self.dead_letter_queue_url,
            }
        )

    def _function(
        self,
        name: str,
        function_name: str,
        handler: str,
        archive: Path,
        policy: pulumi.Output[str],
        *,
        region: str,
        memory: int,
        timeout: int,
        environment: dict[str, pulumi.Input[str]],
        retention: int,
    ) -> aws.lambda_.Function:
        """A regional arm64 function with its own role, policy and log group."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=json.dumps(iam.REGIONAL_TRUST, sort_keys=True),
            description=f"image-cdn {function_name}",
            opts=child,
        )
        grants = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/aws/lambda/{function_name}", region=region, retention_in_days=retention, opts=child
        )
        return aws.lambda_.Function(
            name,
            name=function_name,
            region=region,
            runtime=bundle.LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler=handler,
            role=role.arn,
            code=pulumi.FileArchive(str(archive)),
            source_code_hash=bundle.source_hash(archive),
            memory_size=memory,
            timeout=timeout,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, grants]),
        )


def event_pattern(bucket: str) -> dict[str, object]:
    """The EventBridge pattern of the originals' created and deleted events ("Using EventBridge", S3 guide)."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created", "Object Deleted"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": ORIGINAL_PREFIX}]}},
    }

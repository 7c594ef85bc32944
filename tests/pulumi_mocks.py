"""Run `components.stack.build` on Pulumi's mocks and record every resource it declares."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from components.config import StackConfig
from components.stack import build

ACCOUNT = "123456789012"
# What Secrets Manager answers for a third-party service's signing key.
SERVICE_KEY = "mock-service-signing-key"


@dataclass
class Declared:
    """One resource as the program declared it (inputs resolved)."""

    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None
    options: dict[str, Any] = field(default_factory=dict)
    dependencies: set[tuple[str, str]] = field(default_factory=set)
    """(type, name) of every resource it waits for, as the engine is told (explicit `depends_on`,
    and the resources behind its inputs); filled when the mocks were installed with `use_mocks`."""

    def policy(self, key: str = "policy") -> dict[str, Any]:
        value = self.inputs[key]
        return json.loads(value) if isinstance(value, str) else dict(value)


class Recorder(pulumi.runtime.Mocks):
    """Answers like AWS would (ARNs, domain names, versions) and keeps what it saw."""

    def __init__(self) -> None:
        self.declared: list[Declared] = []
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}
        self.dependencies: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.declared.append(Declared(args.typ, args.name, inputs, None))
        outputs = dict(inputs)
        physical = inputs.get("name") or inputs.get("bucket") or f"{args.name}-0123abc"
        region = inputs.get("region", "eu-west-1")
        if args.typ == "aws:s3/bucket:Bucket":
            outputs.update(
                arn=f"arn:aws:s3:::{physical}",
                bucket=physical,
                bucketRegionalDomainName=f"{physical}.s3.{region}.amazonaws.com",
            )
        elif args.typ == "aws:lambda/function:Function":
            # Each function gets its own version number, as a fresh account's history would
            # give them: a test can then tell which function's version ended up where.
            version = str(len(self.of_type(args.typ)) * 7 + 3)
            arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{physical}"
            invoke = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
            outputs.update(arn=arn, qualifiedArn=f"{arn}:{version}", version=version, invokeArn=invoke)
        elif args.typ == "aws:cloudfront/distribution:Distribution":
            outputs.update(
                arn=f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2EXAMPLE",
                domainName="d111111abcdef8.cloudfront.net",
                hostedZoneId="Z2FDTNDATAQYW2",
            )
        elif args.typ == "aws:acm/certificate:Certificate":
            outputs.update(
                arn=f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/abc",
                domainValidationOptions=[
                    {
                        "domainName": inputs.get("domainName"),
                        "resourceRecordName": "_x.example.com.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": "_y.acm-validations.aws.",
                    }
                ],
            )
        elif args.typ == "aws:sqs/queue:Queue":
            outputs.update(
                arn=f"arn:aws:sqs:{region}:{ACCOUNT}:{physical}",
                url=f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical}",
            )
        elif args.typ == "aws:dynamodb/table:Table":
            outputs.update(arn=f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{physical}")
        elif args.typ == "aws:apigatewayv2/api:Api":
            outputs.update(
                apiEndpoint=f"https://a1b2c3d4e5.execute-api.{region}.amazonaws.com",
                executionArn=f"arn:aws:execute-api:{region}:{ACCOUNT}:a1b2c3d4e5",
            )
        elif args.typ == "aws:cloudwatch/eventRule:EventRule":
            outputs.update(arn=f"arn:aws:events:{region}:{ACCOUNT}:rule/{physical}")
        elif args.typ == "aws:sfn/stateMachine:StateMachine":
            outputs.update(arn=f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{physical}")
        elif args.typ == "aws:route53/record:Record":
            outputs.update(fqdn=inputs.get("name"))
        elif args.typ == "random:index/randomId:RandomId":
            # Fresh bytes on every build, as a new stack's first `pulumi up` draws them.
            raw = secrets.token_bytes(int(inputs.get("byteLength", 8)))
            outputs.update(
                hex=raw.hex(),
                dec=str(int.from_bytes(raw, "big")),
                b64Std=base64.b64encode(raw).decode(),
                b64Url=base64.urlsafe_b64encode(raw).decode().rstrip("="),
            )
        else:
            outputs.setdefault("arn", f"arn:aws:mock:{region}:{ACCOUNT}:{args.typ}/{physical}")
        self.outputs[(args.typ, args.name)] = outputs
        # an S3 bucket's id is its name, as on AWS; other resources get a made-up id
        return (physical if args.typ == "aws:s3/bucket:Bucket" else f"{args.name}-id"), outputs

    def of_type(self, type_: str) -> list[Declared]:
        return [d for d in self.declared if d.type == type_]

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA", "id": ACCOUNT}, []
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            secret = str(args.args.get("secretId"))
            return {"secretId": secret, "secretString": SERVICE_KEY, "versionId": "v1", "arn": secret}, []
        return {}, []


def _type_and_name(urn: str) -> tuple[str, str]:
    """urn:pulumi:<stack>::<project>::<parent types $ type>::<name> -> (type, name)."""
    parts = urn.split("::")
    return parts[2].split("$")[-1], "::".join(parts[3:])


class DependencyMonitor(MockMonitor):
    """Pulumi's mock monitor, also noting each registration's dependencies in the recorder."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self.recorder = recorder

    def RegisterResource(self, request: Any) -> Any:
        self.recorder.dependencies[(request.type, request.name)] = {_type_and_name(u) for u in request.dependencies}
        return super().RegisterResource(request)


def use_mocks(recorder: Recorder, project: str, stack: str) -> None:
    """Install `recorder` as Pulumi's mocks (not a preview), with dependencies recorded."""
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=False, monitor=DependencyMonitor(recorder))


@dataclass
class StackRun:
    config: StackConfig
    declared: list[Declared]
    outputs: dict[str, Any]
    resource_outputs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def output_of(self, type_: str, name: str) -> dict[str, Any]:
        """What the mock answered for one resource (what other resources were given)."""
        return self.resource_outputs[(type_, name)]

    def of_type(self, type_: str) -> list[Declared]:
        return [d for d in self.declared if d.type == type_]

    def one(self, type_: str, name: str | None = None) -> Declared:
        found = [d for d in self.of_type(type_) if name is None or d.name == name]
        assert len(found) == 1, f"expected one {type_} {name or ''}, found {[d.name for d in found]}"
        return found[0]


def run_stack(config: StackConfig) -> StackRun:
    """Build one stack on fresh mocks; every declaration and resolved output."""
    recorder = Recorder()
    use_mocks(recorder, config.project, config.stack)
    outputs: dict[str, Any] = {}
    options: dict[tuple[str, str], dict[str, Any]] = {}

    def note(args: pulumi.ResourceTransformationArgs) -> None:
        # Transformations given to the top-level components reach only resources whose
        # parent chain leads back to one: an unparented child would go unrecorded.
        opts = args.opts
        options[(args.type_, args.name)] = {
            "parent": getattr(opts.parent, "_name", None),
            "protect": bool(opts.protect),
            "retain_on_delete": bool(opts.retain_on_delete),
        }

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        exported = build(config, pulumi.ResourceOptions(transformations=[note]))
        return pulumi.Output.all(**exported).apply(outputs.update)

    program()
    for declared in recorder.declared:
        declared.options = options.get((declared.type, declared.name), {})
        declared.parent = declared.options.get("parent")
        declared.dependencies = recorder.dependencies.get((declared.type, declared.name), set())
    return StackRun(config, recorder.declared, outputs, recorder.outputs)

"""The components as a Pulumi package: the schema, the construct path, the README's snippets."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema.validators
import pulumi
import pytest
import yaml
from pulumi_mocks import Recorder, use_mocks
from py_mini_racer import MiniRacer

from components import package

ROOT = Path(__file__).resolve().parent.parent
METASCHEMA = ROOT / "tests" / "pulumi" / "package-metaschema.json"  # a copy of Pulumi's (tests/pulumi/README.md)
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package.schema()


def test_the_committed_schema_is_what_the_components_generate(schema: dict[str, Any]) -> None:
    committed = json.loads((ROOT / "schema.json").read_text(encoding="utf-8"))
    assert committed == schema, "schema.json is out of date: run `make schema`"
    assert (ROOT / "schema.json").read_text(encoding="utf-8") == package.render()


def test_the_schema_is_valid_against_pulumis_package_metaschema(schema: dict[str, Any]) -> None:
    metaschema = json.loads(METASCHEMA.read_text(encoding="utf-8"))
    validator = _validator(metaschema)
    errors = sorted(validator.iter_errors(schema), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    # The validator does catch a broken schema (a resource property with an unknown type).
    broken = json.loads(json.dumps(schema))
    broken["resources"]["image-cdn:index:ImageOrigin"]["inputProperties"]["region"]["type"] = "text"
    assert list(validator.iter_errors(broken))


def _validator(metaschema: dict[str, Any]) -> Any:
    """Draft 2020-12, with `pattern` read as JSON Schema defines it: an ECMA-262 regular expression.
    The metaschema's version pattern names its groups ECMA's way, `(?<major>...)`, which Python's
    `re` spells `(?P<major>...)`; that spelling is the only translation made."""

    def pattern(validator: Any, patrn: str, instance: Any, schema: dict[str, Any]) -> Any:
        if isinstance(instance, str) and not re.search(re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", patrn), instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    kind = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": pattern})
    return kind(metaschema)


def test_every_component_and_type_is_described_and_versioned(schema: dict[str, Any]) -> None:
    assert schema["name"] == "image-cdn" and schema["version"] == package.version()
    assert set(schema["resources"]) == {f"image-cdn:index:{c.__name__}" for c in package.COMPONENTS}
    missing = []
    for token, spec in [*schema["resources"].items(), *schema["types"].items()]:
        assert spec.get("description"), token
        for kind in ("inputProperties", "properties"):
            missing += [f"{token}.{kind}.{k}" for k, v in spec.get(kind, {}).items() if not v.get("description")]
    assert not missing, missing
    assert {"image-cdn:index:ImageSettings", "image-cdn:index:ImagePreset"} <= set(schema["types"])


def _inputs() -> dict[str, dict[str, Any]]:
    """What another language's program sends: camelCase names, every integer as a float (the wire)."""
    settings = {
        "primaryBucket": "theirs-origin",
        "primaryRegion": "eu-west-1",
        "fallbackBucket": "theirs-fallback",
        "fallbackRegion": "eu-central-1",
        "widths": [320.0, 640.0],
        "qualities": [60.0, 80.0],
        "defaultQuality": 60.0,
        "presets": [{"name": "thumb", "width": 320.0, "quality": 60.0, "fit": "cover", "crop": "center"}],
    }
    arn = "arn:aws:s3:::theirs-"
    return {
        "ImageOrigin": {"bucketName": "theirs-origin", "region": "eu-west-1", "variantExpiryDays": 30.0},
        "FallbackBucket": {"bucketName": "theirs-fallback", "region": "eu-central-1"},
        "DistributionReadGrant": {
            "origin": "primary",
            "bucketName": "theirs-origin",
            "bucketArn": arn + "origin",
            "region": "eu-west-1",
            "distributionArn": "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE",
        },
        "EdgeFunctions": {
            "namePrefix": "theirs",
            "settings": settings,
            "primaryBucketArn": arn + "origin",
            "fallbackBucketArn": arn + "fallback",
            "logRegions": ["us-east-1", "eu-west-1"],
        },
        "FailoverDistribution": {
            "namePrefix": "theirs",
            "primaryDomainName": "theirs-origin.s3.eu-west-1.amazonaws.com",
            "fallbackDomainName": "theirs-fallback.s3.eu-central-1.amazonaws.com",
            "viewerFunctionArn": "arn:aws:cloudfront::123456789012:function/theirs-normalize",
            "originRequestArn": "arn:aws:lambda:us-east-1:123456789012:function:theirs-rewrite:3",
            "originResponseArn": "arn:aws:lambda:us-east-1:123456789012:function:theirs-resize:3",
            "connectionAttempts": 2.0,
        },
        "EdgeFirewall": {"namePrefix": "theirs", "rateLimit": 2000.0},
        "UrlSigning": {"namePrefix": "theirs", "generation": 3.0},
        "SyncJob": {
            "namePrefix": "theirs",
            "settings": settings,
            "region": "eu-west-1",
            "primaryBucketName": "theirs-origin",
            "primaryBucketArn": arn + "origin",
            "fallbackBucketArn": arn + "fallback",
            "schedule": "rate(1 day)",
            "concurrency": 7.0,
            "batchSize": 4.0,
        },
        "ImageCatalog": {
            "namePrefix": "theirs",
            "settings": settings,
            "region": "eu-west-1",
            "primaryBucketName": "theirs-origin",
            "primaryBucketArn": arn + "origin",
            "cdnUrl": "https://images.example.com",
            "auth": "iam",
        },
        "Monitoring": {
            "namePrefix": "theirs",
            "distributionId": "E2EXAMPLE",
            "viewerFunctionName": "theirs-normalize",
            "rewriteFunctionName": "theirs-rewrite",
            "resizeFunctionName": "theirs-resize",
            "resizeLogGroup": "/aws/lambda/us-east-1.theirs-resize",
            "edgeRegions": ["us-east-1", "eu-west-1", "ap-northeast-1"],
            "primaryRegion": "eu-west-1",
            "syncDeadLetterQueueName": "theirs-sync-dead-letters",
            "syncStateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:theirs-sync",
            "emails": ["ops@example.com"],
        },
    }


def _construct(component: str, inputs: dict[str, Any]) -> tuple[Recorder, dict[str, Any]]:
    """One component through the provider's `construct`, on the mocks: children and resolved state."""
    recorder = Recorder()
    use_mocks(recorder, "theirs", "s")
    provider = package.provider()
    state: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        result = provider.construct("it", f"image-cdn:index:{component}", inputs, pulumi.ResourceOptions())
        return pulumi.Output.all(**result.state).apply(state.update)

    program()
    return recorder, state


def _types(recorder: Recorder) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in recorder.declared:
        counts[d.type] = counts.get(d.type, 0) + 1
    return counts


def _check_origin(r: Recorder, state: dict[str, Any]) -> None:
    assert _types(r)[
        "aws:s3/bucket:Bucket"
    ] == 1 and "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock" in _types(r)
    (rules,) = [
        d.inputs["rules"] for d in r.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    ]
    expire = next(rule for rule in rules if rule["id"] == "expire-variants")
    assert expire["expiration"]["days"] == 30  # (numbers cross the mock monitor as floats either way)
    assert state["bucketName"] == "theirs-origin" and state["bucketArn"] == "arn:aws:s3:::theirs-origin"


def _check_fallback(r: Recorder, state: dict[str, Any]) -> None:
    assert _types(r)["aws:s3/bucket:Bucket"] == 1 and state["regionalDomainName"].startswith("theirs-fallback.s3.")


def _check_grant(r: Recorder, state: dict[str, Any]) -> None:
    (policy,) = r.of_type("aws:s3/bucketPolicy:BucketPolicy")
    statements = {s["Sid"]: s for s in policy.policy()["Statement"]}
    assert statements["CloudFrontReadsVariants"]["Resource"] == "arn:aws:s3:::theirs-origin/variants/*"
    assert policy.inputs["bucket"] == "theirs-origin" and policy.inputs["region"] == "eu-west-1"


def _check_edge(r: Recorder, state: dict[str, Any]) -> None:
    (viewer,) = r.of_type("aws:cloudfront/function:Function")
    # The grammar the viewer function inlines has integers, as the Python program bakes them.
    assert '"widths":[320,640]' in viewer.inputs["code"].replace(" ", "")
    assert '"thumb":[320,null,60,"cover","center"]' in viewer.inputs["code"].replace(" ", "")
    (suffix,) = [r.outputs[key]["hex"] for key in r.outputs if key[0] == "random:index/randomId:RandomId"]
    rewrite, resize = f"theirs-rewrite-{suffix}", f"theirs-resize-{suffix}"
    assert {d.inputs["name"] for d in r.of_type("aws:lambda/function:Function")} == {rewrite, resize}
    groups = r.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert sorted((g.inputs["name"], g.inputs["region"]) for g in groups if "resize" in g.inputs["name"]) == [
        (f"/aws/lambda/us-east-1.{resize}", "eu-west-1"),
        (f"/aws/lambda/us-east-1.{resize}", "us-east-1"),
    ]
    assert state["resizeLogGroup"] == f"/aws/lambda/us-east-1.{resize}"
    assert state["rewriteFunctionName"] == rewrite


def _check_distribution(r: Recorder, state: dict[str, Any]) -> None:
    (dist,) = r.of_type("aws:cloudfront/distribution:Distribution")
    origins = {o["originId"]: o["domainName"] for o in dist.inputs["origins"]}
    assert origins == {
        "primary": "theirs-origin.s3.eu-west-1.amazonaws.com",
        "fallback": "theirs-fallback.s3.eu-central-1.amazonaws.com",
    }
    assert all(o["connectionAttempts"] == 2 for o in dist.inputs["origins"])
    assert state["domainName"] == "d111111abcdef8.cloudfront.net"


def _check_firewall(r: Recorder, state: dict[str, Any]) -> None:
    (acl,) = r.of_type("aws:wafv2/webAcl:WebAcl")
    limits = [
        rule["statement"]["rateBasedStatement"]["limit"]
        for rule in acl.inputs["rules"]
        if "rateBasedStatement" in rule["statement"]
    ]
    assert limits == [2000]


def _check_signing(r: Recorder, state: dict[str, Any]) -> None:
    keys = sorted(d.inputs["key"] for d in r.of_type("aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey"))
    assert keys == ["signing-key-2", "signing-key-3"]  # not "signing-key-3.0"
    assert len(state["keyIds"]) == 2
    (suffix,) = [r.outputs[key]["hex"] for key in r.outputs if key[0] == "random:index/randomId:RandomId"]
    assert state["secretName"] == f"theirs-signing-{suffix}"
    # the secret names the new key only once the store holds it, through the construct path too
    kvs_keys = {("aws:cloudfront/keyvaluestoreKey:KeyvaluestoreKey", f"it-kvs-{slot}") for slot in ("a", "b")}
    assert kvs_keys <= r.dependencies[("aws:secretsmanager/secretVersion:SecretVersion", "it-secret-version")]


def _check_sync(r: Recorder, state: dict[str, Any]) -> None:
    (machine,) = r.of_type("aws:sfn/stateMachine:StateMachine")
    text = machine.inputs["definition"]
    assert '"MaxConcurrency": 7' in text and '"MaxItemsPerBatch": 4' in text and "7.0" not in text
    assert state["deadLetterQueueName"]


def _check_catalog(r: Recorder, state: dict[str, Any]) -> None:
    assert "aws:dynamodb/table:Table" in _types(r) and "aws:apigatewayv2/api:Api" in _types(r)
    assert state["apiUrl"].startswith("https://")


def _check_monitoring(r: Recorder, state: dict[str, Any]) -> None:
    alarms = r.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    by_region: dict[str, int] = {}
    for alarm in alarms:
        by_region[alarm.inputs["region"]] = by_region.get(alarm.inputs["region"], 0) + 1
    # Every region: edge errors, edge throttles, fallback serving (3). us-east-1 also: 5xx, 4xx, origin
    # latency, the viewer function's errors and throttles, and the 4 Lambda@Edge errors CloudFront
    # counts (+9); eu-west-1, the primary: dead letters, failed runs, and the Build map's failed,
    # timed-out and aborted batches (+5).
    assert by_region == {"us-east-1": 12, "eu-west-1": 8, "ap-northeast-1": 3}
    assert (
        len(r.of_type("aws:sns/topic:Topic")) == 3
        and len(r.of_type("aws:sns/topicSubscription:TopicSubscription")) == 3
    )
    assert len(state["alarmNames"]) == 23 and len(state["alarmTopicArns"]) == 3


CHECKS: dict[str, Callable[[Recorder, dict[str, Any]], None]] = {
    "ImageOrigin": _check_origin,
    "FallbackBucket": _check_fallback,
    "DistributionReadGrant": _check_grant,
    "EdgeFunctions": _check_edge,
    "FailoverDistribution": _check_distribution,
    "EdgeFirewall": _check_firewall,
    "UrlSigning": _check_signing,
    "SyncJob": _check_sync,
    "ImageCatalog": _check_catalog,
    "Monitoring": _check_monitoring,
}


def test_every_component_is_checked_through_construct() -> None:
    assert set(CHECKS) == {c.__name__ for c in package.COMPONENTS} == set(_inputs())


@pytest.mark.parametrize("component", sorted(CHECKS))
def test_each_component_builds_through_the_providers_construct(component: str) -> None:
    recorder, state = _construct(component, _inputs()[component])
    assert recorder.declared, "no children"
    CHECKS[component](recorder, state)


def test_construct_refuses_a_missing_required_input_by_name() -> None:
    inputs = dict(_inputs()["ImageOrigin"])
    del inputs["region"]
    with pytest.raises(Exception, match="region"):
        _construct("ImageOrigin", inputs)


def test_construct_refuses_a_bad_setting_naming_it() -> None:
    inputs = json.loads(json.dumps(_inputs()["EdgeFunctions"]))
    inputs["settings"]["formats"] = ["webp", "gif"]
    with pytest.raises(Exception, match=r"settings\.formats: expected one of avif, webp, jpeg, png, jxl; got 'gif'"):
        _construct("EdgeFunctions", inputs)


# --- Secrets stay secret ----------------------------------------------------------------------

# The rule: an input holds a secret when the last word of its name says it is one: key(s),
# secret(s), password(s), token(s), credential(s), webhook(s) (a chat webhook's URL carries its
# credential); unless its description calls it the name or ARN of one. A property whose last word
# is another noun only refers to a secret (`signingSecretArn`, `keyValueStoreArn`, `signingKeyIds`,
# `secretName`), and so does one described as "the name or ARN of" a secret (SyncJob's
# `serviceKeySecret`): neither is one. Every component's inputs and every type's properties are
# checked, both ways, so a new `apiToken` input cannot go in unmarked.
SECRET_WORDS = {"key", "secret", "password", "token", "credential", "webhook"}
NAMES_A_SECRET = re.compile(r"\b(name or ARN|ARN|name) of\b", re.IGNORECASE)


def holds_a_secret(name: str, description: str = "") -> bool:
    last = re.findall(r"[A-Z]?[a-z0-9]+", name)[-1].lower()
    secret_word = last in SECRET_WORDS or (last.endswith("s") and last[:-1] in SECRET_WORDS)
    return secret_word and not NAMES_A_SECRET.search(description)


def test_the_secret_rule_reads_names_as_the_comment_says() -> None:
    assert all(holds_a_secret(n) for n in ("serviceKey", "webhooks", "apiToken", "dbPassword", "signingSecret"))
    assert not any(holds_a_secret(n) for n in ("signingSecretArn", "keyValueStoreArn", "signingKeyIds", "secretName"))
    assert not holds_a_secret("serviceKeySecret", "The name or ARN of the Secrets Manager secret that holds the key")


def _inputs_of(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every component's input and every type's property, as `token.property`."""
    found = {}
    for token, spec in schema["resources"].items():
        found |= {f"{token}.{k}": v for k, v in spec["inputProperties"].items()}
    for token, spec in schema["types"].items():
        found |= {f"{token}.{k}": v for k, v in spec.get("properties", {}).items()}
    return found


def _secret_flags(schema: dict[str, Any]) -> dict[str, bool]:
    return {where: bool(spec.get("secret")) for where, spec in _inputs_of(schema).items()}


def test_every_key_or_secret_input_is_secret_in_the_schema(schema: dict[str, Any]) -> None:
    flags = _secret_flags(schema)
    should = {
        where
        for where, spec in _inputs_of(schema).items()
        if holds_a_secret(where.rsplit(".", 1)[1], spec.get("description", ""))
    }
    assert {where for where, secret in flags.items() if secret} == should
    assert {"image-cdn:index:EdgeFunctions.serviceKey", "image-cdn:index:Monitoring.webhooks"} <= should
    assert flags["image-cdn:index:ImageCatalog.signingSecretArn"] is False  # the secret's ARN, not the secret
    # and the schema the provider serves (GetSchema, what `pulumi package add` reads) is that one
    served = json.loads(package.provider().schema or "{}")
    assert _secret_flags(served) == flags


def test_the_committed_schema_marks_the_same_secrets() -> None:
    committed = json.loads((ROOT / "schema.json").read_text(encoding="utf-8"))
    assert {w for w, s in _secret_flags(committed).items() if s} == {
        w for w, s in _secret_flags(package.schema()).items() if s
    }


def test_a_secret_input_no_component_has_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(package.SECRET_INPUTS, "UrlSigning", frozenset({"signing_password"}))
    with pytest.raises(ValueError, match="UrlSigning has no input signing_password"):
        package.provider()


# --- The README's snippets, checked against the schema --------------------------------------


def _snippet(language: str) -> str:
    start = README.index("### From TypeScript, Go, C#, Java or YAML")
    match = re.search(rf"```{language}\n(.*?)```", README[start:], re.S)
    assert match, language
    return match.group(1)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_value(
    schema: dict[str, Any], spec: dict[str, Any], value: Any, where: str, refs: Callable[[Any, str], str | None]
) -> list[str]:
    """Problems with one property value against its schema spec (refs resolves output references to a type)."""
    referenced = refs(value, where)
    if referenced is not None:
        return [] if referenced == spec.get("type") else [f"{where}: an output of type {referenced}, expected {spec}"]
    if "$ref" in spec:
        token = spec["$ref"].removeprefix("#/types/")
        return _check_object(schema, schema["types"][token], value, where, refs)
    kind = spec["type"]
    got = _type_of(value)
    if kind in ("integer", "number"):
        ok = got == "number" and (kind == "number" or float(value).is_integer())
    else:
        ok = got == kind
    if not ok:
        return [f"{where}: expected {kind}, got {value!r}"]
    if kind == "array":
        return [p for i, v in enumerate(value) for p in _check_value(schema, spec["items"], v, f"{where}[{i}]", refs)]
    return []


def _check_object(
    schema: dict[str, Any],
    spec: dict[str, Any],
    value: Any,
    where: str,
    refs: Callable[[Any, str], str | None],
    key: str = "properties",
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {value!r}"]
    properties = spec[key]
    problems = [f"{where}.{k}: no such property" for k in value if k not in properties]
    required = spec.get("requiredInputs" if key == "inputProperties" else "required", [])
    problems += [f"{where}.{k}: required, missing" for k in required if k not in value]
    for k, v in value.items():
        if k in properties:
            problems += _check_value(schema, properties[k], v, f"{where}.{k}", refs)
    return problems


def _run_typescript(source: str) -> list[dict[str, Any]]:
    """Runs the README's TypeScript (plain JS once the import goes) with a stand-in SDK that records
    each `new imagecdn.X(name, args)`; an output read off a component becomes a marked reference."""
    body = "\n".join(line for line in source.splitlines() if not line.startswith("import "))
    body = body.replace("export const", "const")
    js = MiniRacer()
    try:
        js.eval(
            """
            var made = [];
            var imagecdn = new Proxy({}, { get: function (_, type) {
                return function (name, args) {
                    made.push({ type: type, name: name, args: args });
                    return new Proxy({}, { get: function (_, output) {
                        return { "$ref": { component: type, output: output } };
                    } });
                };
            } });
            """
        )
        js.eval(body)
        return list(json.loads(js.eval("JSON.stringify(made)")))
    finally:
        js.close()


def test_the_readmes_typescript_program_matches_the_schema(schema: dict[str, Any]) -> None:
    made = _run_typescript(_snippet("typescript"))
    assert [m["type"] for m in made][:4] == ["ImageOrigin", "FallbackBucket", "EdgeFunctions", "FailoverDistribution"]
    assert len(made) >= 7

    def refs(value: Any, where: str) -> str | None:
        if isinstance(value, dict) and "$ref" in value:
            ref = value["$ref"]
            outputs = schema["resources"][f"image-cdn:index:{ref['component']}"]["properties"]
            assert ref["output"] in outputs, f"{where}: {ref['component']} has no output {ref['output']}"
            return str(outputs[ref["output"]]["type"])
        return None

    problems: list[str] = []
    for m in made:
        token = f"image-cdn:index:{m['type']}"
        assert token in schema["resources"], f"no component {m['type']}"
        problems += _check_object(schema, schema["resources"][token], m["args"], m["name"], refs, "inputProperties")
    assert not problems, problems


def test_the_readmes_yaml_program_matches_the_schema(schema: dict[str, Any]) -> None:
    program = yaml.safe_load(_snippet("yaml"))
    resources = program["resources"]
    types = {name: spec["type"].replace("image-cdn:", "image-cdn:index:", 1) for name, spec in resources.items()}

    def output_type(text: str, where: str) -> str:
        name, output = text.split(".", 1)
        outputs = schema["resources"][types[name]]["properties"]
        assert output in outputs, f"{where}: {types[name]} has no output {output}"
        return str(outputs[output]["type"])

    def refs(value: Any, where: str) -> str | None:
        if isinstance(value, str) and (m := re.fullmatch(r"\$\{([A-Za-z]+\.[A-Za-z]+)\}", value)):
            return output_type(m.group(1), where)
        return None

    problems: list[str] = []
    for name, spec in resources.items():
        assert types[name] in schema["resources"], spec["type"]
        problems += _check_object(
            schema, schema["resources"][types[name]], spec["properties"], name, refs, "inputProperties"
        )
    for key, value in program.get("outputs", {}).items():
        assert refs(value, f"outputs.{key}") == "string"
    assert not problems, problems


def test_the_snippet_checks_catch_a_wrong_property_and_a_wrong_output(schema: dict[str, Any]) -> None:
    """The checks above can fail: a misspelt property, a wrong type and an unknown output are caught."""
    made = _run_typescript(
        'const o = new imagecdn.ImageOrigin("o", {bucketName: "b", region: "r", variantExpiryDays: "30", colour: 1});\n'
        'new imagecdn.FallbackBucket("f", {bucketName: o.bucketArm, region: "r"});'
    )
    spec = schema["resources"]["image-cdn:index:ImageOrigin"]
    problems = _check_object(schema, spec, made[0]["args"], "o", lambda v, w: None, "inputProperties")
    assert any("colour: no such property" in p for p in problems)
    assert any("variantExpiryDays: expected integer" in p for p in problems)
    outputs = schema["resources"]["image-cdn:index:ImageOrigin"]["properties"]
    assert made[1]["args"]["bucketName"]["$ref"]["output"] not in outputs

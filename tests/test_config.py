"""Stack config: read once, validated, typed; bad values stop the program with a clear message."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi_mocks import Recorder

from components.config import ROOT, ConfigError, from_stack_file, load

GOOD = {"aws:region": "eu-west-1", "fallbackRegion": "us-east-2", "catalogAuth": "iam"}


def problems(**values: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load({**GOOD, **values}, project="image-cdn", stack="test")
    return caught.value.problems


def test_defaults_give_about_ten_standard_widths() -> None:
    config = load(GOOD, project="image-cdn", stack="test")
    assert 8 <= len(config.widths) <= 12
    assert config.primary_bucket == "image-cdn-test-origin" and config.fallback_bucket == "image-cdn-test-fallback"
    assert config.edge_settings().standard_formats == ("webp", "jpeg")
    assert (config.browser_cache_seconds, config.fallback_cache_seconds) == (86_400, 60)


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"widths": [800, 400]}, "image-cdn:widths", "strictly ascending"),
        ({"widths": [0, 400]}, "image-cdn:widths", "from 1 to 8192"),
        ({"widths": "[100, -1]"}, "image-cdn:widths", "[100, -1]"),
        ({"qualities": [0, 50]}, "image-cdn:qualities", "from 1 to 100"),
        ({"defaultQuality": 101}, "image-cdn:defaultQuality", "auto or one of the qualities"),
        ({"defaultQuality": 65}, "image-cdn:defaultQuality", "one of the qualities"),
        ({"fallbackRegion": "eu-west-1"}, "image-cdn:fallbackRegion", "other than aws:region"),
        ({"fallbackRegion": "mars-1"}, "image-cdn:fallbackRegion", "an AWS region"),
        ({"priceClass": "PriceClass_Cheap"}, "image-cdn:priceClass", "PriceClass_100, PriceClass_200, PriceClass_All"),
        ({"formats": ["gif"]}, "image-cdn:formats", "drawn from"),
        ({"standardFormats": ["avif"], "formats": ["webp"]}, "image-cdn:standardFormats", "drawn from formats"),
        ({"logRetentionDays": 10}, "image-cdn:logRetentionDays", "one of 1, 3, 5"),
        ({"resizeTimeoutSeconds": 60}, "image-cdn:resizeTimeoutSeconds", "from 1 to 30"),
        ({"protectOriginals": "yes"}, "image-cdn:protectOriginals", "true or false"),
        ({"namePrefix": "Bad_Name"}, "image-cdn:namePrefix", "lowercase"),
        ({"originConnectionAttempts": 5}, "image-cdn:originConnectionAttempts", "from 1 to 3"),
        ({"widht": [100]}, "image-cdn:widht", "unknown key"),
        ({"domainName": "img.example.com"}, "image-cdn:domainName", "certificateArn or hostedZoneId"),
        (
            {"certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x", "domainName": "a.example.com"},
            "image-cdn:certificateArn",
            "in us-east-1",
        ),
        ({"syncSchedule": "every day"}, "image-cdn:syncSchedule", "rate(1 day)"),
        # during an outage a client asking for JPEG (Accept: */*) must get a format it decodes
        ({"standardFormats": ["webp"]}, "image-cdn:standardFormats", "for jpeg one of jpeg"),
        ({"fallbackCacheSeconds": 0}, "image-cdn:fallbackCacheSeconds", "from 1 to 3600"),
        ({"browserCacheSeconds": -1}, "image-cdn:browserCacheSeconds", "from 0 to 31536000"),
        # the reconcile's batches never take more than the function's reserved share of the pool
        ({"syncConcurrency": 500}, "image-cdn:syncConcurrency", "at most syncReservedConcurrency (20)"),
        (
            {"syncConcurrency": 120, "syncReservedConcurrency": 100},
            "image-cdn:syncConcurrency",
            "at most syncReservedConcurrency (100)",
        ),
        ({"syncReservedConcurrency": 0}, "image-cdn:syncReservedConcurrency", "from 1 to 10000"),
    ],
)
def test_a_bad_value_names_the_key_what_was_expected_and_what_came(
    values: dict[str, Any], key: str, fragment: str
) -> None:
    found = problems(**values)
    assert len(found) == 1, found
    assert found[0].startswith(f"{key}: ")
    assert fragment in found[0]
    if "unknown" not in found[0]:
        assert "expected" in found[0] and "got" in found[0]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(widths=[5, 1], defaultQuality=0, priceClass="x")
    assert [p.split(":")[1] for p in found] == ["widths", "defaultQuality", "priceClass"]


def test_a_missing_region_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"fallbackRegion": "us-east-2", "catalogAuth": "iam"}, project="image-cdn", stack="test")
    assert caught.value.problems[0].startswith("aws:region: expected an AWS region")


def test_string_values_from_the_cli_are_parsed() -> None:
    config = load({**GOOD, "widths": "[100, 200]", "defaultQuality": "60", "waf": "true"}, project="p", stack="s")
    assert config.widths == (100, 200) and config.default_quality == 60 and config.waf is True


def test_both_stack_files_are_valid() -> None:
    for stack in ("dev", "prod"):
        assert from_stack_file(stack).stack == stack


def _run_main(config: dict[str, Any]) -> dict[str, Any]:
    exports: dict[str, Any] = {}
    pulumi.runtime.set_mocks(Recorder(), project="image-cdn", stack="dev", preview=False)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        original = pulumi.export
        pulumi.export = exports.__setitem__  # type: ignore[assignment]
        try:
            runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original
        return pulumi.Output.all(**exports).apply(resolved.update)

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({})
    return resolved


def test_main_only_wires_and_exports_what_build_returns() -> None:
    stack_file = yaml.safe_load((Path(ROOT) / "Pulumi.dev.yaml").read_text())["config"]
    exported = _run_main(stack_file)
    assert set(exported) >= {
        "distribution_domain",
        "example_url",
        "primary_bucket",
        "fallback_bucket",
        "rewrite_version",
        "resize_version",
    }
    assert exported["primary_bucket"] == "image-cdn-dev-origin"


def test_main_stops_on_bad_config_with_the_message_and_no_traceback() -> None:
    stack_file = yaml.safe_load((Path(ROOT) / "Pulumi.dev.yaml").read_text())["config"]
    with pytest.raises(pulumi.RunError) as caught:
        _run_main({**stack_file, "image-cdn:widths": [800, 400]})
    assert "image-cdn:widths: expected 1 to 16 strictly ascending integers" in str(caught.value)
    assert "got [800, 400]" in str(caught.value)


def test_the_catalogue_is_on_by_default_and_its_authorizer_must_be_named() -> None:
    without = {k: v for k, v in GOOD.items() if k != "catalogAuth"}
    with pytest.raises(ConfigError) as caught:
        load(without, project="image-cdn", stack="test")
    (problem,) = caught.value.problems
    assert problem.startswith("image-cdn:catalogAuth: expected iam or jwt") and "got null" in problem
    assert load({**without, "catalog": False}, project="image-cdn", stack="test").catalog is False
    config = load(GOOD, project="image-cdn", stack="test")
    assert (config.catalog, config.catalog_auth, config.max_upload_bytes) == (True, "iam", 50 * 1024 * 1024)
    assert problems(catalogAuth="none")[0].startswith("image-cdn:catalogAuth: expected iam or jwt")


def test_a_jwt_authorizer_needs_its_issuer_and_audiences_and_nothing_else_takes_them() -> None:
    found = problems(catalogAuth="jwt")
    assert [p.split(":")[1] for p in found] == ["catalogJwtIssuer", "catalogJwtAudiences"]
    config = load(
        {
            **GOOD,
            "catalogAuth": "jwt",
            "catalogJwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            "catalogJwtAudiences": ["client-1"],
            "catalogJwtScopes": ["images/write"],
        },
        project="image-cdn",
        stack="test",
    )
    assert config.catalog_jwt_audiences == ("client-1",) and config.catalog_jwt_scopes == ("images/write",)
    assert problems(catalogJwtIssuer="https://issuer.example")[0].startswith(
        "image-cdn:catalogJwtIssuer: expected to be set only beside catalogAuth: jwt"
    )
    assert "https:// URL" in problems(catalogAuth="jwt", catalogJwtIssuer="http://x", catalogJwtAudiences=["a"])[0]


def test_uploads_are_never_larger_than_what_the_cdn_renders() -> None:
    (problem,) = problems(maxUploadBytes=60 * 1024 * 1024)
    assert problem.startswith("image-cdn:maxUploadBytes: expected at most maxInputBytes (52428800)")
    config = load({**GOOD, "maxInputBytes": 10 * 1024 * 1024}, project="image-cdn", stack="test")
    assert config.max_upload_bytes == 10 * 1024 * 1024  # the default follows a smaller input limit


@pytest.mark.parametrize(
    ("value", "fragment"), [("../x.png", "'.' or '..'"), ("a//b.png", "empty segments"), ("a*.png", "without * or ?")]
)
def test_the_default_image_is_a_key_we_would_read(value: str, fragment: str) -> None:
    (problem,) = problems(defaultImage=value)
    assert problem.startswith("image-cdn:defaultImage: expected a key below originals/") and fragment in problem
    assert load({**GOOD, "defaultImage": "site/missing.png"}, project="p", stack="s").edge_settings().default_image == (
        "site/missing.png"
    )


# -- signing, presets, client hints, crops, watermark (issue 13) --------------------------------


def test_feature_defaults_are_off_and_the_viewer_config_stays_plain() -> None:
    config = load(GOOD, project="image-cdn", stack="test")
    assert (config.signing, config.presets, config.presets_only, config.client_hints) == ("off", (), False, False)
    assert config.crops == ("center", "entropy", "attention") and config.watermark is None
    assert set(config.edge_settings().viewer_config()) == {
        "widths", "qualities", "defaultQuality", "formats", "preflight", "crops"
    }  # fmt: skip


def test_presets_are_read_with_their_defaults() -> None:
    presets = {"thumb": {"w": 160, "h": 160, "crop": "attention"}, "hero": {"w": 1280, "q": 70}}
    config = load({**GOOD, "presets": presets, "presetsOnly": True}, project="image-cdn", stack="test")
    assert config.presets == (
        ("thumb", 160, 160, 60, "cover", "attention"),
        ("hero", 1280, None, 70, "cover", "center"),
    )
    assert config.presets_only


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"signing": "on"}, "signing", "off, optional, required"),
        ({"signingKeyGeneration": 0}, "signingKeyGeneration", "from 1"),
        ({"presets": {"Thumb": {"w": 1}}}, "presets", "lowercase"),
        ({"presets": {"thumb": {"h": 100}}}, "presets.thumb", "{w,"),
        ({"presets": {"thumb": {"w": 100, "x": 1}}}, "presets.thumb", "{w,"),
        ({"presets": {"thumb": {"w": 0}}}, "presets.thumb.w", "from 1 to 8192"),
        ({"presets": {"thumb": {"w": 100, "q": 55}}}, "presets.thumb.q", "one of the qualities"),
        ({"presets": {"thumb": {"w": 100, "fit": "crop"}}}, "presets.thumb.fit", "cover"),
        ({"presets": {"thumb": {"w": 100, "crop": "faces"}}}, "presets.thumb.crop", "the stack's crops"),
        ({"presetsOnly": True}, "presetsOnly", "presets to serve"),
        ({"crops": ["entropy"]}, "crops", "includes center"),
        ({"crops": ["center", "smart"]}, "crops", "drawn from"),
        ({"facesRegion": "eu-west-1"}, "facesRegion", "only when crops include faces"),
        ({"watermark": {"minWidth": 640}}, "watermark", "{image,"),
        ({"watermark": {"image": "../x.png"}}, "watermark.image", "below originals/"),
        ({"watermark": {"image": "logo*.png"}}, "watermark.image", "without * or ?"),
        ({"watermark": {"image": "m.png", "position": "middle"}}, "watermark.position", "bottom-right"),
        ({"watermark": {"image": "m.png", "opacity": 0}}, "watermark.opacity", "above 0"),
        ({"watermark": {"image": "m.png", "scale": 2}}, "watermark.scale", "at most 1"),
        ({"watermark": {"image": "m.png", "minWidth": 99999}}, "watermark.minWidth", "largest width"),
    ],
)
def test_a_bad_feature_value_names_its_key(values: dict[str, Any], key: str, fragment: str) -> None:
    found = problems(**values)
    assert any(p.startswith(f"image-cdn:{key}:") and fragment in p for p in found), found


def test_a_watermark_reaches_the_edge_settings() -> None:
    mark = {"image": "site/mark.png", "minWidth": 1024, "position": "top-left", "margin": 8, "opacity": 0.3}
    settings = load({**GOOD, "watermark": mark}, project="image-cdn", stack="test").edge_settings()
    assert (settings.watermark, settings.watermark_min_width, settings.watermark_position) == (
        "site/mark.png",
        1024,
        "top-left",
    )
    assert (settings.watermark_margin, settings.watermark_opacity, settings.watermark_scale) == (8, 0.3, 0.2)

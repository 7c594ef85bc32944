"""One table of viewer requests, run against normalize.js (in V8) and variants.normalize."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components import bundle
from edge import variants
from edge.settings import Settings
from localcdn.viewer import ViewerFunction

TABLE = json.loads((Path(__file__).parent / "cases" / "normalize.json").read_text())
DEFAULTS = Settings()


def _expand(text: str) -> str:
    # LONGKEY<n>: a key of exactly n bytes (the S3-limit cases)
    return re.sub(r"LONGKEY(\d+)", lambda m: "k" * int(m.group(1)), text)


PROFILES = {"default": DEFAULTS} | {name: Settings(**values) for name, values in TABLE["settings"].items()}


def _cases() -> list[Any]:
    cases = []
    for case in TABLE["cases"]:
        accept = case["accept"]
        header = TABLE["accept_headers"].get(accept, accept) if accept is not None else None
        expect = _expand(case["expect"]) if isinstance(case["expect"], str) else case["expect"]
        profile = case.get("settings", "default")
        headers = case.get("headers", {})
        cases.append(
            pytest.param(
                profile,
                _expand(case["uri"]),
                case["query"],
                header,
                headers,
                expect,
                case.get("parameter"),
                id=f"{profile}:{case['uri'][:40]}?{case['query']}[{accept}]{sorted(headers.items())}",
            )
        )
    return cases


@pytest.fixture(scope="module")
def viewers() -> Iterator[dict[str, ViewerFunction]]:
    """The deployed code (config inlined, minified) of each settings profile."""
    loaded = {name: ViewerFunction(bundle.viewer_code(settings)) for name, settings in PROFILES.items()}
    yield loaded
    for viewer in loaded.values():
        viewer.close()


@pytest.fixture(scope="module")
def viewer(viewers: dict[str, ViewerFunction]) -> ViewerFunction:
    return viewers["default"]


def python_answer(
    uri: str, query: str, accept: str | None, settings: Settings = DEFAULTS, headers: dict[str, str] | None = None
) -> tuple[Any, str | None]:
    hints = {name.lower(): value for name, value in (headers or {}).items()}
    try:
        return variants.normalize(uri, query, accept, settings, hints), None
    except variants.VariantError as problem:
        return 400, problem.parameter


def js_answer(
    viewer: ViewerFunction, uri: str, query: str, accept: str | None, headers: dict[str, str] | None = None
) -> tuple[Any, str | None]:
    sent = dict(headers or {})
    if accept is not None:
        sent["Accept"] = accept
    result = viewer.run(uri, query, sent)
    if "statusCode" in result:
        body = json.loads(result["body"]["data"])
        assert result["headers"]["content-type"]["value"] == "application/json"
        assert body["message"].startswith("Expected ")
        return result["statusCode"], body["parameter"]
    assert result["querystring"] == {}, "the query must be cleared"
    return result["uri"], None


CASE = ("profile", "uri", "query", "accept", "headers", "expect", "parameter")


@pytest.mark.parametrize(CASE, _cases())
def test_python_normalizer_matches_table(
    profile: str, uri: str, query: str, accept: str | None, headers: dict[str, str], expect: Any, parameter: str | None
) -> None:
    assert python_answer(uri, query, accept, PROFILES[profile], headers) == (expect, parameter)


@pytest.mark.parametrize(CASE, _cases())
def test_viewer_function_matches_table(
    viewers: dict[str, ViewerFunction],
    profile: str,
    uri: str,
    query: str,
    accept: str | None,
    headers: dict[str, str],
    expect: Any,
    parameter: str | None,
) -> None:
    assert js_answer(viewers[profile], uri, query, accept, headers) == (expect, parameter)


def test_table_covers_every_browser_and_a_wildcard() -> None:
    used = {case["accept"] for case in TABLE["cases"]}
    assert {"chrome", "firefox", "safari", "edge", "any"} <= used


def test_checked_in_viewer_config_is_the_default_config() -> None:
    source = (bundle.EDGE / "normalize.js").read_text()
    line = next(text for text in source.splitlines() if text.startswith("var CONFIG = "))
    assert json.loads(line.removeprefix("var CONFIG = ").removesuffix(";")) == DEFAULTS.viewer_config()


def test_deploy_changes_the_config_the_import_whitespace_and_the_configs_name_only() -> None:
    custom = Settings(widths=(100, 200), qualities=(50,), default_quality=50, formats=("webp", "jpeg"))
    source = (bundle.EDGE / "normalize.js").read_text()
    rendered = bundle.viewer_code(custom)
    config = "var C=" + json.dumps(custom.viewer_config(), separators=(",", ":")) + ";"
    assert config in rendered
    assert "cloudfront" not in rendered, "no KeyValueStore import without signing"
    assert "cloudfront" in bundle.viewer_code(Settings(signing="optional"))

    def tokens(code: str) -> list[str]:  # the code without its comments, whitespace and config
        code = "\n".join(line for line in code.splitlines() if not line.strip().startswith("//"))
        code = re.sub(r"var (CONFIG|C) ?= ?.*?;(?=var |\n)", "", code.replace(bundle.KVS_IMPORT, ""))
        return ["C" if token == "CONFIG" else token for token in re.findall(r"[A-Za-z0-9_$]+|\S", code)]

    assert tokens(rendered) == tokens(source)
    viewer = ViewerFunction(rendered)
    assert viewer.run("/a.jpg", "w=150", {"Accept": "image/avif,image/webp"})["uri"] == "/a.jpg/w_200_q_50.webp"
    assert viewer.run("/a.jpg", "fm=avif")["statusCode"] == 400
    viewer.close()


FULL = Settings(
    signing="required",
    client_hints=True,
    presets_only=True,
    crops=("center", "entropy", "attention", "faces"),
    presets=tuple(
        (name, 160 * (i + 1), 160 * (i + 1), 60, "cover", "attention")
        for i, name in enumerate(("thumb", "card", "hero"))
    ),
)


def test_viewer_function_stays_under_the_10_kb_limit_with_every_feature_on() -> None:
    plain, full = (len(bundle.viewer_code(s).encode()) for s in (DEFAULTS, FULL))
    print(f"viewer function: {plain} bytes (defaults), {full} bytes (signing, hints, three presets)")
    assert full < bundle.VIEWER_FUNCTION_LIMIT
    assert plain < full

"""One table of viewer requests, run against normalize.js (in V8) and variants.normalize."""

from __future__ import annotations

import json
import re
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


def _cases() -> list[Any]:
    cases = []
    for case in TABLE["cases"]:
        accept = case["accept"]
        header = TABLE["accept_headers"].get(accept, accept) if accept is not None else None
        expect = _expand(case["expect"]) if isinstance(case["expect"], str) else case["expect"]
        cases.append(
            pytest.param(
                _expand(case["uri"]),
                case["query"],
                header,
                expect,
                case.get("parameter"),
                id=f"{case['uri'][:40]}?{case['query']}[{accept}]",
            )
        )
    return cases


@pytest.fixture(scope="module")
def viewer() -> ViewerFunction:
    return ViewerFunction((bundle.EDGE / "normalize.js").read_text())


def python_answer(uri: str, query: str, accept: str | None) -> tuple[Any, str | None]:
    try:
        return variants.normalize(uri, query, accept, DEFAULTS), None
    except variants.VariantError as problem:
        return 400, problem.parameter


def js_answer(viewer: ViewerFunction, uri: str, query: str, accept: str | None) -> tuple[Any, str | None]:
    result = viewer.run(uri, query, {"Accept": accept} if accept is not None else {})
    if "statusCode" in result:
        body = json.loads(result["body"]["data"])
        assert result["headers"]["content-type"]["value"] == "application/json"
        assert body["message"].startswith("Expected ")
        return result["statusCode"], body["parameter"]
    assert result["querystring"] == {}, "the query must be cleared"
    return result["uri"], None


@pytest.mark.parametrize(("uri", "query", "accept", "expect", "parameter"), _cases())
def test_python_normalizer_matches_table(
    uri: str, query: str, accept: str | None, expect: Any, parameter: str | None
) -> None:
    assert python_answer(uri, query, accept) == (expect, parameter)


@pytest.mark.parametrize(("uri", "query", "accept", "expect", "parameter"), _cases())
def test_viewer_function_matches_table(
    viewer: ViewerFunction, uri: str, query: str, accept: str | None, expect: Any, parameter: str | None
) -> None:
    assert js_answer(viewer, uri, query, accept) == (expect, parameter)


def test_table_covers_every_browser_and_a_wildcard() -> None:
    used = {case["accept"] for case in TABLE["cases"]}
    assert {"chrome", "firefox", "safari", "edge", "any"} <= used


def test_checked_in_viewer_config_is_the_default_config() -> None:
    source = (bundle.EDGE / "normalize.js").read_text()
    assert bundle.viewer_code(DEFAULTS) == source


def test_deploy_replaces_only_the_config_line() -> None:
    custom = Settings(widths=(100, 200), qualities=(50,), default_quality=50, formats=("webp", "jpeg"))
    original = (bundle.EDGE / "normalize.js").read_text().splitlines()
    rendered = bundle.viewer_code(custom).splitlines()
    changed = [(a, b) for a, b in zip(original, rendered, strict=True) if a != b]
    assert len(changed) == 1 and changed[0][1].startswith("var CONFIG = ")
    viewer = ViewerFunction(bundle.viewer_code(custom))
    assert viewer.run("/a.jpg", "w=150", {"Accept": "image/avif,image/webp"})["uri"] == "/a.jpg/w_200_q_50.webp"
    assert viewer.run("/a.jpg", "fm=avif")["statusCode"] == 400


def test_viewer_function_stays_well_under_the_10_kb_limit() -> None:
    assert len(bundle.viewer_code(DEFAULTS).encode()) < 8 * 1024

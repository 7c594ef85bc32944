"""Hostile URLs fuzzed through both normalizers and the rewrite: no crash, nothing outside
the grammar, nothing forwarded that is not canonical."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from components import bundle
from edge import rewrite, variants
from edge.settings import Settings
from localcdn import events
from localcdn.viewer import ViewerFunction

S = Settings(primary_bucket="p", fallback_bucket="f")
PRIMARY, FALLBACK = "p.s3.eu-west-1.amazonaws.com", "f.s3.us-west-2.amazonaws.com"

NASTY = [
    "..",
    ".",
    "",
    "%2e%2e",
    "%2E%2E",
    "%252e%252e",
    "%2e",
    ".%2e",
    "%2F",
    "%2f..%2f",
    "%00",
    "\x00",
    "%0d%0a",
    "%ff",
    "%c0%ae%c0%ae",
    "%c0%af",
    "%e0%80%af",
    "%ed%a0%80",
    "%f4%90%80%80",
    "%",
    "%%",
    "%zz",
    "%2",
    "%E2%80%AE",
    "\u202e",
    "é",
    "%C3%A9",
    "\\",
    "%5c",
    "..%5c..",
    "~",
    "'",
    '"',
    "<script>",
    "%3Cscript%3E",
    "w_100_q_60.webp",
    "w_0_q_60.webp",
    "w_100_q_60_fit_x.webp",
    "variants",
    "originals",
    "a" * 300,
    "ä" * 200,
    "photo.jpg",
    "?",
    "#",
    " ",
    "%20",
    "+",
    "\t",
    "\x7f",
    "\u0085",
    "\ufeff",
    "\U0001f600",
]
segments = st.sampled_from(NASTY) | st.text(max_size=12)
any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
uris = st.lists(segments, min_size=1, max_size=8).map(lambda parts: "/" + "/".join(parts)) | any_text.map(
    lambda text: "/" + text
)
names = st.sampled_from(["w", "W", "width", "WIDTH", "h", "height", "q", "quality", "fm", "FORMAT", "fit", "x", ""])
values = st.sampled_from(
    [*NASTY, "800", "-1", "0", "1e3", "0x10", "99999999999", "avif", "JPG", "auto", "cover", "CONTAIN", "100", "101"]
) | st.text(max_size=8)
queries = st.lists(st.tuples(names, values), max_size=5).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
accepts = (
    st.none()
    | st.sampled_from(
        ["image/avif,image/webp,*/*", "image/webp", "*/*", "image/avif;q=0", "image/AVIF;Q=0.0", "image/avif;q=0.0000"]
    )
    | st.text(max_size=40)
)


@pytest.fixture(scope="module")
def viewer() -> ViewerFunction:
    return ViewerFunction(bundle.viewer_code(S))


def _is_safe(uri: str) -> None:
    """What a forwarded canonical path must satisfy, whoever made it."""
    variant = variants.canonical(uri, S)
    assert variants.format(variant) == uri
    assert variants.validate_key(variant.key) == variant.key
    assert variant.primary_key.startswith("variants/") and variant.original_key.startswith("originals/")
    assert all(part not in ("", ".", "..") for part in variant.key.split("/"))
    assert len(variant.primary_key.encode()) <= 1024
    assert not any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in variant.key)


@hsettings(
    max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(uri=uris, query=queries, accept=accepts)
def test_both_normalizers_agree_and_only_ever_yield_safe_canonical_paths(
    viewer: ViewerFunction, uri: str, query: str, accept: str | None
) -> None:
    answer = viewer.run(uri, query, {"Accept": accept} if accept is not None else {})
    try:
        expected = variants.normalize(uri, query, accept, S)
    except variants.VariantError as problem:
        assert answer.get("statusCode") == 400, answer
        assert json.loads(answer["body"]["data"])["parameter"] == problem.parameter
        return
    assert answer.get("uri") == expected and answer["querystring"] == {}
    _is_safe(expected)
    for domain in (PRIMARY, FALLBACK):
        forwarded = rewrite.handle(events.origin_request(expected, domain, "eu-west-1"), S)
        assert "status" not in forwarded
        _is_safe(forwarded["uri"])
        assert forwarded["origin"]["s3"]["path"] == ("/variants" if domain == PRIMARY else "")


@hsettings(max_examples=1500, deadline=None)
@given(uri=uris | st.text(max_size=60))
def test_rewrite_forwards_only_canonical_paths_and_answers_the_rest_itself(uri: str) -> None:
    for domain in (PRIMARY, FALLBACK):
        result = rewrite.handle(events.origin_request(uri, domain, "eu-west-1"), S)
        if "status" in result:
            assert result["status"] == "400"
            assert json.loads(result["body"])["parameter"] in ("path", "key", "format")
        else:
            _is_safe(result["uri"])
            assert result["origin"]["s3"]["path"] == ("/variants" if domain == PRIMARY else "")


@pytest.mark.parametrize(
    "uri",
    [
        "/a/../b.jpg",
        "/a/%2e%2e/b.jpg",
        "/a//b.jpg",
        "/a%00.jpg",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/" + "k" * 1000 + ".jpg",
        "/a/%ff.jpg",
        "/a/%c0%ae%c0%ae/b.jpg",
        "/./x.jpg",
    ],
)
def test_known_traversal_and_encoding_tricks_are_400s(viewer: ViewerFunction, uri: str) -> None:
    assert viewer.run(uri, "w=100")["statusCode"] == 400
    with pytest.raises(variants.VariantError):
        variants.normalize(uri, "w=100", None, S)


def test_double_encoding_is_decoded_once_and_stays_a_literal_name() -> None:
    result = variants.normalize("/a%252e%252e/b.jpg", "w=100", None, S)
    assert variants.canonical(result, S).key == "a%2e%2e/b.jpg"


@pytest.mark.parametrize("query", ["w=12345678901234567890123456", "h=0012345678901", "w=9999999999"])
def test_a_number_too_long_to_take_is_said_to_be_too_large_by_both_normalizers(
    viewer: ViewerFunction, query: str
) -> None:
    answer = viewer.run("/products/shoe.jpg", query)
    body = json.loads(answer["body"]["data"])
    with pytest.raises(variants.VariantError) as problem:
        variants.normalize("/products/shoe.jpg", query, None, S)
    assert answer["statusCode"] == 400 and body["expected"] == problem.value.expected
    assert body["expected"].startswith("a smaller ") and body["expected"].endswith("(at most 9 digits)")
    assert body["message"].startswith("Expected a smaller ")
    # nine digits are a number it takes (snapped to the widest width), and leading zeros are no size
    assert viewer.run("/products/shoe.jpg", "w=0000000000800")["statusCode"] == 400  # ten digits or more: not taken
    assert "smaller" not in json.loads(viewer.run("/products/shoe.jpg", "w=0000000000800")["body"]["data"])["expected"]

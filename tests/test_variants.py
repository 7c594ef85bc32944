"""The variant grammar's laws, checked by hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from edge import variants
from edge.settings import FITS, FORMATS, Settings

S = Settings(primary_bucket="p", fallback_bucket="f", formats=FORMATS)  # every format, jxl too
segment = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10).filter(
    lambda s: "/" not in s and s not in (".", "..")
)


def _valid(key: str) -> bool:
    try:
        variants.validate_key(key)
        return True
    except variants.VariantError:
        return False


keys = st.lists(segment, min_size=1, max_size=4).map("/".join).filter(_valid)
canonical_variants = st.builds(
    variants.Variant,
    key=keys,
    width=st.sampled_from(S.widths),
    height=st.none() | st.sampled_from(S.widths),
    quality=st.sampled_from(S.qualities),
    fmt=st.sampled_from(FORMATS),
    fit=st.sampled_from(FITS),
).map(lambda v: variants.snap(v, S))


@given(canonical_variants)
def test_format_then_parse_is_the_identity_on_canonical_paths(variant: variants.Variant) -> None:
    path = variants.format(variant)
    assert variants.parse(path) == variant
    assert variants.format(variants.parse(path)) == path
    assert variants.canonical(path, S) == variant


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_width_snapping_is_idempotent_monotonic_and_never_below_the_request(a: int, b: int) -> None:
    snap = lambda w: variants.snap_width(w, S.widths)  # noqa: E731
    assert snap(snap(a)) == snap(a)
    assert snap(a) in S.widths
    if a <= b:
        assert snap(a) <= snap(b)
    assert snap(a) >= min(a, S.widths[-1])


@given(st.integers(min_value=1, max_value=100), st.integers(min_value=1, max_value=100))
def test_quality_snapping_is_idempotent_monotonic_and_nearest(a: int, b: int) -> None:
    snap = lambda q: variants.snap_quality(q, S.qualities)  # noqa: E731
    assert snap(snap(a)) == snap(a)
    if a <= b:
        assert snap(a) <= snap(b)
    assert all(abs(snap(a) - a) <= abs(q - a) for q in S.qualities)


@given(canonical_variants)
def test_nearest_standard_is_standard_and_stable(variant: variants.Variant) -> None:
    nearest = variants.nearest_standard(variant, S)
    assert variants.is_standard(nearest, S)
    assert variants.nearest_standard(nearest, S) == nearest
    assert nearest.width == variant.width and nearest.key == variant.key


@given(st.text(max_size=80))
def test_nothing_outside_the_grammar_is_accepted(uri: str) -> None:
    try:
        variant = variants.canonical(uri, S)
    except variants.VariantError:
        return
    assert variants.format(variant) == uri
    assert variants.SPEC.fullmatch(uri.rsplit("/", 1)[1])


uri_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40).map(lambda s: "/" + s)
query_text = st.lists(
    st.tuples(
        st.sampled_from(["w", "W", "width", "h", "q", "Quality", "fm", "format", "fit", "x", ""]),
        st.text(max_size=8) | st.integers(-5, 5000).map(str),
    ),
    max_size=4,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
accept_text = (
    st.none()
    | st.sampled_from(["image/avif,image/webp,*/*", "image/webp", "*/*", "image/avif;q=0"])
    | st.text(max_size=30)
)


@hsettings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(uri_text, query_text, accept_text)
def test_normalizer_never_crashes_and_always_yields_a_canonical_path(uri: str, query: str, accept: str | None) -> None:
    try:
        result = variants.normalize(uri, query, accept, S)
    except variants.VariantError as problem:
        assert problem.status == 400 and problem.parameter
        return
    assert variants.format(variants.canonical(result, S)) == result
    assert variants.normalize(result, "", None, S) == result

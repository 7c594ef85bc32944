"""Abuse, as a stranger sends it: one test per attack, each with the bound it must respect.

Signed URLs through the deployed viewer function (V8, with the KeyValueStore stand-in) and its
Python twin; keys that read as variant paths through the viewer function, the catalogue's
upload naming and the sync job. The README's "Security" section states each bound.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from catalog import keys
from components import bundle
from edge import signing, variants
from edge.settings import Settings
from localcdn.kvs import KeyValueStore
from localcdn.viewer import ViewerFunction

SECRET = "abuse-secret-0123456789abcdef"
NOW = 1_900_000_000.0
PRESETS = (("thumb", 160, 160, 60, "cover", "attention"),)
STACK = Settings(signing="required", client_hints=True, presets=PRESETS)
OPTIONAL = Settings(signing="optional", client_hints=True, presets=PRESETS)
# What a stranger can vary without touching the signed URL: the hint headers and Accept.
WIDTH_HINTS = ["", "100", "200", "320", "500", "700", "900", "1200", "1700", "2200", "3000"]
DPR_HINTS = ["", "1", "1.5", "2", "2.625", "3", "4", "9"]
ACCEPTS = ["image/avif,image/webp,*/*", "image/webp,*/*", "*/*"]


@pytest.fixture(scope="module")
def viewers() -> Iterator[dict[str, ViewerFunction]]:
    kvs = KeyValueStore("signing")
    kvs.put(signing.KEY_PREFIX + "1", SECRET)
    loaded = {
        name: ViewerFunction(bundle.viewer_code(s), kvs) for name, s in (("required", STACK), ("optional", OPTIONAL))
    }
    yield loaded
    for viewer in loaded.values():
        viewer.close()


def signed(url: str) -> tuple[str, str]:
    path, _, query = signing.sign(url, SECRET, "1", expires=int(NOW) + 3600).partition("?")
    return path, query


def variants_of(viewer: ViewerFunction, path: str, query: str, settings: Settings) -> set[str]:
    """Every canonical path one URL becomes over every hint header and Accept a viewer may send,
    through the deployed JavaScript; the Python twin must agree on each."""
    seen: set[str] = set()
    for width, dpr, accept in itertools.product(WIDTH_HINTS, DPR_HINTS, ACCEPTS):
        headers = {"Accept": accept}
        if width:
            headers["Sec-CH-Width"] = width
            headers["Sec-CH-Viewport-Width"] = width
        if dpr:
            headers["Sec-CH-DPR"] = dpr
        result = viewer.run(path, query, headers, now=NOW)
        assert "statusCode" not in result, result
        uri = str(result["uri"])
        was_signed = signing.verify(path, query, {"1": SECRET}, settings.signing, now=NOW)
        hints = {name.lower(): value for name, value in headers.items() if name != "Accept"}
        assert variants.normalize(path, query, accept, settings, hints, signed=was_signed) == uri
        seen.add(uri)
    return seen


@pytest.mark.parametrize(
    "url",
    [
        "/products/shoe.jpg",
        "/products/shoe.jpg?w=160",
        "/products/shoe.jpg?preset=thumb",
        "/products/shoe.jpg?w=300&dpr=2",
    ],
)
def test_a_signed_url_is_one_variant_per_format_whatever_the_hints(
    viewers: dict[str, ViewerFunction], url: str
) -> None:
    # 11 widths x 8 DPRs x 3 Accept headers sent against one signed URL: at most one variant per format.
    path, query = signed(url)
    made = variants_of(viewers["required"], path, query, STACK)
    formats = {uri.rsplit(".", 1)[1] for uri in made}
    assert len(made) == len(formats) <= 3, sorted(made)


def test_a_signer_who_opts_into_hints_gets_them_within_four_times_the_signed_width(
    viewers: dict[str, ViewerFunction],
) -> None:
    # hints=on is signed like any parameter: with w=160, DPR hints reach 160..640 (4x) and no further.
    path, query = signed("/products/shoe.jpg?w=160&hints=on")
    made = variants_of(viewers["required"], path, query, STACK)
    widths = {int(uri.rsplit("/", 1)[1].split("_")[1]) for uri in made}
    assert widths == {w for w in STACK.widths if 160 <= w <= 640}
    # Without a signed width, a width hint may pick any allowed width: at most every width per format.
    path, query = signed("/products/shoe.jpg?hints=on")
    made = variants_of(viewers["required"], path, query, STACK)
    assert len(made) <= len(STACK.widths) * 3


@pytest.mark.parametrize(
    "url",
    [
        "/products/shoe.jpg?h=450&hints=on",
        "/products/shoe.jpg?h=160&hints=on",
        "/products/shoe.jpg?w=160&h=450&hints=on",
        "/products/shoe.jpg?preset=thumb&hints=on",
    ],
)
def test_a_signed_box_with_hints_is_at_most_four_variants_per_format(
    viewers: dict[str, ViewerFunction], url: str
) -> None:
    # A signed height fixes the box (no width hint), and DPR goes in whole steps: 1, 2, 3 or 4 times
    # what was signed. Before, h=450&hints=on became 70 variants per format (10 widths x 7 heights).
    path, query = signed(url)
    made = variants_of(viewers["required"], path, query, STACK)
    per_format: dict[str, int] = {}
    for uri in made:
        fmt = uri.rsplit(".", 1)[1]
        per_format[fmt] = per_format.get(fmt, 0) + 1
    assert per_format and max(per_format.values()) <= 4, sorted(made)


def test_hints_on_cannot_be_added_to_a_url_signed_without_it(viewers: dict[str, ViewerFunction]) -> None:
    path, query = signed("/products/shoe.jpg?w=160")
    result = viewers["required"].run(path, query + "&hints=on", {"Sec-CH-DPR": "4"}, now=NOW)
    assert result["statusCode"] == 403
    with pytest.raises(signing.SignatureError):
        signing.verify(path, query + "&hints=on", {"1": SECRET}, "required", now=NOW)


def test_hints_takes_only_on(viewers: dict[str, ViewerFunction]) -> None:
    path, query = signed("/products/shoe.jpg?w=160&hints=yes")
    result = viewers["required"].run(path, query, {}, now=NOW)
    assert result["statusCode"] == 400 and '"parameter":"hints"' in result["body"]["data"].replace(" ", "")


def test_an_unsigned_url_on_an_optional_stack_still_follows_the_hints(viewers: dict[str, ViewerFunction]) -> None:
    # Unsigned URLs are open anyway on an optional stack: hints keep doing what clientHints promises.
    made = variants_of(viewers["optional"], "/products/shoe.jpg", "", OPTIONAL)
    assert len(made) > 3


# -- a key means one thing ---------------------------------------------------------------------


def test_an_encoded_slash_or_dot_cannot_make_a_signed_path_name_something_else(
    viewers: dict[str, ViewerFunction],
) -> None:
    # The signature covers the decoded path; the viewer function routes on the decoded path too.
    plain_path, query = signed("/0f8fad5b/w_160_q_60.webp")
    plain = viewers["required"].run(plain_path, query, {"Accept": "image/webp"}, now=NOW)
    assert plain["uri"] == "/0f8fad5b/w_160_q_60.webp"
    for sneaky in ("/0f8fad5b%2Fw_160_q_60.webp", "/0f8fad5b/w_160_q_60%2Ewebp", "/0f8fad5b%2fw_160_q_60%2ewebp"):
        assert signing.message(sneaky, query) == signing.message(plain_path, query)
        answer = viewers["required"].run(sneaky, query, {"Accept": "image/webp"}, now=NOW)
        assert answer.get("uri") == plain["uri"], (sneaky, answer)
        assert variants.normalize(sneaky, query, "image/webp", STACK, signed=True) == plain["uri"]


def test_a_key_ending_in_a_variant_name_is_refused_where_it_would_be_served(
    viewers: dict[str, ViewerFunction],
) -> None:
    # As an original in a folder it could never be asked for; a path naming it as an original is refused.
    path, query = signed("/0f8fad5b/w_160_q_60.webp/w_320_q_60.avif")
    answer = viewers["required"].run(path, query, {}, now=NOW)
    assert answer["statusCode"] == 400 and '"parameter":"key"' in answer["body"]["data"].replace(" ", "")
    with pytest.raises(variants.VariantError, match="variant name"):
        variants.validate_key("0f8fad5b/w_160_q_60.webp")
    variants.validate_key("w_160_q_60.webp")  # at the top level it is an ordinary key: /w_160_q_60.webp?w=..


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [("w_160_q_60.webp", "image/webp"), ("W_160_Q_60.WEBP", "image/webp"), ("w_320_h_320_q_80.jpeg", "image/jpeg")],
)
def test_the_catalogue_never_names_an_upload_like_a_variant(filename: str, content_type: str) -> None:
    _, key = keys.new_upload(filename, content_type)
    variants.validate_key(key.removeprefix("originals/"))  # a key every URL can reach
    assert key.rsplit("/", 1)[1] != filename


def test_the_sync_job_reports_an_unreachable_key_once_and_never_builds_it(monkeypatch: Any) -> None:
    from conftest import FakeS3
    from moto import mock_aws

    from localcdn import samples
    from sync.job import Sync

    small = Settings(
        widths=(160,),
        standard_formats=("webp",),
        primary_bucket="abuse-origin",
        fallback_bucket="abuse-fallback",
        primary_region="eu-west-1",
        fallback_region="eu-central-1",
    )
    with mock_aws():
        store = FakeS3(small)
        store.put_original("0f8fad5b/w_160_q_60.webp", samples.jpeg(samples.photo(200, 100)))
        reports: list[dict[str, str]] = []
        first = Sync(small, store.factory, report=reports.append).reconcile()
        second = Sync(small, store.factory, report=reports.append).reconcile()
        assert (first.built, first.failed, second.built, second.failed) == (0, 1, 0, 0)
        assert len(reports) == 1 and "variant name" in reports[0]["reason"]


# -- one uploader cannot evict everyone's cache ------------------------------------------------


def test_a_thousand_replacements_by_one_user_never_touch_another_users_cached_variant() -> None:
    # The attacker re-POSTs over their own catalogue uploads (a presigned POST may be used again
    # until it expires): every replacement asks for an invalidation. CloudFront takes 15 wildcard
    # paths in progress at once; before, the waiting ones were merged up to `/*`.
    from conftest import FakeS3
    from moto import mock_aws
    from test_invalidation import DISTRIBUTION, Clock, model

    from localcdn import samples
    from sync.invalidation import Invalidator, retry_delay
    from sync.job import Summary, Sync, drain_invalidations

    def variants_summary() -> Summary:
        return Summary(originals=1)

    small = Settings(
        widths=(160,),
        standard_formats=("webp",),
        primary_bucket="abuse-origin",
        fallback_bucket="abuse-fallback",
        primary_region="eu-west-1",
        fallback_region="eu-central-1",
    )
    clock = Clock()
    mine = [f"{n:08x}-0000-4000-8000-000000000000/photo.jpg" for n in range(1000)]
    victim = "/ffffffff-0000-4000-8000-000000000000/cat.jpg/w_160_q_60.webp"
    cache = {f"/{variants.encode_key(k)}/w_160_q_60.webp" for k in mine} | {victim}
    created: list[list[str]] = []
    api = model(clock, cache)
    original_create = api.create_invalidation

    def recording(**kwargs: Any) -> Any:
        created.append(list(kwargs["InvalidationBatch"]["Paths"]["Items"]))
        return original_create(**kwargs)

    api.create_invalidation = recording  # type: ignore[method-assign]
    queue: list[tuple[float, dict[str, Any]]] = []

    def send(paths: list[str], attempt: int = 0) -> None:
        queue.append((clock.now + (retry_delay(attempt) if attempt else 0), {"paths": paths, "attempt": attempt}))

    image = samples.jpeg(samples.photo(64, 48))
    with mock_aws():
        store = FakeS3(small)
        job = Sync(small, store.factory, invalidate=send)
        # The sets are rebuilt as on every replacement; rendering them is not what is tested here.
        job.build = lambda original, stored=None, force=False: variants_summary()  # type: ignore[method-assign]
        primary = store.factory(small.primary_region)
        for key in mine:
            store.put_original(key, image)  # the replacement (its first version was rendered: below)
            primary.put_object(Bucket=small.primary_bucket, Key=f"variants/{key}/w_160_q_60.webp", Body=b"old")
            job.created(key)
        invalidator = Invalidator(api, DISTRIBUTION, clock)
        for _ in range(400):  # the queue's event source mapping, a minute at a time
            due = [body for when, body in queue if when <= clock.now]
            queue[:] = [(when, body) for when, body in queue if when > clock.now]
            if due:
                drain_invalidations(due, invalidator, send)
            assert victim in cache  # at no point
            if not queue:
                break
            clock.now += 60
    assert queue == [] and cache == {victim}  # every replaced original invalidated, the other user's still a hit
    asked = [path for batch in created for path in batch]
    assert sorted(asked) == sorted(f"/{variants.encode_key(k)}/*" for k in mine)  # one path each, none broader

"""The reconcile's plan against a model of what it must decide, on keys chosen to sort awkwardly.

S3 lists keys "in UTF-8 binary order" (S3 User Guide, "Listing object keys programmatically"),
and ListObjectsV2 pages by MaxKeys, resuming after StartAfter or a ContinuationToken (S3 API
Reference, "ListObjectsV2"). The bucket here (bench.requests.ListingBucket) is that document as
code, and hypothesis draws the
originals, what the fallback holds, page sizes and where each leg runs out of time. Whatever it
draws, the legs together must: hand every original that is not current to the batches (once,
with exactly the names the fallback holds for it), delete exactly the orphans and the retired
variants of current originals, and leave everything else alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.requests import ListingBucket
from edge.settings import Settings
from sync import job as sync_module
from sync.job import FAILED_MARKER, SET_MARKER, Original, Sync

SMALL = Settings(
    widths=(160, 320),
    qualities=(60,),
    default_quality=60,
    standard_formats=("webp",),
    primary_bucket="plan-origin",
    primary_region="eu-west-1",
    fallback_bucket="plan-fallback",
    fallback_region="eu-central-1",
)
SPECS = ["w_160_q_60.webp", "w_320_q_60.webp"]
RETIRED = "w_640_q_60.jpeg"  # ours, not standard
FOREIGN = "notes.txt"  # not ours: never touched


segment = st.text(alphabet="ab!-0.é~", min_size=1, max_size=3).filter(lambda s: s not in (".", ".."))
keys = st.lists(segment, min_size=1, max_size=3).map("/".join)
holdings = st.sets(st.sampled_from(["spec0", "spec1", "marker", "old-marker", "failed", "retired", "foreign"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    originals=st.dictionaries(keys, st.sampled_from(["e1", "e2", ""]), max_size=8),
    dead=st.sets(keys, max_size=4),
    held=st.dictionaries(keys, holdings, max_size=12),
    page=st.integers(1, 4),
    cuts=st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_the_plan_decides_what_a_model_of_it_decides(
    originals: dict[str, str], dead: set[str], held: dict[str, set[str]], page: int, cuts: list[bool]
) -> None:
    names = {
        "spec0": SPECS[0],
        "spec1": SPECS[1],
        "marker": None,
        "old-marker": f"{SET_MARKER}old",
        "retired": RETIRED,
        "foreign": FOREIGN,
    }
    fallback: dict[str, dict[str, Any]] = {}
    for key, holding in held.items():
        etag = originals.get(key, "gone")
        for what in holding:
            name = names.get(what) or (f"{SET_MARKER}{etag}" if what == "marker" else f"{FAILED_MARKER}{etag}")
            fallback[f"{key}/{name}"] = {}
    primary = {f"originals/{key}": {"ETag": f'"{etag}"', "Size": 1} for key, etag in originals.items()}
    fallback_bucket, primary_bucket = ListingBucket(dict(fallback)), ListingBucket(primary)
    clients = {SMALL.primary_region: primary_bucket, SMALL.fallback_region: fallback_bucket}

    # The model: per original, what the fallback holds directly below it; current or work.
    def stored(key: str) -> set[str]:
        return {k[len(key) + 1 :] for k in fallback if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]}

    def current(key: str) -> bool:
        etag, here = originals[key], stored(key)
        return bool(etag) and (f"{FAILED_MARKER}{etag}" in here or ({f"{SET_MARKER}{etag}", *SPECS} <= here))

    expected_work = {key: frozenset(stored(key)) for key in originals if not current(key)}
    ours = {*SPECS, RETIRED}
    orphans = {
        k
        for k in fallback
        if k.rpartition("/")[0] not in originals
        and (k.rpartition("/")[2] in ours or k.rpartition("/")[2].startswith((SET_MARKER, FAILED_MARKER)))
    }
    retired = {f"{key}/{RETIRED}" for key in originals if current(key) and RETIRED in stored(key)}

    work: dict[str, frozenset[str] | None] = {}
    budget = iter(cuts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sync_module, "PAGE_SIZE", page)
        job = Sync(SMALL, lambda region: clients[region])
        cursor: dict[str, Any] | None = None
        for _ in range(1000):
            _, cursor = job.plan(
                cursor,
                lambda o, n: work.__setitem__(o.key, n) if o.key not in work else pytest.fail(f"{o.key} twice"),
                lambda: 0.0 if next(budget, False) else 10_000.0,
            )
            if cursor is None:
                break
            json.dumps(cursor)  # what Step Functions carries to the next leg
        else:
            pytest.fail("the plan's legs never ended")

    assert work == expected_work
    assert set(fallback) - set(fallback_bucket.objects) == orphans | retired
    assert primary_bucket.objects == primary  # nothing under originals/ is touched
    # one pass over originals/: no page asked for twice, whatever the legs
    assert primary_bucket.lists == max(1, -(-len(originals) // page))


def test_an_original_whose_key_is_a_variant_path_of_another_is_both() -> None:
    # "x/w_160_q_60.webp" is an original and the name of one of x's variants: both are kept.
    key = "x/" + SPECS[0]
    fallback = {f"x/{SPECS[0]}": {}, f"x/{SPECS[1]}": {}, f"x/{SET_MARKER}e": {}}
    fallback |= {f"{key}/{name}": {} for name in [*SPECS, f"{SET_MARKER}f"]}
    primary = {"originals/x": {"ETag": '"e"', "Size": 1}, f"originals/{key}": {"ETag": '"f"', "Size": 1}}
    buckets = {SMALL.primary_region: ListingBucket(primary), SMALL.fallback_region: ListingBucket(dict(fallback))}
    work: list[Original] = []
    summary, cursor = Sync(SMALL, lambda region: buckets[region]).plan(None, lambda o, n: work.append(o))
    assert (cursor, work, summary.deleted, summary.skipped) == (None, [], 0, 4)
    assert buckets[SMALL.fallback_region].objects == fallback

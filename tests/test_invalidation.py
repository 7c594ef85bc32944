"""CloudFront invalidations within CloudFront's limits.

The model's tests are written from AWS's documents: "Concurrent invalidation request
maximum" (CloudFront Developer Guide, "Invalidate files"): "you can have invalidation
requests for up to 3,000 files per distribution in progress at one time"; "If you're
using the * wildcard, you can have requests for up to 15 invalidation paths in progress
at one time"; "the maximum on wildcard invalidation requests allowed is independent of
the maximum on invalidating files individually"; "If you exceed the maximum, CloudFront
returns an error message". The job's tests then show that replacing or deleting 1,000
originals at once ends with every cached variant invalidated and nothing dead-lettered.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import FakeS3
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from edge import variants
from edge.settings import Settings
from localcdn.cloudfront import CloudFrontError, Invalidations
from sync.invalidation import MAX_WILDCARDS_IN_PROGRESS, Invalidator, fitting, is_wildcard, retry_delay
from sync.job import Sync, drain_invalidations

DISTRIBUTION = "EDFDVBD6EXAMPLE"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def model(clock: Clock, cache: set[str] | None = None, duration: float = 60.0) -> Invalidations:
    def drop(paths: list[str]) -> int:
        if cache is None:
            return 0
        doomed = {key for key in cache if any(key == p or (p.endswith("*") and key.startswith(p[:-1])) for p in paths)}
        cache.difference_update(doomed)
        return len(doomed)

    return Invalidations(DISTRIBUTION, drop, clock, duration)


def create(api: Invalidations, paths: list[str], reference: str) -> dict[str, Any]:
    return api.create_invalidation(
        DistributionId=DISTRIBUTION,
        InvalidationBatch={"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": reference},
    )


# -- the model, from the document -----------------------------------------------------------


def test_fifteen_wildcard_paths_may_be_in_progress_and_the_sixteenth_is_refused() -> None:
    api = model(Clock())
    for index in range(15):
        create(api, [f"/k{index}.jpg/*"], f"r{index}")
    with pytest.raises(CloudFrontError) as refused:
        create(api, ["/k15.jpg/*"], "r15")
    assert refused.value.code == "TooManyInvalidationsInProgress"
    assert api.in_progress() == (15, 0)


def test_three_thousand_file_paths_may_be_in_progress_independently_of_wildcards() -> None:
    api = model(Clock())
    for index in range(15):
        create(api, [f"/w{index}/*"], f"w{index}")
    create(api, [f"/f/{n}.jpg" for n in range(3000)], "files")  # 15 wildcards in progress do not count here
    with pytest.raises(CloudFrontError) as refused:
        create(api, ["/f/one-more.jpg"], "one-more")
    assert refused.value.code == "TooManyInvalidationsInProgress"


def test_a_batch_of_more_than_three_thousand_paths_is_too_large() -> None:
    with pytest.raises(CloudFrontError) as refused:
        create(model(Clock()), [f"/f/{n}.jpg" for n in range(3001)], "big")
    assert refused.value.code == "BatchTooLarge"


@pytest.mark.parametrize("path", ["no-slash.jpg", "/a*/b.jpg", "/" + "x" * 4000])
def test_a_path_is_absolute_with_a_wildcard_only_at_its_end(path: str) -> None:
    with pytest.raises(CloudFrontError) as refused:
        create(model(Clock()), [path], "bad")
    assert refused.value.code == "InvalidArgument"


def test_slots_free_up_when_invalidations_complete_and_a_reference_is_idempotent() -> None:
    clock = Clock()
    api = model(clock, duration=60.0)
    first = create(api, ["/a/*"], "same")
    assert create(api, ["/a/*"], "same")["Invalidation"]["Id"] == first["Invalidation"]["Id"]
    with pytest.raises(CloudFrontError) as reused:
        create(api, ["/b/*"], "same")
    assert reused.value.code == "InvalidationBatchAlreadyExists"
    for index in range(14):
        create(api, [f"/k{index}/*"], f"r{index}")
    clock.now = 61.0
    assert api.in_progress() == (0, 0)
    create(api, ["/later/*"], "later")
    listing = api.list_invalidations(DistributionId=DISTRIBUTION)["InvalidationList"]
    assert listing["Items"][0]["Status"] == "InProgress" and listing["Items"][-1]["Status"] == "Completed"


def test_one_invalidation_per_original_fails_at_the_sixteenth_as_the_old_sync_job_did() -> None:
    api = model(Clock())
    failures = 0
    for index in range(20):
        try:
            create(api, [f"/replaced-{index}.jpg/*"], f"sync-{index}")
        except CloudFrontError:
            failures += 1
    assert failures == 5


# -- what fits now, what waits -----------------------------------------------------------------

segment = st.text(alphabet="abcxyz-.%", min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
paths = st.lists(
    st.tuples(st.lists(segment, min_size=1, max_size=4), st.booleans()).map(
        lambda t: "/" + "/".join(t[0]) + ("/*" if t[1] else "/w_160_q_60.webp")
    ),
    max_size=60,
    unique=True,
)


@hsettings(max_examples=400, deadline=None)
@given(paths=paths, wildcards=st.integers(min_value=0, max_value=20), files=st.integers(min_value=0, max_value=40))
def test_what_fits_is_sent_as_it_is_and_the_rest_waits_in_order(paths: list[str], wildcards: int, files: int) -> None:
    now, later = fitting(paths, wildcards, files)
    assert sorted(now + later) == sorted(paths)  # nothing merged, broadened or dropped
    assert [p for p in paths if p in now] == now and [p for p in paths if p in later] == later  # oldest first
    assert sum(map(is_wildcard, now)) <= wildcards and sum(not is_wildcard(p) for p in now) <= files
    # nothing waits that would have fitted: each kind fills its free slots before anything of it waits
    for kind in (True, False):
        waiting = [p for p in later if is_wildcard(p) == kind]
        assert not waiting or sum(is_wildcard(p) == kind for p in now) == (wildcards if kind else files)


def test_a_key_with_a_star_is_one_original_s_wildcard() -> None:
    # "*" may end an invalidation path only; canonical paths escape it, so /<key>/* stays one original's.
    api = model(Clock())
    (path,) = Sync(SMALL, lambda region: None).cached_paths("sale*/shoe.jpg")  # type: ignore[arg-type, return-value]
    assert path == "/sale%2A/shoe.jpg/*"
    create(api, [path], "star")


def test_retries_back_off_up_to_sqs_maximum_delay() -> None:
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5, 9)] == [60, 120, 240, 480, 900, 900]


# -- the sync job, 1,000 originals at once ------------------------------------------------------

SMALL = Settings(
    widths=(160, 320),
    qualities=(60,),
    default_quality=60,
    standard_formats=("webp", "jpeg"),
    primary_bucket="test-origin",
    primary_region="eu-west-1",
    fallback_bucket="test-fallback",
    fallback_region="eu-central-1",
)


@pytest.fixture
def small_s3() -> Any:
    from moto import mock_aws

    with mock_aws():
        yield FakeS3(SMALL)


def test_deleting_a_thousand_originals_invalidates_every_cached_variant_and_dead_letters_nothing(
    small_s3: FakeS3,
) -> None:
    clock = Clock()
    keys = [f"catalogue/{n // 100}/{n}.jpg" for n in range(1000)]
    cache = {f"/{variants.encode_key(k)}/w_{w}_q_60.{f}" for k in keys for w in (160, 320) for f in ("webp", "avif")}
    cache |= {"/untouched.jpg/w_160_q_60.webp"}
    api = model(clock, cache)
    queue: list[tuple[float, dict[str, Any]]] = []
    dead: list[Any] = []

    def send(paths: list[str], attempt: int = 0) -> None:
        queue.append((clock.now + (retry_delay(attempt) if attempt else 0), {"paths": paths, "attempt": attempt}))

    job = Sync(SMALL, small_s3.factory, invalidate=send, report=dead.append)
    for key in keys:  # one ObjectRemoved event each, as a bulk delete sends them
        job.removed(key)
    invalidator = Invalidator(api, DISTRIBUTION, clock)
    for _ in range(200):  # the queue's event source mapping, a minute at a time
        due = [body for when, body in queue if when <= clock.now]
        queue[:] = [(when, body) for when, body in queue if when > clock.now]
        if due:
            drain_invalidations(due, invalidator, send)
        if not queue:
            break
        clock.now += 60
    assert queue == [] and dead == []
    # every variant of a deleted original is gone from the edge; the rest of the catalogue is not
    assert cache == {"/untouched.jpg/w_160_q_60.webp"}
    assert api.in_progress()[0] <= MAX_WILDCARDS_IN_PROGRESS


def test_what_does_not_fit_waits_in_the_queue_and_goes_when_slots_free_up() -> None:
    clock = Clock()
    api = model(clock)
    for index in range(15):  # someone else's invalidations hold every wildcard slot
        create(api, [f"/other-{index}/*"], f"other-{index}")
    sent: list[tuple[list[str], int]] = []
    invalidator = Invalidator(api, DISTRIBUTION, clock)
    left = drain_invalidations([{"paths": ["/a.jpg/*"], "attempt": 0}], invalidator, lambda p, a: sent.append((p, a)))
    assert left == ["/a.jpg/*"] and sent == [(["/a.jpg/*"], 1)]
    clock.now = 61
    assert drain_invalidations([{"paths": ["/a.jpg/*"], "attempt": 1}], invalidator, lambda p, a: None) == []
    listing = api.list_invalidations(DistributionId=DISTRIBUTION)["InvalidationList"]["Items"]
    (newest,) = [i for i in listing if i["Status"] == "InProgress"]
    batch = api.get_invalidation(DistributionId=DISTRIBUTION, Id=newest["Id"])["Invalidation"]["InvalidationBatch"]
    assert batch["Paths"]["Items"] == ["/a.jpg/*"]

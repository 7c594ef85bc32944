"""The benchmark's cache arithmetic and its cold-miss harness (the benchmarks themselves run with `make bench`,
not here: nothing below asserts a time)."""

from __future__ import annotations

from bench import cache


def test_each_distinct_key_misses_once_and_is_counted_for_its_original() -> None:
    keys = [(0, "a"), (0, "a"), (1, "b"), (0, "c"), (0, "a"), (1, "b")]
    result = cache._scheme(keys)
    assert result["distinct_keys"] == 3
    assert result["hit_ratio"] == round(3 / 6, 4)
    assert result["hit_ratio_after_warmup"] == round(2 / 3, 4)  # second half: (0,c) miss, (0,a) and (1,b) hit
    assert result["keys_per_original"] == {"mean": 1.5, "median": 1.5, "p99": 1, "max": 2}


def test_the_trace_is_reproducible_and_uses_every_browser_header() -> None:
    first, second = cache.trace(2000, 50), cache.trace(2000, 50)
    assert first == second
    assert {accept for _, _, accept, _, _ in first} == {header for header, _ in cache.BROWSERS}
    assert all(query.startswith("w=") and int(query[2:]) > 0 for _, query, _, _, _ in first)
    assert all(css > 0 and 1 <= dpr <= 4 for *_, css, dpr in first)


def test_our_keys_are_fewer_than_raw_keys_on_a_small_trace() -> None:
    result = cache.run(requests=20_000, originals=200)
    assert result["ours"]["distinct_keys"] < result["raw_query_and_accept"]["distinct_keys"]
    assert result["ours"]["hit_ratio"] > result["raw_query_and_accept"]["hit_ratio"]
    # DPR and client hints land on the same snapped keys: no more keys than without them
    hinted, ours = result["ours_with_dpr_and_hints"], result["ours"]
    assert hinted["keys_per_original"]["mean"] <= ours["keys_per_original"]["mean"]
    assert hinted["distinct_keys"] <= ours["distinct_keys"]


def test_the_cold_miss_bench_answers_every_case_alike_in_fresh_processes() -> None:
    """`make bench`'s cold and warm misses, one process per case: each answer is the image asked for."""
    from bench import coldmiss
    from edge import variants
    from edge.settings import Settings

    standard = len(variants.standard_set("x", Settings()))
    result = coldmiss.run(processes=1)
    rows = {(r["function"], r["output"], r["s3"]): r for r in result["rows"]}
    assert set(rows) == set(coldmiss.CASES)
    for (function, fmt, _), row in rows.items():
        if function == "resize":
            assert row["answers"] == [{"bytes": row["answers"][0]["bytes"], "status": "200", "type": f"image/{fmt}"}]
        else:
            assert row["answers"] == [{"built": standard, "failed": 0}]
        assert row["processes"] == 1

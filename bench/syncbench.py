"""The sync job's benchmarks: decode-once against the per-variant path, workers, memory, a
5,000-original reconcile in the emulator, and a projection to 100k and 1M originals on AWS."""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import prices, proc
from edge.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CHART = BENCH / "sync-projection.png"
# What the projection assumes of a Lambda worker: CPU share is proportional to memory,
# one full vCPU at 1,769 MB (AWS, "Lambda memory and computing power"); the renders of one
# original are single-threaded, so a share above one vCPU does not speed them up.
FULL_VCPU_MB = 1769


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _worker(*args: str, stdin: str | None = None) -> dict[str, Any]:
    # the emulator's S3 takes any credentials; the worker must have some
    return proc.run_module("bench.worker", *args, env=proc.local_credentials(), stdin=stdin)


def _photos(count: int, width: int, height: int) -> list[bytes]:
    from localcdn import samples

    distinct = [samples.jpeg(samples.photo(width, height, seed=seed), quality=88) for seed in range(min(count, 5))]
    return [distinct[index % len(distinct)] for index in range(count)]


def _render_many(data: bytes) -> int:
    from edge import imaging

    settings = Settings()
    return sum(
        1 for _ in imaging.render_set(data, widths=settings.widths, formats=settings.standard_formats, quality=60)
    )


def _scaling(count: int = 24) -> dict[str, float]:
    """Originals per second rendering whole sets in a pool of 1 and of 2 processes (no S3)."""
    photos = _photos(count, 2400, 1600)
    rates = {}
    context = multiprocessing.get_context("spawn")
    for workers in (1, 2):
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            list(pool.map(_render_many, photos[:workers]))  # start and warm the workers
            started = time.perf_counter()
            list(pool.map(_render_many, photos))
            rates[str(workers)] = round(count / (time.perf_counter() - started), 3)
    return rates


def _cpu_only(rounds: int = 5) -> dict[str, Any]:
    from localcdn import samples

    with tempfile.TemporaryDirectory() as scratch:
        inputs = {"2400x1600 generated JPEG": samples.jpeg(samples.photo(2400, 1600, seed=1), quality=88)}
        shared = samples.shared_images()
        if shared is not None:
            inputs["2725x2225 photo (sharp's)"] = (shared / "sharp-bench-2725x2225.jpg").read_bytes()
        rows = []
        for name, data in inputs.items():
            path = Path(scratch) / "input.jpg"
            path.write_bytes(data)
            seconds = _worker("render", json.dumps([str(path)]), str(rounds))
            rows.append(
                {
                    "input": name,
                    "per_variant_s": round(seconds["per-variant"], 3),
                    "decode_once_s": round(seconds["decode-once"], 3),
                    "speedup": round(seconds["per-variant"] / seconds["decode-once"], 2),
                    "encoding_s": round(seconds["encoding"], 3),
                    # the most any decoding strategy could gain with the same encoders
                    "ceiling": round(seconds["per-variant"] / seconds["encoding"], 2),
                }
            )
    return {"rounds": rounds, "rows": rows}


def _end_to_end(count: int) -> dict[str, Any]:
    """One worker, the emulator's S3: the per-variant path and the decode-once batch on the same originals."""

    from localcdn.storage import LocalS3

    base = {"primary_bucket": "bench-sync-origin", "fallback_bucket": "bench-sync-before"}
    storage = LocalS3(Settings(primary_bucket=base["primary_bucket"], fallback_bucket=base["fallback_bucket"]))
    try:
        storage.client(Settings().fallback_region).create_bucket(
            Bucket="bench-sync-after", CreateBucketConfiguration={"LocationConstraint": Settings().fallback_region}
        )
        for index, data in enumerate(_photos(count, 2400, 1600)):
            storage.put_original(f"photos/{index:04}.jpg", data)
        before = _worker("sync", storage.endpoint, "per-variant", stdin=json.dumps(base))
        after = _worker(
            "sync", storage.endpoint, "decode-once", stdin=json.dumps({**base, "fallback_bucket": "bench-sync-after"})
        )
    finally:
        storage.stop()
    return {
        "originals": count,
        "original": "2400x1600 JPEG",
        "before": before,
        "after": after,
        "speedup": round(after["originals_per_second"] / before["originals_per_second"], 2),
    }


def _catalogue(count: int) -> dict[str, Any]:
    """A reconcile of `count` generated originals in the emulator, with the local process pool, twice."""

    from localcdn import samples
    from localcdn.storage import LocalS3
    from sync import backfill

    settings = Settings(primary_bucket="bench-catalogue-origin", fallback_bucket="bench-catalogue-fallback")
    storage = LocalS3(settings)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")  # the pool's workers reach the emulator's S3
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    letters: list[dict[str, str]] = []
    try:
        log(f"sync: uploading {count} generated originals ...")
        for index in range(count):
            storage.put_original(
                f"catalogue/{index // 100:03}/{index:05}.jpg",
                samples.jpeg(samples.photo(320, 240, seed=index), quality=80),
            )
        started = time.perf_counter()
        first = backfill.reconcile(settings, endpoint_url=storage.endpoint, report=letters.append)
        first_seconds = time.perf_counter() - started
        stored = list(storage.objects(settings.fallback_bucket))
        variants_stored = sum(1 for item in stored if "/_" not in item["Key"])
        started = time.perf_counter()
        second = backfill.reconcile(settings, endpoint_url=storage.endpoint, report=letters.append)
        second_seconds = time.perf_counter() - started
    finally:
        storage.stop()
    expected = count * len(settings.widths) * len(settings.standard_formats)
    return {
        "originals": count,
        "original": "320x240 JPEG",
        "workers": os.cpu_count(),
        "first_seconds": round(first_seconds, 1),
        "first_built": first.built,
        "variants_stored": variants_stored,
        "variants_expected": expected,
        "dead_letters": len(letters),
        "second_seconds": round(second_seconds, 1),
        "second_built": second.built,
    }


def _rss(end_to_end: dict[str, Any]) -> dict[str, float]:
    after = end_to_end["after"]
    return {
        "baseline_mb": after["baseline_mb"],
        "peak_mb": after["peak_mb"],
        "added_mb": round(after["peak_mb"] - after["baseline_mb"], 1),
    }


def projection(
    seconds_per_original: float, bytes_per_original: float, memory_mb: int, batch_size: int
) -> list[dict[str, Any]]:
    """Wall time and cost of a full reconcile on AWS from a measured time per original.

    Wall time: originals / concurrency x time per original on a Lambda worker, which gets
    min(1, memory/1769 MB) of a vCPU (the renders are single-threaded). Cost, from the
    dated price table in `bench/prices.py`: Lambda GB-seconds and requests, Standard child
    workflow transitions, S3 requests (the first fill's counted model: a GET of each original,
    21 PUTs, the plan's LISTs), and the written bytes crossing regions.
    """
    share = min(1.0, memory_mb / FULL_VCPU_MB)
    on_lambda = seconds_per_original / share
    rows = []
    for originals in (100_000, 1_000_000):
        for concurrency in (100, 1000):
            batches = originals / batch_size
            wall = originals / concurrency * on_lambda + originals / 1000 * 0.05  # + the listing, 50 ms a page
            gb_seconds = originals * on_lambda * memory_mb / 1024
            cost = {
                "lambda": gb_seconds * prices.LAMBDA_ARM_GB_SECOND + batches * prices.LAMBDA_REQUEST,
                # a Standard child per batch: its task and its end, two transitions (at most)
                "step functions": batches * 2 * prices.STANDARD_TRANSITION,
                "s3 requests": _first_fill_requests_usd(originals),
                "transfer": originals * bytes_per_original / 1e9 * prices.INTER_REGION_GB,
            }
            rows.append(
                {
                    "originals": originals,
                    "concurrency": concurrency,
                    "wall_minutes": round(wall / 60, 1),
                    "cost_usd": round(sum(cost.values()), 2),
                    **{f"{name}_usd": round(value, 2) for name, value in cost.items()},
                }
            )
    return rows


def _first_fill_requests_usd(originals: int) -> float:
    """S3 requests of a first fill (every original built), from the model tests/test_requests.py
    holds equal to the counted requests."""
    from bench import requests

    settings = Settings()
    model = requests.requests_per_operation(len(settings.widths) * len(settings.standard_formats), originals)
    usd = 0.0
    for where in ("primary", "fallback", "results"):
        tier1, tier2 = requests.s3_requests(model["reconcile_first"], where)
        usd += tier1 * prices.S3_PUT + tier2 * prices.S3_GET
    return usd


def chart(rows: list[dict[str, Any]], path: Path = CHART) -> str:
    """The projection as a picture: wall time and cost by concurrency, for 100k and 1M originals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, cost_axis) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    for originals, colour in ((100_000, "#4c78a8"), (1_000_000, "#e45756")):
        mine = [r for r in rows if r["originals"] == originals]
        label = f"{originals:,} originals"
        time_axis.plot(
            [r["concurrency"] for r in mine], [r["wall_minutes"] for r in mine], "o-", color=colour, label=label
        )
        name = "1M" if originals == 1_000_000 else f"{originals // 1000}k"
        cost_axis.bar([f"{name} @ {r['concurrency']}" for r in mine], [r["cost_usd"] for r in mine], color=colour)
    time_axis.axhline(60, color="#888", linestyle="--", linewidth=1)
    time_axis.text(110, 64, "one hour", fontsize=7, color="#666")
    time_axis.set(
        xscale="log",
        yscale="log",
        xlabel="concurrency (batches at once)",
        ylabel="minutes",
        title="Full reconcile, projected",
    )
    time_axis.legend(fontsize=8)
    cost_axis.set(ylabel="USD per full reconcile", title="Cost, projected")
    cost_axis.tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path.name


def reconcile_requests(originals: int = 1000, projected: int = 1_000_000) -> dict[str, Any]:
    """Requests of a steady-state reconcile, counted against moto for this engine and the previous one
    (one LIST of the primary per original), per original and projected to `projected` originals; the
    other operations' counts beside them. Prices from `bench/prices.py`."""
    from bench import prices, requests

    settings = Settings(primary_bucket="bench-requests-origin", fallback_bucket="bench-requests-fallback")
    standard = len(settings.widths) * len(settings.standard_formats)
    counted = requests.count_operations(settings, originals)
    previous = requests.count_previous(settings, originals)

    def row(name: str, counts: dict[str, Any] | None, model: dict[str, Any] | None) -> dict[str, Any] | None:
        if counts is None:
            return None
        lists = {where: counts.get(where, {}).get("ListObjectsV2", 0) for where in ("primary", "fallback")}
        total = sum(n for where, ops in counts.items() if where != "run" for n in ops.values())
        if model is not None:  # the model the tests hold equal to the counts, at the projected size
            big = {where: model.get(where, {}).get("ListObjectsV2", 0) for where in ("primary", "fallback")}
        else:  # the previous engine's counts grow with the originals: scaled linearly from the count
            big = {where: round(n * projected / originals) for where, n in lists.items()}
        usd = sum(big.values()) * prices.S3_PUT
        return {
            "engine": name,
            "primary_lists": lists["primary"],
            "fallback_lists": lists["fallback"],
            "requests": total,
            "per_original": round(total / originals, 4),
            "projected_primary_lists": big["primary"],
            "projected_fallback_lists": big["fallback"],
            "projected_usd_per_run": round(usd, 2),
        }

    model = requests.requests_per_operation(standard, projected)["reconcile_steady"]
    rows = [r for r in (row("previous (sweep)", previous, None), row("plan", counted["reconcile_steady"], model)) if r]
    return {"originals": originals, "projected": projected, "rows": rows, "operations": counted}


def run(count: int = 100, catalogue: int = 5000, memory_mb: int = 2048, batch_size: int = 10) -> dict[str, Any]:
    from bench import requests

    log("sync: requests of a steady-state reconcile, this engine and the previous one (moto) ...")
    counted = reconcile_requests()
    log("sync: the plan's own CPU (100,000 originals, in-memory buckets) ...")
    plan = requests.plan_cpu()
    log("sync: the standard set, per variant and from one decode (CPU only) ...")
    cpu = _cpu_only()
    log(f"sync: one worker over {count} originals in the emulator's S3, before and after ...")
    end_to_end = _end_to_end(count)
    log("sync: 1 and 2 workers ...")
    scaling = _scaling()
    catalogue_run = _catalogue(catalogue)
    after = end_to_end["after"]
    seconds_per_original = after["seconds"] / after["originals"]
    bytes_per_original = after["bytes_written"] / after["originals"]
    rows = projection(seconds_per_original, bytes_per_original, memory_mb, batch_size)
    return {
        "requests": counted,
        "plan": plan,
        "cpu_only": cpu,
        "end_to_end": end_to_end,
        "scaling": {**scaling, "ratio": round(scaling["2"] / scaling["1"], 2)},
        "rss_per_worker": _rss(end_to_end),
        "catalogue": catalogue_run,
        "projection": {
            "seconds_per_original_here": round(seconds_per_original, 3),
            "bytes_per_original": round(bytes_per_original),
            "memory_mb": memory_mb,
            "batch_size": batch_size,
            "prices_as_of": prices.AS_OF,
            "rows": rows,
            "chart": chart(rows),
        },
    }

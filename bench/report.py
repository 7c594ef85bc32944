"""The benchmark results as tables (stdout) and as BENCHMARKS.md (method, machine, numbers, goals)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = Sequence[object]


def grid(headers: Row, rows: Sequence[Row], markdown: bool) -> str:
    cells = [[str(c) for c in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in cells[0]) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells[1:]])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    )


def sections(results: dict[str, Any], markdown: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    rows: list[Row]
    transform = results.get("transform")
    if transform:
        rows = [
            (
                r["task"],
                r.get("sharp_ms"),
                r["ours_ms"],
                r["pyvips_ms"],
                r.get("ours_time_ratio"),
                r.get("pyvips_time_ratio"),
                r.get("sharp_bytes"),
                r["ours_bytes"],
                r.get("ours_bytes_ratio"),
                r.get("sharp_ssim"),
                r.get("ours_ssim"),
                r.get("pyvips_ssim"),
            )
            for r in transform["rows"]
        ]
        headers = (
            "task",
            "sharp ms",
            "ours ms",
            "pyvips ms",
            "ours/sharp",
            "pyvips/sharp",
            "sharp bytes",
            "ours bytes",
            "bytes ours/sharp",
            "SSIM sharp",
            "SSIM ours",
            "SSIM pyvips",
        )
        out.append(
            (f"Transform (median ms/op, one thread; input: {transform['source']})", grid(headers, rows, markdown))
        )
        steps = transform.get("jpeg_profile_ms", {})
        if steps:
            out.append(
                (
                    "Profile of image-cdn's JPEG task (median ms per step, Pillow)",
                    grid(tuple(steps), [tuple(steps.values())], markdown),
                )
            )
        tried = transform.get("jpeg_tried")
        if tried:
            rows = [
                (t["way"], t["ms"], t.get("time_vs_sharp"), t["bytes"], t.get("bytes_vs_sharp"), t["ssim"])
                for t in tried
            ]
            out.append(
                (
                    "The JPEG task, each way tried within Pillow (median ms, interleaved rounds; "
                    f"sharp's SSIM {transform.get('sharp_jpeg_ssim')})",
                    grid(("way", "ms", "x sharp", "bytes", "bytes x sharp", "SSIM"), rows, markdown),
                )
            )
    memory = results.get("memory")
    if memory:
        rows = [(r["input"], r["input_mb"], r["baseline_mb"], r["peak_mb"], r["added_mb"], r["ms"]) for r in memory]
        out.append(
            (
                "Peak memory of one transform (-> 1024 wide WebP, fresh process, peak RSS)",
                grid(("input", "file MB", "RSS before MB", "peak RSS MB", "added MB", "ms"), rows, markdown),
            )
        )
    service = results.get("service_sync")
    if service:
        fields = ("originals", "response_mb", "idle_mb", "peak_mb", "added_mb", "built", "failed", "seconds")
        row = tuple(service[name] for name in (*fields, "mb_per_second"))
        out.append(
            (
                "Sync from a third-party service (manifest streamed, each answer streamed into S3; one worker process)",
                grid(
                    (
                        "originals",
                        "MB per answer",
                        "idle RSS MB",
                        "peak RSS MB",
                        "added MB",
                        "stored",
                        "failed",
                        "s",
                        "MB/s",
                    ),
                    [row],
                    markdown,
                ),
            )
        )
    cold = results.get("cold_start")
    if cold:
        rows = [
            (r["module"], r["ms"], r["ratio"], r.get("over_runtime_ratio", ""), r.get("heavy_imports", ""))
            for r in cold
        ]
        out.append(
            (
                "Cold start (median wall ms of `python -c 'import M'`, 40 runs each, interleaved)",
                grid(("module", "ms", "x bare", "x runtime's imports", "Pillow/boto3 loaded"), rows, markdown),
            )
        )
    misses = results.get("misses")
    if misses:
        rows = [
            (
                r["function"],
                r["output"],
                r["s3"],
                r["cold_ms"],
                r["warm_ms"],
                r["extra_ms"],
                "yes" if r["goal_met"] else "NO",
            )
            for r in misses["rows"]
        ]
        out.append(
            (
                "Cold and warm misses (median ms from importing the handler to its answer, "
                f"{misses['rows'][0]['processes']} fresh processes each; warm: the same event again, "
                f"median of {misses['warm_calls']}; resize at 640 px, sync one original's standard set; "
                f"input: {misses['source']})",
                grid(
                    ("function", "output", "S3 through", "cold ms", "warm ms", "cold - warm", "<= 100 ms"),
                    rows,
                    markdown,
                ),
            )
        )
    cache = results.get("cache")
    if cache:
        rows = []
        schemes = (
            ("ours", "canonical URI (ours)"),
            ("ours_with_dpr_and_hints", "ours, a third dpr= and a third client hints"),
            ("raw_query_and_accept", "raw query + Accept"),
        )
        for name, label in schemes:
            if name not in cache:
                continue
            s = cache[name]
            k = s["keys_per_original"]
            rows.append(
                (
                    label,
                    s["distinct_keys"],
                    k["mean"],
                    k["median"],
                    k["p99"],
                    k["max"],
                    f"{100 * s['hit_ratio']:.2f}%",
                    f"{100 * s['hit_ratio_after_warmup']:.2f}%",
                )
            )
        out.append(
            (
                f"Cache keys and hit ratio ({cache['requests']:,} requests, Zipf over {cache['originals']:,} "
                "originals)",
                grid(
                    (
                        "cache key",
                        "distinct keys",
                        "keys/original mean",
                        "median",
                        "p99",
                        "max",
                        "hit ratio",
                        "after warm-up",
                    ),
                    rows,
                    markdown,
                ),
            )
        )
        viewer = cache.get("viewer")
        if viewer:
            rows = [
                (name, f"{viewer[name]['bytes']:,}", viewer[name]["us_per_call"], viewer[name].get("x_baseline", 1.0))
                for name in ("baseline", "now, features off", "now, worst case")
            ]
            worst = viewer["now, worst case"]
            if "stand_in_hmac_us" in worst:
                rest = round(worst["us_per_call"] - worst["stand_in_hmac_us"], 2)
                rows.append(
                    (
                        "worst case without the stand-in's JS HMAC (native on CloudFront)",
                        "",
                        rest,
                        round(rest / viewer["baseline"]["us_per_call"], 2),
                    )
                )
            out.append(
                (
                    f"Viewer function in V8 ({viewer['calls']:,} calls x {viewer['rounds']} rounds; worst case: "
                    "a signed URL with crop, dpr and client hints, signing required)",
                    grid(("code", "bytes", "us per call", "x baseline"), rows, markdown),
                )
            )
    emulator = results.get("emulator")
    if emulator:
        rows = [
            (
                fmt,
                m["width"],
                m["client_ms"],
                m.get("download"),
                m.get("transform"),
                m.get("upload"),
                m.get("cdn-total"),
            )
            for fmt, items in emulator["misses"].items()
            for m in items
        ]
        out.append(
            (
                "Emulator: a miss, split by Server-Timing (ms; the sample landscape, 2400x1600 JPEG)",
                grid(("format", "width", "client", "download", "transform", "upload", "edge total"), rows, markdown),
            )
        )
        out.append(
            (
                "Emulator: hits",
                grid(
                    ("hit median ms", "hit p99 ms", f"hits/s, {emulator['clients']} clients"),
                    [(emulator["hit_ms"]["median"], emulator["hit_ms"]["p99"], emulator["hits_per_second"])],
                    markdown,
                ),
            )
        )
    sync = results.get("sync")
    if sync and "requests" in sync:
        counted = sync["requests"]
        rows = [
            (
                r["engine"],
                r["primary_lists"],
                r["fallback_lists"],
                r["requests"],
                r["per_original"],
                f"{r['projected_primary_lists']:,}",
                f"{r['projected_fallback_lists']:,}",
                r["projected_usd_per_run"],
            )
            for r in counted["rows"]
        ]
        out.append(
            (
                f"Requests per reconcile: a steady-state run over {counted['originals']:,} originals, every request "
                f"counted against moto (botocore before-send), and at {counted['projected']:,} originals",
                grid(
                    (
                        "engine",
                        "LIST primary",
                        "LIST fallback",
                        "requests",
                        "per original",
                        "LIST primary at 1M",
                        "LIST fallback at 1M",
                        "S3 $ per run at 1M",
                    ),
                    rows,
                    markdown,
                ),
            )
        )
        operations = counted["operations"]
        rows = [
            (
                name,
                ", ".join(
                    f"{where} {op} {n:,}"
                    for where, ops in sorted(counts.items())
                    if where != "run"
                    for op, n in sorted(ops.items())
                ),
            )
            for name, counts in operations.items()
        ]
        out.append(
            (
                f"Requests per operation, counted ({counted['originals']:,} originals; ops/cost.py multiplies these)",
                grid(("operation", "requests"), rows, markdown),
            )
        )
        plan = sync["plan"]
        out.append(
            (
                "The plan's own CPU (in-memory buckets, no S3 latency)",
                grid(
                    ("originals", "fallback keys", "CPU s", "ms per original", "LIST pages"),
                    [
                        (
                            f"{plan['originals']:,}",
                            f"{plan['fallback_keys']:,}",
                            plan["cpu_seconds"],
                            plan["ms_per_original"],
                            plan["pages"],
                        )
                    ],
                    markdown,
                ),
            )
        )
    if sync:
        cpu = sync["cpu_only"]
        out.append(
            (
                f"Sync: one original's standard set (10 widths x WebP and JPEG), seconds per original, "
                f"CPU only, median of {cpu['rounds']}",
                grid(
                    (
                        "input",
                        "per variant",
                        "decode once",
                        "speed-up",
                        "of which encoding",
                        "most any decode could gain",
                    ),
                    [
                        (
                            r["input"],
                            r["per_variant_s"],
                            r["decode_once_s"],
                            r["speedup"],
                            r["encoding_s"],
                            r["ceiling"],
                        )
                        for r in cpu["rows"]
                    ],
                    markdown,
                ),
            )
        )
        e2e = sync["end_to_end"]
        rows = [
            (
                label,
                e2e[key]["originals"],
                e2e[key]["seconds"],
                e2e[key]["originals_per_second"],
                round(e2e[key]["bytes_written"] / 1e6, 1),
                e2e[key]["baseline_mb"],
                e2e[key]["peak_mb"],
            )
            for label, key in (("per variant (before)", "before"), ("decode once (after)", "after"))
        ]
        out.append(
            (
                f"Sync: one worker end to end over the emulator's S3 ({e2e['originals']} originals, {e2e['original']}; "
                f"after/before {e2e['speedup']}x)",
                grid(
                    ("path", "originals", "seconds", "originals/s", "MB written", "RSS before MB", "peak RSS MB"),
                    rows,
                    markdown,
                ),
            )
        )
        scaling = sync["scaling"]
        out.append(
            (
                "Sync: workers (a process pool rendering whole sets, no S3; 2400x1600 JPEG)",
                grid(
                    ("workers", "originals/s", "x one worker"),
                    [("1", scaling["1"], 1.0), ("2", scaling["2"], scaling["ratio"])],
                    markdown,
                ),
            )
        )
        catalogue = sync["catalogue"]
        out.append(
            (
                f"Sync: a reconcile of {catalogue['originals']:,} generated originals ({catalogue['original']}) in the "
                f"emulator, {catalogue['workers']} workers",
                grid(
                    ("run", "seconds", "variants built", "variants stored / expected", "dead letters"),
                    [
                        (
                            "first",
                            catalogue["first_seconds"],
                            catalogue["first_built"],
                            f"{catalogue['variants_stored']:,} / {catalogue['variants_expected']:,}",
                            catalogue["dead_letters"],
                        ),
                        ("second", catalogue["second_seconds"], catalogue["second_built"], "", ""),
                    ],
                    markdown,
                ),
            )
        )
        projection = sync["projection"]
        rows = [
            (
                f"{r['originals']:,}",
                r["concurrency"],
                r["wall_minutes"],
                r["lambda_usd"],
                r["step functions_usd"],
                r["s3 requests_usd"],
                r["transfer_usd"],
                r["cost_usd"],
            )
            for r in projection["rows"]
        ]
        title = (
            f"Sync on AWS, projected (not measured): {projection['seconds_per_original_here']} s per original here, "
            f"{projection['memory_mb']} MB arm64 workers, batches of {projection['batch_size']}, "
            f"{round(projection['bytes_per_original'] / 1000)} KB written per original; "
            f"prices of {projection['prices_as_of']}"
        )
        table = grid(
            (
                "originals",
                "concurrency",
                "minutes",
                "Lambda $",
                "Step Functions $",
                "S3 requests $",
                "transfer $",
                "total $",
            ),
            rows,
            markdown,
        )
        if markdown:
            table += f"\n\n![Projected wall time and cost of a full reconcile](bench/{projection['chart']})"
        out.append((title, table))
    catalog = results.get("catalog")
    if catalog:
        meta = catalog["metadata"]
        rows = [
            (
                r["input"],
                r["file_mb"],
                r["read_kb"],
                r.get("sharp_ms"),
                r["ours_ms"],
                r["pyvips_ms"],
                r.get("ours_ratio"),
                r.get("pyvips_ratio"),
                r.get("sharp_header_ms"),
            )
            for r in meta["rows"]
        ]
        meta_headers = (
            "input",
            "MB",
            "ours read KB",
            "sharp ms",
            "ours ms",
            "pyvips ms",
            "ours/sharp",
            "pyvips/sharp",
            "sharp header only ms",
        )
        out.append(
            (
                f"Catalogue metadata: header and a 32-pixel placeholder (median of {meta['rounds']}, one thread)",
                grid(meta_headers, rows, markdown),
            )
        )
        query = catalog["query"]
        rows = [
            (
                f"{query['items']:,} images, {query['tags']} tags ({query['written']:,} items with the tag copies)",
                query["page"],
                query["queries"],
                query["median_ms"],
                query["p95_ms"],
                query["max_ms"],
                query["max_scanned"],
            )
        ]
        query_headers = ("catalogue", "page", "queries", "median ms", "p95 ms", "max ms", "max ScannedCount")
        out.append(
            (
                "Catalogue tag query, one page through the emulator's API (HTTP, SigV4)",
                grid(query_headers, rows, markdown),
            )
        )
    hostile = results.get("hostile")
    if hostile:
        rows = [(r["format"], r["slowest_s"], r["input"]) for r in hostile["rows"]]
        out.append(
            (
                f"Hostile inputs: the slowest of {hostile['transforms']} transforms per output format (seconds)",
                grid(("format", "slowest s", "input"), rows, markdown),
            )
        )
    abuse = results.get("abuse")
    if abuse:
        out.append(
            (
                "Denial of wallet: distinct renderable variants per original (each a render, a stored object and a "
                "cache key), counted through the grammar",
                grid(
                    ("what a stranger controls", "variants"),
                    [(r["case"], f"{r['variants']:,}") for r in abuse["variants"]],
                    markdown,
                ),
            )
        )
        worst = abuse["worst_render"]
        out.append(
            (
                "Denial of wallet: the worst render (fresh process)",
                grid(
                    ("input", "output", "CPU s", "wall s"),
                    [(worst["input"], worst["output"], worst["cpu_s"], worst["wall_s"])],
                    markdown,
                ),
            )
        )
    jxl = results.get("jxl")
    if jxl:
        out.append(
            (
                "JPEG XL beside AVIF and WebP: bytes of q=auto `good` (each format's score for the same look); "
                f"importing the encoder: {jxl['import_ms']} ms",
                grid(
                    ("input", "width", "AVIF bytes", "JPEG XL bytes", "WebP bytes"),
                    [
                        (r["input"], r["width"], r["bytes"]["avif"], r["bytes"]["jxl"], r["bytes"]["webp"])
                        for r in jxl["same_look"]
                    ],
                    markdown,
                ),
            )
        )
    footprint = results.get("footprint")
    if footprint:
        mb = 1024 * 1024
        out.append(
            (
                f"Footprint: each function's bundle as the {footprint['stack']} stack builds it (MB; Lambda@Edge "
                "takes 50 MB zipped for origin events, Lambda 250 MB unzipped, the viewer function 10 KB)",
                grid(
                    ("function", "zipped MB", "unzipped MB"),
                    [
                        (name, round(size["zipped"] / mb, 3), round(size["unzipped"] / mb, 3))
                        for name, size in footprint["bundles"].items()
                    ],
                    markdown,
                ),
            )
        )
        formats = list(footprint["fallback"][0]["bytes"]) if footprint["fallback"] else []
        out.append(
            (
                "Footprint: the fallback's standard set per original (KB, every standard width, as stored)",
                grid(
                    ("input", "size", "quality", *[f"{fmt} KB" for fmt in formats], "total KB"),
                    [
                        (
                            r["input"],
                            r["size"],
                            r["quality"],
                            *[round(r["bytes"][fmt] / 1024) for fmt in formats],
                            round(r["total"] / 1024),
                        )
                        for r in footprint["fallback"]
                    ],
                    markdown,
                ),
            )
        )
    auto = results.get("quality_auto")
    if auto:
        out.extend(_quality_auto(auto, markdown))
    goals = evaluate(results)
    if goals:
        out.append(("Goals", grid(("goal", "measured", "met"), goals, markdown)))
    return out


def _quality_auto(auto: dict[str, Any], markdown: bool) -> list[tuple[str, str]]:
    """q=auto: per format, each way of encoding the corpus scored by libjxl's tools; the misses."""
    rows: list[Row] = []
    for fmt, found in auto["formats"].items():
        order = ["q60", *(w for w in found["rows"] if w.startswith("auto")), "sharp default"]
        same = found.get("sharp_same_look_quality")
        if same is not None:
            order.append(f"sharp q{same}")
        for way in order:
            r = found["rows"].get(way)
            if r is None:
                continue
            held, generated = r.get("held_out"), r.get("generated")
            rows.append(
                (
                    fmt,
                    way + (" (same look as auto good)" if way == f"sharp q{same}" else ""),
                    f"{r['bytes']:,}",
                    r["bpp"],
                    r["bytes_vs_q60"],
                    r["worst_image_vs_q60"],
                    r["butteraugli_median"],
                    r["butteraugli_p90"],
                    r["butteraugli_3norm_median"],
                    r["ssimulacra_median"],
                    r["ssimulacra2_median"],
                    r.get("encodes_mean"),
                    f"{held['bytes_vs_q60']} / {held['butteraugli_p90']}" if held else None,
                    f"{generated['bytes_vs_q60']} / {generated['butteraugli_p90']}" if generated else None,
                )
            )
    misses = [
        (r["image"], r["width"], r["format"], r["q60_ms"], r["auto_ms"], r["ratio"], r["q60_bytes"], r["auto_bytes"])
        for r in auto["misses"]
    ]
    metric = [
        (
            r["width"],
            r["pixels"],
            r["scored_pixels"],
            r["ours_reference_ms"],
            r["ours_score_ms"],
            r["ours_exact_reference_ms"],
            r["ours_exact_score_ms"],
            r["ssimulacra_main_ms"],
            r["butteraugli_main_ms"],
        )
        for r in auto.get("metric", [])
    ]
    return [
        (
            f"q=auto: {len(auto['photos'])} real photos at {auto['width']} px per format (held-out and generated "
            "ones apart), scored by libjxl's "
            "butteraugli_main (max distance per photo: median and p90 across photos; 3-norm median) and "
            "ssimulacra_main (SSIMULACRA 1, lower is better), our SSIMULACRA 2 beside them; sharp "
            f"{auto.get('sharp')} encoding the same pixels",
            grid(
                (
                    "format",
                    "way",
                    "bytes",
                    "bpp median",
                    "bytes / q60",
                    "worst photo / q60",
                    "butteraugli median",
                    "butteraugli p90",
                    "3-norm median",
                    "ssimulacra median",
                    "SSIMULACRA 2 median",
                    "encodes",
                    f"held out ({len(auto['held_out'])}): bytes / q60, p90",
                    f"generated ({len(auto['images']) - len(auto['photos'])}): bytes / q60, p90",
                ),
                rows,
                markdown,
            ),
        ),
        (
            "q=auto misses: decode, resize, encode from the original (good against q=60, median of rounds; "
            "the S3 round trips, the same for both, left out)",
            grid(
                ("image", "width", "format", "q60 ms", "auto ms", "auto / q60", "q60 bytes", "auto bytes"),
                misses,
                markdown,
            ),
        ),
        (
            "q=auto's metric: one score's cost, ours (SSIMULACRA 2 in numpy: the reference prepared once, "
            "then each candidate; and with every weight, the negligible ones too) beside libjxl's compiled "
            "ssimulacra_main (SSIMULACRA 1) and butteraugli_main on the same pair (each less its run on an "
            "8x8 pair), median ms",
            grid(
                (
                    "width",
                    "pixels",
                    "scored pixels",
                    "reference ms",
                    "candidate ms",
                    "every weight: reference ms",
                    "every weight: candidate ms",
                    "ssimulacra_main ms",
                    "butteraugli_main ms",
                ),
                metric,
                markdown,
            ),
        ),
    ]


def _quality_auto_goals(auto: dict[str, Any]) -> list[Row]:
    goals: list[Row] = []
    formats = auto["formats"]
    # "Today's WebP q60 look": its butteraugli p90 on these photos (the issue's 10 photos: 3.45).
    look = formats["webp"]["rows"]["q60"]["butteraugli_p90"]
    avif = formats["avif"]["rows"]["auto good"]
    goals.append(
        (
            f"q=auto good, AVIF: bytes <= 0.75 x q60 at butteraugli p90 <= today's WebP q60 ({look})",
            f"{avif['bytes_vs_q60']} x, p90 {avif['butteraugli_p90']}",
            "yes" if avif["bytes_vs_q60"] <= 0.75 and avif["butteraugli_p90"] <= look else "NO",
        )
    )
    for fmt in ("webp", "jpeg"):
        r = formats[fmt]["rows"]["auto good"]
        goals.append(
            (
                f"q=auto good, {fmt}: bytes <= q60's at butteraugli p90 <= today's WebP q60 ({look})",
                f"{r['bytes_vs_q60']} x, p90 {r['butteraugli_p90']}",
                "yes" if r["bytes_vs_q60"] <= 1.0 and r["butteraugli_p90"] <= look else "NO",
            )
        )
    for fmt, found in formats.items():
        ratio, quality = found.get("auto_vs_today_same_look"), found.get("today_same_look_quality")
        if ratio is not None:
            goals.append(
                (
                    f"q=auto good, {fmt}: bytes <= today's at the same butteraugli p90 (its q{quality})",
                    f"{ratio} x",
                    "yes" if ratio <= 1.0 else "NO",
                )
            )
    for fmt, found in formats.items():
        ratio, quality = found["auto_vs_sharp_same_look"], found["sharp_same_look_quality"]
        if ratio is not None:
            goals.append(
                (
                    f"q=auto good, {fmt}: bytes <= sharp's at the same butteraugli p90 (its q{quality})",
                    f"{ratio} x",
                    "yes" if ratio <= 1.0 else "NO",
                )
            )
    for fmt in formats:
        ratios = [r["ratio"] for r in auto["misses"] if r["format"] == fmt]
        worst = max(ratios)
        goals.append((f"q=auto miss, {fmt}: time auto/q60 <= 2 (worst)", worst, "yes" if worst <= 2 else "NO"))
    return goals


def evaluate(results: dict[str, Any]) -> list[Row]:
    goals: list[Row] = []
    transform = results.get("transform")
    if transform and transform.get("sharp_available"):
        by_task = {r["task"]: r for r in transform["rows"]}
        for task, limit in (("webp", 1.0), ("avif", 1.0), ("jpeg", 1.0), ("24mp-webp", 1.0)):
            ratio = by_task[task]["ours_time_ratio"]
            goals.append((f"{task}: time ours/sharp <= {limit}", ratio, "yes" if ratio <= limit else "NO"))
        for task in ("jpeg", "webp"):
            r = by_task[task]
            goals.append(
                (
                    f"{task}: SSIM equal to sharp's or better",
                    f"{r['ours_ssim']} vs {r['sharp_ssim']}",
                    "yes" if r["ours_ssim"] >= r["sharp_ssim"] else "NO",
                )
            )
        for task in ("jpeg", "webp", "avif"):
            r = by_task[task]
            within = abs(r["ours_bytes_ratio"] - 1) <= 0.05
            better = r["ours_bytes_ratio"] <= 1 and r["ours_ssim"] >= r["sharp_ssim"] - 0.001
            goals.append(
                (
                    f"{task}: bytes within 5% of sharp (or smaller at equal SSIM)",
                    f"{r['ours_bytes_ratio']} (SSIM {r['ours_ssim']} vs {r['sharp_ssim']})",
                    "yes" if within or better else "NO",
                )
            )
    for row in (results.get("misses") or {}).get("rows", []):
        if row["s3"] != "boto3 (before)":
            goals.append(
                (
                    f"{row['function']} {row['output']}: a cold miss <= warm + 100 ms",
                    row["extra_ms"],
                    "yes" if row["goal_met"] else "NO",
                )
            )
    cold = {r["module"]: r for r in results.get("cold_start", [])}
    if "edge.rewrite" in cold:
        ratio = cold["edge.rewrite"]["ratio"]
        goals.append(("rewrite cold import <= 1.5x bare", ratio, "yes" if ratio <= 1.5 else "NO"))
        over = cold["edge.rewrite"]["over_runtime_ratio"]
        goals.append(
            ("  the same, over what the Lambda runtime has imported first", over, "yes" if over <= 1.5 else "NO")
        )
        lazy = all(cold[m]["heavy_imports"] == "[]" for m in ("edge.rewrite", "edge.resize"))
        goals.append(("no Pillow/boto3 imported by rewrite or resize before a miss", lazy, "yes" if lazy else "NO"))
    cache = results.get("cache")
    if cache:
        ours = cache["ours"]
        goals.append(
            (
                "<= 10 cache keys per original (mean)",
                ours["keys_per_original"]["mean"],
                "yes" if ours["keys_per_original"]["mean"] <= 10 else "NO",
            )
        )
        hinted = cache.get("ours_with_dpr_and_hints")
        if hinted:
            mean = hinted["keys_per_original"]["mean"]
            goals.append(
                (
                    "keys per original with DPR and client hints <= without",
                    f"{mean} vs {ours['keys_per_original']['mean']}",
                    "yes" if mean <= ours["keys_per_original"]["mean"] else "NO",
                )
            )
        viewer = cache.get("viewer")
        if viewer:
            worst = viewer["now, worst case"]
            goals.append(
                (
                    "viewer function under 10 KB with every feature on",
                    f"{worst['bytes']:,} bytes",
                    "yes" if worst["bytes"] < viewer["limit_bytes"] else "NO",
                )
            )
        goals.append(
            (
                "hit ratio >= 97% after warm-up",
                f"{100 * ours['hit_ratio_after_warmup']:.2f}%",
                "yes" if ours["hit_ratio_after_warmup"] >= 0.97 else "NO",
            )
        )
    sync = results.get("sync")
    if sync and "requests" in sync:
        plan = next(r for r in sync["requests"]["rows"] if r["engine"] == "plan")
        bound = -(-sync["requests"]["originals"] // 1000) + 2
        goals.append(
            (
                "reconcile: at most ceil(N/1000) + 2 LISTs of the primary, 2 requests per original (steady state)",
                f"{plan['primary_lists']} LISTs, {plan['per_original']} per original",
                "yes" if plan["primary_lists"] <= bound and plan["per_original"] <= 2 else "NO",
            )
        )
    if sync:
        e2e = sync["end_to_end"]
        goals.append(
            (
                "sync: decode once >= 2.5x the originals/s of the per-variant path",
                e2e["speedup"],
                "yes" if e2e["speedup"] >= 2.5 else "NO",
            )
        )
        worst = min(r["speedup"] for r in sync["cpu_only"]["rows"])
        goals.append(("  the same, CPU only (no S3)", worst, "yes" if worst >= 2.5 else "NO"))
        ratio = sync["scaling"]["ratio"]
        goals.append(("sync: two workers >= 1.8x one", ratio, "yes" if ratio >= 1.8 else "NO"))
        million = next(
            r for r in sync["projection"]["rows"] if r["originals"] == 1_000_000 and r["concurrency"] == 1000
        )
        goals.append(
            (
                "sync: 1M originals in under an hour at concurrency 1000 (projected)",
                f"{million['wall_minutes']} min, ${million['cost_usd']}",
                "yes" if million["wall_minutes"] < 60 else "NO",
            )
        )
        catalogue = sync["catalogue"]
        complete = (
            catalogue["variants_stored"] == catalogue["variants_expected"]
            and catalogue["dead_letters"] == 0
            and catalogue["second_built"] == 0
        )
        goals.append(
            (
                f"sync: {catalogue['originals']:,} originals complete, no dead letter, a second run builds nothing",
                complete,
                "yes" if complete else "NO",
            )
        )
    catalog = results.get("catalog")
    if catalog:
        thumb = next(r for r in catalog["metadata"]["rows"] if "thumbnail" in r["input"] and "no " not in r["input"])
        goals.append(
            (
                "catalogue: metadata of a 24 MP camera JPEG < 50 ms",
                f"{thumb['ours_ms']} ms, {thumb['read_kb']} KB read",
                "yes" if thumb["ours_ms"] < 50 and thumb["read_kb"] <= 256 else "NO",
            )
        )
        query = catalog["query"]
        goals.append(
            (
                f"catalogue: a tag page of {query['items']:,} images < 20 ms (p95)",
                f"median {query['median_ms']} ms, p95 {query['p95_ms']} ms",
                "yes" if query["p95_ms"] < 20 else "NO",
            )
        )
        goals.append(
            (
                "catalogue: a tag page touches at most the page plus one",
                f"ScannedCount <= {query['max_scanned']} for pages of {query['page']}",
                "yes" if query["max_scanned"] <= query["page"] + 1 else "NO",
            )
        )
    hostile = results.get("hostile")
    if hostile:
        worst = max(r["slowest_s"] for r in hostile["rows"])
        budget = hostile["budget_s"]
        goals.append((f"every hostile input ends within {budget} s", worst, "yes" if worst <= budget else "NO"))
    service = results.get("service_sync")
    if service:
        added = service["added_mb"]
        goals.append(
            (
                f"sync from a service, {service['originals']} x {service['response_mb']} MB: "
                "peak RSS within 50 MB of idle",
                added,
                "yes" if added <= 50 and service["failed"] == 0 and service["built"] == service["originals"] else "NO",
            )
        )
    for row in results.get("memory", []):
        if row["input"] == "24 MP JPEG":
            goals.append(("peak memory, 24 MP JPEG < 400 MB", row["peak_mb"], "yes" if row["peak_mb"] < 400 else "NO"))
    auto = results.get("quality_auto")
    if auto:
        goals.extend(_quality_auto_goals(auto))
    return goals


def findings(results: dict[str, Any]) -> str:
    """What the numbers say about the goals that are not met, from this run's numbers."""
    notes = []
    transform = results.get("transform")
    if transform and transform.get("sharp_available"):
        by_task = {r["task"]: r for r in transform["rows"]}
        steps = transform.get("jpeg_profile_ms", {})
        resize = steps.get("resize (Lanczos)")
        jpeg = by_task["jpeg"]
        if resize is not None:
            notes.append(
                f"- **JPEG speed.** Pillow's Lanczos resize alone takes {resize} ms of image-cdn's "
                f"{jpeg['ours_ms']} ms JPEG task (decode {steps.get('decode (draft 1/2)')} ms with DCT scaling, "
                f"encode {steps.get('encode (optimised)')} ms), against {jpeg['sharp_ms']} ms for sharp's whole "
                "task. libvips resamples with SIMD (sharp's build lists highway among its libraries); Pillow's "
                "resampler is scalar C."
            )
        tried = transform.get("jpeg_tried") or []
        if tried and "time_vs_sharp" in tried[0]:
            shipped = tried[0]
            lossless = [t for t in tried[1:] if t["ssim"] >= shipped["ssim"]]
            fastest = min(lossless, key=lambda t: t["ms"]) if lossless else None
            lossy = [t for t in tried[1:] if t["ssim"] < shipped["ssim"]]
            text = (
                f"- **What was tried for JPEG** (table above, one run). The shipped path takes {shipped['ms']} ms "
                f"({shipped['time_vs_sharp']}x sharp, SSIM {shipped['ssim']} against sharp's "
                f"{transform.get('sharp_jpeg_ssim')})."
            )
            if fastest is not None:
                text += (
                    f' The fastest way that keeps its SSIM is "{fastest["way"]}": {fastest["ms"]} ms '
                    f"({fastest['time_vs_sharp']}x), bytes {fastest['bytes_vs_sharp']}x sharp's."
                )
            if lossy:
                text += " Faster ways that lose SSIM: " + "; ".join(
                    f"{t['way']} {t['ms']} ms ({t['time_vs_sharp']}x), SSIM {t['ssim']}" for t in lossy
                )
                text += "."
            notes.append(text)
        avif = by_task["avif"]
        notes.append(
            f"- **AVIF.** image-cdn encodes with libaom at speed 6 through libavif; sharp's default (effort 4) "
            f"goes through libheif and is {avif['sharp_ms'] / avif['ours_ms']:.1f}x slower here, for "
            f"{100 * (1 - avif['ours_bytes_ratio']):.1f}% more bytes and an SSIM {avif['sharp_ssim']} vs "
            f"{avif['ours_ssim']}."
        )
    misses = {(r["function"], r["output"], r["s3"]): r for r in (results.get("misses") or {}).get("rows", [])}
    before, after = misses.get(("resize", "jpeg", "boto3 (before)")), misses.get(("resize", "jpeg", "edge.s3"))
    sync = misses.get(("sync", "standard set", "boto3"))
    if before and after:
        notes.append(
            f"- **Cold misses.** Through boto3, a fresh resize container's first JPEG miss took "
            f"{before['cold_ms']} ms against {before['warm_ms']} ms warm (+{before['extra_ms']} ms: importing "
            f"boto3 and building its S3 client). Through edge.s3 (obstore) it takes {after['cold_ms']} ms "
            f"against {after['warm_ms']} ms (+{after['extra_ms']} ms), the rest being Pillow's and the codecs' "
            "first use."
            + (
                f" The sync function keeps boto3 (listings, versions, batch deletes, multipart uploads, SQS and "
                f"CloudFront): its first set costs +{sync['extra_ms']} ms over a warm one of {sync['warm_ms']} ms, "
                "once per container that then renders batches of originals, and no viewer waits on it."
                if sync
                else ""
            )
        )
    cold = {r["module"]: r for r in results.get("cold_start", [])}
    if "edge.rewrite" in cold:
        notes.append(
            f"- **Cold start.** Importing `edge.rewrite` costs {cold['edge.rewrite']['ms']} ms against "
            f"{cold['(bare interpreter)']['ms']} ms for a bare interpreter; what remains after dropping typing, "
            "dataclasses, pathlib and urllib.parse from that path is mostly `re` and `json` (about 8 ms), which "
            "the Lambda runtime's bootstrap has imported before it imports a handler: over that baseline the "
            f"import costs {cold['edge.rewrite']['over_runtime_ratio']}x."
        )
    cache = results.get("cache")
    if cache:
        ours = cache["ours"]
        notes.append(
            f"- **Hit ratio.** With no eviction every miss after warm-up is the first request for a key, mostly "
            f"in the long tail of the Zipf popularity ({ours['distinct_keys']:,} keys for "
            f"{ours['originals_requested']:,} originals); the raw query+Accept key reaches "
            f"{100 * cache['raw_query_and_accept']['hit_ratio_after_warmup']:.1f}% on the same trace."
        )
    return "\n".join(notes)


def tables(results: dict[str, Any]) -> str:
    return "\n\n".join(f"{title}\n{table}" for title, table in sections(results, markdown=False))


METHOD = """\
## Method

`make bench` (= `.venv/bin/python -m bench`) runs everything below in one go on one
machine and rewrites this file and `bench/results.json`. It installs sharp itself
(`bench/package.json`, npm); pyvips comes from `requirements-dev.txt` (pyvips-binary).

- **Transform.** sharp's benchmark task: the 2725x2225 JPEG -> 720x588 (cover, Lanczos3
  in all three: Pillow's LANCZOS, libvips' default), quality 80, as JPEG, WebP and AVIF;
  plus a generated 24 MP JPEG -> 1024 wide WebP. Each library runs in its own process
  on one thread: sharp with `concurrency(1)` and `cache(false)`, pyvips with
  `VIPS_CONCURRENCY=1` and its operation cache off, image-cdn through
  `edge.imaging.transform` exactly as the edge calls it. Each library's process runs
  three times, taking turns (sharp, image-cdn, pyvips, sharp, ...), each time one
  warm-up and then the timed rounds; the median of all rounds is reported. Encoder
  settings are each library's defaults at quality 80 (sharp/libvips: JPEG with
  optimised Huffman coding, WebP and AVIF effort 4; image-cdn: JPEG optimised, WebP
  method 4, AVIF speed 6). Because the encoders' speed settings differ, every
  output is also scored: SSIM on luma (7x7 window) against one reference, the source
  decoded whole and Lanczos-resized with Pillow.
- **Memory.** One transform to a 1024 wide WebP in a fresh process; peak RSS
  (`VmHWM`) after reading the input and after the transform. Inputs are generated
  photos (12, 24, 48 MP JPEG, and a 24 MP PNG, which cannot be DCT-scaled on decode).
- **Cold start.** Median wall time of `python -c 'import edge.rewrite'` (and resize, sync)
  in a fresh interpreter, against `python -c pass`, 25 runs each; and which heavy modules
  are loaded after the import.
- **Cold and warm misses.** `bench/coldmiss.py`: the emulator's S3 (moto on loopback)
  holds sharp's photo; each sample is a fresh `python` process that starts its clock,
  imports the handler, answers one origin-response 404 event for a 640 px variant (resize;
  JPEG, WebP, AVIF) or one upload's S3 event (sync, the original's standard set), stops the
  clock (cold), then answers the same event three more times (warm, median). The handlers
  use their own default S3 clients, pointed at the emulator by AWS_ENDPOINT_URL_S3. 20
  processes per case, the cases taking turns; resize through boto3 as it was before is
  measured the same way beside it. Interpreter start-up is outside the clock.
- **Cache.** A synthetic trace (see `bench/cache.py`): Zipf(0.9) popularity over the
  originals, a device mix of phone, tablet and desktop viewports and pixel ratios, half
  the pages asking srcset widths and half exact slot widths, the Accept headers of
  current browsers by share (the same strings as the normalization table), 5% bots with
  `*/*`. No eviction: each distinct key misses once. Compared with a distribution that
  forwards the query and Accept into the cache key.
- **Emulator.** `python -m localcdn` on loopback: misses split by the handlers'
  Server-Timing, then hits, then hits per second from concurrent keep-alive clients
  (the clients share the machine's two cores with the server).
- **Sync.** Decode-once against the per-variant path the sync job had before (per
  original one listing, one read, then a full `transform` and a PUT per standard
  variant): CPU only on one original's set (interleaved rounds), and end to end for
  one worker over 100 generated 2400x1600 JPEGs in the emulator's S3 (each path in its
  own process; peak RSS is that worker's). Scaling: a process pool of 1, then 2,
  rendering whole sets (S3 left out: the emulator's S3 shares the same two cores). Then
  a reconcile of 5,000 generated 320x240 originals in the emulator with
  `sync.backfill.reconcile`, twice. The projection to AWS scales the measured time per
  original by Lambda's CPU share and prices it with `bench/prices.py`; it is arithmetic,
  not a measurement.
- **Footprint.** `bench/footprint.py`: each function's archive built by the calls the
  components make, for the dev stack and the same stack with `qualityTarget: good`
  (numpy in resize); the fallback's standard set of one original through
  `edge.imaging.render_set`, as the sync job stores it.
- **Hostile inputs.** Every input of `tests/hostile.py` to a 320 wide image in each
  output format, timed; the slowest per format against a third of Lambda@Edge's 30 s
  (the tests assert only the outcome of each, never its time).
- **q=auto.** `bench/quality_auto.py` (its docstring has the details): the real photos of
  `../shared/images` (sharp's photo whole and in seven crops, the landscape whole and in one
  crop) and three generated ones, each rendered to 320 px by resize; per format each is encoded
  at q=60, at auto for each target, with sharp's defaults and with sharp at a sweep of
  qualities, all from the same pixels, and every encode is scored by libjxl's `butteraugli_main`
  (max distance per photo; median and 90th percentile across photos) and `ssimulacra_main`.
  Held-out photos (not used by the calibration) are reported apart. Misses: `imaging.transform`
  from the original at q=60 and at auto, interleaved rounds, median.
"""


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    transform = results.get("transform", {})
    versions = transform.get("versions", {})
    machine = (
        f"- {m['cpu']}, {m['cores']} cores, {m['memory_mb']} MB; {m['os']}\n"
        f"- Python {m['python']}, Pillow {m['pillow']} (libjpeg-turbo {m['libjpeg_turbo']}, libwebp "
        f"{m['libwebp']}, libavif {m['libavif']}); node {m['node']}, sharp {versions.get('sharp')} "
        f"(libvips {versions.get('sharp_libvips')}); pyvips with libvips {versions.get('pyvips_libvips')}\n"
        f"- run on {results['date']}, {results['seconds']} s in all"
    )
    if results.get("updated"):
        again = ", ".join(f"{key} ({date})" for key, date in sorted(results["updated"].items()))
        machine += f"\n- measured again since, alone (`python -m bench --only ... --write`): {again}"
    body = "\n\n".join(f"### {title}\n\n{table}" for title, table in sections(results, markdown=True))
    return (
        f"# Benchmarks\n\nGenerated by `make bench`; do not edit by hand.\n\n## Machine\n\n{machine}\n\n"
        f"## Results\n\n{body}\n\n## About the goals\n\n{findings(results)}\n\n{METHOD}"
    )

"""`python -m ops cost --stack prod --traffic ops/traffic.yaml`: what a stack will cost a month.

Arithmetic over a traffic profile (YAML), the stack's config (price class, memory, schedule,
which features are on) and the dated price table in `bench/prices.py`: no network. Defaults that
are measurements come from `make bench` (bench/results.json): the cache hit ratio of the cache
bench, the transform time per format and the sync time per original. The printed table lists
every line with its quantity and unit price, so each figure can be checked by hand; the chart
(PNG) shows the monthly total by service.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import prices, requests
from components import monitoring
from components.config import StackConfig, from_stack_file

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "results.json"
GB = 1024**3


def bench_defaults(path: Path = BENCH) -> dict[str, Any]:
    """What `make bench` measured: hit ratio, transform ms per format, sync seconds per original."""
    results = json.loads(path.read_text(encoding="utf-8"))
    rows = {row["task"]: row for row in results["transform"]["rows"]}
    photo = results["sync"]["cpu_only"]["rows"][-1]
    return {
        "cache_hit_ratio": results["cache"]["ours"]["hit_ratio_after_warmup"],
        "transform_ms": {fmt: rows[fmt]["ours_ms"] for fmt in ("avif", "webp", "jpeg")},
        "sync_seconds_per_original": photo["decode_once_s"],
        **({"plan_ms_per_original": results["sync"]["plan"]["ms_per_original"]} if "plan" in results["sync"] else {}),
    }


# What a profile may give in place of the bench's measurements.
MEASURED = ("cache_hit_ratio", "transform_ms", "sync_seconds_per_original", "plan_ms_per_original")

DEFAULTS: dict[str, Any] = {
    "formats": {"avif": 0.5, "webp": 0.4, "jpeg": 0.1},
    "average_bytes": {"avif": 40_000, "webp": 50_000, "jpeg": 75_000},
    "viewers": {"north_america": 0.5, "europe": 0.5},
    "original_bytes": 2_500_000,
    # Of the misses, the share that must be rendered (the rest find the variant under variants/).
    "rendered_share_of_misses": 0.5,
    # Variants kept per original (the cache bench: mean distinct keys per original).
    "variants_per_original": 9.08,
    # The standard set in the fallback, per original (measured in #10 on the 2725x2225 photo).
    "fallback_bytes_per_original": 1_640_000,
    "catalog_queries_per_month": 0,
    "catalog_item_bytes": 1_500,
    "metadata_seconds": 0.8,
    "api_seconds": 0.05,
    "rewrite_ms": 5.0,
    "resize_pass_ms": 10.0,
    "s3_read_ms_per_mb": 20.0,
    # The plan's own CPU per original (bench: an in-memory bucket, 21 fallback keys an original), and
    # S3's time to answer one LIST of 1,000 keys, which AWS does not publish (an assumption of ours).
    "plan_ms_per_original": 0.09,
    "list_page_seconds": 0.1,
    # Originals replaced or deleted a month (each invalidates its URIs and rebuilds or drops its set).
    "replacements_per_month": 0,
    "deletes_per_month": 0,
    "log_bytes_per_render": 400,
}


@dataclass
class Line:
    service: str
    item: str
    quantity: float
    unit: str
    price: float

    @property
    def cost(self) -> float:
        return self.quantity * self.price


def profile(raw: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    unknown = set(raw) - set(DEFAULTS) - set(MEASURED) - {"reads_per_month", "uploads_per_month", "originals_stored"}
    if unknown:
        raise ValueError(f"traffic: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("reads_per_month", "uploads_per_month"):
        if not isinstance(raw.get(key), int) or raw[key] < 0:
            raise ValueError(f"traffic.{key}: expected a whole number >= 0, got {raw.get(key)!r}")
    merged = DEFAULTS | measured | raw
    merged.setdefault("originals_stored", raw["uploads_per_month"])
    for key in ("formats", "viewers"):
        total = sum(merged[key].values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"traffic.{key}: expected shares adding up to 1, got {total}")
    if not 0 <= merged["cache_hit_ratio"] <= 1:
        raise ValueError(f"traffic.cache_hit_ratio: expected 0 to 1, got {merged['cache_hit_ratio']}")
    return merged


# What each operation is called in the table.
OPERATIONS = {
    "upload": "uploads",
    "replace": "replacements",
    "delete": "deletes",
    "miss_standard": "renders of standard variants",
    "miss_other": "renders of other variants",
    "reconcile_steady": "reconcile",
}
# A plan leg's working time: the function's 900 s less the margin it stops at (sync.job.SWEEP_MARGIN_SECONDS).
PLAN_LEG_SECONDS = 810


def reconcile_transitions(legs: int, *, inventory: bool = False) -> int:
    """State transitions of a run that finds nothing to build (components/reconcile.py): Guard and
    AlreadyRunning, (Source with an inventory,) FromListing, then Plan, AnyWork and MoreToPlan per leg,
    then Done."""
    return 2 + (1 if inventory else 0) + 1 + 3 * legs + 1


def _described(counts: dict[str, int]) -> str:
    return ", ".join(f"{operation} {n:,}" for operation, n in sorted(counts.items()))


def estimate(config: StackConfig, traffic: dict[str, Any], *, free_tier: bool = False) -> list[Line]:
    """Every line of the monthly bill for this stack and profile."""
    t = traffic
    reads, uploads = t["reads_per_month"], t["uploads_per_month"]
    lines: list[Line] = []

    def add(service: str, item: str, quantity: float, unit: str, price: float) -> None:
        lines.append(Line(service, item, quantity, unit, price))

    # CloudFront: every read, priced where the viewer's edge is (inside the price class).
    served = prices.PRICE_CLASS_AREAS[config.price_class]
    by_area: dict[str, float] = {}
    for area, share in t["viewers"].items():
        billed = area if area in served else ("europe" if area in ("middle_east_africa", "india") else "north_america")
        by_area[billed] = by_area.get(billed, 0.0) + share
    mean_bytes = sum(t["formats"][f] * t["average_bytes"][f] for f in t["formats"])
    total_gb = reads * mean_bytes / GB
    total_requests = float(reads)
    if free_tier:
        free_gb_share = min(1.0, prices.CLOUDFRONT_FREE_GB / total_gb) if total_gb else 1.0
        free_request_share = min(1.0, prices.CLOUDFRONT_FREE_REQUESTS / reads) if reads else 1.0
    else:
        free_gb_share = free_request_share = 0.0
    for area, share in sorted(by_area.items()):
        add(
            "CloudFront",
            f"data transfer out ({area})",
            total_gb * share * (1 - free_gb_share),
            "GB",
            prices.CLOUDFRONT_GB[area],
        )
        add(
            "CloudFront",
            f"HTTPS requests ({area})",
            total_requests * share * (1 - free_request_share) / 10_000,
            "10K requests",
            prices.CLOUDFRONT_HTTPS_10K[area],
        )
    invocations = max(0.0, reads - (prices.CLOUDFRONT_FREE_FUNCTION_INVOCATIONS if free_tier else 0))
    add("CloudFront Functions", "viewer function", invocations, "invocations", prices.CLOUDFRONT_FUNCTION_INVOCATION)
    if config.signing != "off":
        add("CloudFront Functions", "KeyValueStore reads (signed URLs)", reads, "reads", prices.KVS_READ)

    # Lambda@Edge: rewrite and resize run on every miss (origin request, origin response).
    misses = reads * (1 - t["cache_hit_ratio"])
    rendered = {f: misses * t["formats"][f] * t["rendered_share_of_misses"] for f in t["formats"]}
    passed = misses - sum(rendered.values())
    add("Lambda@Edge", "requests (rewrite + resize)", 2 * misses, "requests", prices.LAMBDA_EDGE_REQUEST)
    rewrite_gbs = misses * t["rewrite_ms"] / 1000 * config.rewrite_memory_mb / 1024
    add("Lambda@Edge", "rewrite duration", rewrite_gbs, "GB-s", prices.LAMBDA_EDGE_GB_SECOND)
    read_ms = t["s3_read_ms_per_mb"] * t["original_bytes"] / 1_000_000
    render_seconds = sum(n * (t["transform_ms"][f] + read_ms) / 1000 for f, n in rendered.items())
    pass_seconds = passed * t["resize_pass_ms"] / 1000
    resize_gbs = (render_seconds + pass_seconds) * config.resize_memory_mb / 1024
    add("Lambda@Edge", "resize duration (renders + passes)", resize_gbs, "GB-s", prices.LAMBDA_EDGE_GB_SECOND)

    # S3 storage: originals and variants in the primary, every original's standard set in the fallback.
    n_rendered = sum(rendered.values())
    variant_bytes = t["originals_stored"] * t["variants_per_original"] * mean_bytes
    add(
        "S3 (primary)",
        "storage: originals",
        t["originals_stored"] * t["original_bytes"] / GB,
        "GB-month",
        prices.S3_STANDARD_GB_MONTH,
    )
    add("S3 (primary)", "storage: variants", variant_bytes / GB, "GB-month", prices.S3_STANDARD_GB_MONTH)
    add(
        "S3 (fallback)",
        "storage: standard sets",
        t["originals_stored"] * t["fallback_bytes_per_original"] / GB,
        "GB-month",
        prices.S3_STANDARD_GB_MONTH,
    )

    # Requests: what each operation asks for (counted against moto: tests/test_requests.py), times how
    # often it happens a month. Requests no code of ours sends are modelled after them, one each.
    runs = requests.runs_per_month(config.sync_schedule)
    standard_set = len(config.widths) * len(config.standard_formats)
    model = requests.requests_per_operation(standard_set, int(t["originals_stored"]))
    standard_share = sum(share for fmt, share in t["formats"].items() if fmt in config.standard_formats)
    often = {
        "upload": uploads,
        "replace": t["replacements_per_month"],
        "delete": t["deletes_per_month"],
        "miss_standard": n_rendered * standard_share,
        "miss_other": n_rendered * (1 - standard_share),
        "reconcile_steady": runs,
    }
    for operation, times in often.items():
        if not times:
            continue
        for where in ("primary", "fallback", "results"):
            counts = model[operation].get(where, {})
            for tier, price in ((requests.LIST_TIER, prices.S3_PUT), (requests.GET_TIER, prices.S3_GET)):
                these = {op: n for op, n in counts.items() if op in tier}
                if these:
                    label = f"{OPERATIONS[operation]}: {_described(these)} each"
                    add(f"S3 ({where})", label, times * sum(these.values()), "requests", price)
        sent = sum(model[operation].get("sqs", {}).values())
        if sent:
            add("SQS", f"{OPERATIONS[operation]}: invalidation queue", times * sent, "requests", prices.SQS_REQUEST)
    add("S3 (primary)", "uploaders' PUTs (not ours: modelled)", uploads + often["replace"], "requests", prices.S3_PUT)
    add("S3 (primary)", "CloudFront's GET on every miss (not ours: modelled)", misses, "requests", prices.S3_GET)
    add(
        "Data transfer",
        "primary -> fallback region (sync writes)",
        (uploads + often["replace"]) * t["fallback_bytes_per_original"] / GB,
        "GB",
        prices.INTER_REGION_GB,
    )

    # The sync job: one invocation per upload (its event), and the reconcile's plan legs. A steady-state
    # run starts no child workflow: the plan finds nothing to build.
    sync_gbs = (uploads + often["replace"]) * t["sync_seconds_per_original"] * config.sync_memory_mb / 1024
    add(
        "Lambda (sync)",
        "uploads: requests",
        uploads + often["replace"] + often["delete"],
        "requests",
        prices.LAMBDA_REQUEST,
    )
    add("Lambda (sync)", "uploads: duration (arm64)", sync_gbs, "GB-s", prices.LAMBDA_ARM_GB_SECOND)
    steady = model["reconcile_steady"]
    pages = sum(steady[where]["ListObjectsV2"] for where in ("primary", "fallback"))
    plan_seconds = pages * t["list_page_seconds"] + t["originals_stored"] * t["plan_ms_per_original"] / 1000
    legs = max(1, math.ceil(plan_seconds / PLAN_LEG_SECONDS))
    add(
        "Lambda (sync)",
        f"reconcile: plan legs ({runs:g} runs of {legs})",
        runs * legs,
        "requests",
        prices.LAMBDA_REQUEST,
    )
    add(
        "Lambda (sync)",
        f"reconcile: plan duration ({pages:,} LIST pages, {plan_seconds:,.0f} s a run)",
        runs * plan_seconds * config.sync_memory_mb / 1024,
        "GB-s",
        prices.LAMBDA_ARM_GB_SECOND,
    )
    add(
        "Step Functions",
        "reconcile: standard transitions",
        runs * reconcile_transitions(legs, inventory=config.sync_inventory),
        "transitions",
        prices.STANDARD_TRANSITION,
    )

    if config.catalog:
        queries = t["catalog_queries_per_month"]
        add(
            "API Gateway",
            "HTTP API requests (uploads + queries)",
            uploads + queries,
            "requests",
            prices.HTTP_API_REQUEST,
        )
        api_gbs = (uploads + queries) * t["api_seconds"] * 0.25  # the API function: 256 MB arm64
        add("Lambda (catalogue)", "requests (API + metadata)", 2 * uploads + queries, "requests", prices.LAMBDA_REQUEST)
        add(
            "Lambda (catalogue)",
            "duration (arm64)",
            api_gbs + uploads * t["metadata_seconds"] * 1.0,
            "GB-s",
            prices.LAMBDA_ARM_GB_SECOND,
        )
        write_units = math.ceil(t["catalog_item_bytes"] / 1024)
        read_units = math.ceil(50 * t["catalog_item_bytes"] / 4096) / 2  # a page of 50, eventually consistent
        add(
            "DynamoDB",
            "write request units (one item per upload)",
            uploads * write_units,
            "WRU",
            prices.DYNAMODB_WRITE_UNIT,
        )
        add("DynamoDB", "read request units (pages of 50)", queries * read_units, "RRU", prices.DYNAMODB_READ_UNIT)
        add(
            "DynamoDB",
            "storage",
            t["originals_stored"] * t["catalog_item_bytes"] / GB,
            "GB-month",
            prices.DYNAMODB_GB_MONTH,
        )
    if config.waf:
        add("WAF", "web ACL", 1, "month", prices.WAF_WEB_ACL_MONTH)
        add("WAF", "rules (rate limit + 2 managed groups)", 3, "rule-months", prices.WAF_RULE_MONTH)
        add("WAF", "requests inspected", reads, "requests", prices.WAF_REQUEST)
    if config.signing != "off":
        add("Secrets Manager", "signing secret", 1, "secret-months", prices.SECRET_MONTH)
    if config.monitoring:
        # Counted from the alarms the Monitoring component builds for this stack (its own plan of them).
        metrics = monitoring.metric_counts(
            config.log_regions,
            reconcile_map_labels=monitoring.reconcile_labels(
                inventory=config.sync_inventory, source=config.edge_settings().originals_source
            ),
            webhooks=bool(config.alarm_webhooks),
        )
        add("CloudWatch", "alarm metrics", metrics.alarm_metrics, "metric-months", prices.CLOUDWATCH_ALARM_METRIC_MONTH)
        add(
            "CloudWatch",
            "custom and additional metrics",
            metrics.custom_metrics,
            "metric-months",
            prices.CLOUDWATCH_CUSTOM_METRIC_MONTH,
        )
        add("CloudWatch", "dashboard (beyond the free three)", 1, "month", prices.CLOUDWATCH_DASHBOARD_MONTH)
    add(
        "CloudWatch",
        "Logs ingestion (edge and sync)",
        (n_rendered + uploads) * t["log_bytes_per_render"] / GB,
        "GB",
        prices.CLOUDWATCH_LOGS_GB,
    )
    return lines


def by_service(lines: list[Line]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in lines:
        totals[line.service] = totals.get(line.service, 0.0) + line.cost
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def table(lines: list[Line], stack: str) -> str:
    width = max(len(f"{line.service}: {line.item}") for line in lines)
    rows = [f"Monthly estimate for stack {stack} (prices as of {prices.AS_OF}, USD)", ""]
    for line in lines:
        rows.append(
            f"{line.service + ': ' + line.item:<{width}}  {line.quantity:>16,.2f} {line.unit:<14} "
            f"x {line.price:<12.8g} = {line.cost:>10,.2f}"
        )
    rows.append("")
    for service, cost in by_service(lines).items():
        rows.append(f"{service:<{width}}  {cost:>10,.2f}")
    rows.append(f"{'total':<{width}}  {sum(line.cost for line in lines):>10,.2f}")
    return "\n".join(rows)


def chart(lines: list[Line], stack: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    totals = by_service(lines)
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(totals) + 1.2))
    names = list(totals)[::-1]
    ax.barh(names, [totals[n] for n in names], color="#36c")
    for i, name in enumerate(names):
        ax.text(totals[name], i, f" ${totals[name]:,.2f}", va="center", fontsize=8)
    ax.set_xlabel("USD per month")
    ax.set_title(f"image-cdn {stack}: ${sum(totals.values()):,.2f} a month (prices {prices.AS_OF})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


README_MARK = "<!-- generated by `python -m ops cost --readme --write`"


def readme(traffic_path: Path) -> str:
    """The README's cost table and the figures quoted under it, from `estimate` (`make cost --readme`
    prints it; tests/test_cost.py holds the README to it)."""
    raw = yaml.safe_load(traffic_path.read_text(encoding="utf-8")) or {}
    traffic = profile(raw, bench_defaults())
    dev, prod = (estimate(from_stack_file(stack), traffic) for stack in ("dev", "prod"))
    free = estimate(from_stack_file("dev"), traffic, free_tier=True)
    services = by_service(prod)

    def total(lines: list[Line]) -> str:
        return f"{sum(line.cost for line in lines):.2f}"

    fallback = services.get("S3 (fallback)", 0.0) + services.get("Data transfer", 0.0)
    reconcile = sum(line.cost for line in prod if "reconcile" in line.item)
    originals = sum(line.cost for line in prod if line.item == "storage: originals")
    cloudfront, waf, watch = (services.get(name, 0.0) for name in ("CloudFront", "WAF", "CloudWatch"))
    return "\n".join(
        [
            "| | dev | prod |",
            "|---|---|---|",
            f"| estimate, USD a month | {total(dev)} | {total(prod)} |",
            f"| with CloudFront's always-free allowance (`--free-tier`) | {total(free)} | |",
            "",
            f"In prod: CloudFront's transfer and requests ${cloudfront:.2f}; the fallback's copy of every standard "
            f"set, its requests and the cross-region transfer ${fallback:.2f}; the WAF ${waf:.2f}; alarms and "
            f"dashboard ${watch:.2f}; the reconcile every six hours ${reconcile:.2f}; the originals' storage "
            f"${originals:.2f}.",
        ]
    )


def main(argv: list[str]) -> int:
    from ops import cli

    parser = cli.Parser(prog="python -m ops cost", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--traffic", type=Path, default=ROOT / "ops" / "traffic.yaml")
    parser.add_argument("--chart", type=Path, help="where the PNG goes (default .cache/cost-<stack>.png)")
    parser.add_argument("--free-tier", action="store_true", help="apply CloudFront's always-free allowance")
    parser.add_argument("--readme", action="store_true", help="print the README's cost table (dev and prod) instead")
    parser.add_argument("--write", action="store_true", help="with --readme: write it into README.md")
    args = parser.parse_args(argv)
    # A missing stack or --traffic file is python -m ops's to report; what the profile says is checked here.
    text = args.traffic.read_text(encoding="utf-8")
    measured = bench_defaults()
    try:
        raw = yaml.safe_load(text) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"expected a mapping of fields, got {type(raw).__name__}")
        traffic = profile(raw, measured)
    except (yaml.YAMLError, ValueError) as error:
        said = " ".join(str(error).split())
        mark = getattr(error, "problem_mark", None)
        if isinstance(error, yaml.MarkedYAMLError) and mark is not None:
            said = f"not YAML: {error.problem} (line {mark.line + 1}, column {mark.column + 1})"
        raise cli.Usage(f"--traffic {args.traffic}: {said}", "ops/traffic.yaml shows every field") from None
    if args.readme:
        block = readme(args.traffic)
        if args.write:
            path = ROOT / "README.md"
            text = path.read_text(encoding="utf-8")
            start = text.index("\n", text.index(README_MARK)) + 1
            end = text.index("<!-- end of generated -->", start)
            path.write_text(text[:start] + block + "\n" + text[end:], encoding="utf-8")
        print(block)
        return 0
    lines = estimate(from_stack_file(args.stack), traffic, free_tier=args.free_tier)
    print(table(lines, args.stack))
    path = args.chart or ROOT / ".cache" / f"cost-{args.stack}.png"
    chart(lines, args.stack, path)
    print(f"\nchart: {path}")
    return 0

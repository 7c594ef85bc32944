"""`python -m ops cost`: the arithmetic on a small profile, checked against numbers worked by hand."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench import prices
from components.config import load
from ops import cost

ROOT = Path(__file__).resolve().parent.parent
BASE = {"aws:region": "eu-west-1", "fallbackRegion": "us-east-2", "catalog": False}
SMALL = {
    "reads_per_month": 1_000_000,
    "uploads_per_month": 1_000,
    "formats": {"jpeg": 1.0},
    "average_bytes": {"jpeg": 100_000},
    "viewers": {"north_america": 1.0},
    "cache_hit_ratio": 0.9,
    "transform_ms": {"jpeg": 50.0},
    "rendered_share_of_misses": 0.5,
    "original_bytes": 1_000_000,
    "originals_stored": 1_000,
    "sync_seconds_per_original": 1.0,
}


def lines_of(**config: object) -> dict[str, float]:
    stack = load({**BASE, **config}, project="image-cdn", stack="t")
    traffic = cost.profile(SMALL, {})
    return {f"{line.service}: {line.item}": line.cost for line in cost.estimate(stack, traffic)}


def test_the_small_profile_by_hand() -> None:
    got = lines_of()
    gb = 1_000_000 * 100_000 / 1024**3  # 93.1323 GB
    assert got["CloudFront: data transfer out (north_america)"] == pytest.approx(gb * 0.085)  # $7.92
    assert got["CloudFront: HTTPS requests (north_america)"] == pytest.approx(100 * 0.0100)  # 1M / 10K
    assert got["CloudFront Functions: viewer function"] == pytest.approx(0.10)
    # 100,000 misses; each runs rewrite and resize.
    assert got["Lambda@Edge: requests (rewrite + resize)"] == pytest.approx(200_000 * 0.60 / 1e6)
    assert got["Lambda@Edge: rewrite duration"] == pytest.approx(100_000 * 0.005 * 128 / 1024 * 0.00005001)
    # 50,000 renders of (50 ms + 20 ms reading 1 MB) and 50,000 passes of 10 ms, at 1536 MB.
    assert got["Lambda@Edge: resize duration (renders + passes)"] == pytest.approx(
        (50_000 * 0.070 + 50_000 * 0.010) * 1.5 * 0.00005001
    )
    # 1,000 uploads: each lists the original's prefix in the fallback and writes 20 standard variants
    # (10 widths x webp, jpeg) and the set's marker; in the primary a HEAD and a GET of the original,
    # a listing of its variants/ and one of its versions (the counts of tests/test_requests.py).
    assert got["S3 (fallback): uploads: ListObjectsV2 1, PutObject 21 each"] == pytest.approx(22_000 * 0.005 / 1000)
    assert got["S3 (primary): uploads: GetObject 1, HeadObject 1 each"] == pytest.approx(2_000 * 0.0004 / 1000)
    assert got["S3 (primary): uploads: ListObjectVersions 1, ListObjectsV2 1 each"] == pytest.approx(
        2_000 * 0.005 / 1000
    )
    assert got["Lambda (sync): uploads: duration (arm64)"] == pytest.approx(
        1_000 * 1.0 * 1.0 * prices.LAMBDA_ARM_GB_SECOND
    )
    # daily reconcile of 1,000 originals: 30 runs, each one LIST of originals/ and 21 of the fallback
    # (21,000 keys), and no GET: the plan builds nothing in the steady state.
    assert got["S3 (primary): reconcile: ListObjectsV2 1 each"] == pytest.approx(30 * 0.005 / 1000)
    assert got["S3 (fallback): reconcile: ListObjectsV2 21 each"] == pytest.approx(30 * 21 * 0.005 / 1000)
    assert not any("reconcile" in k and "GetObject" in k for k in got)
    assert got["Step Functions: reconcile: standard transitions"] == pytest.approx(30 * 7 * 0.025 / 1000)
    assert not any(k.startswith(("DynamoDB", "WAF", "API Gateway")) for k in got)


def test_features_add_their_lines() -> None:
    got = lines_of(waf=True, monitoring=True, priceClass="PriceClass_100", logRegions=["us-east-1", "eu-west-1"])
    assert got["WAF: web ACL"] == 5.0 and got["WAF: requests inspected"] == pytest.approx(0.60)
    # CloudFront's 5 and Lambda@Edge's 4 as CloudFront counts them; per region 2 math alarms of 2 and the
    # fallback's 1; the dead letters, failed runs and the Build map's failed, timed-out and aborted batches.
    assert got["CloudWatch: alarm metrics"] == pytest.approx((5 + 4 + 2 * 5 + 2 + 3) * 0.10)
    assert got["CloudWatch: custom and additional metrics"] == pytest.approx((8 + 2 * 2) * 0.30)


def test_a_bad_profile_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"traffic\.formats: expected shares adding up to 1"):
        cost.profile({**SMALL, "formats": {"jpeg": 0.5}}, {})
    with pytest.raises(ValueError, match=r"traffic: unknown field\(s\) readz"):
        cost.profile({**SMALL, "readz": 1}, {})


def test_make_cost_prints_the_table_and_writes_the_chart(tmp_path: Path) -> None:
    chart = tmp_path / "prod.png"
    done = subprocess.run(
        [sys.executable, "-m", "ops", "cost", "--stack", "prod", "--chart", str(chart)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Monthly estimate for stack prod" in done.stdout and "\ntotal " in done.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_quotes_what_make_cost_prints() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(cost.README_MARK)
    block = readme[readme.index("\n", start) + 1 : readme.index("<!-- end of generated -->")].strip()
    assert block == cost.readme(ROOT / "ops" / "traffic.yaml"), "run: python -m ops cost --readme --write"

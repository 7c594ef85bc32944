"""Requests per operation, counted against moto, equal the cost model's (bench/requests.py, ops/cost.py).

The counter is botocore's `before-send` event: one count per HTTP request a client sends, so a
page of a listing, a retry and a multipart part each count. The model is what `ops cost`
multiplies; if the code starts asking S3 for more, these fail before the bill does.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from bench import requests
from edge.settings import Settings
from sync import job

ROOT = Path(__file__).resolve().parent.parent
STACKLIKE = Settings(
    widths=(160, 320, 480, 640, 768, 1024, 1280, 1600, 1920, 2560),
    qualities=(60,),
    default_quality=60,
    standard_formats=("webp", "jpeg"),
    primary_bucket="requests-origin",
    primary_region="eu-west-1",
    fallback_bucket="requests-fallback",
    fallback_region="eu-central-1",
)


def without_runs(counted: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in counts.items() if k != "run"} for name, counts in counted.items()}


def test_every_operation_asks_for_what_the_cost_model_says() -> None:
    counted = requests.count_operations(STACKLIKE, 60)
    model = requests.requests_per_operation(len(STACKLIKE.widths) * len(STACKLIKE.standard_formats), 60)
    assert without_runs(counted) == model


def test_the_model_follows_the_pages_of_both_listings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Smaller pages (the engine reads PAGE_SIZE) stand in for a bucket of many thousands.
    monkeypatch.setattr(job, "PAGE_SIZE", 10)
    small = Settings(**{**STACKLIKE.as_dict(), "widths": (160, 320), "standard_formats": ("webp",)})
    counted = requests.count_operations(small, 23, replaced=3)
    assert without_runs(counted) == requests.requests_per_operation(2, 23, replaced=3, page=10)
    assert counted["reconcile_steady"]["primary"] == {"ListObjectsV2": 3}  # ceil(23 / 10)
    assert counted["reconcile_steady"]["fallback"] == {"ListObjectsV2": 7}  # ceil(23 x 3 / 10)


@pytest.mark.parametrize("originals", [60, 2500])
def test_a_steady_state_reconcile_stays_within_its_bound(originals: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bound the reconcile promises: ceil(N/1000) + 2 LISTs of the primary, 2 requests per original in all.
    monkeypatch.setattr(job, "PAGE_SIZE", 100)  # 2,500 originals in 25 pages: the same arithmetic, faster
    small = Settings(**{**STACKLIKE.as_dict(), "widths": (160,), "standard_formats": ("webp",)})
    steady = requests.count_operations(small, originals)["reconcile_steady"]
    assert steady["run"] == {"legs": 1, "work": 0}
    assert steady["primary"]["ListObjectsV2"] <= math.ceil(originals / 100) + 2
    total = sum(n for where, ops in steady.items() if where != "run" for n in ops.values())
    assert total <= 2 * originals
    assert set(steady) == {"primary", "fallback", "run"}  # nothing else: no GET, HEAD, PUT or queue


def test_the_readme_quotes_the_models_monthly_lists_for_prod() -> None:
    import yaml

    from components.config import from_stack_file

    prod = from_stack_file("prod")
    originals = int(yaml.safe_load((ROOT / "ops" / "traffic.yaml").read_text())["originals_stored"])
    runs = requests.runs_per_month(prod.sync_schedule)
    steady = requests.requests_per_operation(len(prod.widths) * len(prod.standard_formats), originals)
    primary = runs * steady["reconcile_steady"]["primary"]["ListObjectsV2"]
    fallback = runs * steady["reconcile_steady"]["fallback"]["ListObjectsV2"]
    # the README as it reads (its figures' markers dropped: bench/figures.py renders them)
    readme = " ".join(re.sub(r"<!-- /?fig[^>]*-->", "", (ROOT / "README.md").read_text()).split())
    # the previous engine: one LIST of the primary per original checked, every run
    assert f"{int(runs * originals):,} LISTs of the primary a month" in readme
    assert f"now {int(primary):,} of the primary and {int(fallback):,} of the fallback" in readme

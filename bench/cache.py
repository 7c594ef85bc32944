"""Cache efficiency on a synthetic trace: our normalization vs a raw query+Accept cache key.

1M requests, Zipf popularity over 10k originals, viewport widths and pixel ratios from a
device mix, and the Accept headers of current browsers by share. Half the pages ask
for widths from a fixed srcset, half compute `w` from the slot width (lazy loaders,
image components). The cache is CloudFront's view with no eviction (a one-year TTL):
each distinct key misses once. "After warm-up" counts the second half of the trace.
"""

from __future__ import annotations

import json
import random
import statistics
from bisect import bisect_left
from collections import Counter
from itertools import accumulate
from pathlib import Path
from typing import Any

from edge import variants
from edge.settings import Settings

TABLE = json.loads((Path(__file__).resolve().parents[1] / "tests" / "cases" / "normalize.json").read_text())
ACCEPT = TABLE["accept_headers"]
# share of requests: Chrome (two current Accept strings), Safari, Edge, Firefox, Samsung
# Internet (Chrome's header), older Safari (no AVIF), bots and tools (*/*).
BROWSERS = [
    (ACCEPT["chrome"], 0.42),
    (ACCEPT["chromium156"], 0.20),
    (ACCEPT["safari"], 0.17),
    (ACCEPT["edge"], 0.05),
    (ACCEPT["firefox"], 0.04),
    (ACCEPT["chrome"], 0.04),
    (ACCEPT["safari15"], 0.03),
    (ACCEPT["any"], 0.05),
]
# (viewport CSS px, device pixel ratio, share of the slot the image fills, weight)
DEVICES = [
    (360, 3.0, 1.0, 0.10),
    (375, 2.0, 1.0, 0.06),
    (390, 3.0, 1.0, 0.12),
    (393, 2.75, 1.0, 0.08),
    (412, 2.625, 1.0, 0.10),
    (414, 3.0, 1.0, 0.05),
    (430, 3.0, 1.0, 0.06),
    (768, 2.0, 0.5, 0.04),
    (810, 2.0, 0.5, 0.02),
    (820, 2.0, 0.5, 0.03),
    (1280, 1.0, 0.33, 0.05),
    (1366, 1.0, 0.33, 0.05),
    (1440, 2.0, 0.33, 0.05),
    (1536, 1.25, 0.33, 0.06),
    (1920, 1.0, 0.33, 0.09),
    (2560, 1.0, 0.33, 0.04),
]
SRCSET = (320, 480, 640, 750, 828, 1080, 1200, 1920)


def _pick(cumulative: list[float], rng: random.Random) -> int:
    return bisect_left(cumulative, rng.random() * cumulative[-1])


def trace(requests: int, originals: int, seed: int = 7) -> list[tuple[int, str, str, int, float]]:
    """(original index, query, accept, CSS width of the slot, device pixel ratio) per request."""
    rng = random.Random(seed)
    zipf = list(accumulate(1 / (rank + 1) ** 0.9 for rank in range(originals)))
    devices = list(accumulate(d[3] for d in DEVICES))
    browsers = list(accumulate(b[1] for b in BROWSERS))
    out = []
    for _ in range(requests):
        viewport, dpr, slot, _weight = DEVICES[_pick(devices, rng)]
        needed = viewport * slot * dpr
        srcset = rng.random() < 0.5  # the page offers a srcset, or computes w from the slot
        width = next((w for w in SRCSET if w >= needed), SRCSET[-1]) if srcset else round(needed)
        out.append((_pick(zipf, rng), f"w={width}", BROWSERS[_pick(browsers, rng)][0], round(viewport * slot), dpr))
    return out


def _hinted(query: str, css: int, dpr: float, turn: int) -> tuple[str, dict[str, str]]:
    """The same request as a page using DPR or client hints would send it: a third as now (a
    srcset width), a third as `w=<CSS px>&dpr=<ratio>`, a third with no width and the hints."""
    if turn % 3 == 0:
        return query, {}
    if turn % 3 == 1:
        return f"w={css}&dpr={min(4.0, dpr):g}", {}
    return "", {"sec-ch-dpr": f"{dpr:g}", "sec-ch-width": str(round(css * dpr))}


def _scheme(keys: list[tuple[int, str]]) -> dict[str, Any]:
    seen: set[str] = set()
    hits = late_hits = 0
    half = len(keys) // 2
    per_original: Counter[int] = Counter()
    for index, (original, key) in enumerate(keys):
        if key in seen:
            hits += 1
            late_hits += index >= half
        else:
            seen.add(key)
            per_original[original] += 1
    counts = sorted(per_original.values())
    return {
        "distinct_keys": len(seen),
        "keys_per_original": {
            "mean": round(statistics.fmean(counts), 2),
            "median": statistics.median(counts),
            "p99": counts[int(0.99 * (len(counts) - 1))],
            "max": counts[-1],
        },
        "originals_requested": len(counts),
        "hit_ratio": round(hits / len(keys), 4),
        "hit_ratio_after_warmup": round(late_hits / (len(keys) - half), 4),
    }


def run(requests: int = 1_000_000, originals: int = 10_000) -> dict[str, Any]:
    settings = Settings()
    hinting = Settings(client_hints=True)
    requests_ = trace(requests, originals)
    memo: dict[tuple[str, str], str] = {}
    hinted_memo: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}
    ours, raw, hinted = [], [], []
    for turn, (original, query, accept, css, dpr) in enumerate(requests_):
        uri = f"/products/{original}.jpg"
        canonical = memo.get((query, accept))
        if canonical is None:
            canonical = memo[(query, accept)] = variants.normalize("/p.jpg", query, accept, settings)[len("/p.jpg") :]
        ours.append((original, uri + canonical))
        raw.append((original, f"{uri}?{query}|{accept}"))
        asked, hints = _hinted(query, css, dpr, turn)
        memo_key = (asked, accept, tuple(sorted(hints.items())))
        with_hints = hinted_memo.get(memo_key)
        if with_hints is None:
            with_hints = variants.normalize("/p.jpg", asked, accept, hinting, hints)[len("/p.jpg") :]
            hinted_memo[memo_key] = with_hints
        hinted.append((original, uri + with_hints))
    return {
        "requests": requests,
        "originals": originals,
        "ours": _scheme(ours),
        "ours_with_dpr_and_hints": _scheme(hinted),
        "raw_query_and_accept": _scheme(raw),
    }

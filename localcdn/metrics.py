"""The emulator's stand-in for the stack's CloudWatch signals (components/monitoring.py).

Per minute of the distribution's clock: requests, cache hits and misses, 4xx and 5xx answers
(CloudFront's Requests and error rates), failovers (answers from the fallback bucket: the
`FallbackResponses` metric filter counts resize's "fallback" log lines, one per such answer)
and substitutes (the `Substitutes` filter: fallback answers that are not the asked-for variant).
Failovers and substitutes count misses only: origin-response runs "after CloudFront receives a
response from the origin" and not for an answer from the cache (CloudFront Developer Guide,
"CloudFront events that can trigger a Lambda@Edge function"), so resize logs nothing for a hit.
`/_localcdn/metrics` serves the last hour; the gallery charts it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from edge.settings import SUBSTITUTE_HEADER

SIGNALS = ("requests", "hits", "misses", "errors_4xx", "errors_5xx", "failovers", "substitutes")
MINUTES_KEPT = 60


class Metrics:
    def __init__(self) -> None:
        self._minutes: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._totals = dict.fromkeys(SIGNALS, 0)
        self._lock = threading.Lock()

    def count(self, now: float, status: int, x_cache: str | None, origin: str | None, headers: dict[str, str]) -> None:
        """One viewer response at `now` (seconds on the distribution's wall clock)."""
        seen = {"requests": 1}
        if x_cache == "Hit":
            seen["hits"] = 1
        elif x_cache == "Miss":
            seen["misses"] = 1
        if 400 <= status < 500:
            seen["errors_4xx"] = 1
        elif status >= 500:
            seen["errors_5xx"] = 1
        # What reached the fallback on this miss (a hit replays a cached answer: no origin ran).
        if x_cache == "Miss" and origin == "fallback":
            seen["failovers"] = 1
            if SUBSTITUTE_HEADER in headers:
                seen["substitutes"] = 1
        minute = int(now // 60)
        with self._lock:
            bucket = self._minutes.setdefault(minute, dict.fromkeys(SIGNALS, 0))
            for name, n in seen.items():
                bucket[name] += n
                self._totals[name] += n
            while len(self._minutes) > MINUTES_KEPT:
                self._minutes.popitem(last=False)

    def snapshot(self, now: float) -> dict[str, object]:
        """The last hour per minute (minutes with no request included, as zeros) and the totals."""
        last = int(now // 60)
        with self._lock:
            series = [
                {"minute": m * 60, **self._minutes.get(m, dict.fromkeys(SIGNALS, 0))}
                for m in range(last - MINUTES_KEPT + 1, last + 1)
            ]
            return {"period_seconds": 60, "signals": list(SIGNALS), "series": series, "totals": dict(self._totals)}

"""CloudFront invalidations that stay inside CloudFront's limits, queued when they cannot.

AWS, "Concurrent invalidation request maximum" (CloudFront Developer Guide, "Invalidate
files") and "Quotas on invalidations": a distribution may have invalidation requests
for at most 3,000 individual file paths in progress at once, and at most 15 paths that
use the `*` wildcard; the two maximums are independent. A request over them fails
with `TooManyInvalidationsInProgress`. One request may carry up to 3,000 paths (a
larger batch is `BatchTooLarge`). How long an invalidation stays in progress is not
documented, so nothing here waits for one: what does not fit now is handed back to
be queued and tried again later.

The sync job asks for one wildcard per changed original (`/<key>/*`, every variant of
it). When more are waiting than there are free wildcard slots, they are collapsed into
their nearest common directories (`/products/*`): a broader invalidation costs cache
misses, which S3 answers, but never leaves a stale variant at the edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

MAX_WILDCARDS_IN_PROGRESS = 15
MAX_FILES_IN_PROGRESS = 3000
MAX_PATHS_PER_REQUEST = 3000
# The smallest delay before waiting paths are tried again, and the largest (SQS's
# DelaySeconds maximum): the queue backs off while CloudFront is busy.
RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 900


def is_wildcard(path: str) -> bool:
    return path.endswith("*")


def _parent(prefix: str) -> str:
    """`/a/b/c.jpg/` -> `/a/b/`; `/a/` -> `/`; a wildcard prefix `/a/b*` -> `/a/`."""
    trimmed = prefix[:-1] if prefix.endswith("/") else prefix
    return trimmed[: trimmed.rfind("/") + 1] or "/"


def _minimal(prefixes: Iterable[str]) -> set[str]:
    """Drop every prefix another one already covers."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return set(kept)


def collapse(paths: Iterable[str], budget: int) -> list[str]:
    """At most `budget` (>= 1) wildcard paths that together cover every path given.

    File paths are covered as `<path>*`. Siblings are merged into their parent
    directory, the largest group first, until the budget is met; in the end `/*`
    covers everything.
    """
    if budget < 1:
        raise ValueError("budget must be at least 1")
    # A `*` may only end a path: one inside a key (encodeURIComponent leaves it) cuts the prefix there.
    prefixes = _minimal(path.split("*", 1)[0] for path in paths)
    while len(prefixes) > budget:
        groups: dict[str, list[str]] = {}
        for prefix in prefixes:
            if prefix != "/":
                groups.setdefault(_parent(prefix), []).append(prefix)
        shared = [(len(members), parent.count("/"), parent) for parent, members in groups.items() if len(members) > 1]
        # merge the largest group of siblings; when no two share a directory, lift the deepest one level
        deepest = max(prefixes, key=lambda prefix: (prefix.count("/"), prefix))
        parent = max(shared)[2] if shared else _parent(deepest)
        prefixes = _minimal([*(p for p in prefixes if not p.startswith(parent)), parent])
    return sorted(prefix + "*" for prefix in prefixes)


class Invalidator:
    """Submits invalidations for one distribution through a boto3-shaped CloudFront client."""

    def __init__(self, cloudfront: Any, distribution_id: str, clock: Callable[[], float] = time.time):
        self.cloudfront = cloudfront
        self.distribution_id = distribution_id
        self.clock = clock

    def in_progress(self) -> tuple[int, int]:
        """(wildcard paths, file paths) of this distribution's invalidations still in progress.

        ListInvalidations answers newest first; the pages stop at the first page with
        nothing in progress, as every invalidation in progress is newer than one done.
        """
        wildcards = files = 0
        marker = ""
        while True:
            page = self.cloudfront.list_invalidations(
                DistributionId=self.distribution_id, MaxItems="100", **({"Marker": marker} if marker else {})
            )["InvalidationList"]
            busy = [item for item in page.get("Items", []) if item["Status"] == "InProgress"]
            for item in busy:
                answer = self.cloudfront.get_invalidation(DistributionId=self.distribution_id, Id=item["Id"])
                for path in answer["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", []):
                    if is_wildcard(path):
                        wildcards += 1
                    else:
                        files += 1
            if not busy or not page.get("IsTruncated"):
                return wildcards, files
            marker = page["NextMarker"]

    def submit(self, paths: Iterable[str]) -> list[str]:
        """Invalidate what fits now; returns the paths to try again later (none when all went)."""
        wanted = sorted(set(paths))
        if not wanted:
            return []
        wildcards, _ = self.in_progress()
        free = MAX_WILDCARDS_IN_PROGRESS - wildcards
        if free < 1:
            return wanted
        batch = collapse(wanted, min(free, MAX_PATHS_PER_REQUEST))
        try:
            self.cloudfront.create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(batch), "Items": batch},
                    "CallerReference": f"image-cdn-{self.clock():.6f}-{len(batch)}",
                },
            )
        except Exception as error:  # botocore's ClientError, or the emulator's: both carry .response
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code == "TooManyInvalidationsInProgress":  # another writer took the slots meanwhile
                return wanted
            raise
        return []


def retry_delay(attempt: int) -> int:
    """Seconds before the `attempt`-th retry (1, 2, ...): doubling from RETRY_SECONDS up to SQS's maximum."""
    return int(min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2 ** max(0, attempt - 1)))

"""CloudFront invalidations that stay inside CloudFront's limits, queued when they cannot.

AWS, "Concurrent invalidation request maximum" (CloudFront Developer Guide, "Invalidate
files") and "Quotas on invalidations": a distribution may have invalidation requests
for at most 3,000 individual file paths in progress at once, and at most 15 paths that
use the `*` wildcard; the two maximums are independent. A request over them fails
with `TooManyInvalidationsInProgress`. One request may carry up to 3,000 paths (a
larger batch is `BatchTooLarge`). How long an invalidation stays in progress is not
documented, so nothing here waits for one: what does not fit now is handed back to
be queued and tried again later.

The sync job asks, for each replaced or deleted original, for one wildcard: `/<key>/*`, that
original's paths and no other's (sync/job.py, `Sync.cached_paths`). At most 15 wildcard paths
may be in progress; what does not fit waits in the queue, oldest first, and is tried again with
back-off. A burst of one user's replacements is delayed, never merged into a broader path over
other users' variants (before, waiting wildcards were collapsed into their common directories,
up to `/*`: one uploader's burst flushed everyone's cache).
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


def fitting(paths: list[str], wildcards_free: int, files_free: int) -> tuple[list[str], list[str]]:
    """(what one request may carry now, what must wait): at most `wildcards_free` wildcard paths,
    `files_free` file paths and MAX_PATHS_PER_REQUEST in all, in the order given (oldest first).
    Nothing is ever merged or broadened."""
    now: list[str] = []
    later: list[str] = []
    for path in paths:
        room = wildcards_free if is_wildcard(path) else files_free
        if room > 0 and len(now) < MAX_PATHS_PER_REQUEST:
            now.append(path)
            if is_wildcard(path):
                wildcards_free -= 1
            else:
                files_free -= 1
        else:
            later.append(path)
    return now, later


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
        wanted = list(dict.fromkeys(paths))
        if not wanted:
            return []
        wildcards, files = self.in_progress()
        batch, later = fitting(wanted, MAX_WILDCARDS_IN_PROGRESS - wildcards, MAX_FILES_IN_PROGRESS - files)
        if not batch:
            return wanted
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
        return later


def retry_delay(attempt: int) -> int:
    """Seconds before the `attempt`-th retry (1, 2, ...): doubling from RETRY_SECONDS up to SQS's maximum."""
    return int(min(MAX_RETRY_SECONDS, RETRY_SECONDS * 2 ** max(0, attempt - 1)))

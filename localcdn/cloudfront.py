"""CloudFront's invalidation API, modelled: CreateInvalidation, ListInvalidations, GetInvalidation.

The three calls take and answer boto3's shapes, so `sync.invalidation.Invalidator` (what
the sync job runs in Lambda) drives this model unchanged. What is modelled, from AWS's
documents:

- "Concurrent invalidation request maximum" (CloudFront Developer Guide, "Invalidate
  files") and "Quotas on invalidations": at most 3,000 file paths and, independently,
  15 wildcard paths in invalidations in progress per distribution; a request over
  either fails with `TooManyInvalidationsInProgress` and changes nothing.
- CreateInvalidation (API Reference): paths start with `/`, a `*` only at the end of a
  path, at most 4,000 characters; `Quantity` must equal the number of `Items`
  (`InconsistentQuantities`); a batch of more than 3,000 paths is `BatchTooLarge`; the
  same `CallerReference` with the same paths returns the first invalidation again.
- ListInvalidations answers newest first, in pages (`MaxItems`, `Marker`).

How long an invalidation stays in progress is not documented ("typically" minutes,
longer under load): the model keeps each one `InProgress` for `duration` seconds of the
distribution's clock (60 by default; tests and `POST /_localcdn/clock` move the clock),
and the code that uses it is written not to depend on the number. The cached objects a
request names are dropped at once.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sync.invalidation import MAX_FILES_IN_PROGRESS, MAX_PATHS_PER_REQUEST, MAX_WILDCARDS_IN_PROGRESS, is_wildcard

MAX_PATH_CHARACTERS = 4000
DEFAULT_DURATION = 60.0


def _timestamp(unix: float) -> str:
    """CreateTime as CloudFront's API writes it (ISO 8601, UTC)."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class CloudFrontError(Exception):
    """What botocore raises for a CloudFront error: `.response["Error"]["Code"]`, and the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"An error occurred ({code}) when calling the CreateInvalidation operation: {message}")
        self.response: dict[str, Any] = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        self.code, self.message, self.status = code, message, status


class Invalidations:
    """One distribution's invalidations; `drop(paths)` removes matching objects from the cache."""

    def __init__(
        self,
        distribution_id: str,
        drop: Callable[[list[str]], int],
        clock: Callable[[], float],
        duration: float = DEFAULT_DURATION,
        wall: Callable[[], float] = time.time,
    ):
        self.distribution_id = distribution_id
        self.drop = drop
        self.clock = clock
        self.wall = wall  # Unix time as the edge sees it: an invalidation's CreateTime
        self.duration = duration
        self._items: list[dict[str, Any]] = []  # newest last
        self._ids = (f"I{n:013d}" for n in itertools.count(1))
        self._lock = threading.Lock()

    # -- the model's own questions --------------------------------------------------------

    def _status(self, item: dict[str, Any]) -> str:
        return "InProgress" if self.clock() < item["created"] + self.duration else "Completed"

    def in_progress(self) -> tuple[int, int]:
        """(wildcard paths, file paths) in invalidations still in progress."""
        busy = [path for item in self._items if self._status(item) == "InProgress" for path in item["paths"]]
        wildcards = sum(1 for path in busy if is_wildcard(path))
        return wildcards, len(busy) - wildcards

    def completed_paths(self) -> list[str]:
        return [path for item in self._items if self._status(item) == "Completed" for path in item["paths"]]

    # -- the API ---------------------------------------------------------------------------

    def create_invalidation(self, *, DistributionId: str, InvalidationBatch: dict[str, Any]) -> dict[str, Any]:
        self._check_distribution(DistributionId)
        paths_field = InvalidationBatch.get("Paths") or {}
        paths = [str(path) for path in paths_field.get("Items") or []]
        reference = str(InvalidationBatch.get("CallerReference") or "")
        if not reference:
            raise CloudFrontError("InvalidArgument", "CallerReference is required")
        if int(paths_field.get("Quantity", -1)) != len(paths):
            raise CloudFrontError("InconsistentQuantities", "Quantity does not match the number of Items")
        if not paths:
            raise CloudFrontError("InvalidArgument", "at least one path is required")
        if len(paths) > MAX_PATHS_PER_REQUEST:
            raise CloudFrontError("BatchTooLarge", f"{len(paths)} paths; at most {MAX_PATHS_PER_REQUEST}", 413)
        for path in paths:
            if not path.startswith("/") or "*" in path[:-1] or len(path) > MAX_PATH_CHARACTERS:
                raise CloudFrontError(
                    "InvalidArgument", f"{path!r}: a path starts with '/', and '*' may only end it (<= 4,000 chars)"
                )
        with self._lock:
            for item in self._items:
                if item["reference"] == reference:
                    if item["paths"] == paths:
                        return {"Invalidation": self._shape(item)}
                    raise CloudFrontError(
                        "InvalidationBatchAlreadyExists", "CallerReference reused with other paths", 409
                    )
            wildcards, files = self.in_progress()
            new_wildcards = sum(1 for path in paths if is_wildcard(path))
            if (
                wildcards + new_wildcards > MAX_WILDCARDS_IN_PROGRESS
                or files + len(paths) - new_wildcards > MAX_FILES_IN_PROGRESS
            ):
                raise CloudFrontError(
                    "TooManyInvalidationsInProgress",
                    f"in progress: {wildcards} wildcard and {files} file paths; asked for "
                    f"{new_wildcards} and {len(paths) - new_wildcards} more (at most "
                    f"{MAX_WILDCARDS_IN_PROGRESS} and {MAX_FILES_IN_PROGRESS})",
                )
            item = {
                "id": next(self._ids),
                "reference": reference,
                "paths": paths,
                "created": self.clock(),
                "created_at": _timestamp(self.wall()),
            }
            self._items.append(item)
        self.drop(paths)
        return {
            "Invalidation": self._shape(item),
            "Location": f"/distribution/{DistributionId}/invalidation/{item['id']}",
        }

    def list_invalidations(self, *, DistributionId: str, MaxItems: str = "100", Marker: str = "") -> dict[str, Any]:
        self._check_distribution(DistributionId)
        newest_first = list(reversed(self._items))
        start = next((i + 1 for i, item in enumerate(newest_first) if item["id"] == Marker), 0) if Marker else 0
        size = max(1, int(MaxItems))
        page = newest_first[start : start + size]
        truncated = start + size < len(newest_first)
        answer: dict[str, Any] = {
            "Marker": Marker,
            "MaxItems": size,
            "IsTruncated": truncated,
            "Quantity": len(page),
            "Items": [{"Id": i["id"], "CreateTime": i["created_at"], "Status": self._status(i)} for i in page],
        }
        if truncated:
            answer["NextMarker"] = page[-1]["id"]
        return {"InvalidationList": answer}

    def get_invalidation(self, *, DistributionId: str, Id: str) -> dict[str, Any]:
        self._check_distribution(DistributionId)
        for item in self._items:
            if item["id"] == Id:
                return {"Invalidation": self._shape(item)}
        raise CloudFrontError("NoSuchInvalidation", f"no invalidation {Id}", 404)

    def _check_distribution(self, distribution_id: str) -> None:
        if distribution_id != self.distribution_id:
            raise CloudFrontError("NoSuchDistribution", f"no distribution {distribution_id}", 404)

    def _shape(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "Id": item["id"],
            "Status": self._status(item),
            "CreateTime": item["created_at"],
            "InvalidationBatch": {
                "Paths": {"Quantity": len(item["paths"]), "Items": list(item["paths"])},
                "CallerReference": item["reference"],
            },
        }

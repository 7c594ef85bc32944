"""The sync job inside the emulator: uploads and deletions trigger it as S3 events would.

Replaced and deleted originals are invalidated as in AWS: the sync job hands the paths
to a queue (here a list, in AWS an SQS queue), and `drain_invalidations` submits them
to CloudFront's invalidation API (here `localcdn.cloudfront`, with CloudFront's limits)
and queues again, with a delay, what does not fit yet. `pump()` delivers what is due,
as the queue's event source mapping would; the server calls it before each request.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from edge import variants
from edge.settings import ORIGINAL_PREFIX
from localcdn.distribution import Distribution
from sync.invalidation import Invalidator, retry_delay
from sync.job import Sync, drain_invalidations


class LocalSync:
    """`PUT/DELETE /_localcdn/originals/<key>` and `POST /_localcdn/sync`, with a local dead-letter queue.

    The reconcile runs `sync.backfill.reconcile`: the sync job's own batches in a local
    process pool, as the Step Functions Distributed Map runs them in AWS."""

    def __init__(
        self,
        distribution: Distribution,
        *,
        service_base: str | None = None,
        mirror: Callable[[str, bytes | None], None] | None = None,
    ):
        """`service_base`: where a third-party primary answers (thumbor on loopback); `mirror`: told
        of every original stored or deleted, for a service that reads its own copy of them."""
        self.distribution = distribution
        self.service_base = service_base
        self.mirror = mirror
        # Who else hears of originals created and deleted (EventBridge's consumers): (kind, key).
        self.listeners: list[Callable[[str, str], object]] = []
        self.storage = distribution.storage
        self.dead_letters: deque[dict[str, Any]] = deque(maxlen=1000)
        self.queue: list[tuple[float, dict[str, Any]]] = []  # (due, message body)
        self._queue_lock = threading.Lock()
        self.invalidator = Invalidator(
            distribution.invalidations, distribution.invalidations.distribution_id, distribution.now
        )
        self.sync = Sync(
            distribution.settings,
            self.storage.client,
            report=self.dead_letters.append,
            invalidate=self.send,
            service_base=service_base,
        )

    # -- the invalidation queue --------------------------------------------------------------

    def send(self, paths: list[str], attempt: int = 0) -> None:
        """SendMessage, with the delay the sync job asks for on a retry."""
        due = self.distribution.now() + (retry_delay(attempt) if attempt else 0)
        with self._queue_lock:
            self.queue.append((due, {"paths": list(paths), "attempt": attempt}))

    def pump(self) -> int:
        """Deliver every message that is due, as one batch; returns how many were delivered."""
        now = self.distribution.now()
        with self._queue_lock:
            due = [body for when, body in self.queue if when <= now]
            self.queue = [(when, body) for when, body in self.queue if when > now]
        if due:
            try:
                drain_invalidations(due, self.invalidator, self.send)
            except Exception as error:  # as SQS would after maxReceiveCount: kept, not lost
                self.dead_letters.append({"invalidations": due, "reason": repr(error)})
        return len(due)

    def pending(self) -> list[dict[str, Any]]:
        with self._queue_lock:
            return [{"due": when, **body} for when, body in self.queue]

    # -- what S3 events and the schedule run -------------------------------------------------

    def upload(self, encoded_key: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            key = variants.validate_key(variants.decode(encoded_key, "key"))
        except variants.VariantError as problem:
            return 400, problem.body()
        self.storage.put_original(key, body)
        return 200, {"key": key, **self.stored(ORIGINAL_PREFIX + key)}

    def remove(self, encoded_key: str) -> tuple[int, dict[str, Any]]:
        try:
            key = variants.validate_key(variants.decode(encoded_key, "key"))
        except variants.VariantError as problem:
            return 400, problem.body()
        self.storage.client(self.storage.settings.primary_region).delete_object(
            Bucket=self.storage.settings.primary_bucket, Key=ORIGINAL_PREFIX + key
        )
        if self.mirror is not None:
            self.mirror(key, None)
        result = self.sync.removed(key).as_dict()  # what the ObjectRemoved event runs
        self._tell("Object Deleted", ORIGINAL_PREFIX + key)
        return 200, {"key": key, **result}

    def stored(self, object_key: str) -> dict[str, Any]:
        """An object was written to the primary bucket: the events S3 sends for it, delivered."""
        if not object_key.startswith(ORIGINAL_PREFIX):
            return {}
        if self.mirror is not None:
            settings = self.storage.settings
            answer = self.storage.client(settings.primary_region).get_object(
                Bucket=settings.primary_bucket, Key=object_key
            )
            self.mirror(object_key[len(ORIGINAL_PREFIX) :], answer["Body"].read())
        result = self.sync.created(object_key[len(ORIGINAL_PREFIX) :]).as_dict()  # the ObjectCreated notification
        self._tell("Object Created", object_key)
        return result

    def _tell(self, kind: str, object_key: str) -> None:
        for listener in self.listeners:
            listener(kind, object_key)

    def reconcile(self, workers: int = 0) -> dict[str, Any]:
        """The reconcile as the state machine runs it: the same batches, here in a process pool."""
        from sync import backfill

        summary = backfill.reconcile(
            self.distribution.settings,
            endpoint_url=self.storage.endpoint,
            workers=workers,
            report=self.dead_letters.append,
            service_base=self.service_base,
        )
        return summary.as_dict()

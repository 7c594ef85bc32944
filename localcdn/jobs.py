"""The sync job inside the emulator: uploads and deletions trigger it as S3 events would."""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import unquote

from edge import variants
from edge.settings import ORIGINAL_PREFIX
from edge.sync import Sync
from localcdn.distribution import Distribution


class LocalSync:
    """`PUT/DELETE /_localcdn/originals/<key>` and `POST /_localcdn/sync`, with a local dead-letter queue."""

    def __init__(self, distribution: Distribution):
        self.distribution = distribution
        self.storage = distribution.storage
        self.dead_letters: deque[dict[str, str]] = deque(maxlen=1000)
        self.sync = Sync(
            distribution.settings,
            self.storage.client,
            report=self.dead_letters.append,
            invalidate=distribution.invalidate,
        )

    def upload(self, encoded_key: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            key = variants.validate_key(unquote(encoded_key))
        except variants.VariantError as problem:
            return 400, problem.body()
        self.storage.put_original(key, body)
        return 200, {"key": key, **self.sync.created(key).as_dict()}  # what the ObjectCreated event runs

    def remove(self, encoded_key: str) -> tuple[int, dict[str, Any]]:
        key = unquote(encoded_key)
        self.storage.client(self.storage.settings.primary_region).delete_object(
            Bucket=self.storage.settings.primary_bucket, Key=ORIGINAL_PREFIX + key
        )
        return 200, {"key": key, **self.sync.removed(key).as_dict()}  # what the ObjectRemoved event runs

    def reconcile(self) -> dict[str, Any]:
        return self.sync.reconcile().as_dict()

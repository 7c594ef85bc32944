"""CloudFront KeyValueStore, modelled: what the program writes and the viewer function reads.

From AWS's documents:
- "File format for key-value pairs" (CloudFront Developer Guide): keys up to 512
  characters, values up to 1024 characters, 5 MB in all. The PutKey API reference
  allows keys up to 1024 characters; the model takes the stricter of the two readings,
  so anything it accepts AWS accepts under both.
- "Helper methods for key value stores": `get()` returns an error when the key does not
  exist; `meta()` gives creation and update times and the key count (the JavaScript side
  of this lives in cfruntime.js).
- PutKey / DeleteKey take the store's current ETag (`If-Match`) and answer with the new
  one; a stale ETag is refused. Modelled as an integer version.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

MAX_KEY_CHARS = 512
MAX_VALUE_CHARS = 1024
MAX_TOTAL_BYTES = 5 * 1024 * 1024


class KeyValueStoreError(ValueError):
    """A write the real store would refuse (named like the API's errors)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


class KeyValueStore:
    """One store: string keys to string values, versioned."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[str, str] = {}
        self._lock = threading.Lock()
        self.version = 0
        self.created = self.updated = datetime.now(UTC)

    def _size(self, data: dict[str, str]) -> int:
        return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())

    def put(self, key: str, value: str, if_match: int | None = None) -> int:
        if not 1 <= len(key) <= MAX_KEY_CHARS:
            raise KeyValueStoreError("ValidationException", f"a key of 1 to {MAX_KEY_CHARS} characters, not {len(key)}")
        if len(value) > MAX_VALUE_CHARS:
            raise KeyValueStoreError("ValidationException", f"a value of at most {MAX_VALUE_CHARS} characters")
        with self._lock:
            if if_match is not None and if_match != self.version:
                raise KeyValueStoreError("ConflictException", f"ETag {if_match} is not the current {self.version}")
            after = {**self._data, key: value}
            if self._size(after) > MAX_TOTAL_BYTES:
                raise KeyValueStoreError("ServiceQuotaExceededException", f"the store holds at most {MAX_TOTAL_BYTES}")
            self._data = after
            self.version += 1
            self.updated = datetime.now(UTC)
            return self.version

    def delete(self, key: str, if_match: int | None = None) -> int:
        with self._lock:
            if if_match is not None and if_match != self.version:
                raise KeyValueStoreError("ConflictException", f"ETag {if_match} is not the current {self.version}")
            if key not in self._data:
                raise KeyValueStoreError("ResourceNotFoundException", f"no key {key!r}")
            self._data = {k: v for k, v in self._data.items() if k != key}
            self.version += 1
            self.updated = datetime.now(UTC)
            return self.version

    def get(self, key: str) -> str:
        with self._lock:
            if key not in self._data:
                raise KeyValueStoreError("ResourceNotFoundException", f"no key {key!r}")
            return self._data[key]

    def snapshot(self) -> tuple[dict[str, str], dict[str, object]]:
        """The keys and `meta()` as the viewer function sees them."""
        with self._lock:
            meta = {
                "creationDateTime": self.created.isoformat().replace("+00:00", "Z"),
                "lastUpdatedDateTime": self.updated.isoformat().replace("+00:00", "Z"),
                "keyCount": len(self._data),
            }
            return dict(self._data), meta

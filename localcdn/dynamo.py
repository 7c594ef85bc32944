"""moto's DynamoDB, made to answer a Query in the time DynamoDB's own shape allows.

Why our own code: moto's `Table.query` sorts every item of the table, then filters to
the partition asked for, on every call (`Table.all_items`). Measured on a catalogue of
10,000 images (30,053 items with their tag copies): one 20-item tag page took 370 ms;
DynamoDB reads one partition. `install()` changes two things in this process only:

- a Query on the table's own key reads only its partition (`items[hash_key]`), which
  is what moto's code then filters everything down to anyway;
- a Query on an index reuses the sorted list of items until the next write to the table
  (moto still filters it item by item: an index Query stays linear in the table);
- a Query's answer, already DynamoDB's JSON once moto has built it, is written out with
  `json.dumps` instead of moto's model-driven serializer (which took 25 ms for a page of
  21 items; `json.dumps` under 1 ms). An answer `json` cannot write (binary values) goes
  through moto's serializer as before.

Nothing else changes: the same items, in the same order, with the same ScannedCount and
LastEvaluatedKey (tests/test_catalog_emulator.py compares both ways on the same
queries). Writes drop the table's sorted list; moto's transactions restore a deep copy of
the table on failure, which is a new table and so has no list yet.
"""

from __future__ import annotations

import inspect
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

_sorted: weakref.WeakKeyDictionary[Table, tuple[int, list[Any]]] = weakref.WeakKeyDictionary()
_writes: weakref.WeakKeyDictionary[Table, int] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_partition = threading.local()
_originals: dict[str, Callable[..., Any]] = {}
_INDEX_NAME = list(inspect.signature(Table.query).parameters).index("index_name") - 1  # after self


def _plain_range(item: Any) -> Any:
    key = item.range_key
    return key.value if key.type == "S" else key.cast_value


def _all_items(self: Table) -> list[Any]:
    if getattr(_partition, "table", None) is self:
        found = self.items.get(_partition.key)
        if not found:
            return []
        # sorted by the plain values, each computed once (moto then sorts an already sorted list)
        return sorted(found.values(), key=_plain_range) if self.range_key_attr else [found]
    with _lock:
        writes = _writes.get(self, 0)
        cached = _sorted.get(self)
    if cached is not None and cached[0] == writes:
        return list(cached[1])
    items = _originals["all_items"](self)
    with _lock:
        if _writes.get(self, 0) == writes:  # no write since we started: the list is current
            _sorted[self] = (writes, items)
    return list(items)


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[_INDEX_NAME - 1] if len(args) >= _INDEX_NAME else None)
    if index_name is not None or hash_key is None:
        return _originals["query"](self, hash_key, *args, **kwargs)
    _partition.table, _partition.key = self, hash_key
    try:
        return _originals["query"](self, hash_key, *args, **kwargs)
    finally:
        _partition.table = _partition.key = None


def _query_answer(handler: DynamoHandler) -> Any:
    result = _originals["handler_query"](handler)
    try:
        return json.dumps(result.result)
    except (TypeError, ValueError):
        return result


def _written(name: str) -> Callable[..., Any]:
    def write(self: Table, *args: Any, **kwargs: Any) -> Any:
        try:
            return _originals[name](self, *args, **kwargs)
        finally:
            with _lock:
                _writes[self] = _writes.get(self, 0) + 1
                _sorted.pop(self, None)

    return write


def install() -> None:
    """Faster Queries in this process (idempotent)."""
    with _lock:
        if _originals:
            return
        for name in ("all_items", "query", "put_item", "delete_item"):
            _originals[name] = getattr(Table, name)
        _originals["handler_query"] = DynamoHandler.query
    DynamoHandler.query = _query_answer  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
    Table.query = _query  # type: ignore[method-assign]
    Table.put_item = _written("put_item")  # type: ignore[method-assign]
    Table.delete_item = _written("delete_item")  # type: ignore[method-assign]


def uninstall() -> None:
    with _lock:
        for name, function in _originals.items():
            if name == "handler_query":
                DynamoHandler.query = function  # type: ignore[method-assign]
            else:
                setattr(Table, name, function)
        _originals.clear()
        _sorted.clear()
        _writes.clear()


@contextmanager
def installed() -> Iterator[None]:
    """For a test: faster Queries inside the block only (if they were not on already)."""
    already = bool(_originals)
    install()
    try:
        yield
    finally:
        if not already:
            uninstall()

"""The catalogue's one DynamoDB table: its layout, and every read and write made to it.

One item per image (`pk = image#<id>`, `sk = image`), and one copy of it per tag
(`pk = tag#<tag>`, `sk = <uploaded at>#<id>`), so that each filter is a Query on a
key, never a Scan:

- by tag (and upload time): the tag's partition, sorted by upload time;
- by upload time: the sparse index `byDate` (`date_pk` = the image's status);
- by width: the sparse index `byWidth` (`width_pk` = status, sorted by zero-padded width).

A tag copy carries the whole item, so a tag page is one Query and touches only the
items it returns (and one more, to know whether there is a next page). Filters that no
key covers (a minimum width beside a tag or a date range) run as a FilterExpression on
that Query and are said to in the README. A pending upload (the API has signed its
POST, S3 has not told us yet) is an image item without index keys that expires by TTL.

Pages are DynamoDB's own: a cursor is the key of the last item returned (what
LastEvaluatedKey would say), base64url-encoded JSON, checked to belong to the query it
is given to.

Writes that touch an image and its tag copies are one transaction, guarded by the
item's `revision` (optimistic locking), so concurrent writers never leave a tag copy
behind. One partition key holds every ready image in each index: DynamoDB serves
1,000 writes a second to one partition key, so uploads past that rate would need the
index keys sharded (README, "The image catalogue").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

# The table's keys and indexes: the component and the emulator both create it from these.
KEYS = ("pk", "sk")
INDEXES = {"byDate": ("date_pk", "date_sk"), "byWidth": ("width_pk", "width_sk")}
TTL_ATTRIBUTE = "expires_at"
MAX_TAGS = 10
# Reads one page may take when a filter leaves DynamoDB's pages short.
MAX_ROUNDS = 10
STATUSES = ("ready", "rejected")
# DynamoDB's TransactWriteItems limit is 100 actions: one image and two sets of tags fit.
assert 1 + 2 * MAX_TAGS <= 100

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class Conflict(Exception):
    """Someone else changed the image between our read and our write."""


class BadCursor(ValueError):
    """A cursor that is not one this query gave out."""


def attribute_definitions() -> list[tuple[str, str]]:
    names = [*KEYS, *(name for pair in INDEXES.values() for name in pair)]
    return [(name, "S") for name in names]


def create_table(client: Any, name: str) -> None:
    """The table as the component declares it (on-demand, both indexes projecting everything)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attribute_definitions()],
        KeySchema=[{"AttributeName": KEYS[0], "KeyType": "HASH"}, {"AttributeName": KEYS[1], "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": h, "KeyType": "HASH"}, {"AttributeName": r, "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, (h, r) in INDEXES.items()
        ],
    )


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    values = {name: _deserialize(value) for name, value in item.items()}
    return {
        name: [_number(v) for v in value] if isinstance(value, list) else _number(value)
        for name, value in values.items()
    }


def _number(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in values.items() if value is not None}


def image_key(image_id: str) -> dict[str, Any]:
    return _typed({"pk": f"image#{image_id}", "sk": "image"})


def _order(item: dict[str, Any]) -> str:
    return f"{item['uploaded_at']}#{item['id']}"


def _indexed(item: dict[str, Any]) -> dict[str, Any]:
    """An image item with the index keys its status calls for (pending: none)."""
    item = {k: v for k, v in item.items() if k not in ("date_pk", "date_sk", "width_pk", "width_sk")}
    status = item.get("status")
    if status in STATUSES:
        item.update(date_pk=status, date_sk=_order(item))
        if status == "ready":
            item.update(width_pk=status, width_sk=f"{int(item['width']):05d}#{_order(item)}")
    return item


def _tag_copies(item: dict[str, Any]) -> list[dict[str, Any]]:
    if item.get("status") != "ready":
        return []
    body = {k: v for k, v in item.items() if k not in ("pk", "sk", "date_pk", "date_sk", "width_pk", "width_sk")}
    return [{**body, "pk": f"tag#{tag}", "sk": _order(item)} for tag in item.get("tags") or []]


@dataclass
class Page:
    items: list[dict[str, Any]]
    cursor: str | None
    scanned: int
    """Items DynamoDB read for this page (ScannedCount)."""


class Catalogue:
    """The table, through one boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    # -- reads -------------------------------------------------------------------------------

    def get(self, image_id: str) -> dict[str, Any] | None:
        answer = self.client.get_item(TableName=self.table, Key=image_key(image_id), ConsistentRead=True)
        item = answer.get("Item")
        return _public(_plain(item)) if item else None

    def _raw(self, image_id: str) -> dict[str, Any] | None:
        answer = self.client.get_item(TableName=self.table, Key=image_key(image_id), ConsistentRead=True)
        item = answer.get("Item")
        return _plain(item) if item else None

    def query(
        self,
        *,
        tag: str | None = None,
        after: str | None = None,
        before: str | None = None,
        min_width: int | None = None,
        status: str = "ready",
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page:
        """One page, newest first (by width, narrowest first, when only a minimum width is asked)."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters: list[str] = []
        newest_first = True
        if tag is not None:
            index, partition_name, sort_name, partition = None, "pk", "sk", f"tag#{tag}"
        elif min_width is not None and after is None and before is None and status == "ready":
            index, (partition_name, sort_name) = "byWidth", INDEXES["byWidth"]
            partition, newest_first = status, False
        else:
            index, (partition_name, sort_name) = "byDate", INDEXES["byDate"]
            partition = status
        condition = "#p = :p"
        names["#p"], values[":p"] = partition_name, partition
        if index == "byWidth":
            condition += " AND #s >= :lo"
            names["#s"], values[":lo"] = sort_name, f"{min_width:05d}"
        else:
            # `<time>#<id>`: "#" sorts before every character of an id, "~" after them all.
            if after is not None and before is not None:
                condition += " AND #s BETWEEN :lo AND :hi"
                values[":lo"], values[":hi"] = after + "~", before
            elif after is not None:
                condition += " AND #s > :lo"
                values[":lo"] = after + "~"
            elif before is not None:
                condition += " AND #s < :hi"
                values[":hi"] = before
            if after is not None or before is not None:
                names["#s"] = sort_name
            if min_width is not None:
                filters.append("#w >= :w")
                names["#w"], values[":w"] = "width", min_width
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _typed(values),
            "ScanIndexForward": not newest_first,
            "Limit": limit + 1,
        }
        if index is not None:
            request["IndexName"] = index
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        key_names = (partition_name, sort_name, *(KEYS if index is not None else ()))
        if cursor:
            request["ExclusiveStartKey"] = _typed(_decode_cursor(cursor, key_names, partition_name, partition))
        items: list[dict[str, Any]] = []
        scanned = 0
        # A filter may leave a DynamoDB page short: read on until the page is full, the range
        # ends, or MAX_ROUNDS reads were made (then the page is short and the cursor goes on).
        for _ in range(MAX_ROUNDS):
            answer = self.client.query(**request)
            scanned += int(answer.get("ScannedCount", 0))
            items.extend(_plain(item) for item in answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if len(items) > limit or not last:
                break
            request["ExclusiveStartKey"] = last
        page = items[:limit]
        following = None
        if len(items) > limit or (last and len(items) == limit):
            following = _encode_cursor({name: page[-1][name] for name in key_names})
        elif last:
            following = _encode_cursor({name: _plain(last)[name] for name in key_names})
        return Page([_public(item) for item in page], following, scanned)

    # -- writes ------------------------------------------------------------------------------

    def seed(self, items: list[dict[str, Any]]) -> int:
        """Fill an empty table with ready or rejected images and their tag copies, 25 writes a
        call (BatchWriteItem): a restore or a benchmark's catalogue, never a live one (no revision
        checks). Returns the number of items written."""
        writes = []
        for item in items:
            image = _indexed({**item, "pk": f"image#{item['id']}", "sk": "image", "revision": 1})
            writes.extend([image, *_tag_copies(image)])
        for start in range(0, len(writes), 25):
            pending = {self.table: [{"PutRequest": {"Item": _typed(w)}} for w in writes[start : start + 25]]}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        return len(writes)

    def put_pending(self, item: dict[str, Any]) -> None:
        """The record of an upload the API has just signed; never replaces anything."""
        self.client.put_item(
            TableName=self.table,
            Item=_typed({**item, "pk": f"image#{item['id']}", "sk": "image", "status": "pending", "revision": 0}),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def save(self, item: dict[str, Any], *, unless_newer: str | None = None) -> bool:
        """Write an image (ready or rejected) and its tag copies; False when a newer write was kept.

        `unless_newer`: the original's last-modified time; an item already describing a
        later version of the original (events come in any order) is left as it is.
        """
        for _ in range(5):
            current = self._raw(item["id"])
            if current and unless_newer and str(current.get("modified", "")) > unless_newer:
                return False
            revision = int(current.get("revision", 0)) if current else 0
            new = _indexed({**item, "pk": f"image#{item['id']}", "sk": "image", "revision": revision + 1})
            new.pop(TTL_ATTRIBUTE, None)
            try:
                self._replace(current, new)
                return True
            except Conflict:
                continue
        raise Conflict(item["id"])

    def set_tags(self, image_id: str, tags: list[str], owner: str) -> dict[str, Any] | None:
        """Replace the tags of an image its owner asks about; None when there is no such image."""
        for _ in range(5):
            current = self._raw(image_id)
            if current is None:
                return None
            if current.get("owner") != owner:
                raise PermissionError(image_id)
            new = _indexed({**current, "tags": tags, "revision": int(current.get("revision", 0)) + 1})
            try:
                self._replace(current, new)
                return _public(new)
            except Conflict:
                continue
        raise Conflict(image_id)

    def delete(self, image_id: str, *, key: str | None = None) -> dict[str, Any] | None:
        """Remove an image and its tag copies; with `key`, only if the item is of that original."""
        for _ in range(5):
            current = self._raw(image_id)
            if current is None or (key is not None and current.get("key") != key):
                return None
            try:
                self._replace(current, None)
                return _public(current)
            except Conflict:
                continue
        raise Conflict(image_id)

    def _replace(self, current: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """One transaction: the image item replaced (or deleted) and its tag copies made to match."""
        actions: list[dict[str, Any]] = []
        guard: dict[str, Any]
        if current is None:
            guard = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            guard = {
                "ConditionExpression": "#r = :r",
                "ExpressionAttributeNames": {"#r": "revision"},
                "ExpressionAttributeValues": _typed({":r": int(current.get("revision", 0))}),
            }
        old_copies = {(c["pk"], c["sk"]): c for c in _tag_copies(current or {})}
        new_copies = {(c["pk"], c["sk"]): c for c in _tag_copies(new or {})}
        if new is None:
            assert current is not None
            actions.append({"Delete": {"TableName": self.table, "Key": image_key(current["id"]), **guard}})
        else:
            actions.append({"Put": {"TableName": self.table, "Item": _typed(new), **guard}})
        for pk, sk in old_copies.keys() - new_copies.keys():
            actions.append({"Delete": {"TableName": self.table, "Key": _typed({"pk": pk, "sk": sk})}})
        for copy in new_copies.values():
            actions.append({"Put": {"TableName": self.table, "Item": _typed(copy)}})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except self.client.exceptions.TransactionCanceledException as error:
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
                raise Conflict(str(reasons)) from None
            raise


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the API shows it: no table bookkeeping."""
    hidden = {"pk", "sk", "date_pk", "date_sk", "width_pk", "width_sk", "revision", TTL_ATTRIBUTE}
    return {k: v for k, v in item.items() if k not in hidden}


def _encode_cursor(key: dict[str, Any]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).decode().rstrip("=")
    )


def _decode_cursor(cursor: str, names: tuple[str, ...], partition_name: str, partition: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise BadCursor(cursor) from None
    if (
        not isinstance(data, dict)
        or set(data) != set(names)
        or not all(isinstance(v, str) and 0 < len(v) <= 1024 for v in data.values())
        or data[partition_name] != partition
    ):
        raise BadCursor(cursor)
    return data

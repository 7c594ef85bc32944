"""The emulator's faster moto Queries (localcdn/dynamo.py) answer exactly what moto answers."""

from __future__ import annotations

import random
import socket
from typing import Any

import boto3
import pytest
from moto import mock_aws

from catalog.store import INDEXES, Catalogue, create_table
from localcdn import dynamo


def _items(count: int) -> list[dict[str, Any]]:
    rng = random.Random(5)
    return [
        {
            "id": f"00000000-0000-4000-8000-{index:012d}",
            "key": f"originals/x/{index}.jpg",
            "status": "rejected" if index % 17 == 0 else "ready",
            "width": rng.choice((320, 640, 1024, 4000)),
            "height": 300,
            "tags": rng.sample(["a", "b", "c", "d"], rng.randint(1, 2)),
            "uploaded_at": f"2026-0{1 + index % 9}-{10 + index % 18:02d}T10:00:00.{index % 1000:03d}Z",
            "owner": None,
        }
        for index in range(count)
    ]


QUERIES: list[dict[str, Any]] = [
    {"tag": "a", "limit": 7},
    {"tag": "b", "limit": 50, "after": "2026-03-01T00:00:00.000Z"},
    {"tag": "c", "limit": 5, "min_width": 1000},
    {"limit": 9},
    {"limit": 9, "before": "2026-05-01T00:00:00.000Z", "after": "2026-02-01T00:00:00.000Z"},
    {"min_width": 640, "limit": 11},
    {"status": "rejected", "limit": 3},
]


def _walk(catalogue: Catalogue, query: dict[str, Any]) -> list[tuple[list[str], str | None, int]]:
    pages = []
    cursor = None
    while True:
        page = catalogue.query(**query, cursor=cursor)
        pages.append(([item["id"] for item in page.items], page.cursor, page.scanned))
        cursor = page.cursor
        if cursor is None:
            return pages


@pytest.fixture
def table() -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        create_table(client, "t")
        catalogue = Catalogue(client, "t")
        catalogue.seed(_items(150))
        yield catalogue


def test_every_query_pages_the_same_with_and_without_it(table: Catalogue) -> None:
    dynamo.uninstall()  # as moto is
    plain = [_walk(table, query) for query in QUERIES]
    with dynamo.installed():
        faster = [_walk(table, query) for query in QUERIES]
    assert faster == plain
    assert sum(len(ids) for ids, _, _ in plain[0]) > 20  # several pages each


def test_a_write_is_seen_by_the_next_index_query(table: Catalogue) -> None:
    with dynamo.installed():
        before = [item["id"] for item in table.query(limit=100).items]
        new = {**_items(2)[1], "id": "00000000-0000-4000-8000-999999999999", "uploaded_at": "2027-01-01T00:00:00.000Z"}
        assert new["status"] == "ready"
        assert table.save(new)
        after = [item["id"] for item in table.query(limit=100).items]
        assert after[0] == new["id"] and after[1:] == before[:99]
        assert table.delete(new["id"]) is not None
        assert [item["id"] for item in table.query(limit=100).items] == before
    assert set(INDEXES) == {"byDate", "byWidth"}


def test_the_emulator_listens_on_a_socket_asyncio_sets_tcp_nodelay_on() -> None:
    """asyncio sets TCP_NODELAY only on sockets created with IPPROTO_TCP; without it every
    kept-alive request waited on a delayed ACK."""
    from localcdn.__main__ import listen

    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()

"""The gateway's store access: an embedded file opened per use, a Neo4j store kept open."""

from __future__ import annotations

import pytest

from graphdb.store import open_store
from prouter.gateway.server import StoreAccess


def _counting(url: str, **auth: str):  # type: ignore[no-untyped-def]
    opened: list[bool] = []

    def open_(read_only: bool):  # type: ignore[no-untyped-def]
        opened.append(read_only)
        return open_store(url, read_only=read_only, **auth)

    return opened, StoreAccess(open_)


def test_an_embedded_file_is_opened_for_each_use(tmp_path):
    opened, access = _counting(f"ladybug:{tmp_path / 'g.lbug'}")
    for _ in range(2):
        with access() as store:
            store.write_nodes("User", [{"id": "ann"}])
    with access(read_only=True) as store:
        assert store.node_ids("User") == ["ann"]
    assert opened == [False, False, True]
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as other:  # free between uses
        assert other.node_ids("User") == ["ann"]


@pytest.mark.neo4j
def test_a_neo4j_store_stays_open_until_closed(neo4j_server):
    auth = {"username": neo4j_server["username"], "password": neo4j_server["password"]}
    opened, access = _counting(neo4j_server["uri"], **auth)
    with access() as store:
        store.clear()
    for i in range(3):
        with access() as again:
            assert again is store
            again.write_nodes("User", [{"id": f"u{i}"}])
        with access(read_only=True) as reader:
            assert reader.node_ids("User")[-1] == f"u{i}"
    assert opened == [False, True]  # one per mode: no connect + schema per write batch
    with pytest.raises(RuntimeError), access() as store:
        raise RuntimeError("a failed use")
    with access() as fresh:  # a failed use is not reused: it may have lost its connection
        assert fresh is not store
    access.close()
    assert opened == [False, True, False]

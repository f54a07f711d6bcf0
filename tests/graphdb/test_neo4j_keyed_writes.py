"""Writing keyed relationships on Neo4j seeks the key's index, never every parallel edge."""

from __future__ import annotations

from collections.abc import Iterator

import neo4j
import pyarrow as pa
import pytest

from graphdb.schema import RELS
from graphdb.store import GraphStore, open_store

pytestmark = pytest.mark.neo4j


@pytest.fixture
def neo4j_store(neo4j_server) -> Iterator[GraphStore]:
    auth = {"username": neo4j_server["username"], "password": neo4j_server["password"]}
    with open_store(neo4j_server["uri"], **auth) as store:  # the schema applied
        yield store


@pytest.mark.parametrize("rel", [r for r in RELS.values() if "query_id" in r.key])
def test_a_keyed_merge_seeks_the_relationship_index(neo4j_store, rel, monkeypatch):
    """A busy user has one ROUTED_TO / CHOSE / PREFERRED edge per query to each LLM: a MERGE
    that expanded them all per written row made recording quadratic in traffic."""
    store = neo4j_store
    store.clear()
    # The busy user, planned on fresh statistics: over an index that statistics call
    # empty the planner may scan instead of seek, which would prove nothing here.
    store.write_nodes("User", [{"id": "u"}])
    store.write_nodes("LLM", [{"id": "m"}])
    busy = [{"src": "u", "dst": "m", **{k: f"{k}{i}" for k in rel.key}} for i in range(300)]
    store.write_edges(rel.name, busy)
    with store._session(neo4j.WRITE_ACCESS) as session:  # resample the indexes, forget cached plans
        session.run("CALL db.prepareForReplanning()").consume()
    queries: list[str] = []
    monkeypatch.setattr(store, "_write_batched", lambda query, rows: queries.append(query))
    row = {"src": "u", "dst": "m", **{k: "k" for k in rel.key}}
    store._merge_edges(rel, pa.table({k: [v] for k, v in row.items()}))
    (query,) = queries
    plan = store.explain(query, {"rows": []})
    assert "DirectedRelationshipIndexSeek" in plan and "Expand(Into)" not in plan, plan


def test_a_write_reads_back_only_the_edges_it_writes(neo4j_store):
    """Not every edge of a busy source: that read grew with the user's history."""
    store = neo4j_store
    store.clear()
    store.write_nodes("User", [{"id": "u"}])
    store.write_nodes("LLM", [{"id": "m"}, {"id": "n"}])
    rel = RELS["ROUTED_TO"]
    rows = [
        {"src": "u", "dst": m, "query_id": f"q{i}", "model_version": "v1", "rank": 1}
        for i in range(5)
        for m in ("m", "n")
    ]
    store.write_edges("ROUTED_TO", rows)
    keys = pa.table({"src": ["u"], "dst": ["n"], "query_id": ["q3"], "model_version": ["v1"]})
    schema = pa.schema([*keys.schema, pa.field("rank", pa.int64())])
    found = store._existing_edges_like(rel, keys, schema).to_pylist()
    assert found == [{"src": "u", "dst": "n", "query_id": "q3", "model_version": "v1", "rank": 1}]
    stats = store.write_edges("ROUTED_TO", [rows[0] | {"rank": 2}, rows[1]])
    assert (stats.created, stats.updated, stats.unchanged) == (0, 1, 1)

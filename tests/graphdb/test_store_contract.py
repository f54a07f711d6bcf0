"""One contract, run on every backend: schema, exact read-back, idempotence, errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from graphdb.schema import NODES, RELS
from graphdb.store import WriteStats, open_store
from graphdb.tables import embedding_array, node_schema
from prcore.errors import ConfigError, QueryError, SchemaError, StoreError

NASTY_IDS = [
    "plain",
    "it's",
    'say "hi"',
    "}) DETACH DELETE n //",
    "MATCH (n) RETURN n",
    "{$param}",
    "back\\slash`tick`",
    "ünïcødé 用户",
]


def full_graph() -> dict[str, pa.Table]:
    """Rows for every node label and relationship type, every property set."""
    emb = embedding_array(np.random.default_rng(0).normal(size=(3, 4)))
    return {
        "User": pa.table(
            {
                "id": NASTY_IDS[:3],
                "alpha": [0.2, 0.5, 1.0],
                "persona": ["concise editor", None, "teacher"],
            }
        ),
        "Task": pa.table(
            {
                "id": ["math", "qa"],
                "description": ["Math problems.", "Questions."],
                "embedding": emb.slice(0, 2),
                "description_inferred": [False, True],
            }
        ),
        "Query": pa.table(
            {
                "id": NASTY_IDS[3:6],
                "text": ["What is 2+2?", "Who?", "Why\nnot?"],
                "split": ["train", "val", "test"],
                "embedding": emb,
            }
        ),
        "LLM": pa.table(
            {
                "id": NASTY_IDS[6:8],
                "description": ["small", "large"],
                "input_price": [0.2, 0.9],
                "output_price": [0.25, 1.1],
                "embedding": emb.slice(1, 2),
                "description_inferred": [True, None],
            }
        ),
        "RouterModel": pa.table(
            {
                "version": ["v1"],
                "created_at": ["2026-11-28T00:00:00Z"],
                "config": ['{"hidden": 64}'],
                "metrics": ['{"reward": 0.5}'],
            }
        ),
        "OF_TASK": pa.table({"src": NASTY_IDS[3:6], "dst": ["math", "qa", "qa"]}),
        "ASKED": pa.table(
            {
                "src": NASTY_IDS[:3],
                "dst": NASTY_IDS[3:6],
                "ts": ["2026-01-01T00:00:00Z", None, "2026-01-03T00:00:00Z"],
                "response_id": ["chatcmpl-1", None, "chatcmpl-3"],
            }
        ),
        "ANSWERED_BY": pa.table(
            {
                "src": [NASTY_IDS[3]] * 2 + [NASTY_IDS[4]],
                "dst": [*NASTY_IDS[6:8], NASTY_IDS[6]],
                "performance": [1.0, 0.0, 0.123456789012345],
                "cost": [1e-6, 0.0123, 2.5e-5],
                "input_tokens": [10, 10, 2**40],
                "output_tokens": [5, 7, 0],
                "response": ["4", "five", 'It\'s "quoted"\n'],
                "latency_ms": [12.5, 0.0, 1234.567],
                "status": ["ok", "http 502", "timeout"],
                "response_id": ["chatcmpl-1", None, "chatcmpl-3"],
            }
        ),
        "CHOSE": pa.table(
            {
                "src": NASTY_IDS[:2],
                "dst": NASTY_IDS[6:8],
                "query_id": NASTY_IDS[3:5],
                "reward": [0.5, -0.25],
                "ts": ["2026-01-01T00:00:00Z", None],
            }
        ),
        "PREFERRED": pa.table(
            {
                "src": [NASTY_IDS[0]] * 2,
                "dst": [NASTY_IDS[6], NASTY_IDS[7]],
                "query_id": [NASTY_IDS[3], NASTY_IDS[4]],
                "over": [NASTY_IDS[7], NASTY_IDS[6]],
                "tie": [False, True],
                "ts": [None, None],
            }
        ),
        "ROUTED_TO": pa.table(
            {
                "src": [NASTY_IDS[0]] * 2,
                "dst": NASTY_IDS[6:8],
                "query_id": [NASTY_IDS[3]] * 2,
                "model_version": ["v1", "v1"],
                "score": [0.75, 0.25],
                "rank": [1, 2],
            }
        ),
        "EVALUATED": pa.table(
            {
                "src": ["v1", "v1"],
                "dst": [NASTY_IDS[0]] * 2,
                "setting": ["general", "new_user"],
                "shots": [0, 3],
                "reward": [0.4, 0.3],
                "performance": [0.8, 0.7],
                "cost": [0.001, 0.002],
                "accuracy": [0.6, 0.5],
                "n": [100, 20],
            }
        ),
    }


def write_all(store, tables):  # type: ignore[no-untyped-def]
    stats = {}
    for name in NODES:
        stats[name] = store.write_nodes(name, tables[name])
    for name in RELS:
        stats[name] = store.write_edges(name, tables[name])
    return stats


def sort_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda r: repr(sorted(r.items())))


def test_apply_schema_is_idempotent_and_empty(store):
    store.apply_schema()
    store.apply_schema()
    assert set(store.counts()) == set(NODES) | set(RELS)
    assert all(n == 0 for n in store.counts().values())


def test_every_property_reads_back_exactly(store):
    tables = full_graph()
    stats = write_all(store, tables)
    assert all(s == WriteStats(created=tables[k].num_rows) for k, s in stats.items())
    for label in NODES:
        got = store.export_nodes(label)
        assert got.schema == node_schema(NODES[label])
        assert sort_rows(got) == sort_rows(tables[label].select(got.column_names)), label
    for name in RELS:
        got = store.export_edges(name)
        assert sort_rows(got) == sort_rows(tables[name].select(got.column_names)), name
        # Any subset of properties, without the key ones the rows are ordered by.
        last = list(RELS[name].value_properties)[-1:]
        some = store.export_edges(name, last)
        assert some.column_names == ["src", "dst", *last]
        assert sort_rows(some) == sort_rows(tables[name].select(some.column_names)), name
    counts = store.counts()
    assert {k: counts[k] for k in tables} == {k: t.num_rows for k, t in tables.items()}


def test_rewriting_the_same_rows_changes_nothing(store):
    tables = full_graph()
    write_all(store, tables)
    before = {name: sort_rows(store.export_edges(name)) for name in RELS}
    stats = write_all(store, tables)
    assert all(s == WriteStats(unchanged=tables[k].num_rows) for k, s in stats.items())
    assert {name: sort_rows(store.export_edges(name)) for name in RELS} == before
    assert store.counts()["ANSWERED_BY"] == 3


def test_writing_a_superset_adds_exactly_the_missing_rows(store):
    tables = full_graph()
    for label in NODES:
        store.write_nodes(label, tables[label])
    edges = tables["ANSWERED_BY"]
    store.write_edges("ANSWERED_BY", edges.slice(1, 1))
    stats = store.write_edges("ANSWERED_BY", edges)
    assert stats == WriteStats(created=2, unchanged=1)
    assert sort_rows(store.export_edges("ANSWERED_BY")) == sort_rows(edges)
    users = tables["User"]
    store.clear()
    store.write_nodes("User", users.take([2]))
    assert store.write_nodes("User", users) == WriteStats(created=2, unchanged=1)
    assert sort_rows(store.export_nodes("User")) == sort_rows(users)


def test_update_changes_only_given_values_and_null_keeps_stored(store):
    write_all(store, full_graph())
    stats = store.write_nodes(
        "LLM", [{"id": NASTY_IDS[6], "input_price": 0.3, "description": None}]
    )
    assert stats == WriteStats(updated=1)
    row = next(r for r in store.export_nodes("LLM").to_pylist() if r["id"] == NASTY_IDS[6])
    assert row["input_price"] == 0.3 and row["description"] == "small"
    stats = store.write_edges(
        "ANSWERED_BY",
        [
            {"src": NASTY_IDS[3], "dst": NASTY_IDS[6], "performance": 0.5},
            {"src": NASTY_IDS[3], "dst": NASTY_IDS[7], "performance": 0.0},
        ],
    )
    assert stats == WriteStats(updated=1, unchanged=1)
    edges = {(r["src"], r["dst"]): r for r in store.export_edges("ANSWERED_BY").to_pylist()}
    assert edges[(NASTY_IDS[3], NASTY_IDS[6])]["performance"] == 0.5
    assert edges[(NASTY_IDS[3], NASTY_IDS[6])]["cost"] == 1e-6
    assert store.counts()["ANSWERED_BY"] == 3


def test_edges_with_other_key_values_are_separate(store):
    write_all(store, full_graph())
    store.write_nodes("RouterModel", [{"version": "v2"}])
    store.write_edges(
        "ROUTED_TO",
        [
            {
                "src": NASTY_IDS[0],
                "dst": NASTY_IDS[6],
                "query_id": NASTY_IDS[3],
                "model_version": "v2",
                "score": 0.9,
                "rank": 1,
            }
        ],
    )
    routed = store.export_edges("ROUTED_TO").to_pylist()
    assert sorted((r["model_version"], r["score"]) for r in routed) == [
        ("v1", 0.25),
        ("v1", 0.75),
        ("v2", 0.9),
    ]


def test_unknown_endpoint_writes_nothing(store):
    write_all(store, full_graph())
    with pytest.raises(StoreError, match=r"unknown LLM ids .*'no-such-llm'"):
        store.write_edges(
            "ANSWERED_BY",
            [
                {"src": NASTY_IDS[5], "dst": NASTY_IDS[6], "performance": 1.0},
                {"src": NASTY_IDS[5], "dst": "no-such-llm", "performance": 1.0},
            ],
        )
    assert store.counts()["ANSWERED_BY"] == 3


def test_bad_rows_are_refused_before_writing(store):
    with pytest.raises(SchemaError, match=r"unknown columns.*'colour'"):
        store.write_nodes("User", [{"id": "u", "colour": "red"}])
    with pytest.raises(SchemaError, match="key column 'id' has null values"):
        store.write_nodes("User", [{"id": None, "alpha": 0.1}])
    with pytest.raises(SchemaError, match="conflicting values"):
        store.write_nodes("User", [{"id": "u", "alpha": 0.1}, {"id": "u", "alpha": 0.2}])
    with pytest.raises(SchemaError, match="cannot be stored as double"):
        store.write_nodes("User", [{"id": "u", "alpha": "high"}])
    with pytest.raises(SchemaError, match="unknown node label 'Person'; valid labels: User"):
        store.write_nodes("Person", [{"id": "u"}])
    with pytest.raises(SchemaError, match="missing required columns \\['query_id'\\]"):
        store.write_edges("CHOSE", [{"src": "u", "dst": "m"}])
    assert store.counts()["User"] == 0
    assert store.write_nodes("User", [{"id": "u", "alpha": 0.1}] * 2) == WriteStats(created=1)


def test_parameters_are_never_spliced_into_cypher(store):
    write_all(store, full_graph())
    for nasty in NASTY_IDS[:3]:
        rows = store.read("MATCH (u:User) WHERE u.id = $id RETURN u.id AS id", {"id": nasty})
        assert rows.column("id").to_pylist() == [nasty]
    assert store.counts()["User"] == 3


def test_named_queries_check_parameters(store):
    with pytest.raises(QueryError, match="missing parameters: user_id"):
        store.query("user_choice_share")
    with pytest.raises(QueryError, match="unexpected parameters: colour"):
        store.query("user_choice_share", user_id="u", colour="red")
    with pytest.raises(QueryError, match="unknown query 'nope'; valid queries: "):
        store.query("nope")


def test_named_queries_compute_the_same_on_every_backend(store):
    write_all(store, full_graph())
    share = store.query("user_choice_share", user_id=NASTY_IDS[0]).to_pylist()
    assert share == [{"user_id": NASTY_IDS[0], "llm_id": NASTY_IDS[6], "n": 1, "share": 1.0}]
    outcomes = store.query("llm_outcomes_by_task").to_pylist()
    assert [(r["task_id"], r["llm_id"], r["n"]) for r in outcomes] == [
        ("math", NASTY_IDS[6], 1),
        ("math", NASTY_IDS[7], 1),
        ("qa", NASTY_IDS[6], 1),
    ]
    assert outcomes[2]["mean_performance"] == pytest.approx(0.123456789012345)


def test_export_round_trips_into_a_second_store(store, tmp_path):
    tables = full_graph()
    write_all(store, tables)
    exported = {label: store.export_nodes(label) for label in NODES}
    exported |= {name: store.export_edges(name) for name in RELS}
    with open_store(f"ladybug:{tmp_path / 'copy.lbug'}") as copy:
        write_all(copy, exported)
        for label in NODES:
            assert copy.export_nodes(label).equals(exported[label])
        for name in RELS:
            assert copy.export_edges(name).equals(exported[name])


def test_clear_removes_everything(store):
    write_all(store, full_graph())
    store.clear()
    assert all(n == 0 for n in store.counts().values())


def test_read_only_store_refuses_writes(store, tmp_path, request):
    if store.backend == "ladybug":
        store.write_nodes("User", [{"id": "u"}])
        store.close()
        path = store.path
        with open_store(f"ladybug:{path}", read_only=True) as ro:
            assert ro.node_ids("User") == ["u"]
            with pytest.raises(StoreError):
                ro.write_nodes("User", [{"id": "v"}])
        return
    server = request.getfixturevalue("neo4j_server")
    with open_store(
        server["uri"], username=server["username"], password=server["password"], read_only=True
    ) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.write_nodes("User", [{"id": "v"}])
        with pytest.raises(StoreError):
            ro.read("CREATE (:User {id: 'w'})")
    assert store.counts()["User"] == 0


def test_open_store_names_valid_backends():
    with pytest.raises(ConfigError, match=r"valid backends: ladybug: .*neo4j: "):
        open_store("postgres://localhost/db")
    with pytest.raises(ConfigError, match="NEO4J_USERNAME"):
        open_store("bolt://127.0.0.1:1")

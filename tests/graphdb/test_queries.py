"""The named-query library and the DDL files agree with the schema."""

from __future__ import annotations

import pytest

from graphdb.queries import coerce_param, load_queries, parse_query, schema_statements
from graphdb.schema import NODES, RELS
from graphdb.store import open_store
from prcore.errors import QueryError


def test_every_library_query_has_a_header_and_matching_params():
    queries = load_queries()
    assert {"llm_outcomes_by_task", "user_choice_share"} <= set(queries)
    for query in queries.values():
        assert query.description and query.returns, query.name


def test_header_params_must_match_the_body(tmp_path):
    path = tmp_path / "q.cypher"
    path.write_text(
        "// name: q\n// Purpose.\n// params: $a (str)\n// returns: x\n"
        "MATCH (u:User) WHERE u.id = $b RETURN u.id AS x\n"
    )
    with pytest.raises(QueryError, match=r"declares parameters \['a'\] but the query uses \['b'\]"):
        parse_query(path)
    path.write_text("MATCH (n) RETURN n\n")
    with pytest.raises(QueryError, match="missing '// name:' header"):
        parse_query(path)


def test_library_queries_return_their_declared_columns(store):
    for query in load_queries().values():
        params = {name: coerce_param(name, type_, "1") for name, type_ in query.params.items()}
        table = store.query(query.name, **params)
        assert tuple(table.column_names) == query.returns, query.name


def test_ladybug_ddl_matches_schema_module(tmp_path):
    with open_store(f"ladybug:{tmp_path / 'g.lbug'}") as store:
        for label, nt in NODES.items():
            info = store.read(f"CALL table_info('{label}') RETURN name, type").to_pylist()
            assert [(r["name"], r["type"]) for r in info] == [
                (nt.key, "STRING"),
                *nt.properties.items(),
            ], label
        for name, rt in RELS.items():
            info = store.read(f"CALL table_info('{name}') RETURN name, type").to_pylist()
            assert [(r["name"], r["type"]) for r in info] == list(rt.properties.items()), name


def test_neo4j_ddl_constrains_every_node_key():
    text = " ".join(schema_statements("neo4j"))
    for nt in NODES.values():
        assert f"FOR (n:{nt.label}) REQUIRE n.{nt.key} IS UNIQUE" in text
